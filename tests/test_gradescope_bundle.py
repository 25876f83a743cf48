"""Gradescope's autograder zip (grader/bundle.py): what is in it, and that it grades in Gradescope's layout.

The heavy test does what Gradescope does, in a fake /autograder under a
temporary folder: unpack the zip into source/, run setup.sh there, copy
run_autograder to the top, put a submission in submission/, run it, and read
results/results.json as Gradescope would.
"""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from grader.bundle import DEADLINE_SECONDS, build_gradescope_bundle
from grader.cli import main
from grader.manifest import load_manifest

from .conftest import ROOT, installing_environment
from .test_handout import leaks, telling_lines

SCRIPTS = ("setup.sh", "run_autograder")
# Gradescope's results.json: the fields it reads, and the values a test's status and a visibility may take.
TEST_STATUSES = {"passed", "failed"}
VISIBILITIES = {"hidden", "after_due_date", "after_published", "visible"}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_gradescope_bundle(tmp_path_factory.mktemp("bundle") / "autograder.zip").path


def test_the_scripts_are_at_the_top_and_executable_and_the_grader_is_there(bundle: Path):
    with zipfile.ZipFile(bundle) as archive:
        infos = {info.filename: info for info in archive.infolist()}
    for script in SCRIPTS:
        mode = infos[script].external_attr >> 16
        assert stat.S_ISREG(mode) and mode & 0o111 == 0o111, f"{script}: mode {oct(mode)}"
    assert "pyproject.toml" in infos and "grader/cli.py" in infos and "grader/curriculum.toml" in infos
    assert all(name.startswith(("grader/", "exercises/")) or name.count("/") == 0 for name in infos), sorted(infos)
    assert not any(name.startswith(".github/") for name in infos)  # the Classroom workflow is the students' own
    exercise = load_manifest().exercises[0]
    assert exercise.student_file in infos


def test_the_bundle_holds_no_line_of_a_reference_solution(bundle: Path, tmp_path: Path):
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(tmp_path / "unpacked")
    assert leaks(tmp_path / "unpacked", telling_lines()) == []


def test_two_builds_are_the_same_bytes(bundle: Path, tmp_path: Path):
    again = build_gradescope_bundle(tmp_path / "again.zip").path
    assert again.read_bytes() == bundle.read_bytes()


def test_the_command_writes_the_zip_and_refuses_a_folder_or_another_suffix(tmp_path: Path, capsys):
    out = tmp_path / "autograder.zip"
    assert main(["gradescope-bundle", str(out)]) == 0
    assert "setup.sh, run_autograder" in capsys.readouterr().out and zipfile.is_zipfile(out)
    assert main(["gradescope-bundle", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main(["gradescope-bundle", str(tmp_path / "autograder.tar")]) == 2
    assert "give a name ending in .zip" in capsys.readouterr().err


def check_results_document(results: dict[str, Any]) -> None:
    """What Gradescope's autograder specification asks of results.json."""
    assert isinstance(results["score"], (int, float))
    assert isinstance(results.get("execution_time", 0), int)
    assert results.get("visibility", "visible") in VISIBILITIES
    for test in results["tests"]:
        assert isinstance(test["name"], str) and test["name"]
        assert isinstance(test["score"], (int, float)) and isinstance(test["max_score"], (int, float))
        assert test["status"] in TEST_STATUSES
        assert test.get("visibility", "visible") in VISIBILITIES
        assert isinstance(test.get("output", ""), str)


def run_script(path: Path, cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(path)], cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.heavy  # a virtual environment, a pip install and three gradings: about 50 s on a quiet machine
@pytest.mark.timeout(1500)  # beside the other heavy tests on 2 cores the same work took over 300 s
def test_the_bundle_grades_submissions_in_gradescopes_layout(bundle: Path, tmp_path: Path):
    autograder = tmp_path / "autograder"
    source = autograder / "source"
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(source)
    for script in SCRIPTS:  # zipfile does not restore modes; Gradescope's unpacking does
        (source / script).chmod(0o755)
    env = installing_environment(tmp_path)
    setup = run_script(source / "setup.sh", autograder, env, timeout=600)
    assert setup.returncode == 0, setup.stdout[-3000:] + setup.stderr[-3000:]
    shutil.copy(source / "run_autograder", autograder / "run_autograder")  # as Gradescope does

    manifest = load_manifest()
    first = manifest.exercises[0]
    total = sum(exercise.max_points for exercise in manifest.exercises)

    def grade(submission: Path | None) -> tuple[dict[str, Any], subprocess.CompletedProcess]:
        shutil.rmtree(autograder / "submission", ignore_errors=True)
        shutil.rmtree(autograder / "results", ignore_errors=True)
        if submission is not None:
            shutil.copytree(submission, autograder / "submission")
        done = run_script(autograder / "run_autograder", autograder, env, timeout=DEADLINE_SECONDS + 60)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        path = autograder / "results" / "results.json"
        assert path.is_file(), done.stdout[-3000:] + done.stderr[-3000:]
        results = json.loads(path.read_text())
        check_results_document(results)
        return results, done

    # A repository submitted from GitHub with the exercises in exercises/: the first one done, no other yet.
    repository = tmp_path / "repository"
    (repository / "exercises" / first.folder).mkdir(parents=True)
    shutil.copy(ROOT / "solutions" / first.folder / first.file_name, repository / first.student_file)
    (repository / "README.md").write_text("my kata\n")
    results, done = grade(repository)
    firsts = [test for test in results["tests"] if test["name"].startswith(f"{first.number:02d} ")]
    failed = "\n".join(f"{test['name']}: {test['output']}" for test in firsts if test["status"] != "passed")
    assert results["score"] == first.max_points, results["output"] + "\n" + failed
    assert results["extra_data"]["max_score"] == total
    assert "the exercises were found in exercises/" in results["output"]
    assert firsts and all(test["status"] == "passed" for test in firsts)
    assert sum(test["max_score"] for test in results["tests"]) == pytest.approx(
        total, abs=0.005 * len(results["tests"])
    )
    assert first.title in done.stdout  # the grader's report, in the log Gradescope keeps for instructors

    # Files uploaded with nothing an exercise needs: graded, every exercise 0, and the result says why.
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "answers.txt").write_text("I did it all\n")
    results, _ = grade(stray)
    assert results["score"] == 0 and results["tests"]
    assert "is it laid out like exercises/?" in results["output"]

    # No submission folder at all: the grader cannot grade, and results.json still says so.
    results, _ = grade(None)
    assert results["score"] == 0 and results["tests"] == []
    assert "could not grade this submission (exit status 2)" in results["output"]
    assert "does not exist" in results["output"], results["output"]
