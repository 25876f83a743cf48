"""The student's loop: list, check, hint, reset, watch, and the progress file behind them.

Each test works in a kata folder of its own (a git checkout of exercises/,
as a student's fresh clone is), chosen with KATA_ROOT, so that nothing here
touches the checkout's own exercises or progress.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader.grading import remember_durations
from grader.manifest import load_manifest
from grader.plugin_api import read_durations, run_order
from grader.render import render_text
from grader.scorecard import ExerciseScore, Scorecard, TaskScore
from grader.scorecard import TestScore as CheckScore  # not a test class
from grader.state import DONE, IN_PROGRESS, NOT_STARTED, load_state

from .conftest import ROOT, grader_environment, leftovers

PROCESSES = load_manifest().exercise("processes")
STUB = f"exercises/{PROCESSES.folder}/{PROCESSES.file_name}"
SOLUTION = (ROOT / "solutions" / PROCESSES.folder / PROCESSES.file_name).read_text()


@pytest.fixture
def kata(tmp_path: Path) -> Path:
    """A student's fresh clone: exercises/ committed to git, nothing graded yet."""
    root = tmp_path / "kata"
    shutil.copytree(ROOT / "exercises", root / "exercises", ignore=shutil.ignore_patterns("__pycache__"))
    git = ["git", "-C", str(root), "-c", "user.name=kata", "-c", "user.email=kata@localhost"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "stubs"], check=True)
    return root


def environment(kata: Path) -> dict[str, str]:
    env = grader_environment(kata.parent)
    env.pop("KATA_STATE_DIR")  # the kata folder's own .kata/, as a student has it
    return {**env, "KATA_ROOT": str(kata)}


def kata_command(kata: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "grader", *args],
        cwd=kata,
        env=environment(kata),
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )


def solve(kata: Path) -> None:
    (kata / STUB).write_text(SOLUTION)


def test_version_names_the_grader():
    said = subprocess.run([sys.executable, "-m", "grader", "--version"], capture_output=True, text=True)
    assert said.returncode == 0 and said.stdout.startswith("mp-kata grader "), said.stdout


def test_the_graders_own_process_never_imports_pytest():
    """Every command starts in this process; pytest runs only in the child that runs the hidden tests."""
    probe = (
        "import sys, grader.cli; print(sorted(m for m in sys.modules if m.split('.')[0] in ('pytest', '_pytest'))[:3])"
    )
    said = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert said.returncode == 0, said.stderr
    assert said.stdout.strip() == "[]", f"importing the grader imports {said.stdout.strip()}"


