"""grader/classview.py: the gradebook, the class statistics and the report page, on a hand-written class of four."""

from __future__ import annotations

import csv
import json
import re
from html.parser import HTMLParser
from typing import Any

import pytest

from grader.classview import (
    class_stats,
    exercise_columns,
    gradebook_csv,
    gradebook_rows,
    histogram,
    render_report,
    scorecard_link,
    write_gradebook,
    write_stats,
)

from .conftest import validate_scorecard

ORDER = ["processes", "pool", "queues"]  # the manifest's order, for this tiny course
SCRIPT = "<script>alert(1)</script>"
THIRD = 0.3333333333333333  # one of three equal shares of a point, as a float
TITLES = {"processes": "Processes", "pool": "Pool", "queues": "Queues"}
NUMBERS = {"processes": 1, "pool": 2, "queues": 3}
# test id -> (exercise, task, what it checks)
CHECKS = {
    "test_01_processes.py::test_a": ("processes", 1, "starts a worker"),
    "test_01_processes.py::test_b": ("processes", 1, "starts four workers at once"),
    "test_01_processes.py::test_c": ("processes", 2, "joins every worker"),
    "test_02_pool.py::test_a": ("pool", 1, "maps over a pool"),
    "test_02_pool.py::test_b": ("pool", 1, "uses every worker"),
    "test_02_pool.py::test_c": ("pool", 1, "closes the pool"),
    "test_04_queues.py::test_a": ("queues", 1, "stops at the sentinel"),
}
TASK_POINTS = {("processes", 1): 2, ("processes", 2): 1, ("pool", 1): 1, ("queues", 1): 2}
NOT_FOUND = "ModuleNotFoundError: No module named 'processes'"
WRONG_COUNT = "expected 4 processes & got <3>"


def _test(test_id: str, outcome: str, score: float, max_score: float, duration: float, message: str = ""):
    _exercise_id, task, name = CHECKS[test_id]
    return {
        "id": test_id,
        "task": task,
        "name": name,
        "score": score,
        "max_score": max_score,
        "outcome": outcome,
        "duration": duration,
        "message": message,
        "hint": None if outcome == "passed" else "a hint",
        "output": "",
        "start_methods": {"fork": outcome},
        "timeline": None,
    }


def _exercise(exercise_id: str, status: str, task_scores: dict[int, float], tests: list[dict], message: str = ""):
    tasks = [
        {"number": number, "title": f"task {number}", "score": score, "max_score": TASK_POINTS[exercise_id, number]}
        for number, score in task_scores.items()
    ]
    return {
        "id": exercise_id,
        "number": NUMBERS[exercise_id],
        "title": TITLES[exercise_id],
        "score": sum(task["score"] for task in tasks),
        "max_score": sum(task["max_score"] for task in tasks),
        "status": status,
        "message": message,
        "tasks": tasks,
        "tests": tests,
    }


def _scorecard(exercises: list[dict], score: float, percent: float, complete: bool = True, notices=()) -> dict:
    card = {
        "schema_version": 1,
        "grader": {"name": "mp-kata", "version": "0"},
        "target": {"kind": "submission", "path": "/class/someone"},
        "environment": {"python": "3.11.7", "implementation": "CPython", "platform": "Linux", "cpu_count": 2},
        "start_methods": ["fork"],
        "isolation": {"tier": "process", "note": ""},
        "started_at": "2026-12-01T10:00:00+00:00",
        "duration": 12.5,
        "complete": complete,
        "score": score,
        "max_score": float(sum(exercise["max_score"] for exercise in exercises)),
        "percent": percent,
        "exercises": exercises,
        "notices": list(notices),
    }
    return json.loads(json.dumps(card))  # as read from its file: ints stay ints, floats floats


def _full_marks() -> list[dict]:
    return [
        _exercise(
            "processes",
            "passed",
            {1: 2.0, 2: 1.0},
            [
                _test("test_01_processes.py::test_a", "passed", 1.0, 1.0, 0.1),
                _test("test_01_processes.py::test_b", "passed", 1.0, 1.0, 0.2),
                _test("test_01_processes.py::test_c", "passed", 1.0, 1.0, 0.3),
            ],
        ),
        _exercise(
            "pool",
            "passed",
            {1: 1.0},
            [
                _test("test_02_pool.py::test_a", "passed", THIRD, THIRD, 1.0),
                _test("test_02_pool.py::test_b", "passed", THIRD, THIRD, 0.5),
                _test("test_02_pool.py::test_c", "passed", THIRD, THIRD, 2.0),
            ],
        ),
    ]


