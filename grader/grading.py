"""The one grading API: settings in, a scorecard out, progress events while the tests run.

Every command calls ``grade``: ``grade``, ``check``, ``watch`` and the
instructor's batch. It runs the pipeline (manifest -> target -> run ->
collect -> score -> scorecard); the callers only parse their arguments and
render what comes back. Settings are checked once, by ``validate``, before
anything starts: a bad one raises ``CannotGrade`` with the line to show.

Events (``on_event``), in order: one ``Started``; then, as pytest reports,
a ``TestEnded`` per test run (a test under one start method) and a
``TaskEnded`` once every run of a task has ended. They are a live view only:
the scorecard, built from pytest's full report, is the verdict.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from grader import __version__
from grader.collect import ExpectedTest, collect, read_expected
from grader.isolation import Isolation, IsolationUnavailable, detect_isolation
from grader.manifest import Exercise, ManifestError, Task, load_manifest
from grader.names import (
    DEFAULT_CALL_TIMEOUT,
    DEFAULT_DEADLINE,
    ERROR,
    FAILED,
    PASSED,
    SKIPPED,
    START_METHODS,
    TIERS,
    TIMEOUT,
)
from grader.plugin_api import read_durations
from grader.protocol import Limits
from grader.run import DEADLINE, RunSettings, StopRequest, run_hidden_tests
from grader.score import score_exercise, total
from grader.scorecard import ExerciseScore, Scorecard
from grader.target import StagedTarget, Target, TargetError, choose_target, stage

TARGET_KINDS = ("exercises", "solutions", "submission")


class CannotGrade(Exception):
    """Grading could not start; the message is the one line the user sees."""


@dataclass(frozen=True)
class Settings:
    """What to grade and how; the defaults are the student's: their exercises/, every start method."""

    target: str = "exercises"  # exercises, solutions or submission
    path: str | Path | None = None  # the submission's folder
    only: tuple[str, ...] = ()  # exercise ids, numbers or folders; empty: every exercise
    start_method: str = "all"  # fork, spawn, forkserver or all
    workers: int | None = None  # pytest-xdist workers; None: one per CPU; 0: none
    call_timeout: float = DEFAULT_CALL_TIMEOUT
    deadline: float = DEFAULT_DEADLINE
    isolation: str = "auto"
    explain: bool = False  # run every start method of a check even after it failed under one
    durations_file: Path | None = None  # seconds per test, read to start the longest first, then updated


@dataclass(frozen=True)
class Plan:
    """Settings once checked: what the run needs, resolved."""

    settings: Settings
    exercises: list[Exercise]
    target: Target
    start_methods: tuple[str, ...]
    workers: int


@dataclass(frozen=True)
class Started:
    target: Target
    start_methods: tuple[str, ...]
    isolation: str
    exercises: list[Exercise]


@dataclass(frozen=True)
class TestEnded:
    exercise: str
    task: int
    name: str  # what the test checks, in a student's words
    start_method: str | None
    outcome: str  # passed, failed, error, timeout or skipped
    done: int  # test runs ended so far
    total: int  # test runs collected (0 while unknown)


@dataclass(frozen=True)
class TaskEnded:
    exercise: Exercise
    task: Task
    passed: bool  # every check of the task passed (or could not be checked here)
    lost: list[str] = field(default_factory=list)  # the names of the checks that did not pass


Event = Started | TestEnded | TaskEnded
EventListener = Callable[[Event], None]


def select_exercises(requested: tuple[str, ...] | list[str]) -> list[Exercise]:
    """The manifest's exercises, or those named by id or number, in manifest order."""
    exercises = list(load_manifest().exercises)
    if not requested:
        return exercises
    chosen = set()
    for name in requested:
        match = [e for e in exercises if str(name) in (e.id, str(e.number), f"{e.number:02d}", e.folder)]
        if not match:
            raise CannotGrade(f"--only {name}: no such exercise (known: {', '.join(e.id for e in exercises)})")
        chosen.add(match[0].id)
    return [e for e in exercises if e.id in chosen]


