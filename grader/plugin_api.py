"""What the grader's own stages share with grader.plugin, without importing pytest.

The plugin runs inside pytest; the stages that start pytest and read what it
wrote (cli, grading, run, collect, score) need its option defaults, the names
of the properties it records, how it groups a test's start methods and how it
orders tests, but not pytest itself, which takes a noticeable part of a
second to import on every command.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

MAX_TIMELINE_ROWS = 16
MAX_SHOWN_OUTPUT = 500


def group_of(nodeid: str) -> str:
    """The test a nodeid belongs to, whatever its start method: "test_01.py::test_x[fork]" -> "test_01.py::test_x"."""
    return re.sub(r"\[[^\]]*\]$", "", nodeid)


def read_durations(path: str | None) -> dict[str, float]:
    """Seconds per test (all its start methods) from earlier runs; {} when there is no readable file."""
    try:
        data = json.loads(Path(path).read_text()) if path else {}
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): float(v) for k, v in data.items() if isinstance(v, (int, float)) and v >= 0}


def run_order(tests: list[str], durations: dict[str, float]) -> list[str]:
    """The order tests start in: the longest known first, then the unknown ones, exercises taking turns.

    Longest first keeps a long test from starting last, when the others are
    done and it runs alone. Exercises taking turns (the first test of each
    file, then the second of each, ...) lets workers import different
    exercises at once: a module that hangs at import holds up one worker,
    not all of them. A test with no known duration counts as the longest.
    """
    rank: dict[str, int] = {}
    seen: dict[str, int] = {}
    for test in tests:
        file = test.split("::", 1)[0]
        rank[test] = seen.get(file, 0)
        seen[file] = rank[test] + 1
    position = {test: i for i, test in enumerate(tests)}
    return sorted(tests, key=lambda t: (-durations.get(t, float("inf")), rank[t], position[t]))
