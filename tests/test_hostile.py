"""Hostile submissions, each graded under every isolation tier this machine has.

For each attack: the score is the honest one (the attacked checks fail, time out or
error with the right outcome, every other check passes, the exact score), the grader
stays up (exit 0, a complete, schema-valid scorecard), nothing it started is left
running, and the run ends in bounded time.

The attacks sit in the reference solution: the attacked function replaces the
reference one (which stays in the module as reference_<name>), the other functions
stay as they are, so the honest score follows from the manifest (honest_score). To
keep the file's run time low, most submissions carry attacks in two functions; each
hidden test still shows the outcome of one attack.

The processes that attacks start name themselves after the test (their comm,
through /proc/self/comm), so that the test sees them from outside under every
tier; where they can (the process tier), they also write pid files.
"""

from __future__ import annotations

import ast
import json
import os
import re
import socket
import sys
import textwrap
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import psutil
import pytest

from grader.manifest import load_manifest
from grader.plugin import MAX_SHOWN_OUTPUT
from grader.protocol import MAX_REPLY_BYTES, Limits
from grader.sandbox import SANDBOX_PROCESSES

from .conftest import ROOT, TIERS_HERE, hidden_tests_of_task, leftovers, living, recorded_pids

# Slow: `nox -s tests` runs these on the newest installed Python only (see the noxfile).
pytestmark = pytest.mark.heavy

MANIFEST = load_manifest()
TASK1, TASK2, TASK3 = (hidden_tests_of_task("processes", task) for task in (1, 2, 3))
# --call-timeout where an attack hangs: each hanging call costs this much, and the honest calls of the
# same run must finish within it on a loaded CI runner.
HANG_TIMEOUT = 10
NOT_HUNG = 120.0  # seconds: far above any run here, it only proves that grading did not hang
GRADER_KILL = 240.0  # the grade fixture stops a grader that runs longer than this
FORK_DOUBLINGS = 8  # the process tier's bounded fork bomb: 2 ** 8 = 256 processes
# Tiers whose sandbox runs as a non-root uid of its own (RLIMIT_NPROC holds, the tmp_path is closed to it).
OWN_UID_TIERS = ("namespaces", "user")

# Appended to every hostile module, after its constants (MARKER, PIDS and the attack's own).
PRELUDE = '''
# ---- added by tests/test_hostile.py: how attack processes make themselves visible
import os as _os
import select as _select


def mark(tag=""):
    """Name this process MARKER + tag, and leave its pid where the test can read it (process tier)."""
    # The process's name, and this thread's: a scenario may run graded code in a thread of its own, and a
    # process forked from a thread is named after that thread.
    for comm in ("/proc/self/comm", "/proc/thread-self/comm"):
        try:
            with open(comm, "w") as stream:
                stream.write(MARKER + tag)
        except OSError:
            pass
    try:  # only the process tier can write into the test's folder
        with open(_os.path.join(PIDS, f"pid-{_os.getpid()}"), "w") as stream:
            stream.write(str(_os.getpid()))
    except OSError:
        pass


def detach(tag, work, daemon=False):
    """Run work() in a new session that nobody waits for (a daemon: after a double fork); return once it runs."""
    ready_read, ready_write = _os.pipe()
    first = _os.fork()
    if first == 0:
        _os.close(ready_read)
        _os.setsid()
        if daemon and _os.fork() != 0:
            _os._exit(0)  # the middle process of the double fork
        # Like any daemon, keep no inherited descriptor but the standard ones (a pipe held open here
        # would keep a join() in the graded code waiting).
        _os.closerange(3, ready_write)
        _os.closerange(ready_write + 1, 1 << 16)
        mark(tag)
        _os.write(1, f"detached {tag}\\n".encode())  # to the call's output, which the scorecard shows
        _os.write(ready_write, b"!")
        _os.close(ready_write)
        try:
            work()
        finally:
            _os._exit(0)
    _os.close(ready_write)
    if daemon:
        _os.waitpid(first, 0)
    if _select.select([ready_read], [], [], 20)[0]:
        _os.read(ready_read, 1)
    _os.close(ready_read)


def ancestors_arguments():
    """The command line of every ancestor of this process that it can see: the grader names its files there."""
    found = []
    pid = _os.getppid()
    while pid > 1:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as stream:
                found.append(stream.read().decode(errors="replace").split("\\0"))
            with open(f"/proc/{pid}/stat") as stream:
                pid = int(stream.read().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return found
'''


@dataclass
class Scene:
    """One test's hostile setting: its folder, the name its attack processes take, their pid folder."""

    tmp_path: Path
    marker: str
    pids: Path
    since: float


@pytest.fixture
def scene(tmp_path: Path) -> Scene:
    pids = tmp_path / "pids"
    pids.mkdir()
    pids.chmod(0o777)
    # A comm holds 15 characters; psutil reads longer names from the command line. The attacks add one letter.
    return Scene(tmp_path, f"hx{uuid.uuid4().hex[:10]}", pids, time.time())