def class_of_four() -> list[tuple[str, dict[str, Any]]]:
    """alice did everything; bob two exercises, one with a third of a point (queues is not in his scorecard);
    a student named like a script could not be graded and ran out of time; dave failed queues."""
    queues_passed = _exercise("queues", "passed", {1: 2.0}, [_test("test_04_queues.py::test_a", "passed", 2, 2, 0.25)])
    queues_failed = _exercise(
        "queues", "failed", {1: 0.0}, [_test("test_04_queues.py::test_a", "failed", 0.0, 2, 0.25, "no sentinel")]
    )
    bob = [
        _exercise(
            "processes",
            "failed",
            {1: 1.0, 2: 1.0},
            [
                _test("test_01_processes.py::test_a", "passed", 1.0, 1.0, 0.1),
                _test("test_01_processes.py::test_b", "failed", 0.0, 1.0, 0.2, WRONG_COUNT),
                _test("test_01_processes.py::test_c", "passed", 1.0, 1.0, 0.3),
            ],
        ),
        _exercise(
            "pool",
            "failed",
            {1: THIRD},
            [
                _test("test_02_pool.py::test_a", "passed", THIRD, THIRD, 1.0),
                _test("test_02_pool.py::test_b", "failed", 0.0, THIRD, 0.5, "one worker did everything"),
                _test("test_02_pool.py::test_c", "timeout", 0.0, THIRD, 10.0, "did not finish in 10 s"),
            ],
        ),
    ]
    script = [
        _exercise(
            "processes",
            "error",
            {1: 0.0, 2: 0.0},
            [
                _test("test_01_processes.py::test_a", "error", 0.0, 1.0, 0.1, NOT_FOUND),
                _test("test_01_processes.py::test_b", "error", 0.0, 1.0, 0.2, NOT_FOUND),
                _test("test_01_processes.py::test_c", "error", 0.0, 1.0, 0.3, NOT_FOUND),
            ],
            message=NOT_FOUND,
        ),
        _exercise(
            "pool",
            "failed",
            {1: 0.5},
            [  # test_b cannot be checked on this machine: the other two share the point
                _test("test_02_pool.py::test_a", "passed", 0.5, 0.5, 1.0),
                _test("test_02_pool.py::test_b", "skipped", 0.0, 0.0, 0.0),
                _test("test_02_pool.py::test_c", "failed", 0.0, 0.5, 2.0, "the pool was left open"),
            ],
        ),
        queues_failed,
    ]
    return [
        ("alice", _scorecard([*_full_marks(), queues_passed], 6.0, 100.0)),
        ("bob", _scorecard(bob, 2.33, 58.3)),
        (SCRIPT, _scorecard(script, 0.5, 8.3, complete=False, notices=["the run reached its deadline & <b>stopped"])),
        ("dave", _scorecard([*_full_marks(), queues_failed], 4.0, 66.7, notices=["one", "two"])),
    ]


def test_the_hand_written_scorecards_are_valid():
    for _, card in class_of_four():
        validate_scorecard(card)


def test_the_gradebook_has_a_column_per_exercise_in_manifest_order_and_a_row_per_student_by_name(tmp_path):
    write_gradebook(tmp_path / "gradebook.csv", class_of_four(), ORDER)

    with open(tmp_path / "gradebook.csv", newline="", encoding="utf-8") as stream:
        table = list(csv.reader(stream))
    assert table == [
        ["student", "processes", "pool", "queues", "total", "max_score", "percent", "complete", "notices"],
        [SCRIPT, "0.0", "0.5", "0.0", "0.5", "6.0", "8.3", "no", "the run reached its deadline & <b>stopped"],
        ["alice", "3.0", "1.0", "2.0", "6.0", "6.0", "100.0", "yes", ""],
        ["bob", "2.0", "0.3333333333333333", "", "2.33", "4.0", "58.3", "yes", ""],
        ["dave", "3.0", "1.0", "0.0", "4.0", "6.0", "66.7", "yes", "one | two"],
    ]


def test_every_number_in_the_gradebook_reads_back_as_the_scorecards_own():
    cards = dict(class_of_four())
    for row in csv.DictReader(gradebook_csv(class_of_four(), ORDER).splitlines()):
        card = cards[row["student"]]
        for exercise in card["exercises"]:
            assert float(row[exercise["id"]]) == exercise["score"]  # exactly: never rounded again
        assert (float(row["total"]), float(row["max_score"]), float(row["percent"])) == (
            card["score"],
            card["max_score"],
            card["percent"],
        )
    assert float("0.3333333333333333") == THIRD


