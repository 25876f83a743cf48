"""Faults around a grading run: a scorecard never half-written, Ctrl-C and SIGTERM, a dead worker, the deadline.

Each test that runs the grader starts it itself (it must signal it or watch
it while it runs) and proves, by pid, that nothing the run started outlives it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from grader.collect import ExpectedTest, collect, read_expected
from grader.manifest import load_manifest
from grader.names import PROCESS
from grader.run import RunSettings, run_hidden_tests
from grader.scorecard import ExerciseScore, Scorecard, TaskScore, write_scorecard
from grader.scorecard import TestScore as ScoredTest  # not collected as a test class
from grader.target import choose_target, stage

from .conftest import (
    FIXTURES,
    ROOT,
    TIERS_HERE,
    Graded,
    grader_environment,
    leftovers,
    living,
    recorded_pids,
    start_last,
    validate_scorecard,
)

# Slow: `nox -s tests` runs these on the newest installed Python only (see the noxfile).
pytestmark = pytest.mark.heavy

NO_RESULT = "the test did not finish"
SIZES = {"a": 800, "b": 400}  # tests in the two scorecards a writer alternates between
RUN_TIMEOUT = 300  # seconds any one grading run below may take before the test gives up on it
STOP_WITHIN = 30  # seconds from a signal to the grader's exit: generous; it proves "promptly, not hung"


# --- 1. the scorecard is written atomically ---------------------------------------------------------------------


def big_scorecard(tests: int, label: str) -> Scorecard:
    """A valid scorecard of about tests * 600 bytes, so that writing it takes a while."""
    scores = [
        ScoredTest(
            id=f"test_demo.py::test_{label}_{number}",
            task=1,
            name=f"check {number}",
            score=0.0,
            max_score=1.0,
            outcome="failed",
            duration=0.1,
            message=f"{label} failed",
            hint="a hint",
            output=label * 500,
            start_methods={"fork": "failed"},
        )
        for number in range(tests)
    ]
    exercise = ExerciseScore(
        "demo", "Demo", 0.0, float(tests), "failed", "", [TaskScore(1, "T", 0.0, tests)], scores, 1
    )
    return Scorecard(
        grader={"name": "mp-kata grader", "version": "0"},
        target={"kind": "submission", "path": "/nowhere"},
        environment={"python": "3", "implementation": "CPython", "platform": "Linux", "cpu_count": 1},
        start_methods=["fork"],
        isolation={"tier": "process", "note": ""},
        started_at="2026-01-01T00:00:00Z",
        duration=1.0,
        complete=True,
        score=0.0,
        max_score=float(tests),
        percent=0.0,
        exercises=[exercise],
    )


def write_in_place(scorecard: Scorecard, path: Path) -> None:
    """What write_scorecard must not be: open (truncating) and write, so a reader can catch it half-way."""
    path.write_text(json.dumps(scorecard.to_dict(), indent=2) + "\n")


WRITER = """
import sys
from pathlib import Path
from grader.scorecard import write_scorecard
from tests.test_faults import SIZES, big_scorecard, write_in_place

path, how, rounds = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
write = write_scorecard if how == "atomic" else write_in_place
cards = [big_scorecard(tests, label) for label, tests in SIZES.items()]
print("ready", flush=True)
round = 0
while rounds == 0 or round < rounds:
    write(cards[round % 2], path)
    round += 1
