"""The class view: a class's scorecards become a gradebook, statistics and one offline page.

The input is a list of graded submissions, each a ``(name, scorecard)`` pair: the student's name (with
``grade --submissions DIR --out OUT``, the entry's name, which is also the scorecard's file stem) and the
scorecard as a dict, as read from its JSON file; plus the manifest's order of exercise ids (``Manifest.ids``).
Three outputs, each a pure function that computes it and one that writes it (atomically, like the scorecard):

    gradebook.csv   gradebook_rows / write_gradebook   one row per student, a column per exercise
    stats.json      class_stats / write_stats           pass rates and mean scores per exercise, task and test,
                                                        the most-failed and slowest checks, the score histogram
    report.html     render_report / write_report        all of it on one self-contained page (Jinja2)

Numbers are the scorecards' own, never recomputed or rounded again: a scorecard's total comes from exact fractions
and is rounded once (grader/score.py), so it can differ from the sum of its rounded exercise scores (3 x 0.33 but
1.0); the gradebook shows both as the scorecard has them. Means and rates are computed here and kept unrounded in
stats.json and in the page's data attributes; the page rounds them only in the text a person reads.

Names, messages and notices are the students' text: the page's template escapes everything (autoescape, and a
Content-Security-Policy that allows no script and no request at all), and the gradebook quotes text cells that a
spreadsheet would run as a formula.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from grader.scorecard import write_text_atomically

if TYPE_CHECKING:
    import jinja2

STATS_VERSION = 1  # stats.json's "stats_version": bumped on any change that is not a pure addition
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
REPORT_TEMPLATE = "report.html.j2"
TOP = 10  # checks in the most-failed and slowest lists
BIN_WIDTH = 10  # percent per histogram bin; the last bin also holds 100%
NOTICE_SEPARATOR = " | "
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection): such text cells get a
# leading apostrophe, the spreadsheets' own mark for "this is text". Numbers are never changed.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

Submission = tuple[str, Mapping[str, Any]]  # (student name, scorecard as a dict)


@dataclass(frozen=True)
class GradebookRow:
    """One student's line of the gradebook: the scorecard's numbers as they are."""

    student: str
    scores: dict[str, float]  # exercise id -> its score, for each exercise the scorecard has
    total: float
    max_score: float
    percent: float
    complete: bool
    notices: tuple[str, ...]

    def cells(self, exercises: Sequence[str]) -> list[str]:
        """The CSV cells, the exercises' scores in the given order."""
        return [
            _text_cell(self.student),
            *(_number_cell(self.scores.get(exercise)) for exercise in exercises),
            _number_cell(self.total),
            _number_cell(self.max_score),
            _number_cell(self.percent),
            "yes" if self.complete else "no",
            _text_cell(NOTICE_SEPARATOR.join(self.notices)),
        ]


def _number_cell(value: float | None) -> str:
    # str of a float is its repr, the shortest text that reads back as the same float; an int stays an int.
    return "" if value is None else str(value)