def validate(settings: Settings) -> Plan:
    """Check every setting once; raise CannotGrade (or TargetError, ManifestError) with the reason."""
    if settings.target not in TARGET_KINDS:
        raise CannotGrade(f"target {settings.target!r}: choose from {', '.join(TARGET_KINDS)}")
    if settings.start_method not in (*START_METHODS, "all"):
        raise CannotGrade(f"--start-method {settings.start_method}: choose from {', '.join(START_METHODS)} or all")
    if settings.isolation not in ("auto", *TIERS):
        raise CannotGrade(f"--isolation {settings.isolation}: choose from auto, {', '.join(TIERS)}")
    if settings.workers is not None and settings.workers < 0:
        raise CannotGrade(f"--workers {settings.workers}: must be 0 or more")
    for name, value in (("--call-timeout", settings.call_timeout), ("--deadline", settings.deadline)):
        if not value > 0:
            raise CannotGrade(f"{name} {value:g}: must be more than 0")
    exercises = select_exercises(settings.only)
    if settings.target == "submission":
        if settings.path is None:
            raise CannotGrade("--submission needs the folder to grade")
        target = choose_target("submission", settings.path)
    else:
        target = choose_target(settings.target)
    methods = tuple(START_METHODS) if settings.start_method == "all" else (settings.start_method,)
    workers = (os.cpu_count() or 1) if settings.workers is None else settings.workers
    return Plan(settings, exercises, target, methods, workers)


class _Progress:
    """Turns grader.plugin's progress lines into events: which test, which task, how many ended."""

    def __init__(self, collected: Path, exercises: list[Exercise], listener: EventListener) -> None:
        self.collected = collected
        self.exercises = {exercise.id: exercise for exercise in exercises}
        self.listener = listener
        self.expected: dict[str, ExpectedTest] = {}
        self.ended: dict[str, str] = {}  # nodeid -> outcome
        self.tasks_told: set[tuple[str, int]] = set()

    def __call__(self, line: dict) -> None:
        nodeid = str(line.get("nodeid"))
        if nodeid not in self.expected:
            self.expected = {test.nodeid: test for test in read_expected(self.collected)}
        test = self.expected.get(nodeid)
        if test is None or nodeid in self.ended:
            return
        outcome = {"passed": PASSED, "skipped": SKIPPED}.get(str(line.get("outcome")), FAILED)
        if line.get("kind") in (TIMEOUT, ERROR):
            outcome = line["kind"]
        self.ended[nodeid] = outcome
        done, total = len(self.ended), len(self.expected)
        self.listener(TestEnded(test.exercise, test.task, test.name, test.start_method, outcome, done, total))
        key = (test.exercise, test.task)
        runs = [t for t in self.expected.values() if (t.exercise, t.task) == key]
        if key in self.tasks_told or any(t.nodeid not in self.ended for t in runs):
            return
        self.tasks_told.add(key)
        exercise = self.exercises[test.exercise]
        lost = sorted({t.name for t in runs if self.ended[t.nodeid] not in (PASSED, SKIPPED)})
        self.listener(TaskEnded(exercise, exercise.task(test.task), passed=not lost, lost=lost))


