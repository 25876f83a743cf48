"""The grader as a black box: real submissions in, scorecards out."""

from __future__ import annotations

import os
import time

import pytest

from grader.manifest import load_manifest

from .conftest import ROOT, TIERS_HERE, leftovers, living, only_options, recorded_pids, unsolve

MANIFEST = load_manifest()
FULL = {exercise.id: float(exercise.max_points) for exercise in MANIFEST.exercises}


# Enough exercises to show that one going wrong leaves the others graded.
FIRST_THREE = MANIFEST.ids[:3]


def full_tasks(exercise_id: str) -> dict[str, float]:
    return {str(task.number): float(task.points) for task in MANIFEST.exercise(exercise_id).tasks}


# One exercise per test, so that the project's test workers grade them side by side.
# Under forkserver only (the strictest about what must be picklable, and 3.14's
# default on Linux): `nox -s verify` grades them under all three start methods.
# KATA_SOLUTIONS_SHARE="i/n" keeps every n-th exercise from the i-th: the noxfile
# gives each older Python its own share, so that CI grades each solution on one
# of them besides the newest, within its time.
SHARE_INDEX, SHARE_COUNT = map(int, os.environ.get("KATA_SOLUTIONS_SHARE", "0/1").split("/"))


@pytest.mark.parametrize("exercise_id", MANIFEST.ids[SHARE_INDEX::SHARE_COUNT])
def test_solutions_score_full_marks_under_forkserver(grade, exercise_id):
    graded = grade("--solutions", "--only", exercise_id, "--start-method", "forkserver", "-n", "0")
    assert graded.exit_code == 0, graded.stderr
    card = graded.scorecard
    assert card["percent"] == 100.0, [t["message"] for e in card["exercises"] for t in e["tests"] if t["message"]]
    assert card["complete"] is True
    assert card["start_methods"] == ["forkserver"]
    assert [e["id"] for e in card["exercises"]] == [exercise_id]
    assert card["exercises"][0]["status"] == "passed"
    for test in card["exercises"][0]["tests"]:
        assert test["start_methods"] == {"forkserver": "passed"}


def test_a_check_that_failed_under_one_start_method_is_not_run_under_the_others_unless_explained(grade):
    quick = grade("--only", "processes", "--start-method", "all", "-n", "3")
    explained = grade("--only", "processes", "--start-method", "all", "-n", "3", "--explain")
    for graded in (quick, explained):
        assert graded.exit_code == 0, graded.stderr
        assert graded.exercise("processes")["score"] == 0
    for name, test in quick.tests("processes").items():
        # Whichever worker ran it: fork first, and the failure spared the other two.
        assert test["start_methods"] == {"fork": "failed", "spawn": "skipped", "forkserver": "skipped"}, name
        assert test["outcome"] == "failed" and test["message"].startswith("under fork: "), test
    for name, test in explained.tests("processes").items():
        assert test["start_methods"] == dict.fromkeys(("fork", "spawn", "forkserver"), "failed"), name


def test_a_partly_solved_submission_gets_exactly_its_points(grade, make_submission):
    # Exercise 1 solved, exercise 2 untouched, exercise 3 with only task 1 solved.
    later_tasks = ["submit", "gather", "lazy_results", "as_finished"]
    solution = (ROOT / "solutions" / "03_pool_methods" / "pool_methods.py").read_text()
    graded_ids = FIRST_THREE
    submission = make_submission(
        "solutions",
        files={
            "02_pool/pool.py": (ROOT / "exercises" / "02_pool" / "pool.py").read_text(),
            "03_pool_methods/pool_methods.py": unsolve(solution, later_tasks),
        },
        only=graded_ids,
    )
    graded = grade("--submission", str(submission), "--start-method", "fork", *only_options(graded_ids))
    assert graded.exit_code == 0, graded.stderr
    assert graded.exercise("processes")["score"] == FULL["processes"]
    assert graded.exercise("pool")["score"] == 0
    expected_tasks = {number: 0.0 for number in full_tasks("pool_methods")}
    expected_tasks["1"] = full_tasks("pool_methods")["1"]
    assert graded.task_points("pool_methods") == expected_tasks
    expected_total = FULL["processes"] + expected_tasks["1"]
    assert graded.scorecard["score"] == expected_total
    assert graded.scorecard["max_score"] == sum(FULL[exercise_id] for exercise_id in graded_ids)
    assert graded.scorecard["percent"] == round(100 * expected_total / graded.scorecard["max_score"], 1)


