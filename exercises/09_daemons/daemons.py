"""Exercise 9: daemons.

Read README.md in this folder first. Replace each TODO with your code, then
run the grader:  python -m grader grade --only daemons
"""

from __future__ import annotations

import multiprocessing  # noqa: F401 - you will need it
from collections.abc import Callable, Iterable
from typing import Any


def start_daemon(target: Callable[..., Any], args: tuple = ()) -> multiprocessing.Process:
    """Start target(*args) in a daemon process and return the process.

    Do not wait for it: when the program ends, the daemon ends with it.
    """
    # TODO (task 1): create a multiprocessing.Process for target and args that
    # is a daemon, start it, and return it.
    raise NotImplementedError("start_daemon: task 1 of exercise 9")


def start_jobs(jobs: Iterable[tuple[Callable[..., Any], tuple, bool]]) -> list[multiprocessing.Process]:
    """Start one process per job and return them, in the order of jobs, without waiting.

    Each job is (target, args, must_finish). A job that must finish keeps the
    program alive until it is done; a job that need not finish is stopped
    when the program ends.
    """
    # TODO (task 2): one process per job, a daemon or not depending on
    # must_finish; start them all and return them.
    raise NotImplementedError("start_jobs: task 2 of exercise 9")


def supervise(target: Callable[..., Any], arg_tuples: Iterable[tuple]) -> None:
    """Run target(*args) in one child process per tuple, all at once, and wait for them all.

    This is what the supervisor process runs.
    """
    # TODO (task 3): start one process per tuple, then join them all.
    raise NotImplementedError("supervise: task 3 of exercise 9")


def start_supervisor(target: Callable[..., Any], arg_tuples: Iterable[tuple]) -> multiprocessing.Process:
    """Start supervise(target, arg_tuples) in a process of its own and return that process.

    Do not wait for it: the caller joins it.
    """
    # TODO (task 3): start a process that runs supervise. Think about whether
    # it may be a daemon.
    raise NotImplementedError("start_supervisor: task 3 of exercise 9")
