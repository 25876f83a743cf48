"""Exercise 12: threads versus processes.

Read README.md in this folder first. Replace each TODO with your code, then
run the grader:  python -m grader grade --only threads_vs_processes
"""

from __future__ import annotations

import time  # noqa: F401 - you will need it
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor  # noqa: F401 - you will need them
from typing import Any


def choose_executor(kind: str) -> type[Executor]:
    """Return the executor class for a kind of work: "io" (it waits) or "cpu" (it computes).

    Return the class itself, not an executor made from it. Raise ValueError for
    any other kind.
    """
    # TODO (task 1): which pool lets waiting tasks overlap cheaply, and which lets computing tasks run at once?
    raise NotImplementedError("choose_executor: task 1 of exercise 12")


def run_io_bound(func: Callable[[Any], Any], items: Iterable[Any], max_workers: int) -> list[Any]:
    """Run func(item) for every item, where func mostly waits; return the results in the order of items.

    max_workers tasks wait at the same time, in threads of this process: never more,
    and fewer only once fewer items are left.
    """
    # TODO (task 2): the executor for waiting, in a with block, and its map.
    raise NotImplementedError("run_io_bound: task 2 of exercise 12")


def run_cpu_bound(func: Callable[[Any], Any], items: Iterable[Any], max_workers: int) -> list[Any]:
    """Run func(item) for every item, where func computes; return the results in the order of items.

    max_workers tasks compute at the same time, in max_workers worker processes:
    never more, and fewer only once fewer items are left.
    """
    # TODO (task 3): the executor for computing, in a with block, and its map.
    raise NotImplementedError("run_cpu_bound: task 3 of exercise 12")


def timed_run(
    executor_class: type[Executor], func: Callable[[Any], Any], items: Iterable[Any], max_workers: int
) -> tuple[list[Any], float]:
    """Run func(item) for every item in executor_class(max_workers=max_workers).

    Return (the results in the order of items, the wall-clock seconds from just
    before the executor was created until every result was in).
    """
    # TODO (task 4): time.perf_counter() before and after; the executor is the class you are given.
    raise NotImplementedError("timed_run: task 4 of exercise 12")
