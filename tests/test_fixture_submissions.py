"""Alternative solutions and classic mistakes, each beside the points it must earn.

Every folder in tests/fixtures/submissions/ holds one exercise's file and an
expected.json: {"exercise": id, "task_points": {"1": points, ...}, "why": ...},
optionally "start_methods": "all" for a mistake that only one start method
reveals (graded under fork otherwise).
"""

from __future__ import annotations

import json

import pytest

from .conftest import FIXTURES

# Slow: `nox -s tests` runs these on the newest installed Python only (see the noxfile).
pytestmark = pytest.mark.heavy

SUBMISSIONS = sorted(path for path in (FIXTURES / "submissions").iterdir() if (path / "expected.json").is_file())


@pytest.mark.parametrize("submission", SUBMISSIONS, ids=[path.name for path in SUBMISSIONS])
def test_fixture_submission_earns_exactly_its_expected_points(grade, submission):
    expected = json.loads((submission / "expected.json").read_text())
    method = expected.get("start_methods", "fork")
    graded = grade("--submission", str(submission), "--only", expected["exercise"], "--start-method", method, "-n", "1")
    assert graded.exit_code == 0, graded.stderr
    messages = {t["id"].split("::")[-1]: t["message"] for t in graded.exercise(expected["exercise"])["tests"]}
    assert graded.task_points(expected["exercise"]) == {k: float(v) for k, v in expected["task_points"].items()}, (
        expected["why"],
        {name: message for name, message in messages.items() if message},
    )
