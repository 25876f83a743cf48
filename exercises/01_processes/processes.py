"""Exercise 1: processes.

Read README.md in this folder first. Replace each TODO with your code, then
run the grader:  python -m grader grade --only processes
"""

from __future__ import annotations

import multiprocessing  # noqa: F401 - you will need it
import os  # noqa: F401 - you will need it
from collections.abc import Callable, Iterable
from typing import Any


def start_worker(
    target: Callable[..., Any],
    args: tuple = (),
    kwargs: dict[str, Any] | None = None,
    name: str | None = None,
) -> multiprocessing.Process:
    """Start target(*args, **kwargs) in a new process called name; return the process.

    Do not wait for it: return the started process, the caller joins it.
    """
    # TODO (task 1): create a multiprocessing.Process with target, args, kwargs
    # (None means no keyword arguments) and name, start it, and return it.
    raise NotImplementedError("start_worker: task 1 of exercise 1")


def run_all(target: Callable[..., Any], arg_tuples: Iterable[tuple]) -> list[int]:
    """Run target(*args) in one process per tuple, all at the same time.

    Return only when every process has finished, with their exit codes in the
    order of arg_tuples.
    """
    # TODO (task 2): create one process per tuple, start them all, join them
    # all, then return [each process's exitcode].
    raise NotImplementedError("run_all: task 2 of exercise 1")


def whoami() -> dict[str, Any]:
    """Say who the calling process is.

    Return {"pid": ..., "name": ..., "parent_pid": ...}: this process's pid and
    name, and the pid of the process that started it, or None in the main
    process.
    """
    # TODO (task 3): use os.getpid(), multiprocessing.current_process() and
    # multiprocessing.parent_process().
    raise NotImplementedError("whoami: task 3 of exercise 1")
