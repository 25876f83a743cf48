"""Exercise 7: manager. Reference solution."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable
from typing import Any


def collect(worker: Callable[[Any, Any, Any], Any], keys: Iterable[Any]) -> tuple[dict, list]:
    """Run worker(key, results, log) in one process per key, on a managed dict and list; return plain copies."""
    with multiprocessing.Manager() as manager:
        results = manager.dict()
        log = manager.list()
        processes = [multiprocessing.Process(target=worker, args=(key, results, log)) for key in keys]
        for process in processes:
            process.start()
        for process in processes:
            process.join()
        return dict(results), list(log)


def ask_in_child(worker: Callable[[Any], Any], question: Any) -> Any:
    """Put question on a managed Namespace, run worker(namespace) in a child, return namespace.answer."""
    with multiprocessing.Manager() as manager:
        namespace = manager.Namespace()
        namespace.question = question
        namespace.answer = None
        child = multiprocessing.Process(target=worker, args=(namespace,))
        child.start()
        child.join()
        return namespace.answer


def append_to(shared: Any, key: Any, value: Any) -> None:
    """Append value to the list at shared[key] (a new list if key is missing), written back through the proxy."""
    items = shared.get(key, [])
    items.append(value)
    shared[key] = items  # shared[key] gave a copy: only this assignment reaches the manager
