"""Exercise 2: pool. Reference solution."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable
from typing import Any


def sum_of_squares(n: int) -> int:
    """Return 0*0 + 1*1 + ... + (n-1)*(n-1): CPU-bound work for a pool."""
    total = 0
    for i in range(n):
        total += i * i
    return total


def choose_pool_size(n_tasks: int, cpus: int | None = None) -> int:
    """How many workers to start for n_tasks tasks on cpus CPUs (None: this machine's count)."""
    if cpus is None:
        cpus = os.cpu_count() or 1
    return max(1, min(n_tasks, cpus))


def parallel_map(func: Callable[[Any], Any], items: Iterable[Any], processes: int | None = None) -> list[Any]:
    """Return [func(item) for item in items], computed by a pool of processes workers."""
    with multiprocessing.Pool(processes) as pool:
        return pool.map(func, items)


def parallel_sum_of_squares(numbers: list[int]) -> list[int]:
    """Return [sum_of_squares(n) for n in numbers], computed by a pool sized for the job."""
    # sum_of_squares itself, not a lambda: the pool sends the function to its
    # workers by name, and only a module-level function has one they can find.
    with multiprocessing.Pool(choose_pool_size(len(numbers))) as pool:
        return pool.map(sum_of_squares, numbers)