def _text_cell(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def _check_names(submissions: Sequence[Submission]) -> None:
    seen = Counter(name for name, _ in submissions)
    twice = sorted(name for name, count in seen.items() if count > 1)
    if twice:
        raise ValueError(f"each student must appear once; listed more than once: {', '.join(twice)}")


def exercise_columns(submissions: Sequence[Submission], order: Sequence[str]) -> list[str]:
    """The exercise ids in manifest order; then any exercise a scorecard has that the manifest lacks, by number."""
    columns = list(dict.fromkeys(order))
    others: dict[str, int] = {}
    for _, scorecard in submissions:
        for exercise in scorecard["exercises"]:
            if exercise["id"] not in columns:
                others.setdefault(exercise["id"], exercise["number"])
    return columns + sorted(others, key=lambda exercise: (others[exercise], exercise))


def gradebook_header(exercises: Sequence[str]) -> list[str]:
    return ["student", *exercises, "total", "max_score", "percent", "complete", "notices"]


def gradebook_rows(submissions: Sequence[Submission]) -> list[GradebookRow]:
    """One row per student, sorted by name."""
    _check_names(submissions)
    rows = []
    for name, scorecard in sorted(submissions, key=lambda submission: submission[0]):
        rows.append(
            GradebookRow(
                student=name,
                scores={exercise["id"]: exercise["score"] for exercise in scorecard["exercises"]},
                total=scorecard["score"],
                max_score=scorecard["max_score"],
                percent=scorecard["percent"],
                complete=scorecard["complete"],
                notices=tuple(scorecard["notices"]),
            )
        )
    return rows


def gradebook_csv(submissions: Sequence[Submission], order: Sequence[str]) -> str:
    """gradebook.csv's text: the header, then one row per student."""
    exercises = exercise_columns(submissions, order)
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(gradebook_header(exercises))
    writer.writerows(row.cells(exercises) for row in gradebook_rows(submissions))
    return text.getvalue()


def write_gradebook(path: Path | str, submissions: Sequence[Submission], order: Sequence[str]) -> None:
    write_text_atomically(Path(path), gradebook_csv(submissions, order))


def _rate(passed: int, graded: int) -> float | None:
    return passed / graded if graded else None


def _mean(values: Sequence[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def _most_common(messages: Sequence[str]) -> str:
    """The most common reason a check was lost; of equally common ones, the first in sorted order (never the
    students' order)."""
    counts = Counter(messages)
    return min(counts, key=lambda message: (-counts[message], message)) if counts else ""


def histogram(percents: Sequence[float]) -> list[dict[str, int]]:
    """Students per 10 percent: [0, 10), [10, 20), ... [90, 100] (the last bin holds 100%)."""
    bins = [{"low": low, "high": low + BIN_WIDTH, "count": 0} for low in range(0, 100, BIN_WIDTH)]
    for percent in percents:
        bins[min(int(percent // BIN_WIDTH), len(bins) - 1)]["count"] += 1
    return bins


def class_stats(submissions: Sequence[Submission], order: Sequence[str]) -> dict[str, Any]:
    """Pass rates and mean scores per exercise, task and test; the most-failed and slowest checks; the histogram.

    An exercise passed with full marks (its status); a task when it scored its maximum; a test when its outcome is
    passed. A test skipped on a student's machine (it neither earns nor costs) is not counted as graded for it.
    Rates and means are None when nothing was graded.
    """
    _check_names(submissions)
    columns = exercise_columns(submissions, order)
    place = {exercise: index for index, exercise in enumerate(columns)}
    exercises: dict[str, list[Mapping[str, Any]]] = {exercise: [] for exercise in columns}
    tasks: dict[tuple[str, int], list[Mapping[str, Any]]] = {}
    tests: dict[str, list[Mapping[str, Any]]] = {}
    where: dict[str, tuple[int, int, int]] = {}  # test id -> (exercise's place, task, first seen): the tests' order
    for _, scorecard in submissions:
        for exercise in scorecard["exercises"]:
            exercises[exercise["id"]].append(exercise)
            for task in exercise["tasks"]:
                tasks.setdefault((exercise["id"], task["number"]), []).append(task)
            for test in exercise["tests"]:
                tests.setdefault(test["id"], []).append({**test, "exercise": exercise["id"]})
                where.setdefault(test["id"], (place[exercise["id"]], test["task"], len(where)))

    exercise_stats = []
    for exercise_id, found in exercises.items():
        graded = len(found)
        passed = sum(1 for exercise in found if exercise["status"] == "passed")
        exercise_stats.append(
            {
                "id": exercise_id,
                "number": found[0]["number"] if found else None,
                "title": found[0]["title"] if found else "",
                "graded": graded,
                "passed": passed,
                "errors": sum(1 for exercise in found if exercise["status"] == "error"),
                "pass_rate": _rate(passed, graded),
                "mean_score": _mean([exercise["score"] for exercise in found]),
                "max_score": found[0]["max_score"] if found else None,
            }
        )

    task_stats = []
    for (exercise_id, number), found in sorted(tasks.items(), key=lambda item: (place[item[0][0]], item[0][1])):
        graded = len(found)
        passed = sum(1 for task in found if task["score"] >= task["max_score"])
        task_stats.append(
            {
                "exercise": exercise_id,
                "task": number,
                "title": found[0]["title"],
                "graded": graded,
                "passed": passed,
                "pass_rate": _rate(passed, graded),
                "mean_score": _mean([task["score"] for task in found]),
                "max_score": found[0]["max_score"],
            }
        )

    test_stats = []
    for test_id in sorted(tests, key=where.__getitem__):
        found = tests[test_id]
        checked = [test for test in found if test["outcome"] != "skipped"]
        passed = sum(1 for test in checked if test["outcome"] == "passed")
        lost = [test["message"] for test in checked if test["outcome"] != "passed"]
        test_stats.append(
            {
                "id": test_id,
                "exercise": found[0]["exercise"],
                "task": found[0]["task"],
                "name": found[0]["name"],
                "graded": len(checked),
                "passed": passed,
                "failures": len(checked) - passed,  # failed, error or timeout
                "skipped": len(found) - len(checked),
                "pass_rate": _rate(passed, len(checked)),
                "mean_score": _mean([test["score"] for test in checked]),
                "mean_duration": _mean([test["duration"] for test in found]),
                "message": _most_common(lost),
            }
        )

    percents = [scorecard["percent"] for _, scorecard in submissions]
    return {
        "stats_version": STATS_VERSION,
        "students": len(submissions),
        "complete": sum(1 for _, scorecard in submissions if scorecard["complete"]),
        "mean_percent": _mean(percents),
        "median_percent": statistics.median(percents) if percents else None,
        "histogram": histogram(percents),
        "exercises": exercise_stats,
        "tasks": task_stats,
        "tests": test_stats,
        "most_failed": sorted((test for test in test_stats if test["failures"]), key=_by_failures)[:TOP],
        "slowest": sorted(test_stats, key=_by_duration)[:TOP],
    }


def _by_failures(test: Mapping[str, Any]) -> tuple:
    return -test["failures"], test["name"], test["id"]


def _by_duration(test: Mapping[str, Any]) -> tuple:
    return -(test["mean_duration"] or 0.0), test["name"], test["id"]


def write_stats(path: Path | str, stats: Mapping[str, Any]) -> None:
    write_text_atomically(Path(path), json.dumps(stats, indent=2) + "\n")


def most_failed_first(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The lowest pass rate first (nothing graded last); ties keep their order (the manifest's)."""
    return sorted(records, key=lambda record: (record["pass_rate"] is None, record["pass_rate"] or 0.0))


def scorecard_link(name: str, scorecards: str | PurePath = "scorecards") -> str:
    """The relative URL of a student's scorecard: <scorecards>/<name>.json, each part percent-encoded."""
    folder = PurePath(scorecards).as_posix()
    return f"{quote(folder)}/{quote(name, safe='')}.json"


@dataclass(frozen=True)
class StudentLine:
    """A student's line on the page: the gradebook row and where its scorecard is."""

    row: GradebookRow
    link: str


@cache
def _environment() -> jinja2.Environment:
    import jinja2  # here, not at the top: the gradebook and the stats do not need it, nor does any other command

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,  # always: select_autoescape would not match a name ending in .html.j2
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["exact"] = lambda value: "" if value is None else str(value)
    environment.filters["shown"] = lambda value: "" if value is None else f"{round(value, 2):g}"
    environment.filters["percent"] = lambda value: "n/a" if value is None else f"{value:.1f}%"
    environment.filters["rate"] = lambda value: "n/a" if value is None else f"{100 * value:.0f}%"
    return environment


def render_report(
    submissions: Sequence[Submission],
    order: Sequence[str],
    scorecards: str | PurePath = "scorecards",
    title: str = "Class report",
) -> str:
    """report.html: one self-contained page (inline CSS and SVG, no script, no request).

    scorecards: the folder of the students' scorecards, relative to the page's folder; each student's
    line links to <scorecards>/<name>.json.
    """
    stats = class_stats(submissions, order)
    columns = exercise_columns(submissions, order)
    students = [StudentLine(row, scorecard_link(row.student, scorecards)) for row in gradebook_rows(submissions)]
    tallest = max((bin_["count"] for bin_ in stats["histogram"]), default=0)
    template = _environment().get_template(REPORT_TEMPLATE)
    return template.render(
        title=title,
        stats=stats,
        columns=columns,
        titles={exercise["id"]: exercise["title"] for exercise in stats["exercises"]},
        students=students,
        tallest=tallest,
        exercises=most_failed_first(stats["exercises"]),
        tasks=most_failed_first(stats["tasks"]),
        tests=most_failed_first(stats["tests"]),
    )


def write_report(
    path: Path | str,
    submissions: Sequence[Submission],
    order: Sequence[str],
    scorecards: str | PurePath = "scorecards",
    title: str = "Class report",
) -> None:
    write_text_atomically(Path(path), render_report(submissions, order, scorecards, title))
