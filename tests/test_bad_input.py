"""Bad input, as a black box: a one-line reason and a scorecard, never a traceback of the grader.

Each broken submission breaks one exercise; the others must still be graded
in full, the broken one must say why in a student's words, and nothing the
grading run started may be left running.
"""

from __future__ import annotations

import importlib.util
import marshal
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from grader.manifest import load_manifest
from grader.target import NOT_STAGED, choose_target, stage

from .conftest import ROOT, Graded, leftovers, only_options

# Slow: `nox -s tests` runs these on the newest installed Python only (see the noxfile).
pytestmark = pytest.mark.heavy

MANIFEST = load_manifest()
FULL = {exercise.id: float(exercise.max_points) for exercise in MANIFEST.exercises}
HUGE_BYTES = 700 << 20  # sparse: no disk space, no time to create
# The broken exercise and its neighbours: enough to see that the others are still graded.
GRADED = MANIFEST.ids[:3]
QUICK = 120  # seconds: a generous bound that only says "not hung, not reading hundreds of MiB"


def solution_text(exercise_id: str) -> str:
    exercise = MANIFEST.exercise(exercise_id)
    return (ROOT / "solutions" / exercise.folder / exercise.file_name).read_text()


def module_path(root: Path, exercise_id: str) -> Path:
    exercise = MANIFEST.exercise(exercise_id)
    return root / exercise.folder / exercise.file_name


def task_points(exercise_id: str, lost: tuple[int, ...] | None = None) -> dict[str, float]:
    """The exercise's task points with the tasks in lost at 0 (lost=None: every task lost)."""
    return {
        str(task.number): 0.0 if lost is None or task.number in lost else float(task.points)
        for task in MANIFEST.exercise(exercise_id).tasks
    }


def assert_no_traceback(graded: Graded) -> None:
    for stream in (graded.stdout, graded.stderr):
        assert "Traceback" not in stream and 'File "' not in stream, stream[-2000:]


def assert_fully_graded(graded: Graded, exercise_ids: list[str]) -> None:
    """Each of these exercises earned every point, every test passed."""
    for exercise_id in exercise_ids:
        exercise = graded.exercise(exercise_id)
        assert exercise["score"] == FULL[exercise_id], [t["message"] for t in exercise["tests"] if t["message"]]
        assert exercise["status"] == "passed" and exercise["message"] == ""
        assert all(test["outcome"] == "passed" for test in exercise["tests"])


# --- ways to break a submission (it starts as a copy of solutions/) -------------------------------


def syntax_error(root: Path, outside: Path) -> None:
    module_path(root, "processes").write_text("import os\n\ndef start_worker(:\n    pass\n")


def raises_at_import(root: Path, outside: Path) -> None:
    module_path(root, "processes").write_text("import os\n\nraise RuntimeError('broken on purpose at import')\n")


def missing_file(root: Path, outside: Path) -> None:
    module_path(root, "pool").unlink()


def renamed_function(root: Path, outside: Path) -> None:
    path = module_path(root, "processes")
    path.write_text(path.read_text().replace("def run_all(", "def run_every("))


def wrong_signature(root: Path, outside: Path) -> None:
    # The task asks for start_worker(target, args=(), kwargs=None, name=None); run_all does not use it.
    path = module_path(root, "processes")
    path.write_text(
        path.read_text() + "\n\ndef start_worker(target):\n    return multiprocessing.Process(target=target)\n"
    )


LATIN_1_LINE = len(solution_text("processes").splitlines()) + 2


def latin_1(root: Path, outside: Path) -> None:
    source = solution_text("processes") + '\nGREETING = "café"\n'
    module_path(root, "processes").write_bytes(source.encode("latin-1"))


def binary(root: Path, outside: Path) -> None:
    # What a compiled module renamed to .py looks like: a .pyc header, then marshalled code.
    code = compile(solution_text("processes"), "processes.py", "exec")
    module_path(root, "processes").write_bytes(importlib.util.MAGIC_NUMBER + bytes(12) + marshal.dumps(code))


def link_out(root: Path, outside: Path) -> None:
    # The target is a correct solution: following the link would earn full marks.
    target = outside / "processes.py"
    target.write_text(solution_text("processes"))
    module = module_path(root, "processes")
    module.unlink()
    module.symlink_to(target)


