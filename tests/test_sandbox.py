"""The boundary: what comes back from a sandboxed call, and what is left after it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from grader.names import NAMESPACES, PROCESS, TIERS
from grader.protocol import CRASHED, INVALID, MAX_OUTPUT_CHARS, RAISED, RESULT_FD, RETURNED, TIMEOUT
from grader.sandbox import IsolationUnavailable, Sandbox, _other_pythons_byte_code, detect_isolation, stage_harness
from grader.sweep import descendants

from .conftest import living, recorded_pids


def available_tiers() -> list[str]:
    here = []
    for tier in TIERS:
        try:
            detect_isolation(tier)
        except IsolationUnavailable:
            continue
        here.append(tier)
    return here


TIERS_HERE = available_tiers()


@pytest.fixture(params=TIERS_HERE)
def sandbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Sandbox]:
    isolation = detect_isolation(request.param)
    sandbox = Sandbox(harness_dir=stage_harness(tmp_path / "harness"), isolation=isolation)
    yield sandbox
    sandbox.close()


def assert_nothing_left(sandbox: Sandbox, before: set, recorded: list[int], since: float) -> None:
    """No new descendant but the sandbox's zygote, no process of its uid, none of the recorded pids alive."""
    resident = sandbox.resident_pids()
    new = [
        pid
        for pid, _ in descendants() - before
        if pid not in resident and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    ]
    assert new == []
    if sandbox.isolation.uid is not None:
        same_uid = [
            p.pid
            for p in psutil.process_iter(["uids", "status"])
            if p.info["uids"].real == sandbox.isolation.uid and p.info["status"] != psutil.STATUS_ZOMBIE
        ]
        assert same_uid == []
    assert living(recorded, since) == []


@pytest.fixture
def module_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "graded"
    folder.mkdir()
    return folder


def call(sandbox: Sandbox, folder: Path, source: str, function: str, *args, method: str = "fork", timeout: float = 10):
    (folder / "graded.py").write_text(textwrap.dedent(source))
    return sandbox.call("graded", folder, "grader.sandboxed.scenarios.generic:call", [function, *args], method, timeout)


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_a_value_comes_back_from_a_pool_under_every_start_method(sandbox, module_dir, method):
    source = """
        import multiprocessing, os

        def square(x):
            return x * x

        def run(n):
            with multiprocessing.Pool(2) as pool:
                return {"squares": pool.map(square, range(n)), "pid": os.getpid()}
    """
    result = call(sandbox, module_dir, source, "run", 5, method=method)
    assert result.status == RETURNED, result
    assert result.value["squares"] == [0, 1, 4, 9, 16]
    assert result.value["pid"] != os.getpid()


def test_an_exception_comes_back_as_text_with_the_graded_line(sandbox, module_dir):
    result = call(sandbox, module_dir, "def f():\n    raise ValueError('bad value')\n", "f")
    assert result.status == RAISED
    assert result.error.type == "ValueError" and result.error.message == "bad value"
    assert result.error.phase == "scenario" and result.error.where == "graded.py:2 in f"
    assert "Traceback" in result.error.traceback


def test_an_import_error_is_reported_as_the_import_phase(sandbox, module_dir):
    result = call(sandbox, module_dir, "x = (\n", "f")
    assert result.status == RAISED and result.error.phase == "import"
    assert result.error.type == "SyntaxError" and result.error.where.startswith("graded.py:")


def test_a_hang_times_out_and_its_processes_are_gone(sandbox, module_dir, tmp_path):
    tmp_path.chmod(0o777)
    source = f"""
        import multiprocessing, os, time
        from pathlib import Path

        def nap():
            try:  # under the namespaces tier this folder is out of sight
                Path({str(tmp_path)!r}, f"pid-{{os.getpid()}}").write_text(str(os.getpid()))
            except OSError:
                pass
            time.sleep(600)

        def hang():
            children = [multiprocessing.Process(target=nap) for _ in range(3)]
            for child in children:
                child.start()
            nap()
    """
    before, since, started = descendants(), time.time(), time.monotonic()
    result = call(sandbox, module_dir, source, "hang", timeout=2)
    assert result.status == TIMEOUT and "2 s" in result.detail
    assert time.monotonic() - started < 10
    pids = recorded_pids(tmp_path)
    assert len(pids) == (4 if sandbox.isolation.tier == PROCESS else 0)
    assert_nothing_left(sandbox, before, pids, since)


