"""Exercise 3: pool methods. Reference solution."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from multiprocessing.pool import AsyncResult, Pool
from typing import Any


def run_one(pool: Pool, func: Callable[..., Any], args: tuple) -> Any:
    """Run func(*args) in one of the pool's workers; wait for it and return its result."""
    return pool.apply(func, args)


def run_pairs(pool: Pool, func: Callable[..., Any], pairs: list[tuple]) -> list[Any]:
    """Run func(*pair) for every pair in the pool; return the results in the order of pairs."""
    return pool.starmap(func, pairs)


def submit(
    pool: Pool,
    func: Callable[..., Any],
    args: tuple,
    on_done: Callable[[Any], object],
    on_error: Callable[[BaseException], object],
) -> AsyncResult:
    """Start func(*args) in the pool and return its AsyncResult at once; the pool calls back later."""
    return pool.apply_async(func, args, callback=on_done, error_callback=on_error)


def gather(pool: Pool, func: Callable[..., Any], items: Iterable[Any], timeout: float) -> list[Any]:
    """Map func over items in the pool; wait at most timeout seconds for all the results, in order."""
    return pool.map_async(func, items).get(timeout)


def lazy_results(pool: Pool, func: Callable[..., Any], items: Iterable[Any], chunksize: int = 1) -> Iterator[Any]:
    """An iterator over func(item) for every item, in order, handing out each result once it is ready."""
    return pool.imap(func, items, chunksize)


def as_finished(pool: Pool, func: Callable[..., Any], items: Iterable[Any]) -> Iterator[Any]:
    """An iterator over func(item) for every item, in the order they finish."""
    return pool.imap_unordered(func, items)
