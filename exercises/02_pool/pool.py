"""Exercise 2: pool.

Read README.md in this folder first. Replace each TODO with your code, then
run the grader:  python -m grader grade --only pool
"""

from __future__ import annotations

import multiprocessing  # noqa: F401 - you will need it
import os  # noqa: F401 - you will need it
from collections.abc import Callable, Iterable
from typing import Any


def sum_of_squares(n: int) -> int:
    """Return 0*0 + 1*1 + 2*2 + ... + (n-1)*(n-1), and 0 when n is 0.

    This is the CPU-bound work the pool will share out. Keep it a plain
    function at the top of this module: a worker process finds it by name.
    """
    # TODO (task 1): add up i * i for every i from 0 up to, but not including, n.
    raise NotImplementedError("sum_of_squares: task 1 of exercise 2")


def choose_pool_size(n_tasks: int, cpus: int | None = None) -> int:
    """Return how many worker processes to start for n_tasks tasks on cpus CPUs.

    That is the smaller of n_tasks and cpus, and never less than 1. When cpus
    is None, use this machine's count, os.cpu_count(); when that is None too
    (the count is unknown), count 1 CPU.
    """
    # TODO (task 2): take min(n_tasks, cpus), at least 1; ask os.cpu_count()
    # when cpus is None.
    raise NotImplementedError("choose_pool_size: task 2 of exercise 2")


def parallel_map(func: Callable[[Any], Any], items: Iterable[Any], processes: int | None = None) -> list[Any]:
    """Return [func(item) for item in items], computed by a pool of processes workers.

    The results are in the order of items. processes=None lets the pool take
    one worker per CPU. When this returns, the pool is closed and none of its
    workers is left running. If func raises, that exception reaches the
    caller, and no worker is left running either.
    """
    # TODO (task 3): open a multiprocessing.Pool(processes) in a with block
    # and return pool.map(func, items) from inside it.
    raise NotImplementedError("parallel_map: task 3 of exercise 2")


def parallel_sum_of_squares(numbers: list[int]) -> list[int]:
    """Return [sum_of_squares(n) for n in numbers], computed by a pool.

    The pool has choose_pool_size(len(numbers)) workers. When this returns,
    none of them is left running.
    """
    # TODO (task 4): size the pool with choose_pool_size(len(numbers)) and
    # map sum_of_squares itself over numbers (parallel_map can do it).
    raise NotImplementedError("parallel_sum_of_squares: task 4 of exercise 2")