def test_list_on_a_fresh_clone_marks_the_first_exercise_next(kata):
    listed = kata_command(kata, "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].startswith("Progress: [--------------------] 0/12 exercises done, 0/119 points"), lines[0]
    rows = [line for line in lines if line[:3].strip().rstrip(".").isdigit()]
    assert len(rows) == 12
    assert all("not started" in row for row in rows), rows
    assert rows[0].endswith("<- next") and not any("<- next" in row for row in rows[1:]), rows
    assert "python -m grader check 1" in listed.stdout


@pytest.mark.heavy  # grades whole exercises: once, on the newest Python
def test_check_of_the_stub_shows_one_exercise_with_hints_and_where_to_look(kata):
    checked = kata_command(kata, "check", "--start-method", "fork", "-n", "2")
    assert checked.returncode == 1, checked.stderr  # not done yet
    out = checked.stdout
    assert out.startswith("Grading exercises"), out[:200]
    assert len(out.splitlines()) < 80, out
    for task in PROCESSES.tasks:
        assert f"FAIL task {task.number}: {task.title}" in out
        assert task.hint.split()[0] in out
    assert f"look at: {STUB}:25, in start_worker()" in out
    assert "not written yet" in out and "(the same as above)" in out
    assert "provisional: checked under fork only" in out
    assert "Pool" not in out  # only the current exercise
    assert "Score: 0/7" in out
    # A provisional grade is not a grade: the exercise is still not started.
    assert "not started" in kata_command(kata, "list").stdout.splitlines()[2]


@pytest.mark.heavy  # grades whole exercises: once, on the newest Python
def test_check_of_a_solved_exercise_says_done_and_names_the_next_and_list_follows(kata):
    solve(kata)
    checked = kata_command(kata, "check", "-n", "2")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Score: 7/7 (100%)" in checked.stdout
    assert "Exercise 1 is done. Next: 2. Pool: a team of worker processes (python -m grader check 2)." in checked.stdout
    for task in PROCESSES.tasks:
        assert f"ok   task {task.number}: {task.title}" in checked.stdout
    state = json.loads((kata / ".kata" / "state.json").read_text())
    assert state["exercises"]["processes"]["score"] == 7
    listed = kata_command(kata, "list").stdout.splitlines()
    assert listed[0].startswith("Progress: [##") and "1/12 exercises done, 7/119 points" in listed[0]
    assert "done" in listed[2] and "7/7" in listed[2]
    assert listed[3].endswith("<- next")
    # Changed after its check: no longer done.
    (kata / STUB).write_text(SOLUTION + "\n# an edit\n")
    listed = kata_command(kata, "list").stdout.splitlines()
    assert "in progress" in listed[2] and "changed since its last check" in listed[2], listed[2]
    assert listed[2].split("(")[0].rstrip().endswith("<- next"), listed[2]


def test_hint_shows_the_tasks_hints_and_refuses_an_unknown_task(kata):
    one = kata_command(kata, "hint", "processes", "2")
    assert one.returncode == 0, one.stderr
    assert PROCESSES.task(2).hint in one.stdout and f"{STUB}:36, in run_all()" in one.stdout
    assert PROCESSES.task(1).hint not in one.stdout
    every = kata_command(kata, "hint", "1")
    assert all(task.hint in every.stdout for task in PROCESSES.tasks)
    wrong = kata_command(kata, "hint", "1", "9")
    assert wrong.returncode == 2 and "has no task 9" in wrong.stderr
    unknown = kata_command(kata, "hint", "nosuch")
    assert unknown.returncode == 2 and "no such exercise" in unknown.stderr


def test_reset_asks_keeps_a_backup_and_restores_the_stub(kata):
    stub = (kata / STUB).read_text()
    solve(kata)
    refused = kata_command(kata, "reset", "1", stdin="n\n")
    assert refused.returncode == 1 and "Not reset." in refused.stdout
    assert (kata / STUB).read_text() == SOLUTION
    no_answer = kata_command(kata, "reset", "1")  # no terminal, nobody to say yes
    assert no_answer.returncode == 1 and (kata / STUB).read_text() == SOLUTION
    confirmed = kata_command(kata, "reset", "1", stdin="y\n")
    assert confirmed.returncode == 0, confirmed.stderr
    assert (kata / STUB).read_text() == stub
    backups = list((kata / ".kata" / "backups").iterdir())
    assert [backup.read_text() for backup in backups] == [SOLUTION]
    again = kata_command(kata, "reset", "1", "--yes")
    assert again.returncode == 0 and "already the stub" in again.stdout


def _score(exercise_id: str, score: float, max_score: float) -> ExerciseScore:
    exercise = load_manifest().exercise(exercise_id)
    return ExerciseScore(exercise_id, exercise.title, score, max_score, "passed", "", [], [], exercise.number)


def _card(*exercises: ExerciseScore, methods: tuple[str, ...] = ("fork", "spawn", "forkserver")) -> Scorecard:
    return Scorecard(
        grader={}, target={"kind": "exercises", "path": "x"}, environment={}, start_methods=list(methods),
        isolation={"tier": "process", "note": ""}, started_at="", duration=1.0, complete=True,
        score=0, max_score=0, percent=0, exercises=list(exercises),
    )  # fmt: skip


def test_the_state_file_is_created_updated_rebuilt_when_corrupt_and_pruned_when_stale(kata):
    exercises = list(load_manifest().exercises)
    state = load_state(kata, exercises)
    assert not state.path.exists() and state.warnings == []
    assert state.status(PROCESSES) == NOT_STARTED
    solve(kata)
    assert state.status(PROCESSES) == IN_PROGRESS  # edited, never graded
    state.record(_card(_score("processes", 7, 7), methods=("fork",)), exercises)
    assert not state.path.exists()  # one start method: provisional, not kept
    state.record(_card(_score("processes", 7, 7)), exercises)
    assert load_state(kata, exercises).status(PROCESSES) == DONE
    state.record(_card(_score("processes", 5, 7)), exercises)
    assert load_state(kata, exercises).status(PROCESSES) == IN_PROGRESS
    # Stale: an exercise that is not in the manifest, or graded out of other points.
    data = json.loads(state.path.read_text())
    data["exercises"]["gone"] = dict(data["exercises"]["processes"])
    data["exercises"]["pool"] = {**data["exercises"]["processes"], "max_score": 99}
    state.path.write_text(json.dumps(data))
    pruned = load_state(kata, exercises)
    assert pruned.warnings and "stale entries (gone, pool)" in pruned.warnings[0]
    assert set(json.loads(state.path.read_text())["exercises"]) == {"processes"}
    # Corrupt: a warning, and a fresh file.
    state.path.write_text("{not json")
    rebuilt = load_state(kata, exercises)
    assert rebuilt.warnings and "could not be read" in rebuilt.warnings[0]
    assert json.loads(state.path.read_text()) == {"format": 1, "exercises": {}}
    listed = kata_command(kata, "list")
    assert listed.returncode == 0 and listed.stderr == ""  # rebuilt once, quiet after


def test_the_report_numbers_exercises_by_the_manifest_and_shows_prints_and_provisional_grades():
    test = CheckScore("t::x", 1, "a check", 0, 1, "failed", 0.1, "it broke", "a hint", "hello\nfrom the child", {})
    pool = ExerciseScore("pool", "Pool: a team of worker processes", 0, 8, "failed", "", [TaskScore(1, "T", 0, 1)],
                         [test], 2)  # fmt: skip
    long = ExerciseScore("manager", "Manager: dicts, lists and namespaces shared through a server process", 8, 8,
                         "passed", "", [], [], 7)  # fmt: skip
    text = render_text(_card(pool, long, methods=("fork",)))
    rows = [line for line in text.splitlines() if line[:3].strip().rstrip(".").isdigit()]
    assert [row.split(".")[0].strip() for row in rows] == ["2", "7"]
    assert rows[0].index("0/8") == rows[1].index("8/8")  # the score column does not move with the title
    assert "your code printed:" in text and "| hello" in text and "| from the child" in text
    assert "provisional: checked under fork only" in text
    assert "provisional" not in render_text(_card(pool))


API_PROBE = """
import json, sys
from grader.grading import Settings, Started, TaskEnded, TestEnded, grade
events = []
card = grade(Settings(target="solutions", only=("processes",), start_method="fork", workers=2), events.append)
print(json.dumps({
    "first": type(events[0]).__name__,
    "exercises": [e.id for e in events[0].exercises],
    "ended": [[e.done, e.total, e.outcome] for e in events if isinstance(e, TestEnded)],
    "tasks": [[e.task.number, e.passed] for e in events if isinstance(e, TaskEnded)],
    "kinds": [type(e).__name__ for e in events],
    "percent": card.percent,
    "runs": sum(len(e.tests) for e in card.exercises),
}))
"""


@pytest.mark.heavy  # grades whole exercises: once, on the newest Python
def test_the_grading_api_reports_progress_as_tests_end(tmp_path):
    # In a process of its own: grading makes its process a subreaper and sweeps its descendants.
    probe = subprocess.run(
        [sys.executable, "-c", API_PROBE], cwd=ROOT, env=grader_environment(tmp_path),
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    seen = json.loads(probe.stdout)
    assert seen["first"] == "Started" and seen["exercises"] == ["processes"]
    assert len(seen["ended"]) == seen["runs"] and seen["ended"][-1][:2] == [seen["runs"], seen["runs"]]
    assert [done for done, _, _ in seen["ended"]] == list(range(1, seen["runs"] + 1))
    assert sorted(number for number, _ in seen["tasks"]) == [1, 2, 3] and all(passed for _, passed in seen["tasks"])
    # A task is told once its last test has ended, never before.
    assert seen["kinds"].index("TaskEnded") > seen["kinds"].index("TestEnded")
    assert seen["percent"] == 100


@pytest.mark.heavy  # grades whole exercises: once, on the newest Python
def test_watch_checks_again_when_the_file_is_saved_and_leaves_nothing_running(kata):
    log = kata.parent / "watch.out"
    with open(log, "w") as out:
        watcher = subprocess.Popen(
            [sys.executable, "-m", "grader", "watch", "1", "--start-method", "fork", "-n", "2"],
            cwd=kata, env=environment(kata), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        _wait_for(log, "Watching", watcher)
        assert "Score: 0/7" in log.read_text()
        solve(kata)  # the student saves the file
        _wait_for(log, "Score: 7/7", watcher)
        _wait_for(log, "Watching", watcher, count=2)
        assert log.read_text().count("Grading exercises") == 2  # checked once at the start, once per save
        watcher.send_signal(signal.SIGINT)
        assert watcher.wait(timeout=60) in (-signal.SIGINT, 130)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    assert "Stopped watching." in log.read_text()
    assert leftovers(str(kata.parent)) == []


def _wait_for(log: Path, text: str, process: subprocess.Popen, count: int = 1, timeout: float = 300) -> None:
    ends = time.monotonic() + timeout
    while log.read_text().count(text) < count:
        assert process.poll() is None, f"watch ended: {log.read_text()[-2000:]}"
        assert time.monotonic() < ends, f"no {text!r} after {timeout} s: {log.read_text()[-2000:]}"
        time.sleep(0.2)


@pytest.mark.heavy  # grades whole exercises: once, on the newest Python
def test_plain_grade_on_the_students_exercises_shows_the_current_exercise_in_full(kata):
    solve(kata)
    graded = kata_command(kata, "grade", "--only", "1", "--only", "2", "--start-method", "fork", "-n", "2")
    assert graded.returncode == 0, graded.stderr
    rows = [line for line in graded.stdout.splitlines() if line[:3].strip().rstrip(".").isdigit()]
    assert rows[0].startswith(" 1.     7/7  done") and rows[1].startswith(" 2.     0/8  to do"), rows
    assert rows[1].endswith("<- current")
    assert "FAIL task 1" in graded.stdout  # the current exercise in full


SERIAL_RUN_ALL = """
def run_all(target, arg_tuples):
    codes = []
    for args in arg_tuples:
        process = multiprocessing.Process(target=target, args=args)
        process.start()
        process.join()  # in the same loop: one after another
        codes.append(process.exitcode)
    return codes
"""


@pytest.mark.heavy
def test_the_timeline_shows_a_staircase_for_processes_run_in_turn_and_overlap_for_a_parallel_run(
    grade, make_submission
):
    solution = (ROOT / "solutions" / PROCESSES.folder / PROCESSES.file_name).read_text()
    serial = make_submission("solutions", files={"01_processes/processes.py": solution + SERIAL_RUN_ALL})
    graded = grade("--submission", str(serial), "--only", "processes", "--start-method", "fork", "-n", "2")
    check = graded.tests("processes")["test_processes_run_at_the_same_time"]
    assert check["outcome"] == "failed" and "ran one after another" in check["message"], check
    rows = check["timeline"]["rows"]
    assert len(rows) == 3 and all(after["start"] >= before["end"] for before, after in itertools.pairwise(rows))
    drawn = [line.strip() for line in graded.stdout.splitlines() if line.strip().startswith("pid ")]
    assert len(drawn) == 3 and drawn[0].split("|")[1].startswith("#"), graded.stdout
    assert [line.split("|")[1].index("#") for line in drawn] == sorted(line.split("|")[1].index("#") for line in drawn)

    parallel = grade("--solutions", "--only", "processes", "--start-method", "fork", "-n", "2", "-v")
    check = parallel.tests("processes")["test_processes_run_at_the_same_time"]
    assert check["outcome"] == "passed"
    rows = check["timeline"]["rows"]
    assert len(rows) == 3 and max(row["start"] for row in rows) < min(row["end"] for row in rows), rows
    assert "what ran when, run_all's processes" in parallel.stdout


@pytest.mark.heavy
def test_a_module_that_hangs_at_import_costs_its_import_budget_once_not_once_per_test(grade, make_submission):
    submission = make_submission(files={"01_processes/processes.py": "import time\n\ntime.sleep(3600)\n"})
    graded = grade(
        "--submission", str(submission), "--only", "processes", "--start-method", "fork", "-n", "2",
        "--call-timeout", "3",
    )  # fmt: skip
    tests = graded.tests("processes")
    assert {test["outcome"] for test in tests.values()} == {"timeout"}, tests
    for test in tests.values():
        assert "did not finish its import within 3 s" in test["message"], test["message"]
        assert "at processes.py:3 in <module>" in test["message"], test["message"]
    # One test per worker imported the module and waited out the budget; every other test had the verdict
    # at once (or waited for the one import under way), instead of a budget of its own, one after another.
    waited = [test for test in tests.values() if test["duration"] >= 3]
    assert 1 <= len(waited) <= 2 * 2, [(name, test["duration"]) for name, test in tests.items()]
    assert sum(test["duration"] for test in tests.values()) < 3 * len(tests) / 2, tests


def test_tests_start_longest_first_then_unknown_ones_with_exercises_taking_turns():
    tests = ["a.py::t1", "a.py::t2", "a.py::t3", "b.py::t1", "b.py::t2", "c.py::t1"]
    # Nothing known yet: the first test of each file, then the second of each, ...
    assert run_order(tests, {}) == ["a.py::t1", "b.py::t1", "c.py::t1", "a.py::t2", "b.py::t2", "a.py::t3"]
    # Unknown ones first (they may be long), then the known ones, the longest first.
    known = {"a.py::t1": 0.1, "a.py::t2": 2.5, "b.py::t1": 0.7, "b.py::t2": 2.5, "c.py::t1": 0.0}
    assert run_order(tests, known) == ["a.py::t3", "a.py::t2", "b.py::t2", "b.py::t1", "a.py::t1", "c.py::t1"]


def test_durations_are_remembered_for_the_next_run_and_a_bad_file_is_replaced(tmp_path):
    path = tmp_path / "state" / "durations.json"
    assert read_durations(str(path)) == {} and read_durations(None) == {}
    first = CheckScore("t.py::x", 1, "x", 1, 1, "passed", 1.5, "", None, "", {})
    exercise = ExerciseScore("pool", "Pool", 1, 1, "passed", "", [], [first], 2)
    remember_durations(path, [exercise])
    assert read_durations(str(path)) == {"t.py::x": 1.5}
    second = CheckScore("t.py::y", 1, "y", 1, 1, "timeout", 10.0, "", None, "", {})
    remember_durations(path, [ExerciseScore("pool", "Pool", 1, 1, "passed", "", [], [second], 2)])
    assert read_durations(str(path)) == {"t.py::x": 1.5, "t.py::y": 10.0}  # merged, not replaced
    for bad in ("{not json", "[1, 2]", '{"t.py::x": "slow", "t.py::z": -1}'):
        path.write_text(bad)
        assert read_durations(str(path)) == {}
        remember_durations(path, [exercise])
        assert read_durations(str(path)) == {"t.py::x": 1.5}
    assert [p.name for p in path.parent.iterdir()] == ["durations.json"]  # no temporary file left


ORDER_PROBE = """
import json, sys
from pathlib import Path
from grader.grading import Settings, TestEnded, grade
events = []
settings = Settings(target="solutions", only=("processes",), start_method="fork", workers=1,
                    durations_file=Path(sys.argv[1]))
grade(settings, events.append)
print(json.dumps([e.name for e in events if isinstance(e, TestEnded)]))
"""


@pytest.mark.heavy  # grades a whole exercise: once, on the newest Python
def test_a_grade_starts_the_test_that_took_longest_last_time_first(tmp_path):
    durations = tmp_path / "durations.json"
    hidden = ROOT / "grader" / "hidden" / "test_01_processes.py"
    names = re.findall(r"^def (test_\w+)", hidden.read_text(), flags=re.MULTILINE)
    known = {f"{hidden.name}::{name}": 1.0 for name in names if name != "test_target_runs_in_another_process"}
    longest = "test_01_processes.py::test_whoami_in_a_child_process"
    durations.write_text(json.dumps({**known, longest: 99.0}))
    # One worker runs its tests one after the other, in the order the scheduler gives them.
    probe = subprocess.run(
        [sys.executable, "-c", ORDER_PROBE, str(durations)], cwd=ROOT, env=grader_environment(tmp_path),
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    ended = json.loads(probe.stdout)
    # The test with no duration yet first (it may be long), then the one that took longest.
    assert len(ended) == len(names) == 10, ended
    assert ended[0] == "start_worker runs the target in a new, started process", ended
    assert ended[1].startswith("whoami in a child"), ended
    remembered = json.loads(durations.read_text())
    assert len(remembered) == 10 and remembered[longest] < 99.0, remembered


SPINNING_FUNCTIONS = """
def _spin(*args, **kwargs):
    while True:
        pass


start_worker = run_all = whoami = _spin
"""


@pytest.mark.heavy
def test_functions_stuck_before_their_first_process_are_told_in_seconds_not_after_the_budget(grade, make_submission):
    submission = make_submission(files={"01_processes/processes.py": SPINNING_FUNCTIONS}, only=["processes"])
    graded = grade("--submission", str(submission), "--only", "processes", "--start-method", "fork", "-n", "2")
    tests = graded.tests("processes")
    assert len(tests) == 10 and {test["outcome"] for test in tests.values()} == {"timeout"}, tests
    for name, test in tests.items():
        # The scenario's own early end (START_WITHIN, QUICK_WITHIN: 3 s), not the sandbox's 10-s deadline.
        assert "had not returned after" in test["message"], (name, test["message"])
        assert "did not finish within" not in test["message"], (name, test["message"])
        assert "busy, using the CPU" in test["message"], (name, test["message"])