def hostile_module(exercise_id: str, attack: str, replaces: tuple[str, ...], scene: Scene, **constants) -> str:
    """The reference solution with the named functions renamed reference_<name>, then the attack."""
    exercise = MANIFEST.exercise(exercise_id)
    source = (ROOT / "solutions" / exercise.folder / exercise.file_name).read_text()
    lines = source.splitlines()
    functions = {node.name: node for node in ast.parse(source).body if isinstance(node, ast.FunctionDef)}
    for name in replaces:
        line = functions[name].lineno - 1
        lines[line] = lines[line].replace(f"def {name}(", f"def reference_{name}(", 1)
    attack = textwrap.dedent(attack)
    defined = {node.name for node in ast.parse(attack).body if isinstance(node, ast.FunctionDef)}
    assert set(replaces) <= defined, f"the attack does not define {set(replaces) - defined}"
    values = {"MARKER": scene.marker, "PIDS": str(scene.pids), **constants}
    header = "".join(f"{name} = {value!r}\n" for name, value in values.items())
    return "\n".join(lines) + "\n\n\n" + header + PRELUDE + attack


def named(marker: str) -> list[str]:
    """Living processes whose name starts with marker."""
    found = []
    for process in psutil.process_iter(["name", "status", "cmdline"]):
        info = process.info
        if (info["name"] or "").startswith(marker) and info["status"] != psutil.STATUS_ZOMBIE:
            found.append(f"{process.pid} {info['name']} {' '.join(info['cmdline'] or [])[:80]}")
    return found


def honest_score(graded, exercise_id: str, passing: set[str]) -> float:
    """The exercise's points when exactly the tests in passing pass: the manifest's task points, split evenly."""
    tests = graded.tests(exercise_id)
    earned = Fraction(0)
    for task in MANIFEST.exercise(exercise_id).tasks:
        of_task = [name for name, test in tests.items() if test["task"] == task.number]
        assert of_task, f"task {task.number} has no test"
        earned += Fraction(task.points) * sum(name in passing for name in of_task) / len(of_task)
    return round(float(earned), 2)