"""


def watch_writes(folder: Path, how: str, rounds: int, stop_at_first_torn: bool) -> tuple[int, int, bool]:
    """Read the scorecard as fast as possible while a writer process rewrites it.

    Returns (reads of a whole scorecard, reads of anything else, whether it went
    missing after it had once been there).
    """
    path = folder / "scorecard.json"
    whole = {(folder.parent / f"{label}.json").read_bytes() for label in SIZES}
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), how, str(rounds)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout.readline().strip() == "ready"
        good = torn = 0
        seen = vanished = False
        give_up = time.monotonic() + 60
        while time.monotonic() < give_up:
            finished = writer.poll() is not None
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                vanished = vanished or seen
            else:
                seen = True
                if data in whole:
                    good += 1
                else:
                    torn += 1
                    if stop_at_first_torn:
                        break
            if finished:
                break
        return good, torn, vanished
    finally:
        writer.kill()
        writer.wait()


def test_a_reader_never_sees_half_a_scorecard_and_no_temporary_file_is_left(tmp_path):
    for label, tests in SIZES.items():
        write_scorecard(big_scorecard(tests, label), tmp_path / f"{label}.json")
    validate_scorecard(json.loads((tmp_path / "a.json").read_text()))
    watched = tmp_path / "watched"
    watched.mkdir()

    # The reader can catch a file half-written: writing in place is caught.
    _, torn, _ = watch_writes(watched, "in-place", 0, stop_at_first_torn=True)
    assert torn >= 1, "the reader never caught an in-place write half-way: it could not tell atomic from not"

    (watched / "scorecard.json").unlink()
    good, torn, vanished = watch_writes(watched, "atomic", 25, stop_at_first_torn=False)
    assert torn == 0, f"{torn} of {good + torn} reads saw something other than a whole scorecard"
    assert good >= 20, f"only {good} reads overlapped the writes"
    assert not vanished, "the scorecard went missing between two writes"
    assert sorted(p.name for p in watched.iterdir()) == ["scorecard.json"]


class Unserialisable:
    """A value json.dump meets half-way through a scorecard, after it has written part of it."""


@pytest.mark.parametrize(
    "failure",
    ["a value json cannot write", "interrupted while syncing", "the target is a folder"],
)
def test_a_failed_write_keeps_the_previous_scorecard_and_leaves_no_temporary_file(tmp_path, monkeypatch, failure):
    path = tmp_path / "scorecard.json"
    write_scorecard(big_scorecard(10, "old"), path)
    before = path.read_bytes()
    new = big_scorecard(2000, "new")
    expected: type[BaseException] = OSError
    if failure == "a value json cannot write":
        last = new.exercises[0].tests[-1]
        new.exercises[0].tests[-1] = ScoredTest(**{**last.__dict__, "start_methods": {"fork": Unserialisable()}})
        expected = TypeError
    elif failure == "interrupted while syncing":

        def interrupted(fd: int) -> None:
            raise KeyboardInterrupt

        monkeypatch.setattr(os, "fsync", interrupted)
        expected = KeyboardInterrupt
    else:
        path = tmp_path / "a-folder"
        path.mkdir()

    with pytest.raises(expected):
        write_scorecard(new, path)
    monkeypatch.undo()
    assert (tmp_path / "scorecard.json").read_bytes() == before, "the previous scorecard was changed"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({"scorecard.json", path.name})
    if path.is_dir():
        assert list(path.iterdir()) == []


# --- what a stopped pytest reports -------------------------------------------------------------------------------


def test_a_test_that_did_not_finish_before_pytest_stopped_is_an_error_not_a_pass(tmp_path):
    """Stopped by SIGINT, pytest still writes its report, with the running test's first stages only.

    pytest-json-report starts every entry as "passed" and changes it only on a
    failed stage, so a test stopped in its call, with only its setup reported,
    reads "passed". (The same report as the grading runs below, written by hand.)
    """
    expected = [
        ExpectedTest(f"test_demo.py::test_{name}[fork]", "demo", 1, name, "fork")
        for name in ("finished", "stopped_in_call", "stopped_in_teardown", "on_a_crashed_worker")
    ]
    finished, in_call, in_teardown, crashed = (test.nodeid for test in expected)
    passed = {"duration": 0.1, "outcome": "passed"}
    entries = [
        {"nodeid": finished, "outcome": "passed", "setup": passed, "call": passed, "teardown": passed},
        {"nodeid": in_call, "outcome": "passed", "setup": passed},
        {"nodeid": in_teardown, "outcome": "passed", "setup": passed, "call": passed},
        {"nodeid": crashed, "outcome": "failed", "???": {"outcome": "failed", "longrepr": "worker 'gw0' crashed"}},
    ]
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"exitcode": 2, "tests": entries}))
    results, problem = collect(expected, report)
    assert problem is None
    outcomes = {result.test.nodeid: (result.outcome, result.message) for result in results}
    assert outcomes[finished] == ("passed", "")
    for nodeid in (in_call, in_teardown):
        assert outcomes[nodeid][0] == "error" and NO_RESULT in outcomes[nodeid][1], outcomes[nodeid]
    assert outcomes[crashed][0] == "error" and "worker crashed" in outcomes[crashed][1], outcomes[crashed]


def test_the_lines_written_as_tests_end_hold_the_results_the_report_holds(tmp_path):
    """A stopped pytest may not write its report within its grace (a loaded machine): the progress
    lines grader.plugin writes as each test ends stand in for it, so they must say the same."""
    exercise = load_manifest().exercise("processes")
    submission = FIXTURES / "submissions" / "processes-start-joins-first"
    staged = stage(choose_target("submission", submission), [exercise], tmp_path / "staged")
    settings = RunSettings(
        start_methods=("fork",), workers=0, call_timeout=10.0, deadline=300.0, isolation=PROCESS, every_method=True
    )
    output = run_hidden_tests([exercise], staged.root, tmp_path / "work", settings)
    expected = read_expected(output.collected)

    from_report, problem = collect(expected, output.report)
    from_lines, lost = collect(expected, tmp_path / "no-report.json", output.progress)

    assert problem is None and lost == "pytest wrote no report"
    assert {result.outcome for result in from_report} >= {"passed", "failed"}, "the run should pass and fail"
    assert from_lines == from_report


# --- helpers for the grading runs below -----------------------------------------------------------------------


class Run:
    """One `python -m grader grade --json` process that a test starts, watches and signals itself.

    While the test waits on it, every descendant it ever has is noted (pid, start time,
    command line), so that the test can prove afterwards that none of them still runs.
    """

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.card = tmp_path / "scorecard.json"
        self.out, self.err = tmp_path / "grader.out", tmp_path / "grader.err"
        self.seen: dict[tuple[int, float], str] = {}
        command = [sys.executable, "-m", "grader", "grade", "--json", str(self.card), *args]
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=grader_environment(tmp_path), stdin=subprocess.DEVNULL, stdout=out, stderr=err
            )
        self.started = time.monotonic()

    def watch(self) -> None:
        try:
            descendants = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.Error:
            return
        for process in descendants:
            try:
                # The latest command line: a child seen between fork and exec shows its parent's.
                self.seen[(process.pid, process.create_time())] = " ".join(process.cmdline())
            except psutil.Error:
                pass

    def wait_for(self, what: str, condition: Callable[[], bool], timeout: float = 180) -> None:
        give_up = time.monotonic() + timeout
        while True:
            self.watch()
            if condition():
                self.watch()  # what made it true, too
                return
            if self.process.poll() is not None:
                raise AssertionError(f"the grader ended (status {self.process.returncode}) before {what}: {self.log()}")
            if time.monotonic() > give_up:
                raise AssertionError(f"no {what} within {timeout} s: {self.log()}")
            time.sleep(0.05)

    def finish(self, timeout: float = RUN_TIMEOUT) -> Graded:
        give_up = time.monotonic() + timeout
        while self.process.poll() is None:
            if time.monotonic() > give_up:
                self.kill()
                raise AssertionError(f"the grader did not end within {timeout} s: {self.log()}")
            self.watch()
            time.sleep(0.1)
        scorecard = json.loads(self.card.read_text()) if self.card.exists() else None
        if scorecard is not None:
            validate_scorecard(scorecard)
        return Graded(self.process.returncode, self.out.read_text(), self.err.read_text(), scorecard)

    def still_running(self) -> list[str]:
        """The run's processes that outlived it (the same pid and start time, not a zombie)."""
        alive = []
        for (pid, created), cmdline in self.seen.items():
            try:
                process = psutil.Process(pid)
                if process.create_time() == created and process.status() != psutil.STATUS_ZOMBIE:
                    alive.append(f"{pid} {process.status()} {cmdline[:100]}")
            except psutil.Error:
                pass
        return alive

    def saw(self, marker: str) -> int:
        """How many of the run's processes had marker on their command line."""
        return sum(marker in cmdline for cmdline in self.seen.values())

    def log(self) -> str:
        return f"stdout: {self.out.read_text()[-1500:]!r} stderr: {self.err.read_text()[-1500:]!r}"

    def kill(self) -> None:
        """For a test that failed half-way: end the grader (its own handler ends what it started), then the rest."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for (pid, created), _ in self.seen.items():
            try:
                process = psutil.Process(pid)
                if process.create_time() == created:
                    process.kill()
            except psutil.Error:
                pass


@pytest.fixture
def start_run(tmp_path):
    runs: list[Run] = []

    def start(*args: str) -> Run:
        runs.append(Run(tmp_path, *args))
        return runs[-1]

    yield start
    for run in runs:
        run.kill()


def marked_processes(marker: str) -> list[int]:
    """Living processes with marker as one of their arguments."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        if marker in (process.info["cmdline"] or []) and process.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(process.pid)
    return found


