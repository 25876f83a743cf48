"""--submissions: a class folder, graded side by side, one scorecard each, and the class's files."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import zipfile

import pytest

from .conftest import ROOT, grader_environment, validate_scorecard

# Slow: `nox -s tests` runs these on the newest installed Python only (see the noxfile).
pytestmark = pytest.mark.heavy

OPTIONS = ("--only", "processes", "--start-method", "fork")


def run(tmp_path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "grader", "grade", *args]
    return subprocess.run(
        command, cwd=ROOT, env=grader_environment(tmp_path), capture_output=True, text=True, timeout=600
    )


def make_class(tmp_path):
    group = tmp_path / "class"
    shutil.copytree(ROOT / "solutions" / "01_processes", group / "alice" / "01_processes")
    shutil.copytree(ROOT / "exercises" / "01_processes", group / "bob" / "01_processes")
    (group / "carol").mkdir()  # handed in nothing
    shutil.copytree(ROOT / "solutions" / "01_processes", group / "dan" / "exercises" / "01_processes")  # a clone
    with zipfile.ZipFile(group / "erin.zip", "w") as bundle:  # a repository downloaded as a zip
        for path in (ROOT / "solutions" / "01_processes").glob("*.py"):
            bundle.write(path, f"kata-main/exercises/01_processes/{path.name}")
    (group / "frank.zip").write_text("not a zip")
    (group / ".git").mkdir()
    (group / "marks.csv").write_text("not a submission\n")
    return group


def test_a_class_is_graded_side_by_side_with_a_line_a_scorecard_and_a_gradebook_row_each(tmp_path):
    group = make_class(tmp_path)
    out = tmp_path / "out"

    graded = run(tmp_path, "--submissions", str(group), "--out", str(out), "--jobs", "3", *OPTIONS, "-n", "1",
                 "--fail-under", "50")  # fmt: skip

    assert graded.returncode == 1, graded.stderr  # bob and carol are under 50%, frank could not be graded
    lines = dict(line.split(": ", 1) for line in graded.stdout.splitlines() if ": " in line)
    assert lines[".git"].startswith("skipped (a hidden entry") and "not a folder or a .zip" in lines["marks.csv"]
    assert lines["alice"] == "7/7 (100%)" and lines["bob"] == "0/7 (0%)"
    assert lines["carol"].startswith("0/7 (0%) - processes:") and "laid out like exercises/" in lines["carol"]
    assert lines["dan"] == "7/7 (100%) - the exercises were found in exercises/"
    assert lines["erin"] == "7/7 (100%) - the exercises were found in kata-main/exercises/"
    assert lines["frank"].startswith("not graded: frank.zip is not a zip file that can be read")
    assert "6 of 6 submissions" in graded.stdout  # every submission has its line, graded or not

    cards = {path.stem: json.loads(path.read_text()) for path in (out / "scorecards").glob("*.json")}
    assert sorted(cards) == ["alice", "bob", "carol", "dan", "erin"]
    for card in cards.values():
        validate_scorecard(card)
        assert card["complete"]
    assert cards["erin"]["target"]["path"] == str((group / "erin.zip").resolve())
    with open(out / "gradebook.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [row["student"] for row in rows] == ["alice", "bob", "carol", "dan", "erin"]
    assert {row["student"]: float(row["total"]) for row in rows} == {n: c["score"] for n, c in cards.items()}
    assert list(rows[0])[:3] == ["student", "processes", "total"]
    stats = json.loads((out / "stats.json").read_text())
    assert stats["students"] == 5
    assert (out / "report.html").read_text().count('href="scorecards/') == 5
    batch = json.loads((out / "batch.json").read_text())
    assert sorted(batch["submissions"]) == sorted(cards)
    assert {item["name"] for item in batch["skipped"]} == {".git", "marks.csv"}


def test_a_rerun_skips_what_is_unchanged_and_regrades_what_changed_or_everything_with_force(tmp_path):
    group = tmp_path / "class"
    shutil.copytree(ROOT / "solutions" / "01_processes", group / "alice" / "01_processes")
    shutil.copytree(ROOT / "exercises" / "01_processes", group / "bob" / "01_processes")
    out = tmp_path / "out"
    first = run(tmp_path, "--submissions", str(group), "--out", str(out), *OPTIONS)
    assert first.returncode == 0, first.stderr
    cards = {path.name: path.read_text() for path in (out / "scorecards").iterdir()}

    again = run(tmp_path, "--submissions", str(group), "--out", str(out), *OPTIONS)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("(graded before, unchanged)") == 2, again.stdout
    assert {path.name: path.read_text() for path in (out / "scorecards").iterdir()} == cards

    shutil.copy(ROOT / "solutions" / "01_processes" / "processes.py", group / "bob" / "01_processes")
    changed = run(tmp_path, "--submissions", str(group), "--out", str(out), *OPTIONS)
    lines = dict(line.split(": ", 1) for line in changed.stdout.splitlines() if ": " in line)
    assert lines["alice"].endswith("(graded before, unchanged)") and lines["bob"] == "7/7 (100%)", changed.stdout

    forced = run(tmp_path, "--submissions", str(group), "--out", str(out), "--force", *OPTIONS)
    assert "unchanged" not in forced.stdout, forced.stdout
    other = run(tmp_path, "--submissions", str(group), "--out", str(out), "--only", "processes", "--start-method",
                "spawn")  # fmt: skip
    assert "unchanged" not in other.stdout, "other options are another grading"


def test_shards_merged_give_the_gradebook_of_one_run(tmp_path):
    """A class graded as 2 shards (a CI matrix, a job array), then merged: one run's gradebook, byte for byte."""
    group = make_class(tmp_path)
    whole = tmp_path / "whole"
    graded = run(tmp_path, "--submissions", str(group), "--out", str(whole), "--jobs", "3", *OPTIONS)
    assert graded.returncode == 0, graded.stderr
    shards = [tmp_path / "shard-1", tmp_path / "shard-2"]
    names = []
    for index, shard in enumerate(shards, start=1):
        part = run(tmp_path, "--submissions", str(group), "--out", str(shard), "--shard", f"{index}/2", *OPTIONS)
        assert part.returncode == 0, part.stderr
        names.append(sorted(path.stem for path in (shard / "scorecards").glob("*.json")))
    # In name order, every 2nd from the 1st and from the 2nd (frank's zip cannot be read: no scorecard).
    assert names == [["alice", "carol", "erin"], ["bob", "dan"]]

    merged = tmp_path / "merged"
    command = [sys.executable, "-m", "grader", "merge", *map(str, shards), "--out", str(merged)]
    done = subprocess.run(command, cwd=ROOT, env=grader_environment(tmp_path), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "frank: not graded" in done.stdout and "merged 2 shards: 5 students graded" in done.stdout, done.stdout
    assert (merged / "gradebook.csv").read_bytes() == (whole / "gradebook.csv").read_bytes()
    assert sorted(path.name for path in (merged / "scorecards").iterdir()) == sorted(
        path.name for path in (whole / "scorecards").iterdir()
    )
    for name in ("stats.json", "report.html"):
        assert (merged / name).is_file()
    stats = [json.loads((folder / "stats.json").read_text()) for folder in (merged, whole)]
    assert [s["students"] for s in stats] == [5, 5] and stats[0]["histogram"] == stats[1]["histogram"]
    batch = json.loads((merged / "batch.json").read_text())
    assert {item["name"] for item in batch["skipped"]} == {".git", "marks.csv"}

    refused = subprocess.run([*command[:4], str(shards[0]), "--out", str(tmp_path / "x")], cwd=ROOT,
                             env=grader_environment(tmp_path), capture_output=True, text=True)  # fmt: skip
    assert refused.returncode == 2 and "shard 2/2 is missing" in refused.stderr, refused.stderr


def test_a_class_of_zips_only_is_graded(tmp_path):
    """The batch's settings are checked against the class folder, never against its first entry (a zip here)."""
    group = tmp_path / "class"
    group.mkdir()
    with zipfile.ZipFile(group / "ada.zip", "w") as bundle:
        for path in (ROOT / "solutions" / "01_processes").glob("*.py"):
            bundle.write(path, f"01_processes/{path.name}")
    graded = run(tmp_path, "--submissions", str(group), *OPTIONS)
    assert graded.returncode == 0, graded.stderr
    assert "ada: 7/7 (100%)" in graded.stdout, graded.stdout


def test_a_batch_that_cannot_start_says_why_in_one_line(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("")
    cases = [
        (("--submissions", str(tmp_path / "nowhere")), "does not exist"),
        (("--submissions", str(empty)), "no submissions in it"),
        (("--submissions", str(empty), "--json", str(tmp_path / "x.json")), "use --out"),
        (("--out", str(tmp_path / "out")), "go with --submissions"),
        (("--submissions", str(tmp_path), "--force"), "give --out"),
        (("--submissions", str(tmp_path), "--jobs", "0"), "--jobs 0"),
        (("--submissions", str(tmp_path), "--format", "exercism"), "add --only"),
        (("--submissions", str(tmp_path), "--only", "nothing"), "no such exercise"),
        (("--submissions", str(tmp_path), "--shard", "1/2"), "give --out"),
        (("--submissions", str(tmp_path), "--out", str(tmp_path / "out"), "--shard", "3/2"), "--shard 3/2"),
        (("--submissions", str(tmp_path), "--out", str(tmp_path / "out"), "--shard", "one"), "--shard one"),
    ]
    for arguments, reason in cases:
        graded = run(tmp_path, *arguments)
        assert graded.returncode == 2, (arguments, graded.stderr)
        assert graded.stderr.startswith("cannot grade:") and reason in graded.stderr, (arguments, graded.stderr)
        assert len(graded.stderr.strip().splitlines()) == 1, graded.stderr
        assert not (tmp_path / "out").exists()
