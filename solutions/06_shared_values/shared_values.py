"""Exercise 6: shared values. Reference solution."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from typing import Any


def run_with_shared_number(worker: Callable[[Any], Any], start: float) -> float:
    """Run worker(value) in a child process on a shared float that starts at start; return its final value."""
    value = multiprocessing.Value("d", start)
    child = multiprocessing.Process(target=worker, args=(value,))
    child.start()
    child.join()
    return value.value


def run_with_shared_array(worker: Callable[[Any], Any], numbers: list[float]) -> list[float]:
    """Run worker(array) in a child process on a shared array of floats; return its final contents."""
    array = multiprocessing.Array("d", numbers)
    child = multiprocessing.Process(target=worker, args=(array,))
    child.start()
    child.join()
    return list(array)


def add_many(counter: Any, times: int) -> None:
    """Add 1 to counter.value times times, each read and write under the counter's own lock."""
    for _ in range(times):
        with counter.get_lock():
            counter.value += 1


def count_in_parallel(adder: Callable[[Any, int], Any], processes: int, times: int) -> int:
    """Run adder(counter, times) in processes processes at once on one shared counter; return the count."""
    counter = multiprocessing.Value("i", 0)
    workers = [multiprocessing.Process(target=adder, args=(counter, times)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return counter.value
