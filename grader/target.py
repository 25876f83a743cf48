"""Stage 2: what is graded, staged into a private copy.

The graded folder is never used in place: the grader copies each selected
exercise's Python files into its own work folder, so that nothing the graded
code does to its folder afterwards (or a conftest.py, pytest.ini or
sitecustomize.py lying in it) changes the run. A folder that cannot be graded
at all is refused with the reason (exit status 2); a single exercise that is
missing is graded as an error and the others are still graded.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from grader.manifest import Exercise

KINDS = ("exercises", "solutions", "submission")
# A file larger than this is not source code a student wrote; it is left out.
MAX_FILE_BYTES = 1 << 20


class TargetError(Exception):
    """The target cannot be graded at all; the message says why and what to do."""


@dataclass(frozen=True)
class Target:
    kind: str  # one of KINDS
    path: Path  # the folder as given, resolved


@dataclass(frozen=True)
class StagedTarget:
    target: Target
    root: Path  # the private copy: root/<folder>/<module>.py
    # Exercise id -> why it cannot be graded (its tests then score as errors).
    problems: dict[str, str] = field(default_factory=dict)


def project_root() -> Path:
    """The checkout that holds exercises/ and solutions/: the grader's own, else the current folder."""
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "exercises").is_dir():
        return checkout
    return Path.cwd()


def choose_target(kind: str, path: str | Path | None = None) -> Target:
    """Resolve what to grade; raise TargetError when it does not exist or is not a folder."""
    if kind not in KINDS:
        raise TargetError(f"unknown target kind {kind!r}")
    folder = Path(path) if path is not None else project_root() / kind
    shown = str(path) if path is not None else kind + "/"
    if not folder.exists():
        raise TargetError(f"{shown} does not exist: give a folder laid out like exercises/")
    if not folder.is_dir():
        raise TargetError(f"{shown} is a file, not a folder: give a folder laid out like exercises/")
    return Target(kind=kind, path=folder.resolve())


def stage(target: Target, exercises: list[Exercise], destination: Path) -> StagedTarget:
    """Copy the selected exercises' top-level .py files into destination."""
    problems: dict[str, str] = {}
    for exercise in exercises:
        source = target.path / exercise.folder
        copy = destination / exercise.folder
        copy.mkdir(parents=True, exist_ok=True)
        module = source / exercise.file_name
        if not source.is_dir():
            problems[exercise.id] = f"the folder {exercise.folder}/ is missing"
        elif not module.is_file():
            problems[exercise.id] = f"{exercise.folder}/{exercise.file_name} is missing"
        if not source.is_dir():
            continue
        for item in sorted(source.iterdir()):
            # Regular .py files only: no symlinks out of the folder, no packages, no caches.
            if item.suffix != ".py" or item.is_symlink() or not item.is_file():
                continue
            if item.stat().st_size > MAX_FILE_BYTES:
                if item == module:
                    problems[exercise.id] = f"{exercise.folder}/{item.name} is larger than {MAX_FILE_BYTES >> 20} MiB"
                continue
            shutil.copyfile(item, copy / item.name)
    return StagedTarget(target=target, root=destination, problems=problems)
