"""Stage 7: the scorecard as text for a terminal. Pure: a scorecard in, a string out.

What a student needs after each run: per exercise the score and its status;
for every check that did not pass, what it checks, why it failed and the
hint. Never the hidden test's source.
"""

from __future__ import annotations

import textwrap

from grader.scorecard import ExerciseScore, Scorecard, TestScore

MARK = {"passed": "ok", "failed": "FAIL", "error": "ERROR", "timeout": "TIMEOUT", "skipped": "skip"}
WIDTH = 100


def _number(value: float) -> str:
    return f"{value:g}"


def _indent(text: str, prefix: str) -> str:
    lines = []
    for paragraph in text.splitlines() or [""]:
        lines += textwrap.wrap(paragraph, WIDTH - len(prefix)) or [""]
    return "\n".join(prefix + line for line in lines)


def _render_test(test: TestScore, verbose: bool) -> list[str]:
    lines = [f"      {MARK.get(test.outcome, test.outcome):<7} {test.name}"]
    if test.outcome != "passed":
        lines.append(_indent(test.message, "              "))
        if test.output and verbose:
            lines.append(_indent(f"your code printed: {test.output}", "              "))
    return lines


def _render_exercise(number: int, exercise: ExerciseScore, verbose: bool) -> list[str]:
    status = {"passed": "done", "failed": "to do", "error": "ERROR"}.get(exercise.status, exercise.status)
    score = f"{_number(exercise.score)}/{_number(exercise.max_score)}"
    lines = [f"{number:>2}. {exercise.title:<58} {score:>9}  {status}"]
    if exercise.status == "error" and exercise.message:
        lines.append(_indent(exercise.message, "      "))
        return lines
    for task in exercise.tasks:
        tests = [test for test in exercise.tests if test.task == task.number]
        unfinished = [test for test in tests if test.outcome != "passed"]
        if not unfinished and not verbose:
            continue
        lines.append(f"    task {task.number}: {task.title} ({_number(task.score)}/{_number(task.max_score)})")
        for test in tests if verbose else unfinished:
            lines += _render_test(test, verbose)
        if unfinished and unfinished[0].hint:
            lines.append(_indent(f"hint: {unfinished[0].hint}", "      "))
    return lines


def render_text(scorecard: Scorecard, verbose: bool = False) -> str:
    """A readable summary: one line per exercise, then what failed and how to fix it."""
    target = scorecard.target
    lines = [
        f"Grading {target['kind']} ({target['path']}) under {', '.join(scorecard.start_methods)}"
        f" (isolation: {scorecard.isolation['tier']})",
        "",
    ]
    for number, exercise in enumerate(scorecard.exercises, start=1):
        lines += _render_exercise(number, exercise, verbose)
    for notice in scorecard.notices:
        lines.append(_indent(f"note: {notice}", ""))
    lines += [
        "",
        f"Score: {_number(scorecard.score)}/{_number(scorecard.max_score)} ({scorecard.percent:g}%)"
        f" in {scorecard.duration:.1f} s" + ("" if scorecard.complete else "  [INCOMPLETE]"),
    ]
    return "\n".join(lines)
