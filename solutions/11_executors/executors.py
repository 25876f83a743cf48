"""Exercise 11: executors. Reference solution."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.context import BaseContext
from typing import Any


def run_all(func: Callable[[Any], Any], items: Iterable[Any], max_workers: int) -> list[Any]:
    """Submit func(item) for every item first, then collect the results in the order of items."""
    with ProcessPoolExecutor(max_workers=max_workers) as executor:
        futures = [executor.submit(func, item) for item in items]
        return [future.result() for future in futures]


def results_as_completed(func: Callable[[Any], Any], items: Iterable[Any], max_workers: int) -> list[tuple[Any, Any]]:
    """(item, result) pairs in the order the work finishes; a failed item carries its exception instead."""
    with ProcessPoolExecutor(max_workers=max_workers) as executor:
        item_of = {executor.submit(func, item): item for item in items}
        pairs = []
        for future in concurrent.futures.as_completed(item_of):
            error = future.exception()
            pairs.append((item_of[future], future.result() if error is None else error))
        return pairs


def map_in_order(func: Callable[[Any], Any], items: Iterable[Any], max_workers: int) -> list[Any]:
    """func(item) for every item, computed in worker processes, in the order of items."""
    with ProcessPoolExecutor(max_workers=max_workers) as executor:
        return list(executor.map(func, items))


def stop_at_first_failure(func: Callable[[Any], Any], items: Iterable[Any], max_workers: int) -> list[Any]:
    """All the results in the order of items, or the first failure raised at once, with the waiting work cancelled."""
    with ProcessPoolExecutor(max_workers=max_workers) as executor:
        futures = [executor.submit(func, item) for item in items]
        done, not_done = concurrent.futures.wait(futures, return_when=concurrent.futures.FIRST_EXCEPTION)
        failed = [future for future in futures if future in done and future.exception() is not None]
        if failed:
            for future in not_done:
                future.cancel()
            raise failed[0].exception()
        return [future.result() for future in futures]


def make_executor(
    max_workers: int,
    context: BaseContext | None = None,
    initializer: Callable[..., object] | None = None,
    initargs: tuple = (),
) -> ProcessPoolExecutor:
    """A ProcessPoolExecutor whose workers start with context and each run initializer(*initargs) first."""
    return ProcessPoolExecutor(max_workers=max_workers, mp_context=context, initializer=initializer, initargs=initargs)
