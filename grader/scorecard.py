"""Stage 6: the scorecard, a versioned JSON document with a JSON Schema.

The schema is ``grader/schema/scorecard.schema.json`` (draft 2020-12); the
format is described in README.md. It is written atomically: a temporary file
in the same folder, then a rename, so a reader never sees half a scorecard.

Designed to convert without loss of meaning to the common autograder formats:
a test's ``score``/``max_score``/``name``/``outcome``/``message`` map to
Gradescope's per-test fields (``outcome`` passed -> "passed", anything else
-> "failed", with the message as output), and to Exercism's v3 results
(``outcome`` passed/failed -> pass/fail, error and timeout -> error,
``task`` -> ``task_id``, ``output`` -> ``output``).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "scorecard.schema.json"


@dataclass(frozen=True)
class TestScore:
    id: str  # the hidden test, e.g. "test_01_processes.py::test_whoami_in_the_main_process"
    task: int
    name: str  # what the test checks, in a student's words
    score: float
    max_score: float
    outcome: str  # passed, failed, error, timeout, skipped (the worst over the start methods)
    duration: float  # seconds, summed over the start methods
    message: str  # why it did not pass; empty when it passed
    hint: str | None  # the task's hint, when it did not pass
    output: str  # what the graded code printed, capped
    start_methods: dict[str, str]  # start method -> outcome under that method
    # What ran when, for checks where timing is the concept: {title, rows: [{pid, start, end}]}, seconds
    # from the scenario's start (None: never started, or still running at the end); None for other checks.
    timeline: dict[str, Any] | None = None


@dataclass(frozen=True)
class TaskScore:
    number: int
    title: str
    score: float
    max_score: float


@dataclass(frozen=True)
class ExerciseScore:
    id: str
    title: str
    score: float
    max_score: float
    status: str  # passed (full marks), failed (some check failed), error (could not be graded)
    message: str  # why, for error
    tasks: list[TaskScore]
    tests: list[TestScore]
    number: int  # the exercise's place in the manifest, from 1 (also when only some were graded)
    # The score as a fraction, as grader/score.py computed it from the tasks' tests; the total is the sum of these,
    # rounded once. Not written: the JSON holds the rounded score (None for an exercise read back from JSON).
    exact: Fraction | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Scorecard:
    grader: dict[str, str]  # name, version
    target: dict[str, str]  # kind (exercises, solutions, submission), path
    environment: dict[str, Any]  # python, implementation, platform, cpu_count
    start_methods: list[str]
    # tier (namespaces, user, process), a note on why when it is not the strongest, and the memory cap of a call
    isolation: dict[str, Any]
    started_at: str  # ISO 8601, UTC
    duration: float  # seconds
    complete: bool  # False when the run was interrupted or its report was lost
    score: float
    max_score: float
    percent: float
    exercises: list[ExerciseScore]
    notices: list[str] = field(default_factory=list)
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        document = asdict(self)
        for exercise in document["exercises"]:
            del exercise["exact"]
        return document


def write_scorecard(scorecard: Scorecard, path: Path) -> None:
    """Write the scorecard as JSON, atomically."""
    write_text_atomically(Path(path), json.dumps(scorecard.to_dict(), indent=2) + "\n")


def write_text_atomically(path: Path, text: str) -> None:
    """A temporary file in the same folder, then a rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as stream:  # newline="": the text's own line ends
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide it from an instructor's other tools
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def load_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())