def test_a_syntax_error_is_an_error_for_that_exercise_only(grade, make_submission):
    broken_source = "def start_worker(:\n    pass\n"
    submission = make_submission(files={"01_processes/processes.py": broken_source}, only=FIRST_THREE)
    graded = grade("--submission", str(submission), "--start-method", "fork", *only_options(FIRST_THREE))
    assert graded.exit_code == 0, graded.stderr
    broken = graded.exercise("processes")
    assert broken["status"] == "error" and broken["score"] == 0
    assert "SyntaxError" in broken["message"] and "processes.py:1" in broken["message"], broken["message"]
    assert all(t["outcome"] == "error" for t in broken["tests"])
    for other in FIRST_THREE[1:]:
        assert graded.exercise(other)["score"] == FULL[other]


def test_a_missing_file_is_reported_and_the_rest_is_graded(grade, make_submission):
    submission = make_submission(only=FIRST_THREE)
    (submission / "02_pool" / "pool.py").unlink()
    graded = grade("--submission", str(submission), "--start-method", "fork", *only_options(FIRST_THREE))
    assert graded.exit_code == 0, graded.stderr
    missing = graded.exercise("pool")
    assert missing["status"] == "error" and missing["score"] == 0
    assert "02_pool/pool.py is missing" in missing["message"]
    assert any("pool.py is missing" in notice for notice in graded.scorecard["notices"])
    assert graded.exercise("processes")["score"] == FULL["processes"]


def test_a_missing_function_fails_its_tests_with_its_name(grade, make_submission):
    text = (ROOT / "solutions" / "01_processes" / "processes.py").read_text().replace("def whoami(", "def who_am_i(")
    submission = make_submission(files={"01_processes/processes.py": text}, only=["processes"])
    graded = grade("--submission", str(submission), "--only", "processes", "--start-method", "fork")
    tests = graded.tests("processes")
    assert graded.task_points("processes") == {"1": 2.0, "2": 3.0, "3": 0.0}
    assert "has no function whoami()" in tests["test_whoami_in_the_main_process"]["message"]


HANGING = """
import os, time
from pathlib import Path

PIDS = Path({pids!r})

def record(pid):
    try:  # under the namespaces tier this folder is out of sight
        (PIDS / f"pid-{{pid}}").write_text(str(pid))
    except OSError:
        pass

def start_worker(target, args=(), kwargs=None, name=None):
    import multiprocessing
    child = multiprocessing.Process(target=time.sleep, args=(600,))
    child.start()
    record(child.pid)
    record(os.getpid())
    child.join()

def run_all(target, arg_tuples):
    os._exit(0)

def whoami():
    raise NotImplementedError
"""


