"""Exercise 3: pool methods.

Read README.md in this folder first. Replace each TODO with your code, then
run the grader:  python -m grader grade --only pool_methods

Every function gets a pool that the caller made (and will close): use it, do
not make a pool of your own.
"""

from __future__ import annotations

import multiprocessing  # noqa: F401 - multiprocessing.TimeoutError lives here
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.pool import AsyncResult, Pool
from typing import Any


def run_one(pool: Pool, func: Callable[..., Any], args: tuple) -> Any:
    """Run func(*args) in one of the pool's workers; wait for it and return its result.

    If func raises in the worker, that exception must reach the caller.
    """
    # TODO (task 1): one blocking call of a pool method does it all.
    raise NotImplementedError("run_one: task 1 of exercise 3")


def run_pairs(pool: Pool, func: Callable[..., Any], pairs: list[tuple]) -> list[Any]:
    """Run func(*pair) for every pair, in the pool; return the results in the order of pairs.

    All the pairs go to the pool at once, so that they run side by side on
    its workers. run_pairs(pool, pow, [(2, 3), (3, 2)]) returns [8, 9].
    """
    # TODO (task 1): use the pool method that unpacks each tuple into func's arguments.
    raise NotImplementedError("run_pairs: task 1 of exercise 3")


def submit(
    pool: Pool,
    func: Callable[..., Any],
    args: tuple,
    on_done: Callable[[Any], object],
    on_error: Callable[[BaseException], object],
) -> AsyncResult:
    """Start func(*args) in the pool and return its AsyncResult at once, without waiting.

    When the work is over, the pool calls on_done(result), or on_error(exception)
    if func raised.
    """
    # TODO (task 2): pool.apply_async with callback= and error_callback=; return what it gives you.
    raise NotImplementedError("submit: task 2 of exercise 3")


def gather(pool: Pool, func: Callable[..., Any], items: Iterable[Any], timeout: float) -> list[Any]:
    """Map func over items in the pool; return the results in order, waiting at most timeout seconds.

    Late results raise multiprocessing.TimeoutError, and an exception raised by
    func in a worker is raised here: let both reach the caller.
    """
    # TODO (task 3): pool.map_async, then get() with the timeout.
    raise NotImplementedError("gather: task 3 of exercise 3")


def lazy_results(pool: Pool, func: Callable[..., Any], items: Iterable[Any], chunksize: int = 1) -> Iterator[Any]:
    """Return at once an iterator over func(item) for every item, in the order of items.

    Each result is handed out as soon as it and all the ones before it are
    ready. A worker takes chunksize items at a time.
    """
    # TODO (task 4): pool.imap, with chunksize passed on; return the iterator itself.
    raise NotImplementedError("lazy_results: task 4 of exercise 3")


def as_finished(pool: Pool, func: Callable[..., Any], items: Iterable[Any]) -> Iterator[Any]:
    """Return at once an iterator over func(item) for every item, in the order they finish."""
    # TODO (task 5): the unordered sibling of task 4's method; return the iterator itself.
    raise NotImplementedError("as_finished: task 5 of exercise 3")
