"""The exercise manifest: one ordered TOML file that everything else reads.

``grader/curriculum.toml`` lists the exercises in learning order. Fields:

    format = 1                      # the manifest format version

    [[exercise]]
    id = "processes"                # unique; names the scenarios module and --only
    title = "Processes"             # shown to students
    folder = "01_processes"         # exercises/<folder> and solutions/<folder>
    module = "processes"            # the student's file: <folder>/<module>.py
    concepts = ["Process", "start", "join"]

    [[exercise.task]]               # numbered from 1, in order
    number = 1
    title = "Start a worker"
    points = 2                      # split evenly over the task's hidden tests
    hint = "..."                    # shown when a test of the task fails

Paths are computed, not stored: the stub is ``exercises/<folder>/<module>.py``,
the reference solution ``solutions/<folder>/<module>.py``, the instructions
``exercises/<folder>/README.md`` and the hidden tests
``grader/hidden/test_<folder>.py``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

MANIFEST_FORMAT = 1
PACKAGE_DIR = Path(__file__).resolve().parent
MANIFEST_PATH = PACKAGE_DIR / "curriculum.toml"
HIDDEN_TESTS_DIR = PACKAGE_DIR / "hidden"


class ManifestError(ValueError):
    """The manifest is malformed; the message names the field and the fix."""


@dataclass(frozen=True)
class Task:
    number: int
    title: str
    points: int
    hint: str


@dataclass(frozen=True)
class Exercise:
    id: str
    title: str
    folder: str
    module: str
    concepts: tuple[str, ...]
    tasks: tuple[Task, ...]
    number: int = 0  # its place in the manifest, from 1: what students call it

    @property
    def max_points(self) -> int:
        return sum(task.points for task in self.tasks)

    @property
    def file_name(self) -> str:
        return f"{self.module}.py"

    @property
    def student_file(self) -> str:
        """The student's file, relative to the kata folder: exercises/<folder>/<module>.py."""
        return f"exercises/{self.folder}/{self.file_name}"

    @property
    def hidden_tests(self) -> Path:
        return HIDDEN_TESTS_DIR / f"test_{self.folder}.py"

    def task(self, number: int) -> Task:
        for task in self.tasks:
            if task.number == number:
                return task
        raise KeyError(number)


@dataclass(frozen=True)
class Manifest:
    format: int
    exercises: tuple[Exercise, ...]

    def exercise(self, exercise_id: str | None) -> Exercise:
        for exercise in self.exercises:
            if exercise.id == exercise_id:
                return exercise
        raise KeyError(exercise_id)

    @property
    def ids(self) -> list[str]:
        return [exercise.id for exercise in self.exercises]


def _require(table: dict, key: str, kind: type, where: str):
    value = table.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) or (isinstance(value, str) and not value.strip()):
        raise ManifestError(f"{where}: '{key}' must be a non-empty {kind.__name__}")
    return value


def parse_manifest(data: dict, source: str = "manifest") -> Manifest:
    """Check and convert the TOML document; raise ManifestError naming the place."""
    if data.get("format") != MANIFEST_FORMAT:
        raise ManifestError(f"{source}: 'format' must be {MANIFEST_FORMAT}")
    exercises = []
    seen: dict[str, set[str]] = {"id": set(), "folder": set(), "module": set()}
    for index, raw in enumerate(data.get("exercise", []), start=1):
        where = f"{source}: exercise #{index}"
        fields = {key: _require(raw, key, str, where) for key in ("id", "title", "folder", "module")}
        for key, values in seen.items():
            if fields[key] in values:
                raise ManifestError(f"{where}: {key} {fields[key]!r} is used twice")
            values.add(fields[key])
        if not fields["id"].isidentifier() or not fields["module"].isidentifier():
            raise ManifestError(f"{where}: 'id' and 'module' must be Python identifiers")
        if fields["module"] in sys.stdlib_module_names:
            raise ManifestError(f"{where}: module {fields['module']!r} would shadow the standard library's")
        concepts = raw.get("concepts", [])
        if not isinstance(concepts, list) or not all(isinstance(c, str) for c in concepts):
            raise ManifestError(f"{where}: 'concepts' must be a list of strings")
        tasks = []
        for number, raw_task in enumerate(raw.get("task", []), start=1):
            task_where = f"{where} ({fields['id']}), task #{number}"
            if raw_task.get("number") != number:
                raise ManifestError(f"{task_where}: tasks are numbered 1, 2, 3... in order")
            points = _require(raw_task, "points", int, task_where)
            if points <= 0:
                raise ManifestError(f"{task_where}: 'points' must be positive")
            tasks.append(
                Task(
                    number=number,
                    title=_require(raw_task, "title", str, task_where),
                    points=points,
                    hint=_require(raw_task, "hint", str, task_where).strip(),
                )
            )
        if not tasks:
            raise ManifestError(f"{where}: an exercise needs at least one [[exercise.task]]")
        exercises.append(Exercise(concepts=tuple(concepts), tasks=tuple(tasks), number=index, **fields))
    if not exercises:
        raise ManifestError(f"{source}: no [[exercise]] entries")
    return Manifest(format=MANIFEST_FORMAT, exercises=tuple(exercises))


@cache
def load_manifest(path: Path = MANIFEST_PATH) -> Manifest:
    try:
        with open(path, "rb") as stream:
            raw = tomllib.load(stream)
    except (OSError, tomllib.TOMLDecodeError) as problem:
        raise ManifestError(f"{path.name}: {problem}") from None
    return parse_manifest(raw, source=str(path.name))
