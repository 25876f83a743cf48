"""Raw report -> results -> scores, on reports written by hand (pure stages)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grader.collect import (
    ERROR,
    FAILED,
    NO_RESULT,
    PASSED,
    SKIPPED,
    TIMEOUT,
    ExpectedTest,
    collect,
    failure_message,
    read_expected,
)
from grader.manifest import Exercise, Task
from grader.score import base_id, score_exercise, total

EXERCISE = Exercise(
    id="demo",
    title="Demo",
    folder="01_demo",
    module="demo",
    concepts=(),
    tasks=(Task(1, "First", 3, "hint one"), Task(2, "Second", 2, "hint two")),
)


def expected(name: str, task: int, method: str = "fork") -> ExpectedTest:
    return ExpectedTest(f"test_01_demo.py::{name}[{method}]", "demo", task, name.replace("_", " "), method)


def entry(test: ExpectedTest, outcome: str, message: str = "", **extra) -> dict:
    call = {"duration": 0.5, "outcome": outcome}
    if message:
        call["crash"] = {"path": "x", "lineno": 1, "message": message}
    return {
        "nodeid": test.nodeid,
        "outcome": outcome,
        "setup": {"duration": 0.1, "outcome": "passed"},
        "call": call,
        "teardown": {"duration": 0.0, "outcome": "passed"},
        **extra,
    }


def write_report(path: Path, entries: list[dict]) -> Path:
    path.write_text(json.dumps({"tests": entries}))
    return path


def test_every_expected_test_gets_one_result_and_a_missing_one_is_an_error(tmp_path):
    a, b, c = expected("test_a", 1), expected("test_b", 1), expected("test_c", 2)
    report = write_report(
        tmp_path / "r.json", [entry(a, "passed"), entry(b, "failed", "AssertionError: lost 3\nassert 1 == 4")]
    )
    results, problem = collect([a, b, c], report)
    assert problem is None
    assert [(r.test.nodeid, r.outcome) for r in results] == [(a.nodeid, PASSED), (b.nodeid, FAILED), (c.nodeid, ERROR)]
    assert results[1].message == "lost 3"
    assert "did not finish" in results[2].message


def test_a_missing_report_makes_every_test_an_error(tmp_path):
    a = expected("test_a", 1)
    results, problem = collect([a], tmp_path / "absent.json")
    assert problem == "pytest wrote no report" and results[0].outcome == ERROR
    assert results[0].message == f"{NO_RESULT}; pytest wrote no report"


def test_timeouts_errors_and_crashed_workers_are_told_apart(tmp_path):
    t, e, w, b = (expected(f"test_{x}", 1) for x in "tewb")
    report = write_report(
        tmp_path / "r.json",
        [
            entry(
                t, "failed", "Failed: timeout: your code did not finish", user_properties=[{"kata_status": "timeout"}]
            ),
            entry(e, "failed", "Failed: could not be imported", user_properties=[{"kata_status": "error"}]),
            {"nodeid": w.nodeid, "outcome": "failed", "???": {"outcome": "failed", "longrepr": "worker 'gw0' crashed"}},
            entry(b, "failed", "Failed: Timeout >120.0s"),
        ],
    )
    outcomes = [r.outcome for r in collect([t, e, w, b], report)[0]]
    assert outcomes == [TIMEOUT, ERROR, ERROR, TIMEOUT]


def test_failure_messages_never_carry_the_test_source():
    stage = {"crash": {"message": "AssertionError: the counter lost 12 updates\nassert 68 == 80\n  +68\n  -80"}}
    assert failure_message(stage) == "the counter lost 12 updates"
    assert failure_message({"crash": {"message": "Failed: x() is not written yet"}}) == "x() is not written yet"


def test_read_expected_unions_the_workers_lists(tmp_path):
    a, b = expected("test_a", 1), expected("test_b", 2)
    (tmp_path / "collected-gw0.json").write_text(json.dumps([a.__dict__, b.__dict__]))
    (tmp_path / "collected-gw1.json").write_text(json.dumps([a.__dict__]))
    (tmp_path / "collected-gw2.json").write_text("{not json")
    assert sorted(t.nodeid for t in read_expected(tmp_path)) == sorted([a.nodeid, b.nodeid])


def result(name: str, task: int, outcome: str, method: str = "fork"):
    from grader.collect import TestResult

    return TestResult(expected(name, task, method), outcome, 0.25, "" if outcome == PASSED else f"{outcome}!", "")


def test_task_points_are_split_evenly_over_its_tests():
    results = [
        result("test_a", 1, PASSED),
        result("test_b", 1, FAILED),
        result("test_c", 1, PASSED),
        result("test_d", 2, PASSED),
    ]
    scored = score_exercise(EXERCISE, results)
    assert [(t.number, t.score, t.max_score) for t in scored.tasks] == [(1, 2.0, 3), (2, 2.0, 2)]
    assert scored.score == 4.0 and scored.max_score == 5 and scored.status == "failed"
    failed = next(t for t in scored.tests if t.outcome == FAILED)
    assert failed.hint == "hint one" and failed.score == 0 and failed.max_score == 1.0
    assert total([scored]) == (4.0, 5.0, 80.0)


def test_a_test_earns_its_points_only_under_every_start_method():
    results = [result("test_a", 1, PASSED, m) for m in ("fork", "spawn")] + [result("test_a", 1, FAILED, "forkserver")]
    results += [result("test_d", 2, PASSED, m) for m in ("fork", "spawn", "forkserver")]
    scored = score_exercise(EXERCISE, results)
    test_a = next(t for t in scored.tests if t.id == "test_01_demo.py::test_a")
    assert test_a.outcome == FAILED and test_a.score == 0
    assert test_a.start_methods == {"fork": PASSED, "spawn": PASSED, "forkserver": FAILED}
    assert test_a.message == "under forkserver: failed!"
    assert scored.score == 2.0


def test_explained_failures_under_several_methods_each_say_their_own_words():
    results = [result("test_a", 1, FAILED, "fork"), result("test_a", 1, TIMEOUT, "spawn")]
    results += [result("test_d", 2, FAILED, "fork"), result("test_d", 2, SKIPPED, "spawn")]
    scored = {t.id.rpartition("::")[2]: t for t in score_exercise(EXERCISE, results).tests}
    assert scored["test_a"].message == "under fork: failed!; under spawn: timeout!"
    assert scored["test_a"].outcome == TIMEOUT
    # Not run under spawn after failing under fork: the failure is the whole story.
    assert scored["test_d"].message == "under fork: failed!" and scored["test_d"].outcome == FAILED


def test_a_task_without_results_scores_zero_as_an_error():
    scored = score_exercise(EXERCISE, [result("test_d", 2, PASSED)], problem="01_demo/demo.py is missing")
    assert scored.tasks[0].score == 0 and scored.status == "error" and scored.message == "01_demo/demo.py is missing"
    assert scored.tests[0].outcome == ERROR and scored.tests[0].message == "01_demo/demo.py is missing"


def test_a_test_this_machine_cannot_run_gives_its_points_to_the_tasks_other_tests():
    methods = ("fork", "spawn")
    results = [result("test_a", 1, PASSED, m) for m in methods] + [result("test_b", 1, SKIPPED, m) for m in methods]
    results += [result("test_d", 2, PASSED, m) for m in methods]
    scored = score_exercise(EXERCISE, results)
    skipped = next(t for t in scored.tests if t.outcome == SKIPPED)
    assert (skipped.score, skipped.max_score) == (0.0, 0.0)
    assert scored.tasks[0].score == 3.0 and scored.score == 5.0 and scored.status == "passed"
    assert total([scored]) == (5.0, 5.0, 100.0)
    # Skipped under one method but failed under another: a failure like any other.
    results[2] = result("test_b", 1, FAILED, "fork")
    scored = score_exercise(EXERCISE, results)
    assert scored.tasks[0].score == 1.5 and scored.status == "failed"
    assert total([scored]) == (3.5, 5.0, 70.0)
    # Skipped under one method, passed under another: not a skip everywhere, so it counts and earns nothing.
    mixed = [result("test_a", 1, PASSED, m) for m in methods] + [result("test_b", 1, SKIPPED, "fork")]
    mixed += [result("test_b", 1, PASSED, "spawn")] + [result("test_d", 2, PASSED, m) for m in methods]
    scored = score_exercise(EXERCISE, mixed)
    assert scored.tasks[0].score == 1.5 and total([scored]) == (3.5, 5.0, 70.0)
    # Every test of a task skipped: nothing was checked, nothing is earned.
    only_skips = [result("test_b", 1, SKIPPED), result("test_d", 2, PASSED)]
    scored = score_exercise(EXERCISE, only_skips)
    assert scored.tasks[0].score == 0 and scored.status == "failed" and total([scored]) == (2.0, 5.0, 40.0)


def test_thirds_add_up_exactly():
    thirds = Exercise("t", "T", "01_t", "t", (), (Task(1, "One", 1, "h"),))
    results = [result("test_a", 1, PASSED), result("test_b", 1, PASSED), result("test_c", 1, FAILED)]
    scored = score_exercise(thirds, results)
    assert scored.score == 0.67
    assert total([scored, scored, scored]) == (2.0, 3.0, 66.7)


@pytest.mark.parametrize(("nodeid", "base"), [("m.py::t[fork]", "m.py::t"), ("m.py::t", "m.py::t")])
def test_base_id_drops_the_start_method(nodeid, base):
    assert base_id(nodeid) == base
