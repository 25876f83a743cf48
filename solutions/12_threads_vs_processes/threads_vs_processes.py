"""Exercise 12: threads versus processes. Reference solution."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any


def choose_executor(kind: str) -> type[Executor]:
    """ThreadPoolExecutor for "io" (work that waits), ProcessPoolExecutor for "cpu" (work that computes)."""
    if kind == "io":
        return ThreadPoolExecutor
    if kind == "cpu":
        return ProcessPoolExecutor
    raise ValueError(f"kind must be 'io' or 'cpu', not {kind!r}")


def run_io_bound(func: Callable[[Any], Any], items: Iterable[Any], max_workers: int) -> list[Any]:
    """func(item) for every item, in threads of this process that wait together; results in order."""
    with choose_executor("io")(max_workers=max_workers) as executor:
        return list(executor.map(func, items))


def run_cpu_bound(func: Callable[[Any], Any], items: Iterable[Any], max_workers: int) -> list[Any]:
    """func(item) for every item, in worker processes that compute together; results in order."""
    with choose_executor("cpu")(max_workers=max_workers) as executor:
        return list(executor.map(func, items))


def timed_run(
    executor_class: type[Executor], func: Callable[[Any], Any], items: Iterable[Any], max_workers: int
) -> tuple[list[Any], float]:
    """Run func over items in executor_class(max_workers); return the results and the wall-clock seconds it took."""
    begun = time.perf_counter()
    with executor_class(max_workers=max_workers) as executor:
        results = list(executor.map(func, items))
    return results, time.perf_counter() - begun
