"""Stage 5: results and points become scores. Pure: no I/O, no clock.

A task's points are split evenly over its hidden tests. A hidden test runs
once per start method and earns its points only when it passed under every
one; its outcome is the worst of them. A task with no test result at all
scores 0 as an error, so a lost test can never raise a score.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from grader.collect import ExpectedTest, TestResult
from grader.manifest import Exercise
from grader.names import ERROR, FAILED, OUTCOMES, PASSED, SKIPPED, TIMEOUT
from grader.plugin_api import group_of
from grader.scorecard import ExerciseScore, TaskScore, TestScore

# The worst outcome wins when a test ran under several start methods.
SEVERITY = {PASSED: 0, SKIPPED: 1, FAILED: 2, TIMEOUT: 3, ERROR: 4}
assert set(SEVERITY) == set(OUTCOMES)
EXERCISE_PASSED, EXERCISE_FAILED, EXERCISE_ERROR = "passed", "failed", "error"


def base_id(nodeid: str) -> str:
    """The test without its start-method parameter."""
    return group_of(nodeid)


def points(value: Fraction) -> float:
    return round(float(value), 2)


def _score_test(runs: list[TestResult], share: Fraction, hint: str, several_methods: bool) -> TestScore:
    first = runs[0].test
    worst = max(runs, key=lambda run: SEVERITY[run.outcome])
    message = worst.message
    mixed = len({run.outcome for run in runs}) > 1
    if several_methods and mixed and worst.test.start_method:
        message = f"under {worst.test.start_method}: {message}"
    lost = [run for run in runs if run.outcome not in (PASSED, SKIPPED)]
    if several_methods and len({run.message for run in lost}) > 1:  # grade --explain: each method's own words
        message = "; ".join(f"under {run.test.start_method}: {run.message}" for run in lost)
    passed = worst.outcome == PASSED
    return TestScore(
        id=base_id(first.nodeid),
        task=first.task,
        name=first.name,
        score=points(share if passed else Fraction(0)),
        max_score=points(share),
        outcome=worst.outcome,
        duration=round(sum(run.duration for run in runs), 3),
        message="" if passed else message,
        hint=None if passed else hint,
        output=worst.output or next((run.output for run in runs if run.output), ""),
        start_methods={run.test.start_method or "default": run.outcome for run in runs},
        timeline=worst.timeline or next((run.timeline for run in runs if run.timeline), None),
    )


def _all_skipped(runs: list[TestResult]) -> bool:
    return all(run.outcome == SKIPPED for run in runs)


def score_exercise(exercise: Exercise, results: list[TestResult], problem: str | None = None) -> ExerciseScore:
    """Score one exercise from its tests' results (any order, any number of start methods)."""
    methods = {result.test.start_method for result in results}
    by_test: dict[str, list[TestResult]] = {}
    for result in results:
        by_test.setdefault(base_id(result.test.nodeid), []).append(result)

    tests: list[TestScore] = []
    tasks: list[TaskScore] = []
    earned_total = Fraction(0)
    for task in exercise.tasks:
        groups = [runs for runs in by_test.values() if runs[0].test.task == task.number]
        if not groups:  # the task's tests never reported: make the loss visible
            missing = ExpectedTest(f"{exercise.id}::task{task.number}", exercise.id, task.number, task.title, None)
            groups = [[TestResult(missing, ERROR, 0.0, problem or "no hidden test reported for this task", "")]]
        # A test skipped under every start method (it cannot be checked on this machine, say a
        # parallelism test on one CPU) neither earns nor costs: the task's other tests share its points.
        # If every test of the task skipped, nothing was checked: they keep their shares and earn nothing.
        nothing_checked = all(_all_skipped(runs) for runs in groups)
        counted = [runs for runs in groups if nothing_checked or not _all_skipped(runs)]
        share = Fraction(task.points, len(counted))
        several = len(methods) > 1
        scored = [_score_test(runs, share if runs in counted else Fraction(0), task.hint, several) for runs in groups]
        earned = share * sum(1 for test in scored if test.outcome == PASSED)
        earned_total += earned
        tests += scored
        tasks.append(TaskScore(task.number, task.title, points(earned), task.points))

    if problem:
        status, message = EXERCISE_ERROR, problem
    elif all(test.outcome == ERROR for test in tests):
        status = EXERCISE_ERROR
        message = Counter(test.message for test in tests).most_common(1)[0][0]
    elif all(test.outcome == PASSED or (test.outcome == SKIPPED and test.max_score == 0) for test in tests):
        status, message = EXERCISE_PASSED, ""
    else:
        status, message = EXERCISE_FAILED, ""
    return ExerciseScore(
        id=exercise.id,
        title=exercise.title,
        score=points(earned_total),
        max_score=exercise.max_points,
        status=status,
        message=message,
        tasks=tasks,
        tests=tests,
        number=exercise.number,
        exact=earned_total,
    )


def exact_score(exercise: ExerciseScore) -> Fraction:
    """The exercise's score without rounding: each task's points times its share of passed tests."""
    return _exact(
        [(task.number, task.max_score) for task in exercise.tasks],
        [(test.task, test.outcome, test.max_score) for test in exercise.tests],
    )


def exact_score_of(exercise: Mapping[str, Any]) -> Fraction:
    """exact_score of an exercise as a written scorecard holds it (a dict, as json.load gives it back)."""
    return _exact(
        [(task["number"], task["max_score"]) for task in exercise["tasks"]],
        [(test["task"], test["outcome"], test["max_score"]) for test in exercise["tests"]],
    )


def _exact(tasks: list[tuple[int, float]], tests: list[tuple[int, str, float]]) -> Fraction:
    earned = Fraction(0)
    for number, max_score in tasks:
        # The tests that share the task's points, as in score_exercise: not those skipped everywhere.
        checked = [
            outcome for task, outcome, share in tests if task == number and not (outcome == SKIPPED and share == 0)
        ]
        if checked:  # a scorecard of an exercise that could not be graded may hold no test at all
            earned += Fraction(int(max_score)) * checked.count(PASSED) / len(checked)
    return earned


def total(exercises: list[ExerciseScore]) -> tuple[float, float, float]:
    """(score, max score, percent) over the graded exercises."""
    # Each exercise's fraction as score_exercise computed it; recomputed from the tests only for one read back.
    earned = sum((exact_score(e) if e.exact is None else e.exact for e in exercises), Fraction(0))
    possible = sum(exercise.max_score for exercise in exercises)
    percent = round(float(100 * earned / possible), 1) if possible else 0.0
    return points(earned), float(possible), percent