def is_running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


SOLVED_PROCESSES = (ROOT / "solutions" / "01_processes" / "processes.py").read_text()

# Every function of exercise 2 starts a process of its own and a program marked with the
# test's folder, then waits for them: forever, as far as the run is concerned.
HANGING_POOL = """
import multiprocessing, subprocess, sys, time

MARKER = {marker!r}

def hang(*args, **kwargs):
    child = multiprocessing.Process(target=time.sleep, args=(600,))
    child.start()
    program = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", MARKER])
    child.join()
    program.wait()

sum_of_squares = choose_pool_size = parallel_map = parallel_sum_of_squares = hang
"""


def hanging_pool_submission(make_submission, tmp_path: Path) -> tuple[Path, str]:
    """Exercise 1 solved, exercise 2 hanging in every call; and the hanging programs' marker."""
    marker = f"kata-hang-{tmp_path}"
    files = {"02_pool/pool.py": HANGING_POOL.format(marker=marker)}
    return make_submission(files=files, only=["processes", "pool"]), marker


# --- 2. SIGINT and SIGTERM ------------------------------------------------------------------------------------

INTERRUPTS = [(name, tier) for name in ("SIGINT", "SIGTERM") for tier in TIERS_HERE]


@pytest.mark.parametrize(("signal_name", "tier"), INTERRUPTS, ids=[f"{s}-{t}" for s, t in INTERRUPTS])
def test_a_signal_stops_everything_and_still_writes_an_incomplete_scorecard(
    start_run, make_submission, tmp_path, signal_name, tier
):
    number = signal.Signals[signal_name]
    submission, marker = hanging_pool_submission(make_submission, tmp_path)
    start_last(tmp_path / "kata-state", ["pool"])
    run = start_run(
        "--submission", str(submission), "--only", "processes", "--only", "pool", "--start-method", "fork",
        "-n", "2", "--call-timeout", "120", "--isolation", tier,
    )  # fmt: skip
    # Exercise 1 (solved) starts first (start_last), so once both workers hang in exercise 2,
    # every test of exercise 1 has finished.
    run.wait_for("two hanging sandboxes", lambda: len(marked_processes(marker)) >= 2)
    # pytest, 2 workers, 2 sandboxes, their 2 children and 2 marked programs at least
    assert run.saw(marker) >= 2 and len(run.seen) >= 9, f"saw {len(run.seen)} processes"

    signalled = time.monotonic()
    run.process.send_signal(number)
    graded = run.finish()
    took = time.monotonic() - signalled

    assert graded.exit_code == -number, f"exit status {graded.exit_code}, expected death by {signal_name}"
    assert took < STOP_WITHIN, f"the grader took {took:.1f} s to stop after {signal_name}"
    assert run.still_running() == []
    assert leftovers(str(tmp_path)) == []

    card = graded.scorecard
    assert card is not None, f"no scorecard after {signal_name}: {run.log()}"
    assert card["complete"] is False
    assert any(f"interrupted ({signal_name})" in notice for notice in card["notices"]), card["notices"]
    assert "INCOMPLETE" in graded.stdout
    # What finished keeps its result; what did not is an error, never a pass.
    processes = graded.tests("processes")
    assert {name: test["outcome"] for name, test in processes.items()} == dict.fromkeys(processes, "passed")
    for name, test in graded.tests("pool").items():
        assert test["outcome"] == "error" and NO_RESULT in test["message"], (name, test)
    assert card["score"] == graded.exercise("processes")["max_score"] and graded.exercise("pool")["score"] == 0


