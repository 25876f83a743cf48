"""Alternative solutions and classic mistakes, each beside what it must earn, test by test.

Every folder in tests/fixtures/submissions/ holds one exercise's file and an
expected.json:

    {
      "exercise": "processes",
      "why": "what the submission gets wrong (or which style of correct solution it is)",
      "task_points": {"1": 2, "2": 0, "3": 2},
      "outcomes": {"test_run_all_waits_for_every_process": "failed"},   # every test not named: passed
      "says": {"test_run_all_waits_for_every_process": "join()"},        # optional: words its message must hold
      "start_methods": "all"                                              # optional, see below
    }

A fixture is graded under fork, unless "start_methods" is "all" (a mistake
that only spawn or forkserver reveals). ``benchmarks/flakiness.py --fixtures``
grades them under every start method, several times, under load.
"""

from __future__ import annotations

import json

import pytest

from .conftest import FIXTURES

# Slow: `nox -s tests` runs these on the newest installed Python only (see the noxfile).
pytestmark = pytest.mark.heavy

SUBMISSIONS = sorted(path for path in (FIXTURES / "submissions").iterdir() if (path / "expected.json").is_file())


@pytest.mark.parametrize("submission", SUBMISSIONS, ids=[path.name for path in SUBMISSIONS])
def test_fixture_submission_earns_exactly_its_expected_points_test_by_test(grade, submission):
    expected = json.loads((submission / "expected.json").read_text())
    method = expected.get("start_methods", "fork")
    # Under every method the mistake waits out its deadlines three times over: side by side, not in turn.
    workers = "3" if method == "all" else "0"
    graded = grade(
        "--submission", str(submission), "--only", expected["exercise"], "--start-method", method, "-n", workers
    )
    assert graded.exit_code == 0, graded.stderr
    tests = graded.tests(expected["exercise"])
    messages = {name: test["message"] for name, test in tests.items() if test["message"]}
    outcomes = {name: test["outcome"] for name, test in tests.items() if test["outcome"] != "passed"}
    assert outcomes == expected["outcomes"], (expected["why"], messages)
    assert graded.task_points(expected["exercise"]) == {k: float(v) for k, v in expected["task_points"].items()}, (
        expected["why"],
        messages,
    )
    for name, words in expected.get("says", {}).items():
        assert words in tests[name]["message"], (name, words, tests[name]["message"])


def test_every_expectation_names_only_known_outcomes():
    for submission in SUBMISSIONS:
        expected = json.loads((submission / "expected.json").read_text())
        assert set(expected) <= {"exercise", "why", "task_points", "outcomes", "says", "start_methods"}, submission
        assert set(expected["outcomes"].values()) <= {"failed", "error", "timeout", "skipped"}, submission
        assert set(expected.get("says", {})) <= set(expected["outcomes"]), submission
