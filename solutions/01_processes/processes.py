"""Exercise 1: processes. Reference solution."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable
from typing import Any


def start_worker(
    target: Callable[..., Any],
    args: tuple = (),
    kwargs: dict[str, Any] | None = None,
    name: str | None = None,
) -> multiprocessing.Process:
    """Start target(*args, **kwargs) in a new process called name; return the process."""
    process = multiprocessing.Process(target=target, args=args, kwargs=kwargs or {}, name=name)
    process.start()
    return process


def run_all(target: Callable[..., Any], arg_tuples: Iterable[tuple]) -> list[int]:
    """Run target(*args) in one process per tuple, all at once; return the exit codes in order."""
    processes = [multiprocessing.Process(target=target, args=args) for args in arg_tuples]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    return [process.exitcode for process in processes]


def whoami() -> dict[str, Any]:
    """This process's pid and name, and the pid of the process that started it (None if none)."""
    parent = multiprocessing.parent_process()
    return {
        "pid": os.getpid(),
        "name": multiprocessing.current_process().name,
        "parent_pid": parent.pid if parent is not None else None,
    }
