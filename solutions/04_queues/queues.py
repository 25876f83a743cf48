"""Exercise 4: queues. Reference solution."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable
from typing import Any


def consume(tasks: multiprocessing.Queue, results: multiprocessing.Queue, handle: Callable[[Any], Any]) -> None:
    """Take items from tasks until the sentinel None; put handle(item) on results for each."""
    while True:
        item = tasks.get()
        if item is None:
            return
        results.put(handle(item))


def process_all(items: Iterable[Any], handle: Callable[[Any], Any], consumers: int) -> list[Any]:
    """Handle every item in `consumers` consumer processes; return the results in any order."""
    items = list(items)
    tasks: multiprocessing.Queue = multiprocessing.Queue()
    results: multiprocessing.Queue = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=consume, args=(tasks, results, handle)) for _ in range(consumers)]
    for worker in workers:
        worker.start()
    for item in items:
        tasks.put(item)
    for _ in workers:  # one sentinel per consumer: each one stops at the first it takes
        tasks.put(None)
    collected = [results.get() for _ in items]  # drain before joining
    for worker in workers:
        worker.join()
    return collected


def collect(produce: Callable[[Any, multiprocessing.Queue], None], sources: Iterable[Any]) -> list[Any]:
    """Run produce(source, results) in one process per source; return every item they put."""
    results: multiprocessing.Queue = multiprocessing.Queue()
    producers = [multiprocessing.Process(target=produce, args=(source, results)) for source in sources]
    for producer in producers:
        producer.start()
    items = []
    finished = 0
    while finished < len(producers):  # each producer ends its stream with one None
        item = results.get()
        if item is None:
            finished += 1
        else:
            items.append(item)
    for producer in producers:  # only now: a producer cannot end while its items wait in the pipe
        producer.join()
    return items


def work(tasks: multiprocessing.JoinableQueue, handle: Callable[[Any], Any]) -> None:
    """Handle items from tasks until the sentinel None, marking each one done once it is handled."""
    while True:
        item = tasks.get()
        try:
            if item is None:
                return
            handle(item)
        finally:
            tasks.task_done()


def handle_all(tasks: multiprocessing.JoinableQueue, items: Iterable[Any]) -> None:
    """Put every item on tasks, then return only when the workers have marked every item done."""
    for item in items:
        tasks.put(item)
    tasks.join()