def test_an_exercise_a_scorecard_lacks_is_an_empty_cell_and_one_the_manifest_lacks_still_gets_a_column():
    students = class_of_four()
    bob = next(row for row in gradebook_rows(students) if row.student == "bob")
    assert bob.scores.get("queues") is None
    assert bob.cells(ORDER)[3] == ""
    # queues missing from an older manifest: still shown, after the known ones; one nobody did: an empty column
    assert exercise_columns(students, ["pool", "processes", "daemons"]) == ["pool", "processes", "daemons", "queues"]
    rows = list(csv.reader(gradebook_csv(students, ["processes", "daemons", "pool", "queues"]).splitlines()))
    assert [row[2] for row in rows] == ["daemons", "", "", "", ""]


def test_a_cell_a_spreadsheet_would_run_as_a_formula_is_kept_as_text():
    card = class_of_four()[0][1]
    rows = list(csv.reader(gradebook_csv([("=HYPERLINK(1)", card), ("@me", card), ("zoe-", card)], ORDER).splitlines()))
    assert [row[0] for row in rows[1:]] == ["'=HYPERLINK(1)", "'@me", "zoe-"]


def test_two_scorecards_under_one_name_are_refused():
    card = class_of_four()[0][1]
    with pytest.raises(ValueError, match="more than once: bob"):
        gradebook_rows([("bob", card), ("bob", card)])


def test_class_stats_by_hand(tmp_path):
    stats = class_stats(class_of_four(), ORDER)

    assert (stats["students"], stats["complete"]) == (4, 3)
    assert stats["mean_percent"] == pytest.approx((100.0 + 58.3 + 8.3 + 66.7) / 4)
    assert stats["median_percent"] == pytest.approx((58.3 + 66.7) / 2)
    exercises = {record["id"]: record for record in stats["exercises"]}
    assert list(exercises) == ORDER
    assert [(e["graded"], e["passed"], e["errors"]) for e in exercises.values()] == [(4, 2, 1), (4, 2, 0), (3, 1, 0)]
    assert [e["pass_rate"] for e in exercises.values()] == [0.5, 0.5, 1 / 3]
    assert exercises["processes"]["mean_score"] == (3 + 2 + 0 + 3) / 4
    assert exercises["pool"]["mean_score"] == pytest.approx((1 + 1 / 3 + 0.5 + 1) / 4)
    assert exercises["queues"]["mean_score"] == pytest.approx(2 / 3)

    tasks = {(record["exercise"], record["task"]): record for record in stats["tasks"]}
    assert list(tasks) == [("processes", 1), ("processes", 2), ("pool", 1), ("queues", 1)]
    assert [(t["graded"], t["passed"]) for t in tasks.values()] == [(4, 2), (4, 3), (4, 2), (3, 1)]
    assert tasks["processes", 1]["mean_score"] == (2 + 1 + 0 + 2) / 4
    assert tasks["processes", 2]["pass_rate"] == 0.75

    tests = {record["id"].replace("test_0", "").replace(".py::test_", "/"): record for record in stats["tests"]}
    assert list(tests) == ["1_processes/a", "1_processes/b", "1_processes/c", "2_pool/a", "2_pool/b", "2_pool/c",
                           "4_queues/a"]  # fmt: skip
    counts = {name: (t["graded"], t["passed"], t["failures"], t["skipped"]) for name, t in tests.items()}
    assert counts == {
        "1_processes/a": (4, 3, 1, 0),
        "1_processes/b": (4, 2, 2, 0),
        "1_processes/c": (4, 3, 1, 0),
        "2_pool/a": (4, 4, 0, 0),
        "2_pool/b": (3, 2, 1, 1),  # skipped for one student: not graded for them
        "2_pool/c": (4, 2, 2, 0),
        "4_queues/a": (3, 1, 2, 0),
    }
    assert tests["2_pool/b"]["pass_rate"] == 2 / 3
    assert tests["2_pool/b"]["mean_score"] == pytest.approx((THIRD + 0 + THIRD) / 3)
    assert tests["2_pool/c"]["mean_duration"] == (2 + 10 + 2 + 2) / 4
    # Of two reasons seen once each, the first in sorted order: the same whatever the students' order.
    assert tests["1_processes/b"]["message"] == NOT_FOUND
    assert tests["2_pool/a"]["message"] == ""

    # By failures, then name; a check nobody failed is not among them.
    assert [t["name"] for t in stats["most_failed"]] == [
        "closes the pool",
        "starts four workers at once",
        "stops at the sentinel",
        "joins every worker",
        "starts a worker",
        "uses every worker",
    ]
    assert [t["name"] for t in stats["slowest"]][:3] == ["closes the pool", "maps over a pool", "uses every worker"]
    assert [t["mean_duration"] for t in stats["slowest"]] == sorted(
        (t["mean_duration"] for t in stats["tests"]), reverse=True
    )

    assert [b["count"] for b in stats["histogram"]] == [1, 0, 0, 0, 0, 1, 1, 0, 0, 1]
    assert class_stats(list(reversed(class_of_four())), ORDER) == stats  # the students' order changes nothing

    write_stats(tmp_path / "stats.json", stats)
    assert json.loads((tmp_path / "stats.json").read_text()) == stats