def test_setsid_orphans_and_double_forked_daemons_are_swept(sandbox, module_dir, tmp_path):
    tmp_path.chmod(0o777)
    source = f"""
        import os, time
        from pathlib import Path

        def escape():
            for _ in range(2):
                if os.fork() == 0:
                    os.setsid()
                    if os.fork() == 0:
                        try:
                            Path({str(tmp_path)!r}, f"pid-{{os.getpid()}}").write_text(str(os.getpid()))
                        except OSError:
                            pass
                        time.sleep(600)
                    os._exit(0)
            time.sleep(0.5)
            return "escaped"
    """
    before, since = descendants(), time.time()
    result = call(sandbox, module_dir, source, "escape")
    assert result.status == RETURNED and result.value == "escaped"
    pids = recorded_pids(tmp_path)
    assert len(pids) == (2 if sandbox.isolation.tier == PROCESS else 0)
    assert_nothing_left(sandbox, before, pids, since)


def test_the_namespaces_tier_hides_the_grader_and_the_network(sandbox, module_dir):
    if sandbox.isolation.tier != NAMESPACES:
        pytest.skip("only the namespaces tier promises this")
    hidden = (str(Path(__file__).resolve()), "/work", "/root/.bashrc", "/etc/passwd")
    source = f"""
        import os, socket

        def look():
            pids = [entry for entry in os.listdir("/proc") if entry.isdigit()]
            seen = {{"uid": os.getuid(), "pids": len(pids)}}
            for path in {hidden!r}:
                seen[path] = os.path.exists(path)
            try:
                socket.create_connection(("127.0.0.1", 22), timeout=1)
                seen["network"] = True
            except OSError:
                seen["network"] = False
            return seen
    """
    result = call(sandbox, module_dir, source, "look")
    assert result.status == RETURNED, result
    seen = result.value
    assert seen["uid"] == sandbox.isolation.uid != 0
    assert not any(seen[path] for path in hidden), seen
    assert seen["network"] is False and seen["pids"] <= 3


@pytest.mark.parametrize(
    ("code", "detail"),
    [
        ("import os\nos._exit(0)", "exited with code 0"),
        ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", "killed by SIGKILL"),
    ],
)
def test_a_process_that_dies_without_a_reply_crashed(sandbox, module_dir, code, detail):
    source = "def die():\n" + textwrap.indent(code, "    ") + "\n"
    result = call(sandbox, module_dir, source, "die")
    assert result.status == CRASHED and detail in result.detail


def test_sys_exit_is_an_exception_not_a_crash(sandbox, module_dir):
    result = call(sandbox, module_dir, "import sys\ndef f():\n    sys.exit(3)\n", "f")
    assert result.status == RAISED and result.error.type == "SystemExit"


def test_a_stdout_flood_is_cut_and_the_value_still_comes_back(sandbox, module_dir):
    source = """
        import sys

        def flood():
            for _ in range(20_000):
                sys.stdout.write("x" * 200 + "\\n")
            return "done"
    """
    result = call(sandbox, module_dir, source, "flood", timeout=30)
    assert result.status == RETURNED and result.value == "done"
    assert len(result.stdout) <= MAX_OUTPUT_CHARS + 100 and "cut" in result.stdout


def test_an_endless_flood_hits_the_file_size_limit_instead_of_the_disk(sandbox, module_dir):
    source = """
        import os

        def flood():
            while True:
                os.write(1, b"y" * 65536)
    """
    result = call(sandbox, module_dir, source, "flood", timeout=30)
    assert result.status == RAISED and result.error.type == "OSError" and "too large" in result.error.message


def test_a_huge_result_or_one_that_is_not_json_is_refused(sandbox, module_dir):
    huge = call(sandbox, module_dir, "def f():\n    return 'x' * 5_000_000\n", "f")
    assert huge.status == RAISED and "too large" in huge.error.message
    odd = call(sandbox, module_dir, "def f():\n    return object()\n", "f")
    assert odd.status == RAISED and "not plain JSON" in odd.error.message


def test_a_forged_reply_on_stdout_is_just_output(sandbox, module_dir):
    source = 'def f():\n    print(\'{"status": "returned", "value": 42, "version": 1}\')\n    raise KeyError(\'k\')\n'
    result = call(sandbox, module_dir, source, "f")
    assert result.status == RAISED and "42" in result.stdout


def test_garbage_on_the_result_pipe_is_invalid(sandbox, module_dir):
    source = """
        import os

        def f():
            for fd in range(3, 64):
                try:
                    os.write(fd, b"not json")
                except OSError:
                    pass
            os._exit(0)
    """
    result = call(sandbox, module_dir, source, "f")
    assert result.status == INVALID