# --- 3. a pytest worker killed by the graded code -------------------------------------------------------------

# whoami, in the sandbox's own process (not in a child of it), records its pid, kills its
# parent (the pytest worker, under the process tier), then sleeps. start_worker hangs, so
# that the run goes on after the worker died.
KILLS_ITS_WORKER = """

def start_worker(target, args=(), kwargs=None, name=None):
    import time

    time.sleep(600)


def whoami():
    import signal, time
    from pathlib import Path

    if multiprocessing.parent_process() is None:
        Path({pids!r}, f"pid-{{os.getpid()}}").write_text(str(os.getpid()))
        victim = os.getppid()  # the sandbox's zygote; its own parent is the pytest worker
        for _ in range({generations} - 1):
            with open(f"/proc/{{victim}}/stat") as stat:
                victim = int(stat.read().rpartition(")")[2].split()[1])
        os.kill(victim, signal.SIGKILL)
        time.sleep(600)
    return _solved_whoami()
"""


def kills_an_ancestor(make_submission: Callable, tmp_path: Path, generations: int) -> tuple[Path, Path]:
    """A solved submission whose whoami() kills its zygote (1) or its pytest worker (2); and its pid folder."""
    pids = tmp_path / "pids"
    pids.mkdir()
    killer = KILLS_ITS_WORKER.format(pids=str(pids), generations=generations)
    source = SOLVED_PROCESSES.replace("def whoami(", "def _solved_whoami(") + killer
    return make_submission(files={"01_processes/processes.py": source}, only=["processes"]), pids