def grade(
    settings: Settings | Plan, on_event: EventListener | None = None, stop: StopRequest | None = None
) -> Scorecard:
    """Run the whole pipeline and return the scorecard; raise CannotGrade before any test ran.

    stop: installed by the caller; a signal it records cuts the run short, and the
    scorecard says so (complete false, every test that did not finish an error).
    Without one, one is installed for the run.
    """
    started_at = datetime.now(timezone.utc)
    clock = time.monotonic()
    plan = settings if isinstance(settings, Plan) else validate(settings)
    settings = plan.settings
    try:
        isolation: Isolation = detect_isolation(settings.isolation)
    except IsolationUnavailable as problem:
        raise CannotGrade(f"--isolation {settings.isolation}: {problem}")
    run_settings = RunSettings(
        start_methods=plan.start_methods,
        workers=plan.workers,
        call_timeout=settings.call_timeout,
        deadline=max(0.0, settings.deadline - (time.monotonic() - clock)),  # the probe above counts too
        isolation=isolation.tier,
        every_method=settings.explain,
        durations=settings.durations_file,
    )
    listener = on_event or (lambda event: None)
    listener(Started(plan.target, plan.start_methods, isolation.tier, plan.exercises))

    workdir = Path(tempfile.mkdtemp(prefix="kata-grade-"))
    try:
        staged: StagedTarget = stage(plan.target, plan.exercises, workdir / "submission")
        progress = _Progress(workdir / "collected", plan.exercises, listener) if on_event else None
        output = run_hidden_tests(plan.exercises, staged.root, workdir, run_settings, stop, progress)
        results, report_problem = collect(read_expected(output.collected), output.report, output.progress)
        log_tail = output.log.read_text(errors="replace").strip().splitlines()[-3:] if report_problem else []
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    notices = [f"{exercise_id}: {problem}" for exercise_id, problem in staged.problems.items()]
    if plan.target.note:
        notices.insert(0, f"the exercises were {plan.target.note}")
    complete = report_problem is None and output.stopped is None and output.exit_code is not None
    unfinished = "the scorecard is incomplete: every test that did not finish scores 0 as an error"
    if output.stopped == DEADLINE:
        notices.append(f"grading stopped at its deadline of {settings.deadline:g} s: {unfinished}")
    elif output.stopped:
        notices.append(f"grading was interrupted ({output.stopped}): {unfinished}")
    elif report_problem:
        said = " | ".join(line.strip() for line in log_tail)[:300]
        notices.append(f"{report_problem}: every test without a result scores 0 (pytest said: {said})")
    scored = []
    for exercise in plan.exercises:
        own = [r for r in results if r.test.exercise == exercise.id]
        why = staged.problems.get(exercise.id)
        if why is None and output.stopped and not own:
            why = "grading was stopped before its tests ran"
        scored.append(score_exercise(exercise, own, why))
    score, max_score, percent = total(scored)
    if settings.durations_file is not None and output.stopped is None:
        remember_durations(settings.durations_file, scored)
    return Scorecard(
        grader={"name": "mp-kata grader", "version": __version__},
        target={"kind": plan.target.kind, "path": str(plan.target.path)},
        environment={
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count() or 1,
            "default_start_method": multiprocessing.get_start_method(allow_none=False),
        },
        start_methods=list(plan.start_methods),
        isolation={
            "tier": isolation.tier,
            "note": isolation.note,
            "memory": {"limit_mib": Limits().tree_memory_mib, "mechanism": "watchdog"},
        },
        started_at=started_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
        duration=round(time.monotonic() - clock, 2),
        complete=complete,
        score=score,
        max_score=max_score,
        percent=percent,
        exercises=scored,
        notices=notices,
    )


def remember_durations(path: Path, exercises: list[ExerciseScore]) -> None:
    """Add this run's seconds per test to the file the next run orders its tests by; best effort.

    Only the order of the next run depends on it, never a grade: a file that
    cannot be read or written is replaced or left alone without a word.
    """
    known = read_durations(str(path))
    known.update({test.id: test.duration for exercise in exercises for test in exercise.tests})
    written: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=".durations-", delete=False) as stream:
            written = Path(stream.name)
            json.dump(known, stream, indent=0, sort_keys=True)
        os.replace(written, path)  # whole or not at all, also when batch gradings write at once
    except OSError:
        if written is not None:
            written.unlink(missing_ok=True)


GRADING_ERRORS = (CannotGrade, TargetError, ManifestError)