def grade_hostile(grade, submission: Path, tier: str, *options: str, only=("processes",)):
    """Grade under fork in tier; check that the grader stayed up and did not hang."""
    selection = [part for exercise_id in only for part in ("--only", exercise_id)]
    started = time.monotonic()
    graded = grade(
        "--submission", str(submission), *selection, "--start-method", "fork", "--isolation", tier, *options,
        timeout=GRADER_KILL,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert graded.exit_code == 0, graded.stderr[-2000:]
    card = graded.scorecard
    assert card is not None, graded.stderr[-2000:]
    assert card["complete"] is True, card["notices"]
    assert card["isolation"]["tier"] == tier
    assert [exercise["id"] for exercise in card["exercises"]] == list(only)
    assert elapsed < NOT_HUNG, f"grading took {elapsed:.0f} s"
    return graded


def assert_honest(graded, exercise_id: str, outcomes: dict[str, str]) -> None:
    """The tests in outcomes ended so, every other test passed, and the score is the honest one."""
    tests = graded.tests(exercise_id)
    assert set(outcomes) <= set(tests), f"tests missing from the scorecard: {set(outcomes) - set(tests)}"
    seen = {name: (test["outcome"], test["message"][:300]) for name, test in tests.items()}
    wanted = {name: outcomes.get(name, "passed") for name in tests}
    assert {name: outcome for name, (outcome, _) in seen.items()} == wanted, seen
    passing = {name for name, outcome in wanted.items() if outcome == "passed"}
    assert graded.exercise(exercise_id)["score"] == honest_score(graded, exercise_id, passing)
    card = graded.scorecard
    assert card["score"] == round(sum(exercise["score"] for exercise in card["exercises"]), 2)


def assert_nothing_left(scene: Scene, tier: str) -> None:
    assert leftovers(str(scene.tmp_path)) == []
    assert named(scene.marker) == []
    if tier == "process":
        assert living(recorded_pids(scene.pids), scene.since) == []


def message(graded, exercise_id: str, test: str) -> str:
    return graded.tests(exercise_id)[test]["message"]


def output(graded, exercise_id: str, test: str) -> str:
    return graded.tests(exercise_id)[test]["output"]


def submit(make_submission, exercise_id: str, source: str, **extra_files: str) -> Path:
    """A submission of one exercise whose module is source."""
    folder = MANIFEST.exercise(exercise_id).folder
    files = {f"{folder}/{MANIFEST.exercise(exercise_id).file_name}": source, **extra_files}
    return make_submission(files=files, only=[exercise_id])


class Census(threading.Thread):
    """While grading runs, counts the living processes whose name starts with prefix, per real uid; keeps peaks."""

    def __init__(self, prefix: str):
        super().__init__(daemon=True)
        self.prefix = prefix
        self.peak: Counter[int] = Counter()
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            now: Counter[int] = Counter()
            for process in psutil.process_iter(["name", "uids", "status"]):
                info = process.info
                if (info["name"] or "").startswith(self.prefix) and info["status"] != psutil.STATUS_ZOMBIE:
                    now[info["uids"].real if info["uids"] else -1] += 1
            for uid, count in now.items():
                self.peak[uid] = max(self.peak[uid], count)
            self.stopping.wait(0.1)

    def __enter__(self) -> Census:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.join(30)


# ------------------------------------------------------------------ hangs

LOOP_AND_SENTINEL = """
def start_worker(target, args=(), kwargs=None, name=None):
    mark("l")
    # Niced, so that it spins on CPU time no other test wants; the grader's deadline is the same.
    _os.nice(19)
    while True:  # an infinite loop instead of a process
        pass


def consume(queue):
    mark("c")
    while queue.get() is not None:  # stops at the sentinel, None
        pass


def whoami():
    queue = multiprocessing.Queue()
    consumer = multiprocessing.Process(target=consume, args=(queue,))
    consumer.start()
    for item in range(3):
        queue.put(item)
    consumer.join()  # the producer forgot the sentinel: the consumer waits for ever, and so does this join
    return reference_whoami()
"""


@pytest.mark.parametrize("tier", TIERS_HERE)
def test_an_infinite_loop_and_a_missing_sentinel_time_out(grade, make_submission, scene, tier):
    source = hostile_module("processes", LOOP_AND_SENTINEL, ("start_worker", "whoami"), scene)
    submission = submit(make_submission, "processes", source)
    graded = grade_hostile(grade, submission, tier, "--call-timeout", str(HANG_TIMEOUT), "-n", "2")
    assert_honest(graded, "processes", {name: "timeout" for name in TASK1 + TASK3})
    for name in TASK1 + TASK3:
        # The scenario gives up on a call stuck before its first process (or a whoami that does not answer at
        # once) after 3 s; should the machine be slow enough, the sandbox's deadline ends it first.
        said = message(graded, "processes", name)
        assert "had not returned after" in said or f"did not finish within {HANG_TIMEOUT} s" in said, said
    if tier == "process":  # the loops and the consumers ran (elsewhere their pid files cannot be written)
        assert len(recorded_pids(scene.pids)) >= 4
    assert_nothing_left(scene, tier)


FORK_BOMB_AND_DEADLOCK = """
import time


def start_worker(target, args=(), kwargs=None, name=None):
    mark("b")
    if DOUBLINGS is not None:
        # The process tier runs as root here, and RLIMIT_NPROC does not apply to root: a real bomb would
        # take the machine down, so this one stops at 2 ** DOUBLINGS processes, which then all wait.
        for _ in range(DOUBLINGS):
            _os.fork()
        time.sleep(600)
    while True:  # the real thing: every process forks for ever; at the limit it waits and tries again
        try:
            _os.fork()
        except OSError:
            time.sleep(0.05)


def fill(queue):
    mark("j")
    queue.put(b"x" * (1 << 22))  # more than a pipe holds: this child cannot end before someone reads it


def whoami():
    queue = multiprocessing.Queue()
    children = [multiprocessing.Process(target=fill, args=(queue,)) for _ in range(2)]
    for child in children:
        child.start()
    for child in children:
        child.join()  # joined before the queue is drained: a deadlock
    return reference_whoami()
"""


@pytest.mark.parametrize("tier", TIERS_HERE)
def test_a_fork_bomb_and_a_deadlocked_join_time_out_and_are_swept(grade, make_submission, scene, tier):
    doublings = None if tier in OWN_UID_TIERS else FORK_DOUBLINGS
    source = hostile_module("processes", FORK_BOMB_AND_DEADLOCK, ("start_worker", "whoami"), scene, DOUBLINGS=doublings)
    submission = submit(make_submission, "processes", source)
    with Census(scene.marker + "b") as census:
        graded = grade_hostile(grade, submission, tier, "--call-timeout", str(HANG_TIMEOUT), "-n", "2")
    assert_honest(graded, "processes", {name: "timeout" for name in TASK1 + TASK3})
    assert census.peak, "the fork bomb never ran"
    biggest = max(census.peak.values())
    if tier in OWN_UID_TIERS:
        # The unbounded bomb runs as a sandbox uid of its own (one per grader worker, so peaks are per uid):
        # RLIMIT_NPROC holds it at that many processes.
        assert 0 not in census.peak, census.peak
        assert SANDBOX_PROCESSES // 2 <= biggest <= SANDBOX_PROCESSES, census.peak
    else:
        assert biggest >= 2**FORK_DOUBLINGS // 2, census.peak
    assert_nothing_left(scene, tier)


# ------------------------------------------------------------------ memory and output

MEMORY_AND_FLOOD = """
def grow():  # a memory bomb: ever larger blocks, until the limit stops it
    hog, size = [], 1 << 20
    while True:
        hog.append(bytes(size))
        size *= 2


def start_worker(target, args=(), kwargs=None, name=None):
    grow()  # in the sandbox process itself


def run_all(target, arg_tuples):
    while True:  # an endless flood of output
        print("flood " * 1000)
"""

POOL_WORKER_MEMORY = """
def grow():
    hog, size = [], 1 << 20
    while True:
        hog.append(bytes(size))
        size *= 2


def sum_of_squares(n):
    if multiprocessing.parent_process() is not None:  # in a pool worker: a memory bomb
        grow()
    return reference_sum_of_squares(n)
"""
# The bombs double their blocks: the limit (RLIMIT_AS) then stops them with room to spare for
# reporting the MemoryError, which a bomb of equal blocks may not leave. bytes(n) reserves address
# space without touching its pages, so several such runs at once on a CI runner use no real memory.


@pytest.mark.parametrize("tier", TIERS_HERE)
def test_memory_bombs_and_an_output_flood_fail_cleanly(grade, make_submission, scene, tier):
    files = {
        "01_processes/processes.py": hostile_module("processes", MEMORY_AND_FLOOD, ("start_worker", "run_all"), scene),
        "02_pool/pool.py": hostile_module("pool", POOL_WORKER_MEMORY, ("sum_of_squares",), scene),
    }
    submission = make_submission(files=files, only=["processes", "pool"])
    graded = grade_hostile(grade, submission, tier, "-n", "0", only=("processes", "pool"))
    assert_honest(graded, "processes", {name: "failed" for name in TASK1 + TASK2})
    for name in TASK1:
        assert "raised MemoryError" in message(graded, "processes", name)
    for name in TASK2:
        said = message(graded, "processes", name)
        assert "wrote more than the output limit" in said and "at most 16 MiB" in said, said
        assert "File too large" in said  # Python's own words stay
        flood = output(graded, "processes", name)
        assert "flood" in flood and len(flood) <= MAX_SHOWN_OUTPUT + 100
    in_workers = (
        "test_sum_of_squares_runs_in_a_worker",
        "test_parallel_sum_of_squares_values",
        "test_pool_sized_by_choose_pool_size_and_closed",
    )
    assert_honest(graded, "pool", {name: "failed" for name in in_workers})
    for name in in_workers:
        assert "MemoryError" in message(graded, "pool", name)
    assert_nothing_left(scene, tier)


MEMORY_TREE = """
import time as _time

_children = []
for _child in range(6):  # at import: six processes, each touching 700 MB, 4.2 GB in all
    _pid = _os.fork()
    if _pid == 0:
        mark("m")
        _held = []
        for _step in range(1, 15):
            _held.append(b"\\1" * (50 << 20))  # written, not only reserved: real memory
            _os.write(1, f"child {_child} holds {_step * 50} MB\\n".encode())
        _time.sleep(600)
        _os._exit(0)
    _children.append(_pid)
for _pid in _children:  # the import waits for them: the tree holds its memory while the call runs
    _os.waitpid(_pid, 0)
"""
# MiB a call's processes may pass the cap by before the watchdog (a look every 20 ms) ends them: on a loaded
# machine a look can come late, and six processes on two cores touch a few GB/s between two looks.
MEMORY_OVERSHOOT_MIB = 768
MEMORY_CALL_TIMEOUT = 40.0  # seconds: the import may take 20, far more than filling the tree takes on a busy machine


@pytest.mark.parametrize("tier", TIERS_HERE)
def test_a_process_tree_that_takes_more_memory_than_a_call_may_is_stopped(grade, make_submission, scene, tier):
    """RLIMIT_AS caps each process; the watchdog caps the call's whole tree (Limits.tree_memory_mib)."""
    source = hostile_module("processes", MEMORY_TREE, (), scene)
    # The tree fills at import, which has half a call's time: with sixteen test workers on two cores, touching
    # a gigabyte took longer than the default 5 s, and the import timed out before the cap was reached.
    options = ("-n", "0", "--call-timeout", str(MEMORY_CALL_TIMEOUT))
    graded = grade_hostile(grade, submit(make_submission, "processes", source), tier, *options)
    limit = Limits().tree_memory_mib
    tests = graded.tests("processes")
    for name, test in tests.items():
        assert test["outcome"] == "error", (name, test["message"])
        said = test["message"]
        assert "more memory than a call may use" in said and f"at most {limit} MiB" in said, said
        # What the six children said they held when the call was stopped, added up.
        held: dict[str, int] = {}
        for child, megabytes in re.findall(r"child (\d) holds (\d+) MB", test["output"]):
            held[child] = max(held.get(child, 0), int(megabytes))
        assert 0 < sum(held.values()) <= limit + MEMORY_OVERSHOOT_MIB, (name, held)
    assert graded.exercise("processes")["score"] == 0
    assert_nothing_left(scene, tier)


# ------------------------------------------------------------------ exits

EXITS_IN_A_CALL = """
import sys


def start_worker(target, args=(), kwargs=None, name=None):
    _os._exit(0)


def run_all(target, arg_tuples):
    sys.exit(0)
"""


# Exits at import, and which exit depends on the scenario this process serves (the runner's request, found
# up the call stack): sys.exit(0) in the calls of tasks 3 and 4, os._exit(0) in any other (the grader's
# first look at the module among them).
EXITS_AT_IMPORT = """
import sys

frame = sys._getframe()
while "request" not in frame.f_locals:
    frame = frame.f_back
if frame.f_locals["request"].scenario.rpartition(":")[2].startswith(("map_", "parallel_")):
    sys.exit(0)
_os._exit(0)
"""


@pytest.mark.parametrize("tier", TIERS_HERE)
def test_exits_during_a_call_and_at_import_are_errors_or_failures(grade, make_submission, scene, tier):
    files = {
        "01_processes/processes.py": hostile_module("processes", EXITS_IN_A_CALL, ("start_worker", "run_all"), scene),
        "02_pool/pool.py": hostile_module("pool", EXITS_AT_IMPORT, (), scene),
    }
    submission = make_submission(files=files, only=["processes", "pool"])
    graded = grade_hostile(grade, submission, tier, "-n", "0", only=("processes", "pool"))
    # During a call: os._exit leaves no reply (an error); sys.exit is an exception like any other (a failure).
    assert_honest(graded, "processes", {**{name: "error" for name in TASK1}, **{name: "failed" for name in TASK2}})
    for name in TASK1:
        assert "exited with code 0 before returning a result" in message(graded, "processes", name)
    for name in TASK2:
        assert "your code raised SystemExit: 0" in message(graded, "processes", name)
    # At import: the grader imports the module once per start method, before its first test, and a
    # module that cannot be imported is that one error for every test of the exercise, whatever each
    # test's own call would have met.
    pool_tests = graded.tests("pool")
    assert_honest(graded, "pool", {name: "error" for name in pool_tests})
    assert graded.exercise("pool")["status"] == "error"
    for test in pool_tests.values():
        assert "exited with code 0 before returning a result" in test["message"], test
    assert_nothing_left(scene, tier)


# ------------------------------------------------------------------ values that cannot cross

BIG_VALUES = """
def run_all(target, arg_tuples):
    reference_run_all(target, arg_tuples)
    deep = []
    for _ in range(DEPTH):  # a deeply nested return value
        deep = [deep]
    return [deep]


def whoami():
    answer = reference_whoami()
    answer["name"] = "x" * (8 << 20)  # a huge return value
    return answer
"""


@pytest.mark.parametrize("tier", TIERS_HERE)
def test_a_huge_and_a_deeply_nested_return_value_fail(grade, make_submission, scene, tier):
    source = hostile_module("processes", BIG_VALUES, ("run_all", "whoami"), scene, DEPTH=100_000)
    graded = grade_hostile(grade, submit(make_submission, "processes", source), tier, "-n", "0")
    assert_honest(graded, "processes", {name: "failed" for name in TASK2 + TASK3})
    for name in TASK2:  # too deep to be shown: the checks compared what could be read, and say so
        assert "whose repr() failed" in message(graded, "processes", name), message(graded, "processes", name)
    for name in TASK3:
        assert "the result is too large" in message(graded, "processes", name)
    assert_nothing_left(scene, tier)


RAW_REPLIES = """
import json
import sys


def whoami():
    result_fd = 3  # the runner's own pipe: descriptor 3 in every call's child
    if multiprocessing.parent_process() is None:  # in the sandbox process: a deeply nested reply
        depth = 100_000
        reply = '{"status": "returned", "version": 1, "value": ' + "[" * depth + "]" * depth + "}"
        _os.write(result_fd, reply.encode())
        _os._exit(0)
    chunk = b"[" * 65536  # in a child, which inherited the pipe: a reply larger than the cap
    while True:
        _os.write(result_fd, chunk)
"""


@pytest.mark.parametrize("tier", TIERS_HERE)
def test_replies_written_straight_on_the_result_pipe_are_invalid(grade, make_submission, scene, tier):
    source = hostile_module("processes", RAW_REPLIES, ("whoami",), scene)
    graded = grade_hostile(grade, submit(make_submission, "processes", source), tier, "-n", "0")
    assert_nothing_left(scene, tier)
    assert "could not be read" in message(graded, "processes", "test_whoami_in_the_main_process")
    assert f"larger than {MAX_REPLY_BYTES} bytes" in message(graded, "processes", "test_whoami_in_a_child_process")
    assert_honest(graded, "processes", {name: "error" for name in TASK3})


# ------------------------------------------------------------------ patching, planted files, fooling ==

PATCHER_AND_ALWAYS_EQUAL = '''
import importlib
import json
import sys

PATCHED = []

# pytest, which writes the reports: reachable only if this process can see where it is installed.
sys.path.extend(SITE_PACKAGES)
try:
    import _pytest.reports

    _honest_report = _pytest.reports.TestReport.from_item_and_call

    def _passing_report(item, call):
        report = _honest_report(item, call)
        report.outcome = "passed"
        return report

    _pytest.reports.TestReport.from_item_and_call = staticmethod(_passing_report)
    PATCHED.append("pytest")
except Exception:
    pass

# The grader's trusted stages, if they can be imported here at all.
for _name, _attribute, _value in (
    ("grader.collect", "_judge", lambda entry: ("passed", "")),
    ("grader.score", "points", lambda value: 7.0),
    ("grader.sandbox", "Sandbox", None),
):
    try:
        setattr(importlib.import_module(_name), _attribute, _value)
        PATCHED.append(_name)
    except Exception:
        pass

# json as a report writer uses it: every outcome it writes becomes "passed".
_honest_dumps = json.dumps


def _passing(value):
    if isinstance(value, dict):
        return {key: "passed" if key == "outcome" else _passing(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_passing(item) for item in value]
    return value


json.dumps = lambda value, *args, **kwargs: _honest_dumps(_passing(value), *args, **kwargs)
PATCHED.append("json")


def whoami():
    print(f"patched: {PATCHED}", flush=True)
    raise NotImplementedError


class Anything(int):
    """Equal to everything."""

    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    __hash__ = int.__hash__


class EqualToAll(list):
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False


def run_all(target, arg_tuples):
    return EqualToAll(Anything(-1) for _ in reference_run_all(target, arg_tuples))
'''

CHEATING_CONFTEST = """
import pytest

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    outcome.get_result().outcome = "passed"

def pytest_json_modifyreport(json_report):
    for test in json_report.get("tests", []):
        test["outcome"] = "passed"
"""

# Shadows the standard json wherever the graded folder comes first on the path; says so if imported.
PLANTED_JSON = """
import os
os.write(2, b"planted json.py imported\\n")
os._exit(0)
"""


@pytest.mark.parametrize("tier", TIERS_HERE)
def test_patches_planted_files_and_values_equal_to_everything_change_nothing(grade, make_submission, scene, tier):
    site_packages = [path for path in sys.path if path.endswith("site-packages")]
    source = hostile_module(
        "processes", PATCHER_AND_ALWAYS_EQUAL, ("whoami", "run_all"), scene, SITE_PACKAGES=site_packages
    )
    planted = {}
    for folder in ("", "01_processes/"):
        planted[f"{folder}conftest.py"] = CHEATING_CONFTEST
        planted[f"{folder}pytest.ini"] = "[pytest]\naddopts = --co -p no:grader.plugin\n"
        planted[f"{folder}sitecustomize.py"] = "import os\nos._exit(0)\n"
        planted[f"{folder}json.py"] = PLANTED_JSON
    graded = grade_hostile(grade, submit(make_submission, "processes", source, **planted), tier, "-n", "0")
    assert_honest(graded, "processes", {name: "failed" for name in TASK2 + TASK3})
    patched = output(graded, "processes", "test_whoami_in_the_main_process")
    assert "'json'" in patched, patched  # the patching code ran
    assert "grader." not in patched, patched  # no trusted stage of the grader is within its reach
    if tier == "process":
        assert "'pytest'" in patched, patched  # it reached a pytest, its own copy: the reports did not change
    if tier == "namespaces":
        assert "'pytest'" not in patched, patched
    # The one process that may import the planted json.py is a forkserver child of the submission's own (whoami's
    # check asks one): it starts Python afresh with the submission's folder first on its path, as every spawn or
    # forkserver child of the submission does. That is the submission's own code, in its own sandbox; no stage
    # that judges imports it.
    elsewhere = {
        name: test for name, test in graded.tests("processes").items() if name != "test_whoami_in_a_child_process"
    }
    assert "planted json.py imported" not in json.dumps(elsewhere)
    for name in TASK2:  # the values crossed as plain JSON: what the checks compared was -1, not Anything
        assert "[-1, -1, -1" in message(graded, "processes", name), message(graded, "processes", name)
    assert_nothing_left(scene, tier)


FACT_FORGER = '''
import json
import sys

import grader.protocol  # the sandbox side of the grader, as this process has it

_honest_to_json = grader.protocol.Reply.to_json


def _facts(scenario, args):
    """What the scenarios of run_all report for a correct run_all: they are public, and so are their arguments."""
    if scenario not in ("run_all_together", "run_all_waits", "run_all_exit_codes"):
        return None
    me = _os.getpid()
    codes = args[0] if scenario == "run_all_exit_codes" else [0] * args[0]
    facts = {"exit_codes": codes, "pids": [me + 1 + i for i in range(len(codes))], "caller_pid": me}
    if scenario == "run_all_together":
        facts["met"] = [1] * len(codes)
    if scenario == "run_all_waits":
        facts.update(done=[1] * len(codes), elapsed=args[1] + 0.1, left_running=0)
    return facts


def _forged_to_json(reply):
    frame = sys._getframe()
    while "request" not in frame.f_locals:  # the runner's own request, up the call stack
        frame = frame.f_back
    request = frame.f_locals["request"]
    facts = _facts(request.scenario.rpartition(":")[2], request.args)
    if facts is None:
        return _honest_to_json(reply)
    return json.dumps({"status": "returned", "value": facts, "version": 1})


grader.protocol.Reply.to_json = _forged_to_json


def run_all(target, arg_tuples):
    raise NotImplementedError  # never starts a process
'''


@pytest.mark.xfail(
    strict=True,
    reason=(
        "the graded code runs in the same process as the scenario and the runner: it can replace "
        "grader.protocol.Reply.to_json (or write the result pipe itself) and report the facts a correct "
        "run_all would produce, without starting a process; no tier stops this"
    ),
)
@pytest.mark.parametrize("tier", TIERS_HERE)
def test_patching_the_sandbox_side_of_the_grader_cannot_forge_facts(grade, make_submission, scene, tier):
    source = hostile_module("processes", FACT_FORGER, ("run_all",), scene)
    graded = grade_hostile(grade, submit(make_submission, "processes", source), tier, "-n", "0")
    assert_nothing_left(scene, tier)
    assert_honest(graded, "processes", {name: "failed" for name in TASK2})


# ------------------------------------------------------------------ forged reports and scorecards

FORGER = '''
import json
import time

HIDDEN_FAILURE = "test_whoami_in_the_main_process"  # the check this submission fails, and would hide


def targets():
    """Every report, collected-test list and scorecard this process can find."""
    found = set()
    for argv in ancestors_arguments():
        for index, arg in enumerate(argv):
            if arg.startswith("--json-report-file="):
                found.add(arg.partition("=")[2])
            elif arg.startswith("--kata-collected="):
                folder = arg.partition("=")[2]
                try:
                    found.update(_os.path.join(folder, name) for name in _os.listdir(folder))
                except OSError:
                    pass
            elif arg == "--json" and index + 1 < len(argv):
                found.add(argv[index + 1])
    # SEARCH stands in for /tmp: this test's own folder, so that no other test's files are hit.
    for folder, _, names in _os.walk(SEARCH):
        for name in names:
            if name == "report.json" or (name.startswith(("scorecard", "collected-")) and name.endswith(".json")):
                found.add(_os.path.join(folder, name))
    return sorted(found)


def forge(path, nodeids):
    name = _os.path.basename(path)
    if name.startswith("collected-"):
        with open(path) as stream:
            forged = [entry for entry in json.load(stream) if HIDDEN_FAILURE not in entry["nodeid"]]
    elif name.endswith("report.json"):
        tests = [{"nodeid": nodeid, "outcome": "passed"} for nodeid in nodeids]
        forged = {"tests": tests, "summary": {"passed": len(tests), "total": len(tests)}}
    else:
        forged = {"score": 7.0, "max_score": 7.0, "percent": 100.0, "complete": True, "exercises": []}
    scratch = f"{path}.{_os.getpid()}"  # written whole, then renamed: a reader never sees half a forgery
    with open(scratch, "w") as stream:
        json.dump(forged, stream)
    _os.replace(scratch, path)


def forge_all():
    paths = targets()
    nodeids = set()
    for path in paths:
        if _os.path.basename(path).startswith("collected-"):
            try:
                with open(path) as stream:
                    nodeids.update(entry["nodeid"] for entry in json.load(stream))
            except (OSError, ValueError, KeyError, TypeError):
                pass
    done = []
    for path in paths:
        try:
            forge(path, sorted(nodeids))
            done.append(_os.path.basename(path))
        except Exception:
            pass
    return done


def forge_for_ever():
    while True:
        try:
            forge_all()
        except Exception:
            pass
        time.sleep(0.05)


def whoami():
    print(f"forged now: {forge_all()}", flush=True)
    detach("f", forge_for_ever, daemon=True)  # to forge again later, and last
    answer = reference_whoami()
    answer["parent_pid"] = _os.getppid()  # the classic mistake: fails in the main process, and in a forkserver child
    return answer
'''

FORGED_COLLECTED = (
    "process tier: the sandbox runs as the grader's own user (root here), so it rewrites the collected-test "
    "lists in the grader's work folder, which collect.read_expected trusts: the failing test vanishes and its "
    "task's points go to the test that passed"
)


@pytest.mark.parametrize(
    "tier",
    [
        pytest.param(tier, marks=[pytest.mark.xfail(strict=True, reason=FORGED_COLLECTED)] if tier == "process" else [])
        for tier in TIERS_HERE
    ],
)
def test_forged_reports_and_scorecards_change_nothing(grade, make_submission, scene, tier):
    source = hostile_module("processes", FORGER, ("whoami",), scene, SEARCH=str(scene.tmp_path))
    graded = grade_hostile(grade, submit(make_submission, "processes", source), tier, "-n", "0")
    assert_nothing_left(scene, tier)
    # whoami forges in both of its tests and fails both (os.getppid() is not the parent of a forkserver child):
    # neither failure may be hidden.
    said = output(graded, "processes", "test_whoami_in_a_child_process")
    assert "detached f" in said, said  # the forging daemon ran
    if tier in OWN_UID_TIERS:
        assert "forged now: []" in said, said  # none of the grader's files is in reach
    else:
        assert "report.json" in said and "collected-" in said, said  # found and rewritten
    assert_honest(
        graded, "processes", {"test_whoami_in_the_main_process": "failed", "test_whoami_in_a_child_process": "failed"}
    )


# ------------------------------------------------------------------ escapes, peeking, the network

ESCAPES_AND_PEEKING = '''
import importlib.util
import json
import signal
import socket
import sys
import time


def linger():
    for number in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(number, signal.SIG_IGN)
    time.sleep(600)


def start_worker(target, args=(), kwargs=None, name=None):
    detach("o", linger)  # a setsid orphan
    detach("d", linger, daemon=True)  # a double-forked daemon
    return reference_start_worker(target, args, kwargs, name)


def look_around():
    """What this process can see of the hidden tests, the solutions and the network."""
    roots = {GRADER_ROOT}  # where this project lives on the grading machine: a cheater could guess it
    for argv in ancestors_arguments():
        for arg in argv:
            if arg.endswith("/grader/hidden/pytest.ini"):
                roots.add(arg[: -len("/grader/hidden/pytest.ini")])
    seen = {"hidden": False, "solution": False, "imported": False, "network": ""}
    for root in sorted(roots):
        try:
            with open(f"{root}/grader/hidden/test_01_processes.py") as stream:
                seen["hidden"] |= "def test_whoami_in_the_main_process" in stream.read()
        except OSError:
            pass
        try:
            with open(f"{root}/solutions/01_processes/processes.py") as stream:
                seen["solution"] |= "def whoami" in stream.read()
        except OSError:
            pass
        try:
            sys.path.insert(0, root)
            importlib.import_module("solutions")
            path = f"{root}/solutions/01_processes/processes.py"
            spec = importlib.util.spec_from_file_location("leaked_solution", path)
            leaked = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(leaked)
            seen["imported"] |= callable(getattr(leaked, "whoami", None))
        except Exception:
            pass
    try:
        with socket.create_connection(("127.0.0.1", PORT), timeout=2) as connection:
            connection.sendall(b"hello from the sandbox")
        seen["network"] = "connected"
    except OSError as exc:
        seen["network"] = type(exc).__name__
    return seen


def whoami():
    return {"pid": json.dumps(look_around(), sort_keys=True), "name": "", "parent_pid": None}
'''


@pytest.fixture
def listener():
    server = socket.create_server(("127.0.0.1", 0), backlog=16)
    yield server
    server.close()


def arrivals(server: socket.socket) -> list[bytes]:
    """What the connections that reached server sent."""
    server.setblocking(False)
    received = []
    while True:
        try:
            connection, _ = server.accept()
        except BlockingIOError:
            return received
        with connection:
            connection.settimeout(5)
            received.append(connection.recv(100))


def readable_by_others(path: Path) -> bool:
    """Whether a user who is neither the owner nor in the group can read path."""
    return all(os.stat(parent).st_mode & 0o001 for parent in path.parents) and bool(os.stat(path).st_mode & 0o004)


@pytest.mark.parametrize("tier", TIERS_HERE)
def test_escapes_are_swept_and_peeking_and_the_network_are_contained(grade, make_submission, scene, tier, listener):
    port = listener.getsockname()[1]
    source = hostile_module(
        "processes", ESCAPES_AND_PEEKING, ("start_worker", "whoami"), scene, GRADER_ROOT=str(ROOT), PORT=port
    )
    graded = grade_hostile(grade, submit(make_submission, "processes", source), tier, "-n", "0")
    # The orphan and the daemon ran (they wrote to the call's output), and were swept with the call.
    for name in TASK1:
        said = output(graded, "processes", name)
        assert "detached o" in said and "detached d" in said, said
    if tier == "process":
        assert len(recorded_pids(scene.pids)) >= 6  # two per call, three calls
    # whoami returned what it saw as its pid, which the failing check quotes.
    said = message(graded, "processes", "test_whoami_in_the_main_process")
    found = re.search(r"pid is (\{.*\}), expected", said)
    assert found, said
    seen = json.loads(found.group(1))
    received = arrivals(listener)
    if tier == "namespaces":
        assert seen == {"hidden": False, "solution": False, "imported": False, "network": seen["network"]}, seen
        assert seen["network"] != "connected" and received == []
    else:  # what the user and process tiers do not stop; the score stays honest all the same
        if tier == "process":
            expected = {"hidden": True, "solution": True}
        else:  # a uid of its own reads what the checkout lets every user read
            expected = {
                "hidden": readable_by_others(ROOT / "grader" / "hidden" / "test_01_processes.py"),
                "solution": readable_by_others(ROOT / "solutions" / "01_processes" / "processes.py"),
            }
        expected.update(imported=expected["solution"], network="connected")
        assert seen == expected, seen
        assert b"hello from the sandbox" in received
    assert_honest(graded, "processes", {name: "failed" for name in TASK3})
    assert_nothing_left(scene, tier)
