"""The student's progress: the last grade of each exercise, kept outside the exercise sources.

``.kata/state.json`` in the kata folder (beside ``exercises/``, ignored by git;
``$KATA_STATE_DIR`` chooses another folder)
holds, per exercise, the score of its last grade under every start method
and a hash of the student's file as it was then graded. An exercise is

- ``done`` when that grade was full marks and the file has not changed since;
- ``in progress`` when it was graded with less, or changed since it was;
- ``not started`` when it was never graded and its file is still the stub.

A file that cannot be read, or was written by another format or for other
exercises, is rebuilt (the unknown entries dropped) and ``warnings`` says so.
Only grades of the student's own ``exercises/`` under every start method
are kept: a provisional grade (one method) is not a grade.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from grader.manifest import Exercise
from grader.scorecard import Scorecard, write_text_atomically

STATE_FORMAT = 1
DONE, IN_PROGRESS, NOT_STARTED = "done", "in progress", "not started"
DURATIONS_FILE = "durations.json"  # seconds per hidden test from the last runs: the next run's order, no grade


def state_folder(root: Path) -> Path:
    """Where the state file and reset's backups go: $KATA_STATE_DIR, else .kata/ in the kata folder."""
    chosen = os.environ.get("KATA_STATE_DIR")
    return Path(chosen) if chosen else root / ".kata"


def file_hash(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def stub_source(root: Path, exercise: Exercise, revision: str = "HEAD") -> bytes | None:
    """The exercise's file as git has it at revision (the stub, in a fresh clone); None without git."""
    try:
        shown = subprocess.run(
            ["git", "-C", str(root), "show", f"{revision}:{exercise.student_file}"],
            capture_output=True,
            timeout=10,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return shown.stdout if shown.returncode == 0 else None


@dataclass
class Entry:
    score: float
    max_score: float
    file_hash: str | None
    graded_at: str


@dataclass
class State:
    root: Path
    entries: dict[str, Entry] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # exercise id -> the hash of its stub in git (None: no git), asked once per State: list asks for every
    # exercise's status and then for the first one not done.
    _stub_hashes: dict[str, str | None] = field(default_factory=dict, repr=False)

    @property
    def path(self) -> Path:
        return state_folder(self.root) / "state.json"

    def _stub_hash(self, exercise: Exercise) -> str | None:
        if exercise.id not in self._stub_hashes:
            stub = stub_source(self.root, exercise)
            self._stub_hashes[exercise.id] = None if stub is None else hashlib.sha256(stub).hexdigest()
        return self._stub_hashes[exercise.id]

    def status(self, exercise: Exercise) -> str:
        entry = self.entries.get(exercise.id)
        current = file_hash(self.root / exercise.student_file)
        if entry is None:
            stub = self._stub_hash(exercise)
            return NOT_STARTED if stub is None or stub == current else IN_PROGRESS
        if entry.score == entry.max_score and entry.file_hash == current:
            return DONE
        return IN_PROGRESS

    def changed_since_graded(self, exercise: Exercise) -> bool:
        entry = self.entries.get(exercise.id)
        return entry is not None and entry.file_hash != file_hash(self.root / exercise.student_file)

    def first_not_done(self, exercises: list[Exercise]) -> Exercise | None:
        return next((exercise for exercise in exercises if self.status(exercise) != DONE), None)

    def record(self, scorecard: Scorecard, exercises: list[Exercise]) -> None:
        """Keep the grade of each exercise in the scorecard, if it is a grade (every start method, complete)."""
        if scorecard.target.get("kind") != "exercises" or not scorecard.complete:
            return
        if not {"fork", "spawn", "forkserver"} <= set(scorecard.start_methods):
            return
        by_id = {exercise.id: exercise for exercise in exercises}
        now = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
        for scored in scorecard.exercises:
            exercise = by_id.get(scored.id)
            if exercise is None:
                continue
            self.entries[scored.id] = Entry(
                scored.score, scored.max_score, file_hash(self.root / exercise.student_file), now
            )
        self.save()

    def forget(self, exercise: Exercise) -> None:
        if self.entries.pop(exercise.id, None) is not None:
            self.save()

    def save(self) -> None:
        """Atomically: a reader never sees half a file."""
        data = {"format": STATE_FORMAT, "exercises": {key: vars(entry) for key, entry in self.entries.items()}}
        write_text_atomically(self.path, json.dumps(data, indent=2) + "\n")


def load_state(root: Path, exercises: list[Exercise]) -> State:
    """The state file of the project at root; a missing one is empty, a broken or stale one rebuilt with a warning."""
    state = State(root)
    path = state.path
    if not path.exists():
        return state
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != STATE_FORMAT:
            raise ValueError(f"format {data.get('format')!r}, not {STATE_FORMAT}")
        raw = data["exercises"]
        if not isinstance(raw, dict):
            raise ValueError("no exercises table")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as problem:
        state.warnings.append(f"{path} could not be read ({problem}); it is rebuilt from your next grades")
        state.save()
        return state
    known = {exercise.id: exercise for exercise in exercises}
    dropped = []
    for key, value in raw.items():
        try:
            entry = Entry(
                score=float(value["score"]),
                max_score=float(value["max_score"]),
                file_hash=value.get("file_hash"),
                graded_at=str(value.get("graded_at", "")),
            )
        except (KeyError, TypeError, ValueError):
            dropped.append(key)
            continue
        exercise = known.get(key)
        if exercise is None or entry.max_score != exercise.max_points:
            dropped.append(key)  # graded against another version of the exercises
            continue
        state.entries[key] = entry
    if dropped:
        state.warnings.append(f"{path} had stale entries ({', '.join(sorted(dropped))}); they were dropped")
        state.save()
    return state