@pytest.mark.skipif("process" not in TIERS_HERE, reason="the process tier is not available here")
def test_a_worker_killed_by_graded_code_is_an_error_and_the_rest_is_graded(start_run, make_submission, tmp_path):
    submission, pids = kills_an_ancestor(make_submission, tmp_path, generations=2)
    run = start_run(
        "--submission", str(submission), "--only", "processes", "--start-method", "fork", "-n", "2",
        "--call-timeout", "8", "--isolation", "process",
    )  # fmt: skip
    run.wait_for("the sandbox that kills its worker", lambda: recorded_pids(pids) != [])
    [killer] = recorded_pids(pids)
    [pytest_pid] = [pid for (pid, _), cmdline in run.seen.items() if " -m pytest " in cmdline]
    run.wait_for("the end of the dead worker's sandbox", lambda: not is_running(killer), timeout=60)
    # Left alone, it would sleep until the sweep after pytest ends.
    assert is_running(pytest_pid), "the orphan of the dead worker lived as long as pytest"
    graded = run.finish()

    assert graded.exit_code == 0, run.log()
    assert graded.scorecard["complete"] is True
    tests = graded.tests("processes")
    killed = tests["test_whoami_in_the_main_process"]
    assert killed["outcome"] == "error", killed
    assert "worker crashed" in killed["message"], killed["message"]
    assert tests["test_target_runs_in_another_process"]["outcome"] == "timeout"
    for name in (
        "test_processes_run_at_the_same_time",
        "test_run_all_waits_for_every_process",
        "test_exit_codes_come_back_in_order",
        "test_whoami_in_a_child_process",
    ):
        assert tests[name]["outcome"] == "passed", tests[name]
    assert run.still_running() == []
    assert leftovers(str(tmp_path)) == []


@pytest.mark.skipif("process" not in TIERS_HERE, reason="the process tier is not available here")
def test_a_zygote_killed_by_graded_code_is_an_error_and_the_next_calls_get_a_new_one(grade, make_submission, tmp_path):
    submission, pids = kills_an_ancestor(make_submission, tmp_path, generations=1)
    since = time.time()
    graded = grade(
        "--submission", str(submission), "--only", "processes", "--start-method", "fork", "-n", "0",
        "--call-timeout", "8", "--isolation", "process",
    )  # fmt: skip
    assert graded.exit_code == 0, graded.stderr
    tests = graded.tests("processes")
    killed = tests.pop("test_whoami_in_the_main_process")
    assert killed["outcome"] == "error" and "sandbox" in killed["message"] and "killed" in killed["message"], killed
    assert tests["test_target_runs_in_another_process"]["outcome"] == "timeout"  # start_worker sleeps
    for name in (
        "test_processes_run_at_the_same_time",
        "test_run_all_waits_for_every_process",
        "test_exit_codes_come_back_in_order",
        "test_whoami_in_a_child_process",  # a later call, in a new zygote
    ):
        assert tests[name]["outcome"] == "passed", tests[name]
    assert living(recorded_pids(pids), since) == []


