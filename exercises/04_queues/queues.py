"""Exercise 4: queues.

Read README.md in this folder first. Replace each TODO with your code, then
run the grader:  python -m grader grade --only queues

The sentinel, the "no more items" sign, is None everywhere in this exercise.
"""

from __future__ import annotations

import multiprocessing  # noqa: F401 - you will need it
from collections.abc import Callable, Iterable
from typing import Any


def consume(tasks: multiprocessing.Queue, results: multiprocessing.Queue, handle: Callable[[Any], Any]) -> None:
    """Take items from tasks until the sentinel None; put handle(item) on results for each.

    This is the body of a consumer process: the caller starts a Process with
    target=consume. Return (and so end the process) at the sentinel.
    """
    # TODO (task 1): loop: get an item; stop at None; otherwise put handle(item) on results.
    raise NotImplementedError("consume: task 1 of exercise 4")


def process_all(items: Iterable[Any], handle: Callable[[Any], Any], consumers: int) -> list[Any]:
    """Handle every item in `consumers` consumer processes running consume; return the results.

    The results may come back in any order, but every item's result exactly
    once. Every consumer has ended when process_all returns.
    """
    # TODO (task 2): a tasks queue and a results queue; start the consumers; put the items and one
    # None per consumer; take one result per item; then join the consumers.
    raise NotImplementedError("process_all: task 2 of exercise 4")


def collect(produce: Callable[[Any, multiprocessing.Queue], None], sources: Iterable[Any]) -> list[Any]:
    """Run produce(source, results) in one process per source; return every item they put on results.

    Each producer puts its items and then one None. The items may be large:
    together, more than a pipe can hold. Every producer has ended when
    collect returns.
    """
    # TODO (task 3): one queue, one producer process per source; read until one None per producer;
    # join the producers only then.
    raise NotImplementedError("collect: task 3 of exercise 4")


def work(tasks: multiprocessing.JoinableQueue, handle: Callable[[Any], Any]) -> None:
    """Handle items from tasks until the sentinel None, marking each item done once it is handled.

    This is the body of a worker process. Every item taken, the sentinel too,
    is marked done exactly once, so that tasks.join() knows when all are finished.
    """
    # TODO (task 4): loop: get an item; stop at None; otherwise handle(item); call tasks.task_done()
    # for every item you got, after handling it.
    raise NotImplementedError("work: task 4 of exercise 4")


def handle_all(tasks: multiprocessing.JoinableQueue, items: Iterable[Any]) -> None:
    """Put every item on tasks, where running workers take them; return once every item is done."""
    # TODO (task 4): put the items, then wait with tasks.join().
    raise NotImplementedError("handle_all: task 4 of exercise 4")
