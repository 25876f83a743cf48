"""Exercise 6: shared values.

Read README.md in this folder first. Replace each TODO with your code, then
run the grader:  python -m grader grade --only shared_values
"""

from __future__ import annotations

import multiprocessing  # noqa: F401 - you will need it
from collections.abc import Callable
from typing import Any


def run_with_shared_number(worker: Callable[[Any], Any], start: float) -> float:
    """Run worker(value) in a child process on a shared float that starts at start.

    Return the number the shared value holds once the child has finished, as a
    plain float.
    """
    # TODO (task 1): create a multiprocessing.Value with the typecode for a
    # float, run worker(value) in a new process, wait for it, return value.value.
    raise NotImplementedError("run_with_shared_number: task 1 of exercise 6")


def run_with_shared_array(worker: Callable[[Any], Any], numbers: list[float]) -> list[float]:
    """Run worker(array) in a child process on a shared array that starts with numbers.

    Return what the shared array holds once the child has finished, as a plain
    list of floats.
    """
    # TODO (task 2): create a multiprocessing.Array of floats holding numbers,
    # run worker(array) in a new process, wait for it, return a plain list copy.
    raise NotImplementedError("run_with_shared_array: task 2 of exercise 6")


def add_many(counter: Any, times: int) -> None:
    """Add 1 to counter.value, times times, so that no addition is ever lost.

    Several processes call this at the same time on the same counter.
    """
    # TODO (task 3): read and write counter.value under counter.get_lock(),
    # both under the same hold of the lock.
    raise NotImplementedError("add_many: task 3 of exercise 6")


def count_in_parallel(adder: Callable[[Any, int], Any], processes: int, times: int) -> int:
    """Run adder(counter, times) in processes processes at the same time, on one shared counter.

    The counter is a shared whole number that starts at 0. Return its value,
    as a plain int, once every process has finished.
    """
    # TODO (task 4): create the counter with multiprocessing.Value, start one
    # process per adder call, start them all, join them all, return the count.
    raise NotImplementedError("count_in_parallel: task 4 of exercise 6")