def folder_link_out(root: Path, outside: Path) -> None:
    folder = root / MANIFEST.exercise("pool").folder
    folder.rename(outside / folder.name)
    folder.symlink_to(Path("..") / outside.name / folder.name)  # relative, and it still leaves the submission


def link_inside(root: Path, outside: Path) -> None:
    shared = root / "shared"
    shared.mkdir()
    (shared / "processes_impl.py").write_text(solution_text("processes"))
    module = module_path(root, "processes")
    module.unlink()
    module.symlink_to(Path("..") / "shared" / "processes_impl.py")


def huge_file(root: Path, outside: Path) -> None:
    module = module_path(root, "processes")
    module.unlink()
    subprocess.run(["truncate", "-s", str(HUGE_BYTES), str(module)], check=True)


@dataclass(frozen=True)
class Case:
    build: Callable[[Path, Path], None]
    exercise: str  # the exercise it breaks
    status: str  # that exercise's status
    outcome: str  # the outcome of each of its tests that lost points
    words: tuple[str, ...]  # what each of those tests' messages says
    lost: tuple[int, ...] | None = None  # the tasks that lose their points (None: all)
    staging: bool = False  # refused before any code ran: the exercise message and a notice say why


CASES = {
    "syntax error": Case(
        syntax_error,
        "processes",
        "error",
        "error",
        ("processes.py could not be imported: SyntaxError", "processes.py:3"),
    ),
    "exception at import": Case(
        raises_at_import,
        "processes",
        "error",
        "error",
        ("could not be imported: RuntimeError: broken on purpose at import", "(processes.py:3 in <module>)"),
    ),
    "missing file": Case(missing_file, "pool", "error", "error", ("02_pool/pool.py is missing",), staging=True),
    "renamed function": Case(
        renamed_function,
        "processes",
        "failed",
        "failed",
        ("processes.py has no function run_all(): write it, or check its name",),
        lost=(2,),
    ),
    "wrong signature": Case(
        wrong_signature,
        "processes",
        "failed",
        "failed",
        (
            "the parameters of start_worker() in processes.py do not match what the task asks",
            "Python said: start_worker()",
        ),
        lost=(1,),
    ),
    "not UTF-8": Case(
        latin_1,
        "processes",
        "error",
        "error",
        (f"01_processes/processes.py is not UTF-8 text (line {LATIN_1_LINE} holds the byte 0xe9)", "save it as UTF-8"),
        staging=True,
    ),
    "binary file": Case(
        binary,
        "processes",
        "error",
        "error",
        ("01_processes/processes.py is not Python source: it holds binary data",),
        staging=True,
    ),
    "symlink out of the submission": Case(
        link_out,
        "processes",
        "error",
        "error",
        ("01_processes/processes.py is a symbolic link to", "outside the submission", "does not follow it"),
        staging=True,
    ),
    "folder symlink out of the submission": Case(
        folder_link_out,
        "pool",
        "error",
        "error",
        ("the folder 02_pool/ is a symbolic link to ../outside/02_pool, outside the submission", "does not follow it"),
        staging=True,
    ),
    "file of hundreds of MiB": Case(
        huge_file,
        "processes",
        "error",
        "error",
        ("01_processes/processes.py is too large (700.0 MiB; a source file may have at most 1 MiB)",),
        staging=True,
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_broken_exercise_says_why_and_the_others_are_graded(grade, make_submission, tmp_path, case):
    submission = make_submission(only=GRADED)
    outside = tmp_path / "outside"
    outside.mkdir()
    case.build(submission, outside)
    started = time.monotonic()
    graded = grade("--submission", str(submission), "--start-method", "fork", *only_options(GRADED))
    elapsed = time.monotonic() - started

    assert graded.exit_code == 0, graded.stderr
    assert_no_traceback(graded)
    assert graded.scorecard["complete"] is True
    broken = graded.exercise(case.exercise)
    assert broken["status"] == case.status, broken
    assert graded.task_points(case.exercise) == task_points(case.exercise, case.lost)
    assert broken["score"] == sum(task_points(case.exercise, case.lost).values())
    lost_tasks = {int(n) for n, points in task_points(case.exercise, case.lost).items() if points == 0}
    for test in broken["tests"]:
        if test["task"] in lost_tasks:
            assert test["outcome"] == case.outcome, test
            assert test["score"] == 0
            for words in case.words:
                assert words in test["message"], test["message"]
            assert "\n" not in test["message"], test["message"]
        else:
            assert test["outcome"] == "passed", test
    file = MANIFEST.exercise(case.exercise).file_name
    if case.staging:  # the exercise says why, and so does every test
        assert all(t["message"] == f"{file} could not be imported: {broken['message']}" for t in broken["tests"])
    elif case.status == "error":  # the import failed: the exercise says what its tests say
        assert {t["message"] for t in broken["tests"]} == {broken["message"]}
    else:
        assert broken["message"] == ""
    if case.staging:
        assert graded.scorecard["notices"] == [f"{case.exercise}: {broken['message']}"]
    else:
        assert graded.scorecard["notices"] == []
    others = [exercise_id for exercise_id in GRADED if exercise_id != case.exercise]
    assert_fully_graded(graded, others)
    assert graded.scorecard["score"] == sum(FULL[i] for i in others) + sum(graded.task_points(case.exercise).values())
    assert elapsed < QUICK, f"grading took {elapsed:.0f} s"
    assert leftovers(str(tmp_path)) == []


def test_a_symlink_inside_the_submission_is_followed(grade, make_submission, tmp_path):
    submission = make_submission()
    link_inside(submission, tmp_path)
    graded = grade("--submission", str(submission), "--start-method", "fork", "--only", "processes")
    assert graded.exit_code == 0, graded.stderr
    assert_no_traceback(graded)
    assert_fully_graded(graded, ["processes"])
    assert graded.scorecard["notices"] == []


def atime_is_tracked(folder: Path) -> bool:
    """Whether reading a file here updates its access time (relatime or strictatime; not noatime)."""
    probe = folder / "atime-probe"
    probe.write_bytes(b"x")
    os.utime(probe, (1_000_000, time.time()))
    with open(probe, "rb") as stream:
        stream.read(1)
    return probe.stat().st_atime != 1_000_000


def test_a_huge_file_is_judged_by_its_size_and_never_read(grade, make_submission, tmp_path):
    if not atime_is_tracked(tmp_path):
        pytest.skip("this file system does not record reads (noatime): the proof needs it")
    submission = make_submission(only=["processes"])
    huge_file(submission, tmp_path)
    huge = module_path(submission, "processes")
    # An access time older than the file's mtime: one read of one byte would move it (relatime).
    os.utime(huge, (1_000_000, time.time()))
    graded = grade("--submission", str(submission), "--start-method", "fork", "--only", "processes")
    assert graded.exit_code == 0, graded.stderr
    assert_no_traceback(graded)
    assert "is too large (700.0 MiB" in graded.exercise("processes")["message"]
    assert huge.stat().st_atime == 1_000_000, "the grader read the huge file"
    assert huge.stat().st_size == HUGE_BYTES


HANGS_AT_IMPORT = """
import time

time.sleep(3600)
"""


def test_an_import_that_hangs_is_a_timeout_of_the_call_timeout_and_nothing_is_left(grade, make_submission, tmp_path):
    # One hidden test gives its scenario 40 s: the import still gets only its own budget (here --call-timeout).
    submission = make_submission(files={"01_processes/processes.py": HANGS_AT_IMPORT}, only=["processes", "pool"])
    started = time.monotonic()
    graded = grade(
        "--submission", str(submission), "--only", "processes", "--only", "pool", "--start-method", "fork",
        "--call-timeout", "2",
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert graded.exit_code == 0, graded.stderr
    assert_no_traceback(graded)
    hung = graded.exercise("processes")
    assert hung["score"] == 0 and hung["status"] == "failed"
    for test in hung["tests"]:
        assert test["outcome"] == "timeout", test
        assert test["message"].startswith("timeout: your code did not finish its import within 2 s"), test["message"]
        assert "top level of processes.py" in test["message"], test["message"]
    assert_fully_graded(graded, ["pool"])
    assert elapsed < QUICK, f"grading took {elapsed:.0f} s"
    assert leftovers(str(tmp_path)) == []


def test_an_empty_folder_is_graded_as_missing_everything(grade, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    graded = grade("--submission", str(empty), "--start-method", "fork")
    assert graded.exit_code == 0, graded.stderr
    assert_no_traceback(graded)
    card = graded.scorecard
    assert card["score"] == 0 and card["percent"] == 0.0 and card["complete"] is True
    expected = {
        e.id: f"the folder {e.folder}/ is missing (the folder has none of the exercise folders: "
        "is it laid out like exercises/?)"
        for e in MANIFEST.exercises
    }
    assert {e["id"]: e["message"] for e in card["exercises"]} == expected
    assert card["notices"] == [f"{exercise_id}: {message}" for exercise_id, message in expected.items()]
    for exercise in card["exercises"]:
        assert exercise["status"] == "error"
        for test in exercise["tests"]:
            assert test["outcome"] == "error", test
            assert test["message"].endswith(expected[exercise["id"]]), test["message"]


@pytest.mark.parametrize(
    ("make_path", "reason"),
    [
        (lambda tmp_path: tmp_path / "no-such-folder", "does not exist: give a folder laid out like exercises/"),
        (lambda tmp_path: Path(__file__), "is a file, not a folder: give a folder laid out like exercises/"),
    ],
    ids=["path that does not exist", "file instead of a folder"],
)
def test_a_path_that_cannot_be_graded_exits_2_with_one_line(grade, tmp_path, make_path, reason):
    path = make_path(tmp_path)
    graded = grade("--submission", str(path))
    assert graded.exit_code == 2
    assert graded.scorecard is None
    assert graded.stdout == ""
    assert graded.stderr == f"cannot grade: {path} {reason}\n"


def test_staging_refuses_what_it_cannot_use_without_blocking(tmp_path):
    """Staging alone, on files no grading run needs to see: it returns at once and says why per file."""
    submission, outside = tmp_path / "submission", tmp_path / "outside"
    folder = submission / "01_processes"
    folder.mkdir(parents=True)
    outside.mkdir()
    os.mkfifo(folder / "processes.py")  # opening it for reading would wait for a writer forever
    (folder / "dangling.py").symlink_to("nowhere.py")
    (folder / "loop.py").symlink_to("loop.py")
    (outside / "helper.py").write_text("X = 1\n")
    (folder / "helper.py").symlink_to(outside / "helper.py")
    (folder / "declared.py").write_bytes('# -*- coding: latin-1 -*-\nA = "café"\n'.encode("latin-1"))
    (folder / "bom.py").write_bytes('A = "café"\n'.encode("utf-8-sig"))
    (submission / "02_pool").write_text("not a folder\n")
    exercises = [MANIFEST.exercise("processes"), MANIFEST.exercise("pool")]

    started = time.monotonic()
    staged = stage(choose_target("submission", submission), exercises, tmp_path / "staged")
    assert time.monotonic() - started < 10, "staging blocked"

    assert staged.problems == {
        "processes": "01_processes/processes.py is not a regular file",
        "pool": "02_pool is a file, not a folder: put pool.py in a folder 02_pool/",
    }
    copy = tmp_path / "staged" / "01_processes"
    refused = {
        "processes.py": "01_processes/processes.py is not a regular file",
        "dangling.py": "01_processes/dangling.py is a symbolic link to nowhere.py, which does not exist",
        "loop.py": "01_processes/loop.py is a symbolic link to loop.py, which does not exist",
        "helper.py": f"01_processes/helper.py is a symbolic link to {outside / 'helper.py'}, outside the submission",
    }
    for name, reason in refused.items():
        stand_in = (copy / name).read_text()
        assert stand_in.count("raise ImportError(") == 1 and repr(NOT_STAGED + reason)[:-1] in stand_in, stand_in
    # Text in its declared encoding, or UTF-8 with a byte order mark, is Python source: copied as it is.
    assert (copy / "declared.py").read_bytes() == (folder / "declared.py").read_bytes()
    assert (copy / "bom.py").read_bytes() == (folder / "bom.py").read_bytes()
    pool_stand_in = (tmp_path / "staged" / "02_pool" / "pool.py").read_text()
    assert repr(NOT_STAGED + staged.problems["pool"]) in pool_stand_in
