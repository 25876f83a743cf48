"""grader.batch's shards without grading: how a class is split, and what merge puts together or refuses.

The shards here are written by hand, as grade --submissions --shard K/N --out
leaves them: batch.json (the grader, the options, the class, the shard, each
graded submission) and scorecards/<name>.json (a copy of the exports fixture
with the student's own score).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from grader.batch import BatchError, Submission, merge_shards, parse_shard, shard_of
from grader.classview import gradebook_csv
from grader.manifest import load_manifest

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "exports" / "scorecard.json"
CLASS = ["ana", "ben", "cy", "dee", "eve"]
OPTIONS = {"only": ["processes"], "start_method": "fork"}


def card_of(score: float) -> dict[str, Any]:
    card = copy.deepcopy(json.loads(FIXTURE.read_text()))
    card["score"] = score
    return card


def write_shard(folder: Path, index: int, count: int, names: list[str], **changes: Any) -> Path:
    (folder / "scorecards").mkdir(parents=True)
    batch = {
        "format": 1,
        "grader": "digest",
        "submissions": {name: {"key": f"k-{name}", "scorecard": f"scorecards/{name}.json"} for name in names},
        "class": CLASS,
        "shard": f"{index}/{count}",
        "options": OPTIONS,
        "skipped": [{"name": "notes.txt", "why": "not a folder or a .zip file"}],
        **changes,
    }
    (folder / "batch.json").write_text(json.dumps(batch))
    for number, name in enumerate(names):
        (folder / "scorecards" / f"{name}.json").write_text(json.dumps(card_of(float(number))))
    return folder


def two_shards(tmp_path: Path) -> list[Path]:
    return [
        write_shard(tmp_path / "one", 1, 2, ["ana", "cy", "eve"]),
        write_shard(tmp_path / "two", 2, 2, ["ben", "dee"]),
    ]


def test_a_shard_is_every_nth_submission_in_name_order():
    submissions = [Submission(name, Path(name), "folder") for name in ["eve", "ana", "dee", "ben", "cy"]]
    assert [s.name for s in shard_of(submissions, 1, 2)] == ["ana", "cy", "eve"]
    assert [s.name for s in shard_of(submissions, 2, 2)] == ["ben", "dee"]
    assert [s.name for s in shard_of(submissions, 5, 5)] == ["eve"]
    every = [s.name for index in (1, 2, 3) for s in shard_of(submissions, index, 3)]
    assert sorted(every) == sorted(s.name for s in submissions)  # each submission in exactly one shard


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b", "1/0", "-1/2", ""])
def test_a_shard_that_is_not_k_of_n_is_refused(text: str):
    with pytest.raises(BatchError, match="K/N"):
        parse_shard(text)


def test_merged_shards_hold_every_scorecard_and_the_whole_class_gradebook(tmp_path: Path):
    merged = merge_shards(two_shards(tmp_path), tmp_path / "merged")
    out = tmp_path / "merged"
    assert sorted(path.stem for path in (out / "scorecards").glob("*.json")) == CLASS
    cards = [(path.stem, json.loads(path.read_text())) for path in sorted((out / "scorecards").glob("*.json"))]
    order = [exercise_id for exercise_id in load_manifest().ids if exercise_id in {"processes", "pool", "pool_methods"}]
    assert (out / "gradebook.csv").read_bytes().decode() == gradebook_csv(cards, order)
    assert merged.not_graded == [] and [item.name for item in merged.skipped] == ["notes.txt"]
    batch = json.loads((out / "batch.json").read_text())
    assert sorted(batch["submissions"]) == CLASS and batch["class"] == CLASS and "shard" not in batch


def test_a_student_graded_by_no_shard_is_named(tmp_path: Path):
    one, two = two_shards(tmp_path)
    (two / "scorecards" / "dee.json").unlink()  # dee's grader wrote no scorecard
    assert merge_shards([one, two], tmp_path / "merged").not_graded == ["dee"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"grader": "another"}, "another grader"),
        ({"options": {"only": [], "start_method": "all"}}, "other options"),
        ({"class": ["ana", "ben"]}, "another class"),
        ({"shard": "2/3"}, "different splits"),
        ({"shard": "1/2"}, "given more than once"),
        ({"shard": None}, "says no shard"),
    ],
)
def test_shards_that_do_not_belong_together_are_refused(tmp_path: Path, change: dict[str, Any], reason: str):
    one = write_shard(tmp_path / "one", 1, 2, ["ana", "cy", "eve"])
    two = write_shard(tmp_path / "two", 2, 2, ["ben", "dee"], **change)
    with pytest.raises(BatchError, match=reason):
        merge_shards([one, two], tmp_path / "merged")
    assert not (tmp_path / "merged").exists()


def test_a_missing_shard_a_shard_as_out_and_a_folder_of_no_shard_are_refused(tmp_path: Path):
    one, two = two_shards(tmp_path)
    with pytest.raises(BatchError, match="shard 2/2 is missing"):
        merge_shards([one], tmp_path / "merged")
    with pytest.raises(BatchError, match="not one of the shards"):
        merge_shards([one, two], one)
    with pytest.raises(BatchError, match=r"no batch\.json"):
        merge_shards([one, tmp_path], tmp_path / "merged")
    assert not (tmp_path / "merged").exists()


def test_a_student_graded_in_two_shards_is_refused_before_anything_is_written(tmp_path: Path):
    one = write_shard(tmp_path / "one", 1, 2, ["ana", "cy", "eve"])
    two = write_shard(tmp_path / "two", 2, 2, ["ben", "dee", "ana"])
    with pytest.raises(BatchError, match="ana was graded in more than one shard"):
        merge_shards([one, two], tmp_path / "merged")
    assert not (tmp_path / "merged").exists()
