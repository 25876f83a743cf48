"""Exercise 11: executors.

Read README.md in this folder first. Replace each TODO with your code, then
run the grader:  python -m grader grade --only executors

Every function but make_executor creates its own ProcessPoolExecutor and shuts
it down before it returns.
"""

from __future__ import annotations

import concurrent.futures  # noqa: F401 - as_completed, wait and FIRST_EXCEPTION live here
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor  # noqa: F401 - you will need it
from multiprocessing.context import BaseContext
from typing import Any


def run_all(func: Callable[[Any], Any], items: Iterable[Any], max_workers: int) -> list[Any]:
    """Run func(item) for every item in a ProcessPoolExecutor of max_workers workers.

    Return the results in the order of items. If func raises in a worker, that
    exception must reach the caller. No worker is left running afterwards.
    """
    # TODO (task 1): submit every item first, keeping the futures in a list; then call result() on each.
    raise NotImplementedError("run_all: task 1 of exercise 11")


def results_as_completed(func: Callable[[Any], Any], items: Iterable[Any], max_workers: int) -> list[tuple[Any, Any]]:
    """Run func(item) for every item in max_workers worker processes; return
    (item, result) pairs in the order the tasks finish.

    When func raised for an item, its pair holds the exception instead of a
    result, (item, exception), and the other items still come back. No worker
    is left running afterwards.
    """
    # TODO (task 2): remember each future's item in a dict; loop over concurrent.futures.as_completed.
    raise NotImplementedError("results_as_completed: task 2 of exercise 11")


def map_in_order(func: Callable[[Any], Any], items: Iterable[Any], max_workers: int) -> list[Any]:
    """Return [func(item) for every item], computed in max_workers worker processes, in the order of items.

    If func raises in a worker, that exception must reach the caller. No worker
    is left running afterwards.
    """
    # TODO (task 3): executor.map does it; make a list of what it gives you before the executor closes.
    raise NotImplementedError("map_in_order: task 3 of exercise 11")


def stop_at_first_failure(func: Callable[[Any], Any], items: Iterable[Any], max_workers: int) -> list[Any]:
    """Run func(item) for every item in max_workers worker processes; return
    the results in the order of items.

    As soon as one task has failed, cancel the tasks that have not started yet
    and raise that task's exception, as it is. A worker process that dies is a
    failure too: its future holds a BrokenProcessPool. No worker is left
    running afterwards.
    """
    # TODO (task 4): submit all; concurrent.futures.wait(..., return_when=FIRST_EXCEPTION); cancel; raise.
    raise NotImplementedError("stop_at_first_failure: task 4 of exercise 11")


def make_executor(
    max_workers: int,
    context: BaseContext | None = None,
    initializer: Callable[..., object] | None = None,
    initargs: tuple = (),
) -> ProcessPoolExecutor:
    """Return a new ProcessPoolExecutor of max_workers workers, started with context.

    Each worker calls initializer(*initargs) once, before its first task. The
    caller uses the executor and shuts it down.
    """
    # TODO (task 5): pass every argument on to ProcessPoolExecutor.
    raise NotImplementedError("make_executor: task 5 of exercise 11")