@pytest.mark.parametrize("tier", TIERS_HERE)
def test_a_hang_is_a_timeout_and_os_exit_is_an_error_and_nothing_is_left(grade, make_submission, tmp_path, tier):
    pids = tmp_path / "pids"
    pids.mkdir(mode=0o777)
    pids.chmod(0o777)
    submission = make_submission(files={"01_processes/processes.py": HANGING.format(pids=str(pids))})
    since = time.time()
    started = time.monotonic()
    graded = grade(
        "--submission", str(submission), "--only", "processes", "--start-method", "fork", "--call-timeout", "3",
        "--isolation", tier,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert graded.scorecard["isolation"]["tier"] == tier
    tests = graded.tests("processes")
    assert tests["test_target_runs_in_another_process"]["outcome"] == "timeout"
    assert "did not finish within 3 s" in tests["test_target_runs_in_another_process"]["message"]
    assert tests["test_exit_codes_come_back_in_order"]["outcome"] == "error"
    assert "exited with code 0" in tests["test_exit_codes_come_back_in_order"]["message"]
    assert "os._exit()" in tests["test_exit_codes_come_back_in_order"]["message"]
    assert tests["test_whoami_in_the_main_process"]["outcome"] == "failed"
    assert graded.exercise("processes")["score"] == 0
    assert elapsed < 60, f"grading a hanging submission took {elapsed:.0f} s"
    started_pids = recorded_pids(pids)
    if tier == "process":
        assert len(started_pids) >= 4, "the hanging code did not run"
    assert living(started_pids, since) == []
    assert leftovers(str(tmp_path)) == []


CHEATING_CONFTEST = """
import pytest

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    report.outcome = "passed"

def pytest_json_modifyreport(json_report):
    for test in json_report.get("tests", []):
        test["outcome"] = "passed"
"""

PATCHING_MODULE = '''
"""Tries to make every failing report a pass, from the graded module's import."""
import sys
try:
    import _pytest.reports as reports

    original = reports.TestReport.from_item_and_call

    def forged(item, call):
        report = original(item, call)
        report.outcome = "passed"
        return report

    reports.TestReport.from_item_and_call = staticmethod(forged)
except Exception:
    pass
for name, module in list(sys.modules.items()):
    if "json" in name and hasattr(module, "dumps"):
        module.dumps = lambda *a, **k: '{"status": "returned", "value": null, "version": 1}'

def start_worker(target, args=(), kwargs=None, name=None):
    raise NotImplementedError

def run_all(target, arg_tuples):
    raise NotImplementedError

def whoami():
    raise NotImplementedError
'''


@pytest.mark.parametrize("tier", TIERS_HERE)
def test_planted_conftest_and_report_patching_change_nothing(grade, make_submission, tier):
    submission = make_submission(
        "exercises",
        files={
            "01_processes/conftest.py": CHEATING_CONFTEST,
            "conftest.py": CHEATING_CONFTEST,
            "pytest.ini": "[pytest]\naddopts = --co\n",
            "01_processes/sitecustomize.py": "import os\nos._exit(0)\n",
            "01_processes/processes.py": PATCHING_MODULE,
        },
        only=["processes"],
    )
    # What a naive pytest call would obey. (PYTHONPATH is left alone: it would
    # change the grader's own interpreter, which is the caller's to set.)
    hostile_environment = {"PYTEST_ADDOPTS": "--co -p no:grader.plugin", "PYTEST_PLUGINS": "conftest"}
    graded = grade(
        "--submission", str(submission), "--only", "processes", "--start-method", "fork", "--isolation", tier,
        env=hostile_environment,
    )  # fmt: skip
    assert graded.exit_code == 0, graded.stderr
    assert graded.scorecard["score"] == 0
    assert graded.scorecard["complete"] is True
    outcomes = {test["outcome"] for test in graded.exercise("processes")["tests"]}
    assert "passed" not in outcomes, outcomes


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        (["--submission", "/nonexistent/kata"], "does not exist"),
        (["--submission", __file__], "is a file, not a folder"),
        (["--only", "no_such_exercise"], "no such exercise"),
        (["--call-timeout", "0"], "must be more than 0"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(grade, arguments, reason):
    graded = grade(*arguments)
    assert graded.exit_code == 2
    assert graded.scorecard is None
    lines = graded.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cannot grade:") and reason in lines[0], graded.stderr


def test_fail_under_exits_1_below_the_threshold_and_0_above(grade):
    below = grade("--only", "processes", "--start-method", "fork", "--fail-under", "50")
    assert below.exit_code == 1 and below.scorecard["percent"] == 0.0
    above = grade("--solutions", "--only", "processes", "--start-method", "fork", "--fail-under", "100")
    assert above.exit_code == 0 and above.scorecard["percent"] == 100.0


def test_an_empty_folder_is_graded_as_missing_everything(grade, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    graded = grade("--submission", str(empty), "--start-method", "fork", "--only", "processes")
    assert graded.exit_code == 0
    assert graded.exercise("processes")["status"] == "error"
    assert "01_processes/ is missing" in graded.exercise("processes")["message"]


def test_process_isolation_is_recorded_and_warned_about(grade):
    graded = grade("--solutions", "--only", "processes", "--start-method", "fork", "--isolation", "process")
    assert graded.exit_code == 0
    assert graded.scorecard["isolation"] == {
        "tier": "process",
        "note": "process isolation was asked for",
        "memory": {"limit_mib": 1024, "mechanism": "watchdog"},  # every tier caps a call's whole process tree
    }
    assert "not a determined cheater" in graded.stderr
    assert graded.scorecard["percent"] == 100.0
