"""Exercise 9: daemons. Reference solution."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable
from typing import Any


def start_daemon(target: Callable[..., Any], args: tuple = ()) -> multiprocessing.Process:
    """Start target(*args) in a daemon process and return the process, without waiting for it."""
    process = multiprocessing.Process(target=target, args=args, daemon=True)
    process.start()
    return process


def start_jobs(jobs: Iterable[tuple[Callable[..., Any], tuple, bool]]) -> list[multiprocessing.Process]:
    """Start one process per (target, args, must_finish); only the jobs that need not finish are daemons."""
    processes = [
        multiprocessing.Process(target=target, args=args, daemon=not must_finish) for target, args, must_finish in jobs
    ]
    for process in processes:
        process.start()
    return processes


def supervise(target: Callable[..., Any], arg_tuples: Iterable[tuple]) -> None:
    """Run target(*args) in one child process per tuple, all at once, and wait for them all."""
    workers = [multiprocessing.Process(target=target, args=args) for args in arg_tuples]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def start_supervisor(target: Callable[..., Any], arg_tuples: Iterable[tuple]) -> multiprocessing.Process:
    """Start supervise(target, arg_tuples) in an ordinary (non-daemon) process and return it."""
    # Not a daemon: a daemon may not start processes of its own.
    supervisor = multiprocessing.Process(target=supervise, args=(target, list(arg_tuples)), name="supervisor")
    supervisor.start()
    return supervisor
