"""A scenario for any module: call one of its functions with JSON arguments.

Used by the grader's own tests of the sandbox; hidden tests use the
scenarios of their exercise.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any


def call(module: ModuleType, function: str, *args: Any) -> Any:
    return getattr(module, function)(*args)


def imported(module: ModuleType) -> bool:
    """Nothing but the import: the grader's first look at a module, once per exercise and start method."""
    return True
