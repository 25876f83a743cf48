"""grader.batch without grading: which entries of a class folder are submissions, where their exercises are,
how a zip is unpacked, and what makes a rerun grade a submission again."""

from __future__ import annotations

import stat
import zipfile

import pytest

from grader.batch import (
    MAX_ZIP_MEMBERS,
    BatchError,
    Options,
    Skipped,
    batch_key,
    content_digest,
    find_submissions,
    student_line,
    unpack,
)
from grader.target import choose_target, locate_exercises

FOLDERS = {"01_processes", "02_pool"}


def test_folders_and_zips_are_submissions_and_everything_else_is_skipped_with_why(tmp_path):
    (tmp_path / "alice").mkdir()
    (tmp_path / "bob.zip").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("marks")
    (tmp_path / ".git").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "alice")
    (tmp_path / "carol").mkdir()
    (tmp_path / "carol.zip").write_bytes(b"")

    submissions, skipped = find_submissions(tmp_path)

    assert [(s.name, s.kind) for s in submissions] == [("alice", "folder"), ("bob", "zip")]
    why = {item.name: item.why for item in skipped}
    assert set(why) == {".git", "carol", "carol.zip", "link", "notes.txt"}
    assert "not a folder or a .zip file" in why["notes.txt"]
    assert "hidden" in why[".git"] and "symbolic link" in why["link"]
    assert "both a folder and a zip" in why["carol"] == why["carol.zip"]
    assert all(isinstance(item, Skipped) for item in skipped)


@pytest.mark.parametrize(
    ("problem", "reason"), [("missing", "does not exist"), ("file", "not a folder"), ("empty", "no submissions")]
)
def test_a_class_folder_that_cannot_be_used_says_why(tmp_path, problem, reason):
    folder = tmp_path / "class"
    if problem == "file":
        folder.write_text("")
    elif problem == "empty":
        (folder / "stray.txt").parent.mkdir()
        (folder / "stray.txt").write_text("")
    with pytest.raises(BatchError, match=reason):
        find_submissions(folder)


@pytest.mark.parametrize(
    ("layout", "found", "note"),
    [
        ("01_processes", "", None),
        ("exercises/01_processes", "exercises", "found in exercises/"),
        ("repo-main/02_pool", "repo-main", "found in repo-main/"),
        ("repo-main/exercises/01_processes", "repo-main/exercises", "found in repo-main/exercises/"),
        ("work/nothing-here", "", None),
    ],
)
def test_the_exercises_are_found_where_students_and_platforms_put_them(tmp_path, layout, found, note):
    (tmp_path / layout).mkdir(parents=True)
    root, said = locate_exercises(tmp_path, FOLDERS)
    assert (root, said) == (tmp_path / found if found else tmp_path, note)


def test_two_wrapping_folders_are_not_guessed_between(tmp_path):
    (tmp_path / "one" / "01_processes").mkdir(parents=True)
    (tmp_path / "two" / "01_processes").mkdir(parents=True)
    assert locate_exercises(tmp_path, FOLDERS) == (tmp_path, None)


def _zip(path, members: dict[str, bytes], links: tuple[str, ...] = ()) -> None:
    with zipfile.ZipFile(path, "w") as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            bundle.writestr(info, "/etc/passwd")


def test_a_zip_unpacks_its_files_and_leaves_links_out(tmp_path):
    _zip(tmp_path / "s.zip", {"repo/01_processes/processes.py": b"x = 1\n"}, links=("repo/01_processes/link.py",))
    unpack(tmp_path / "s.zip", tmp_path / "out")
    assert (tmp_path / "out" / "repo" / "01_processes" / "processes.py").read_bytes() == b"x = 1\n"
    assert not (tmp_path / "out" / "repo" / "01_processes" / "link.py").exists()


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ({"../evil.py": b""}, "outside its own folder"),
        ({"/etc/evil.py": b""}, "outside its own folder"),
        ({"a/../../evil.py": b""}, "outside its own folder"),
        ({f"f{i}": b"" for i in range(MAX_ZIP_MEMBERS + 1)}, "holds"),
    ],
    ids=["parent", "absolute", "nested-parent", "too-many"],
)
def test_a_zip_that_would_write_outside_or_flood_is_refused(tmp_path, members, reason):
    _zip(tmp_path / "s.zip", members)
    with pytest.raises(BatchError, match=reason):
        unpack(tmp_path / "s.zip", tmp_path / "out" / "s")
    assert not (tmp_path / "evil.py").exists() and not (tmp_path / "out" / "evil.py").exists()


def test_a_file_named_zip_that_is_not_one_is_refused(tmp_path):
    (tmp_path / "s.zip").write_text("not a zip")
    with pytest.raises(BatchError, match="not a zip file that can be read"):
        unpack(tmp_path / "s.zip", tmp_path / "out")


def test_the_key_changes_with_the_content_the_options_and_the_grader(tmp_path):
    folder = tmp_path / "alice" / "01_processes"
    folder.mkdir(parents=True)
    (folder / "processes.py").write_text("x = 1\n")
    (folder / "__pycache__").mkdir()
    before = content_digest(tmp_path / "alice")
    (folder / "__pycache__" / "processes.pyc").write_bytes(b"cache")
    assert content_digest(tmp_path / "alice") == before, "a cache is not the student's work"
    (folder / "processes.py").write_text("x = 2\n")
    changed = content_digest(tmp_path / "alice")
    assert changed != before
    key = batch_key("grader", Options(), changed)
    assert key == batch_key("grader", Options(), changed)
    assert key != batch_key("grader", Options(start_method="fork"), changed)
    assert key != batch_key("another grader", Options(), changed)


def test_the_students_line_says_what_explains_the_score():
    card = {"score": 0, "max_score": 7.5, "percent": 0.0, "complete": False, "notices": ["laid out wrong", "more"]}
    assert student_line(card) == "0/7.5 (0%) INCOMPLETE - laid out wrong (and 1 more in its scorecard)"
    assert student_line({"score": 7, "max_score": 7, "percent": 100.0, "notices": []}) == "7/7 (100%)"


def test_a_single_submission_is_graded_where_its_exercises_are_and_says_where(tmp_path):
    """grade --submission (one student, a Gradescope upload, a Classroom clone) looks where a batch looks."""
    clone = tmp_path / "clone"
    (clone / "exercises" / "01_processes").mkdir(parents=True)
    (clone / "README.md").write_text("the kata")
    target = choose_target("submission", clone)
    assert (target.path, target.note) == ((clone / "exercises").resolve(), "found in exercises/")
    flat = tmp_path / "flat"
    (flat / "01_processes").mkdir(parents=True)
    assert (choose_target("submission", flat).path, choose_target("submission", flat).note) == (flat.resolve(), None)