# The same attempt, saying what happened: the parent's pid as the code sees it, and kill()'s result.
TRIES_TO_KILL_ITS_WORKER = """

def whoami():
    import signal, time

    if multiprocessing.parent_process() is None:
        parent = os.getppid()
        what = "no parent to kill"
        if parent > 0:  # kill(0, ...) would be its own process group
            try:
                os.kill(parent, signal.SIGKILL)
                what = "kill returned"
            except OSError as exc:
                what = type(exc).__name__
        time.sleep(1)  # a kill that landed would have ended the worker by now
        raise RuntimeError(f"kill-parent {parent}: {what}")
    return _solved_whoami()
"""

SANDBOX_UID_TIERS = [tier for tier in TIERS_HERE if tier != "process"]


@pytest.mark.skipif(not SANDBOX_UID_TIERS, reason="no tier with a sandbox uid here")
@pytest.mark.parametrize("tier", SANDBOX_UID_TIERS)
def test_graded_code_cannot_kill_its_worker_under_a_sandbox_uid(grade, make_submission, tier):
    source = SOLVED_PROCESSES.replace("def whoami(", "def _solved_whoami(") + TRIES_TO_KILL_ITS_WORKER
    submission = make_submission(files={"01_processes/processes.py": source}, only=["processes"])
    graded = grade(
        "--submission", str(submission), "--only", "processes", "--start-method", "fork", "-n", "2",
        "--isolation", tier,
    )  # fmt: skip
    assert graded.exit_code == 0, graded.stderr
    assert graded.scorecard["complete"] is True
    tests = graded.tests("processes")
    attempt = tests.pop("test_whoami_in_the_main_process")
    # The call came back to a living worker: the code's own exception, not a crashed worker.
    assert attempt["outcome"] == "failed", attempt
    # Its parent is the sandbox's zygote, which runs as root (and, under namespaces, the worker is out of sight).
    assert "kill-parent" in attempt["message"] and "PermissionError" in attempt["message"], attempt["message"]
    assert {name: test["outcome"] for name, test in tests.items()} == dict.fromkeys(tests, "passed")


# --- 4. the deadline ------------------------------------------------------------------------------------------


def test_a_run_past_its_deadline_ends_promptly_with_every_unfinished_test_an_error(
    start_run, make_submission, tmp_path
):
    # Long enough for pytest to start and reach the hang on a 2-core machine loaded far beyond CI's load
    # (30 s was not, at a load average of 23).
    deadline = 45
    submission, marker = hanging_pool_submission(make_submission, tmp_path)
    run = start_run(
        "--submission", str(submission), "--only", "processes", "--only", "pool", "--start-method", "fork",
        "-n", "2", "--call-timeout", "120", "--deadline", str(deadline), "--isolation", TIERS_HERE[0],
    )  # fmt: skip
    graded = run.finish()
    took = time.monotonic() - run.started

    assert graded.exit_code == 0, run.log()  # graded, though incomplete: the scorecard says so
    assert took < deadline + STOP_WITHIN, f"a run with a deadline of {deadline} s took {took:.1f} s"
    assert run.saw(marker) >= 1, "the hanging code never ran"
    assert run.still_running() == []
    assert leftovers(str(tmp_path)) == []
    card = graded.scorecard
    assert card["complete"] is False
    assert any(f"deadline of {deadline} s" in notice for notice in card["notices"]), card["notices"]
    for name, test in graded.tests("pool").items():
        assert test["outcome"] == "error" and NO_RESULT in test["message"], (name, test)
    # Exercise 1 runs before the hang: what finished kept its result, what did not is an error.
    processes = graded.tests("processes").values()
    assert all(t["outcome"] == "passed" or NO_RESULT in t["message"] for t in processes), list(processes)
    assert any(t["outcome"] == "passed" for t in processes), "no result of the finished tests was kept"
