"""Exercise 7: manager.

Read README.md in this folder first. Replace each TODO with your code, then
run the grader:  python -m grader grade --only manager
"""

from __future__ import annotations

import multiprocessing  # noqa: F401 - you will need it
from collections.abc import Callable, Iterable
from typing import Any


def collect(worker: Callable[[Any, Any, Any], Any], keys: Iterable[Any]) -> tuple[dict, list]:
    """Run worker(key, results, log) in one process per key, all at the same time.

    results is a dict and log a list that every process shares through a
    manager. Return (results, log) as a plain dict and a plain list, copied
    before the manager shuts down.
    """
    # TODO (task 1): open `with multiprocessing.Manager() as manager:`, make
    # manager.dict() and manager.list(), start a process per key, join them
    # all, and return plain copies from inside the with block.
    raise NotImplementedError("collect: task 1 of exercise 7")


def ask_in_child(worker: Callable[[Any], Any], question: Any) -> Any:
    """Run worker(namespace) in a child process on a managed Namespace.

    Before the child starts, the namespace has namespace.question = question
    and namespace.answer = None. Return namespace.answer once the child has
    finished.
    """
    # TODO (task 2): use manager.Namespace() inside a with block, set its
    # question and answer, run the worker in a process, return the answer.
    raise NotImplementedError("ask_in_child: task 2 of exercise 7")


def append_to(shared: Any, key: Any, value: Any) -> None:
    """Append value to the list stored at shared[key], a managed dict.

    When key is missing, start a new list. The change must reach the manager,
    so that every process sees it.
    """
    # TODO (task 3): reading shared[key] gives you a copy of the list, not
    # the list in the manager (see "The nested-list trap" in the README).
    raise NotImplementedError("append_to: task 3 of exercise 7")
