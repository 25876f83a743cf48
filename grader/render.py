"""Stage 7: the scorecard as text for a terminal. Pure: a scorecard in, a string out.

What a student needs after each run: per exercise the score and its status;
for every check that did not pass, what it checks, why it failed, what the
code printed, and the hint. Never the hidden test's source.

Three views: the full report (``render_text``, an instructor's or
``--submission``'s), the student's (``render_text`` with ``focus``: the
current exercise in full, every other one as one line) and ``check``'s
(``render_check``: one exercise, every task, where to look, what comes next).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from grader.scorecard import ExerciseScore, Scorecard, TestScore

MARK = {"passed": "ok", "failed": "FAIL", "error": "ERROR", "timeout": "TIMEOUT", "skipped": "skip"}
STATUS = {"passed": "done", "failed": "to do", "error": "ERROR"}
WIDTH = 100
MAX_OUTPUT_LINES = 12  # of the graded code's own output, under a check that failed
ALL_METHODS = ("fork", "spawn", "forkserver")


@dataclass(frozen=True)
class Place:
    """Where a task's work goes in the student's file: shown under a failing task by ``check``."""

    file: str  # as the student would open it, e.g. exercises/01_processes/processes.py
    line: int | None  # the task's TODO, while it is there
    function: str | None  # the function the TODO is in


def _number(value: float) -> str:
    return f"{value:g}"


def _indent(text: str, prefix: str, width: int) -> str:
    lines = []
    for paragraph in text.splitlines() or [""]:
        lines += textwrap.wrap(paragraph, max(20, width - len(prefix))) or [""]
    return "\n".join(prefix + line for line in lines)


def _output(text: str, prefix: str) -> list[str]:
    """The graded code's output, line by line and bounded (it is already cut to a few hundred characters)."""
    lines = text.splitlines()
    shown = [f"{prefix}| {line}" for line in lines[:MAX_OUTPUT_LINES]]
    if len(lines) > MAX_OUTPUT_LINES:
        shown.append(f"{prefix}| ... ({len(lines) - MAX_OUTPUT_LINES} more lines)")
    return [f"{prefix}your code printed:", *shown]


def timeline_lines(timeline: dict, prefix: str, width: int = 40) -> list[str]:
    """What ran when: one row per process on a shared time axis, so that one-after-another shows as a staircase."""
    rows = timeline.get("rows") or []
    times = [value for row in rows for value in (row["start"], row["end"]) if value is not None]
    span = max(times, default=0.0) or 1.0
    lines = [f"{prefix}what ran when, {timeline.get('title', 'the processes')} (0 to {span:.1f} s):"]
    for row in rows:
        start, end = row["start"], row["end"]
        if start is None:
            bar, said = " " * width, "never started"
        else:
            left = min(width - 1, int(start / span * width))
            right = width if end is None else max(left + 1, min(width, round(end / span * width)))
            bar = " " * left + "#" * (right - left) + " " * (width - right)
            said = f"{start:.1f} to {end:.1f} s" if end is not None else f"{start:.1f} s to the end, still running"
        lines.append(f"{prefix}pid {row['pid']:<7} |{bar}| {said}")
    return lines


def _render_test(test: TestScore, width: int, previous: TestScore | None = None, verbose: bool = False) -> list[str]:
    lines = [f"      {MARK.get(test.outcome, test.outcome):<7} {test.name}"]
    if test.outcome == "passed":
        if verbose and test.timeline:
            lines += timeline_lines(test.timeline, " " * 14)
        return lines
    if previous is not None and previous.message == test.message and previous.output == test.output:
        return [*lines, " " * 14 + "(the same as above)"]
    lines.append(_indent(test.message, " " * 14, width))
    if test.timeline:
        lines += timeline_lines(test.timeline, " " * 14)
    if test.output:
        lines += _output(test.output, " " * 14)
    return lines


def exercise_line(exercise: ExerciseScore) -> str:
    """One line: number, score, status, then the title, so that a long title never moves a column."""
    score = f"{_number(exercise.score)}/{_number(exercise.max_score)}"
    status = STATUS.get(exercise.status, exercise.status)
    return f"{exercise.number:>2}. {score:>7}  {status:<5}  {exercise.title}"