def test_memory_is_limited(sandbox, module_dir):
    result = call(sandbox, module_dir, "def f():\n    return len(bytearray(4 << 30))\n", "f")
    assert result.status == RAISED and result.error.type == "MemoryError"


@pytest.mark.parametrize(
    "payload",
    ['os.write(fd, b"[" * 100_000 + b"]" * 100_000)', 'os.write(fd, b"x" * (2 << 20)); time.sleep(60)'],
    ids=["deeply-nested", "over-the-cap-then-hang"],
)
def test_a_reply_forged_on_the_result_pipe_is_invalid(sandbox, module_dir, payload):
    find_fd = f"fd = {RESULT_FD}"  # the result pipe's place in every call's child
    source = f"import os, time\ndef f():\n    {find_fd}\n    {payload}\n    os._exit(0)\n"
    result = call(sandbox, module_dir, source, "f", timeout=5)
    assert result.status == INVALID, result


STUCK = """
import multiprocessing
import time


def spin():
    while True: pass  # one line: the dump names the same line whenever it is taken


def sleeper():
    time.sleep(600)


def join_forever():
    process = multiprocessing.Process(target=sleeper)
    process.start()
    process.join()


def print_then_spin():
    import sys
    print("Thread 0x0000 (most recent call first):", file=sys.stderr)  # a lookalike the student printed
    print("still mine", file=sys.stderr, flush=True)
    spin()
"""


def test_a_timeout_says_where_the_code_was_and_whether_it_was_busy(sandbox, module_dir):
    busy = call(sandbox, module_dir, STUCK, "spin", timeout=2)
    assert busy.status == TIMEOUT and busy.stuck is not None, busy
    assert busy.stuck["where"] == "graded.py:7 in spin" and busy.stuck["busy"] is True, busy.stuck
    blocked = call(sandbox, module_dir, STUCK, "join_forever", timeout=2)
    assert blocked.status == TIMEOUT and blocked.stuck is not None, blocked
    assert blocked.stuck == {"where": "graded.py:17 in join_forever", "waiting_in": "join", "busy": False}
    printed = call(sandbox, module_dir, STUCK, "print_then_spin", timeout=2)
    assert printed.stuck["where"] == "graded.py:7 in spin", printed.stuck
    # The dump is the grader's, not the student's output: only what the code printed is shown.
    assert printed.stderr.strip() == "Thread 0x0000 (most recent call first):\nstill mine", printed.stderr


def test_a_hung_call_in_a_scenario_says_where_it_was_and_whether_it_was_busy():
    from grader.plugin import hung_words
    from grader.sandboxed.scenarios.kit import call_with_deadline

    release = threading.Event()

    def spin() -> None:
        while not release.is_set():
            pass  # the stack shows either line: the test checks the function

    def blocked() -> None:
        release.wait()

    try:
        busy = call_with_deadline(spin, deadline=1.0).facts()
        waiting = call_with_deadline(blocked, deadline=1.0).facts()
    finally:
        release.set()
    assert busy["outcome"] == waiting["outcome"] == "hung"
    assert busy["stuck"]["where"].startswith("test_sandbox.py:") and busy["stuck"]["where"].endswith(" in spin")
    assert busy["stuck"]["busy"] is True, busy["stuck"]
    assert waiting["stuck"]["where"].endswith(" in blocked") and waiting["stuck"]["waiting_in"] == "wait"
    assert waiting["stuck"]["busy"] is False, waiting["stuck"]
    assert "it was busy, using the CPU all the time at test_sandbox.py:" in hung_words(busy, "spin")
    said = hung_words(waiting, "blocked")
    assert "it was waiting at test_sandbox.py:" in said and "in wait(); wait() waits for an Event" in said, said


GRANDCHILD_LIVES = 30.0  # seconds: far longer than reaping its parent takes


def _leave_a_grandchild(pids) -> None:
    """Child target: fork a process that outlives this one by GRANDCHILD_LIVES seconds, then end."""
    grandchild = os.fork()
    if grandchild == 0:
        time.sleep(GRANDCHILD_LIVES)
        os._exit(0)
    pids.put(grandchild)


