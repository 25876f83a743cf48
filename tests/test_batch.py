"""--submissions: a folder of many students' work, one scorecard each."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from .conftest import ROOT, grader_environment, validate_scorecard

# Slow: `nox -s tests` runs these on the newest installed Python only (see the noxfile).
pytestmark = pytest.mark.heavy


def run(tmp_path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "grader", "grade", *args]
    return subprocess.run(
        command, cwd=ROOT, env=grader_environment(tmp_path), capture_output=True, text=True, timeout=600
    )


def test_each_submission_gets_its_own_scorecard_and_line(tmp_path):
    group = tmp_path / "class"
    shutil.copytree(ROOT / "solutions" / "01_processes", group / "alice" / "01_processes")
    shutil.copytree(ROOT / "exercises" / "01_processes", group / "bob" / "01_processes")
    (group / "carol").mkdir()  # handed in nothing
    (group / ".git").mkdir()  # not a submission
    (group / "marks.csv").write_text("not a submission\n")
    out = tmp_path / "out"

    graded = run(tmp_path, "--submissions", str(group), "--json-dir", str(out), "--only", "processes",
                 "--start-method", "fork", "-n", "2", "--fail-under", "50")  # fmt: skip

    assert graded.returncode == 1, graded.stderr  # bob and carol are under 50%
    assert sorted(path.name for path in out.iterdir()) == ["alice.json", "bob.json", "carol.json"]
    cards = {path.stem: json.loads(path.read_text()) for path in out.iterdir()}
    for card in cards.values():
        validate_scorecard(card)
        assert card["complete"]
    assert {name: card["percent"] for name, card in cards.items()} == {"alice": 100.0, "bob": 0.0, "carol": 0.0}
    assert cards["alice"]["target"]["path"] == str((group / "alice").resolve())
    assert cards["carol"]["exercises"][0]["status"] == "error"
    lines = graded.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["alice", "bob", "carol"], graded.stdout
    assert "7/7" in lines[0] and "0/7" in lines[1]


def test_a_batch_that_cannot_start_says_why_in_one_line(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (("--submissions", str(tmp_path / "nowhere")), "does not exist"),
        (("--submissions", str(empty)), "no submission folders"),
        (("--submissions", str(empty), "--json", str(tmp_path / "x.json")), "use --json-dir"),
        (("--json-dir", str(tmp_path / "out")), "--json-dir goes with --submissions"),
        (("--submissions", str(tmp_path), "--only", "nothing"), "no such exercise"),
    ]
    for arguments, reason in cases:
        graded = run(tmp_path, *arguments)
        assert graded.returncode == 2, (arguments, graded.stderr)
        assert graded.stderr.startswith("cannot grade:") and reason in graded.stderr, (arguments, graded.stderr)
        assert len(graded.stderr.strip().splitlines()) == 1, graded.stderr
        assert not (tmp_path / "out").exists()