def test_the_lists_of_checks_stop_at_ten():
    cards = []
    for student in range(3):
        failed = _test("test_02_pool.py::test_a", "failed", 0.0, 1.0, 0.1, "no")
        tests = [{**failed, "id": f"t{n:02}", "name": f"n{n:02}"} for n in range(12)]
        exercise = _exercise("pool", "failed", {1: 0.0}, tests)
        cards.append((f"s{student}", _scorecard([exercise], 0.0, 0.0)))
    stats = class_stats(cards, ORDER)
    assert [t["name"] for t in stats["most_failed"]] == [f"n{n:02}" for n in range(10)]
    assert len(stats["slowest"]) == 10


def test_histogram_bins_are_ten_percent_wide_and_the_last_holds_full_marks():
    bins = histogram([0.0, 9.9, 10.0, 55.5, 89.9, 90.0, 99.9, 100.0])
    assert [(b["low"], b["high"]) for b in bins] == [(low, low + 10) for low in range(0, 100, 10)]
    assert [b["count"] for b in bins] == [2, 1, 0, 0, 0, 1, 0, 0, 1, 3]


def test_an_empty_class_has_no_mean_and_an_empty_histogram():
    stats = class_stats([], ORDER)
    assert (stats["students"], stats["mean_percent"], stats["median_percent"]) == (0, None, None)
    assert [e["pass_rate"] for e in stats["exercises"]] == [None, None, None]
    assert 'students <strong data-students="0">0</strong>' in render_report([], ORDER)


class _Page(HTMLParser):
    """The tags and the text of a page, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.texts: list[str] = []
        self.rows: list[dict[str, str | None]] = []
        self.links: list[str | None] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attributes = dict(attrs)
        if tag == "tr" and "data-student" in attributes:
            self.rows.append(attributes)
        if tag == "a":
            self.links.append(attributes.get("href"))

    def handle_data(self, data):
        self.texts.append(data.strip())


def _parsed(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    parser.close()
    return parser


def test_the_report_shows_untrusted_names_and_messages_as_text_never_as_markup():
    page = render_report(class_of_four(), ORDER)

    assert SCRIPT not in page and "<b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    parsed = _parsed(page)
    assert "script" not in parsed.tags and "b" not in parsed.tags
    assert SCRIPT in parsed.texts  # the name, as text
    assert "the run reached its deadline & <b>stopped" in parsed.texts  # a notice
    assert WRONG_COUNT not in parsed.texts  # (the most common reason for that check is the other one)
    assert NOT_FOUND in parsed.texts and "no sentinel" in parsed.texts  # reasons in the most-failed table
    assert "expected 4 processes &amp; got &lt;3&gt;" not in page  # bob's reason lost the tie: not shown at all


def test_a_reason_with_markup_is_escaped_in_the_most_failed_table():
    students = class_of_four()
    bob = json.loads(json.dumps(students[1][1]).replace("one worker did everything", "a & b < c"))
    page = render_report([students[0], ("bob", bob)], ORDER)
    assert "a &amp; b &lt; c" in page and "a & b < c" in _parsed(page).texts


def test_the_report_marks_each_students_numbers_and_links_their_scorecard():
    page = render_report(class_of_four(), ORDER, scorecards="cards")
    parsed = _parsed(page)
    rows = {row["data-student"]: row for row in parsed.rows}
    assert list(rows) == [SCRIPT, "alice", "bob", "dave"]
    assert rows["bob"]["data-total"] == "2.33" and rows["bob"]["data-percent"] == "58.3"
    assert rows[SCRIPT]["data-complete"] == "no"
    assert 'data-exercise="pool" data-score="0.3333333333333333"' in page
    assert parsed.links == [scorecard_link(name, "cards") for name in rows]
    assert parsed.links[1] == "cards/alice.json"
    assert parsed.links[0] == "cards/%3Cscript%3Ealert%281%29%3C%2Fscript%3E.json"


def test_the_report_shows_the_histogram_counts_and_the_pass_rates_most_failed_first():
    page = render_report(class_of_four(), ORDER)
    counts = [int(count) for count in re.findall(r'<g class="bin" [^>]*data-count="(\d+)"', page)]
    assert counts == [1, 0, 0, 0, 0, 1, 1, 0, 0, 1]
    exercises = page.split('id="exercises"')[1].split("</section>")[0]
    assert exercises.index('data-exercise="queues"') < exercises.index('data-exercise="processes"')
    assert 'data-pass-rate="0.3333333333333333"' in exercises
    assert "33%" in exercises