def _render_tasks(
    exercise: ExerciseScore, verbose: bool, width: int, places: dict[int, Place] | None = None
) -> list[str]:
    lines = []
    for task in exercise.tasks:
        tests = [test for test in exercise.tests if test.task == task.number]
        unfinished = [test for test in tests if test.outcome != "passed"]
        every_task = places is not None  # check's view lists the tasks that passed too, in one line each
        if not unfinished and not (verbose or every_task):
            continue
        mark = "ok" if not unfinished else "FAIL"
        earned = f"{_number(task.score)}/{_number(task.max_score)}"
        lines.append(f"    {mark:<4} task {task.number}: {task.title} ({earned})")
        if not unfinished and not verbose:
            continue
        previous = None
        for test in tests if verbose else unfinished:
            lines += _render_test(test, width, previous, verbose)
            previous = test
        if unfinished and unfinished[0].hint:
            lines.append(_indent(f"hint: {unfinished[0].hint}", "      ", width))
        place = (places or {}).get(task.number)
        if unfinished and place is not None:
            at = f"{place.file}:{place.line}" if place.line else place.file
            lines.append(f"      look at: {at}" + (f", in {place.function}()" if place.function else ""))
    return lines


def provisional(scorecard: Scorecard) -> str | None:
    """Why a score is not yet the grade: it was checked under some start methods only."""
    if set(scorecard.start_methods) >= set(ALL_METHODS):
        return None
    return (
        f"provisional: checked under {', '.join(scorecard.start_methods)} only; a check counts when it passes "
        f"under {', '.join(ALL_METHODS)} (run without --start-method for the grade)"
    )


def _footer(scorecard: Scorecard, width: int) -> list[str]:
    lines = [_indent(f"note: {notice}", "", width) for notice in scorecard.notices]
    why = provisional(scorecard)
    if why:
        lines.append(_indent(why, "", width))
    lines += [
        "",
        f"Score: {_number(scorecard.score)}/{_number(scorecard.max_score)} ({scorecard.percent:g}%)"
        f" in {scorecard.duration:.1f} s" + ("" if scorecard.complete else "  [INCOMPLETE]"),
    ]
    return lines


def header(kind: str, path: str, start_methods: list[str] | tuple[str, ...], isolation: str) -> str:
    return f"Grading {kind} ({path}) under {', '.join(start_methods)} (isolation: {isolation})"


def render_text(
    scorecard: Scorecard, verbose: bool = False, width: int = WIDTH, focus: str | None = None, titled: bool = True
) -> str:
    """One line per exercise, then what failed and how to fix it.

    focus: an exercise id; only that exercise is shown in full, the others as one line each.
    titled: begin with the header line (not when the live view has shown it already).
    """
    target = scorecard.target
    lines = (
        [header(target["kind"], target["path"], scorecard.start_methods, scorecard.isolation["tier"])] if titled else []
    )
    lines.append("")
    for exercise in scorecard.exercises:
        lines.append(exercise_line(exercise) + ("   <- current" if exercise.id == focus else ""))
        if focus is not None and exercise.id != focus:
            continue
        if exercise.status == "error" and exercise.message:
            lines.append(_indent(exercise.message, "      ", width))
            continue
        lines += _render_tasks(exercise, verbose, width)
    lines += _footer(scorecard, width)
    return "\n".join(lines)


def score_line(scorecard: Scorecard) -> str:
    return _footer(scorecard, WIDTH)[-1]


def render_check(
    scorecard: Scorecard, places: dict[int, Place], next_title: str | None, width: int = WIDTH, verbose: bool = False
) -> str:
    """check's view of its one exercise: every task with its mark, each failure in full, then what comes next.

    next_title: the exercise to do next, shown once this one is done ("" when it was the last one).
    """
    exercise = scorecard.exercises[0]
    lines = [f"{exercise.number}. {exercise.title}  ({', '.join(scorecard.start_methods)})", ""]
    if exercise.status == "error" and exercise.message:
        lines.append(_indent(exercise.message, "    ", width))
        place = next(iter(places.values()), None)
        if place is not None:
            lines.append(f"    look at: {place.file}")
    else:
        lines += _render_tasks(exercise, verbose, width, places)
    lines += _footer(scorecard, width)
    if exercise.status == "passed" and provisional(scorecard) is None:
        lines.append(f"Exercise {exercise.number} is done." + (f" Next: {next_title}." if next_title else ""))
        if next_title == "":
            lines[-1] += " That was the last one: every exercise is done."
    return "\n".join(lines)