def test_a_process_whose_grandchild_lives_on_is_reaped_without_waiting_for_the_grandchild():
    import multiprocessing

    from grader.sandboxed.scenarios.kit import kill_and_reap, reap

    pids = multiprocessing.SimpleQueue()
    child = multiprocessing.Process(target=_leave_a_grandchild, args=(pids,))
    child.start()
    grandchild = psutil.Process(pids.get())
    try:
        # join() waits for a pipe that the grandchild holds open: it would return only once the grandchild
        # has ended. reap() sees the child's own exit status.
        assert reap(child, 2 * GRANDCHILD_LIVES) and child.exitcode == 0
        assert grandchild.is_running() and grandchild.status() != psutil.STATUS_ZOMBIE
        stuck = multiprocessing.Process(target=time.sleep, args=(60,))
        stuck.start()
        kill_and_reap(stuck, 20.0)
        assert stuck.exitcode == -9
    finally:
        grandchild.kill()


def test_a_stack_dump_that_is_missing_or_cut_says_nothing_rather_than_fail(tmp_path):
    from grader.sandbox import split_stack_dump, where_stuck

    assert where_stuck("", "/code") == {"where": None, "waiting_in": None}
    assert where_stuck("Current thread 0x0001 (most recent call first):\n  File", "/code")["where"] is None
    stderr = tmp_path / "stderr"
    stderr.write_bytes(b"mine\n" + b"Current thread 0x00ab (most recent call first):\n")
    assert split_stack_dump(stderr)[0] == "mine\n"
    assert split_stack_dump(tmp_path / "missing") == ("", "")


def test_the_staged_harness_carries_its_byte_code_for_this_python_only(tmp_path):
    staged = stage_harness(tmp_path / "harness") / "grader"
    tag = sys.implementation.cache_tag
    for module in ("protocol", "sandboxed/runner", "sandboxed/zygote", "sandboxed/scenarios/kit"):
        folder, _, name = f"{staged}/{module}".rpartition("/")
        assert (Path(folder) / "__pycache__" / f"{name}.{tag}.pyc").is_file(), module
    others = [p.name for p in staged.rglob("*.pyc") if f".{tag}." not in p.name]
    assert others == []
    # Valid byte code: Python loads it as it is; stale byte code would be compiled again and rewritten.
    before = {path: path.stat().st_mtime_ns for path in staged.rglob("*.pyc")}
    importing = f"import sys; sys.path.insert(0, {str(staged.parent)!r}); import grader.sandboxed.scenarios.kit"
    subprocess.run([sys.executable, "-I", "-S", "-c", importing], check=True, timeout=60)
    assert {path: path.stat().st_mtime_ns for path in staged.rglob("*.pyc")} == before


def test_staging_copies_only_finished_byte_code_of_this_python():
    tag = sys.implementation.cache_tag
    names = [f"kit.{tag}.pyc", "kit.cpython-39.pyc", f"kit.{tag}.pyc.139831766816576"]  # another's, one in writing
    assert _other_pythons_byte_code("/x/scenarios/__pycache__", names) == names[1:]
    assert _other_pythons_byte_code("/x/scenarios", ["kit.py", "__pycache__"]) == []


def test_a_call_whose_zygote_fails_runs_again_in_a_fresh_one(sandbox, module_dir):
    """The zygote is killed from outside while the call runs: the result comes from a second, fresh zygote."""
    source = """
        import time

        def answer():
            return 1

        def slow_answer():
            time.sleep(2)
            return 42
    """
    before, since = descendants(), time.time()
    assert call(sandbox, module_dir, source, "answer").status == RETURNED  # the zygote is up
    [zygote] = sandbox._zygotes.values()
    idle = sandbox.resident_pids()
    killed: list[int] = []

    def kill_the_zygote_in_the_call() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if sandbox.resident_pids() - idle:  # the zygote has forked the call's child
                os.kill(zygote.process.pid, 9)
                killed.append(zygote.process.pid)
                return
            time.sleep(0.01)

    killer = threading.Thread(target=kill_the_zygote_in_the_call)
    killer.start()
    result = sandbox.call("graded", module_dir, "grader.sandboxed.scenarios.generic:call", ["slow_answer"], "fork", 20)
    killer.join()
    assert killed == [zygote.process.pid], "the zygote was not killed during the call"
    assert result.status == RETURNED and result.value == 42, result
    assert result.attempts == 2 and sandbox.zygote_failures == 1
    assert [z.process.pid for z in sandbox._zygotes.values()] != killed
    assert_nothing_left(sandbox, before, [], since)  # the first call's child went with its zygote


def test_a_call_that_ends_normally_runs_once(sandbox, module_dir):
    result = call(sandbox, module_dir, "def answer():\n    return 1\n", "answer")
    assert result.status == RETURNED and result.attempts == 1 and sandbox.zygote_failures == 0
