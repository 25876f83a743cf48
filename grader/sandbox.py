"""The one place that starts, limits and stops processes running graded code.

    pytest worker (trusted, a child subreaper)
      |
      +-- zygote   python -I -S -c zygote.serve()   one per worker and graded folder
            |  imports multiprocessing and the scenarios once; never graded code
            |
            +-- call child (forked per call)   own session; descriptors, uid and
                  |  folder of its own, limits set before the graded import;
                  |  runs one scenario, writes one reply
                  |
                  +-- whatever the graded code starts (pools, managers, daemons,
                      setsid orphans: orphans come back to the zygote, a subreaper)

Ownership and ending, for every call, whatever happens:
1. The worker sends the request, with the call's result pipe and its capped
   stdout and stderr files, on the zygote's control socket, and reads the
   result pipe until the zygote says "ended" or the call's deadline passes.
2. At the deadline it asks the zygote to stop the call. The zygote kills the
   call's child, then every descendant it has (SIGKILL, repeated until none
   is left, so that a fork bomb cannot outrun it), reaps them, empties the
   sandbox's scratch folders, and only then says "ended".
3. Only then is the reply parsed. The reply is JSON, capped in size; stdout
   and stderr went to files that are read capped. Nothing is unpickled.
A zygote that dies, or does not answer a stop within STOP_WAIT, is killed with
everything under it (grader.sweep) (its process group, the worker's new descendants, the
sandbox uid's processes), and the next call starts a new one.

A reply that never came is a TIMEOUT (deadline) or a CRASHED (the process
ended first); a reply that does not parse is INVALID. The verdict is made by
the hidden test from this plain data, in the worker, never in the sandbox.

Why a zygote: a fresh interpreter per call costs 70 to 130 ms of CPU (start,
imports, bwrap); a fork of a process that has imported everything costs a few.

The isolation tier (grader.isolation) decides where the zygote reads the
harness, how it is started, which zygote serves a graded folder, where a call
finds the graded code, and which uid it runs as; nothing here depends on which
tier it is.
"""

from __future__ import annotations

import compileall
import contextlib
import dataclasses
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

# The "import X as X" lines are re-exports: benchmarks and tests import those names from here.
from grader.isolation import CALL_DIR_PARENT, Isolation, Tier, tier_for
from grader.isolation import IsolationUnavailable as IsolationUnavailable
from grader.isolation import _clean_env as _clean_env
from grader.isolation import bwrap_command as bwrap_command
from grader.isolation import detect_isolation as detect_isolation
from grader.isolation import reserve_uid as reserve_uid
from grader.names import PROCESS
from grader.protocol import (
    CONTROL_MESSAGE_BYTES,
    CRASHED,
    IMPORTED,
    INVALID,
    MAX_OUTPUT_CHARS,
    MAX_REPLY_BYTES,
    RAISED,
    TIMEOUT,
    CallRequest,
    CallResult,
    Limits,
    Reply,
    ZygoteConfig,
    cut,
)
from grader.sweep import become_subreaper, descendants, sweep_descendants, sweep_user

# The code that the sandbox runs first: the harness folder holds a copy of
# the grader's protocol and runner and the scenarios, and nothing else.
BOOTSTRAP = "import sys; sys.path.insert(0, sys.argv[2]); from grader.sandboxed.zygote import serve; serve()"
# What the sandbox copies of this package: stdlib-only modules.
HARNESS_FILES = ("__init__.py", "protocol.py", "sandboxed")
ZYGOTE_START_TIMEOUT = 30.0  # seconds for a zygote's imports, on a loaded machine
STOP_WAIT = 10.0  # seconds a zygote gets to kill a call's processes before it is replaced
ZYGOTE_RETRIES = 1  # a call whose zygote failed runs once more, in a fresh zygote
SANDBOX_PROCESSES = 256  # RLIMIT_NPROC for a dedicated uid (enforced: it is not root)


def stage_harness(destination: Path) -> Path:
    """Copy the sandbox side of the grader (runner, protocol, scenarios) to destination, compiled.

    The byte code is compiled once, beside the grader's own files (where an
    import would put it), and copied along: every zygote would otherwise
    compile the scenarios again, about 0.1 CPU-s each. Where the grader's
    folder is read-only, the copy is source only and works the same.
    """
    package = Path(__file__).resolve().parent
    for name in HARNESS_FILES:
        with contextlib.suppress(OSError):
            if (package / name).is_dir():
                compileall.compile_dir(package / name, quiet=2)
            else:
                compileall.compile_file(package / name, quiet=2)
    target = destination / "grader"
    (target / "__pycache__").mkdir(parents=True, exist_ok=True)
    for name in HARNESS_FILES:
        source = package / name
        if source.is_dir():
            # copy2 keeps the sources' times, so the byte code stays valid; other Pythons' is left out.
            shutil.copytree(source, target / name, ignore=_other_pythons_byte_code, dirs_exist_ok=True)
            continue
        shutil.copy2(source, target / name)
        for compiled in (package / "__pycache__").glob(f"{source.stem}.{sys.implementation.cache_tag}.pyc"):
            shutil.copy2(compiled, target / "__pycache__" / compiled.name)
    return destination


def _other_pythons_byte_code(folder: str, names: list[str]) -> list[str]:
    """In a __pycache__ folder, everything but this Python's finished byte code.

    Another worker may be compiling at the same moment: its temporary files
    (name.cpython-311.pyc.NNN) vanish when renamed, so they are never copied.
    """
    if os.path.basename(folder) != "__pycache__":
        return []
    return [name for name in names if not name.endswith(f".{sys.implementation.cache_tag}.pyc")]


DUMP_WAIT = 3.0  # seconds a zygote gets to report on a stuck call (it watches it for BUSY_LOOK)
DUMP_START = re.compile(rb"^(?:Current thread|Thread) 0x[0-9a-f]+ \(most recent call first\):$", re.MULTILINE)
DUMP_LINE = re.compile(
    rb"(?:Current thread|Thread) 0x[0-9a-f]+ \(most recent call first\):|  File .*|  <no Python frame>|  \.\.\.|"
)
DUMP_FRAME = re.compile(r'^  File "(?P<file>.*)", line (?P<line>\d+) in (?P<function>\S+)', re.MULTILINE)
MAX_DUMP_BYTES = 64 << 10


def split_stack_dump(path: Path) -> tuple[str, str]:
    """A call's stderr: (what the graded code wrote, capped; the stack dump taken at its deadline, or "").

    faulthandler appends the dump: it is the first thread header after which
    every line is a dump's (so a lookalike printed earlier by graded code is not).
    """
    try:
        with open(path, "rb") as stream:
            head = stream.read(MAX_OUTPUT_CHARS * 4 + 1)
            size = stream.seek(0, os.SEEK_END)
            tail_start = stream.seek(max(0, size - MAX_DUMP_BYTES))
            tail = stream.read()
    except OSError:
        return "", ""
    dump_at = None
    for match in DUMP_START.finditer(tail):
        if all(DUMP_LINE.fullmatch(line) for line in tail[match.start() :].splitlines()):
            dump_at = tail_start + match.start()
            break
    dump = tail[dump_at - tail_start :].decode("utf-8", errors="replace") if dump_at is not None else ""
    written = size if dump_at is None else dump_at
    return _shown(head[:written], written > len(head)), dump


def where_stuck(dump: str, code_dir: str) -> dict[str, Any]:
    """From a stack dump: the innermost line of graded code (a file in code_dir) and the call it waits in there."""
    starts = [match.start() for match in DUMP_START.finditer(dump.encode())]
    text = dump.encode()
    ends = [*starts[1:], len(text)] if starts else []  # no dump (it could not be written): no blocks
    blocks = [text[a:b].decode("utf-8", errors="replace") for a, b in zip(starts, ends, strict=True)]
    # The thread that took the signal (the call's main thread, in practice) first.
    for block in sorted(blocks, key=lambda block: not block.startswith("Current thread")):
        frames = list(DUMP_FRAME.finditer(block))  # most recent call first
        for index, frame in enumerate(frames):
            if os.path.dirname(frame["file"]) == code_dir.rstrip("/"):
                waiting_in = frames[index - 1]["function"] if index > 0 else None
                name = os.path.basename(frame["file"])
                return {"where": f"{name}:{frame['line']} in {frame['function']}", "waiting_in": waiting_in}
    return {"where": None, "waiting_in": None}


def _read_head(path: Path) -> str:
    try:
        with open(path, "rb") as stream:
            data = stream.read(MAX_OUTPUT_CHARS * 4 + 1)
            more = stream.read(1) != b""
    except OSError:
        return ""
    return _shown(data, more)


def _shown(data: bytes, more: bool) -> str:
    """What graded code wrote, as text to show: capped, and saying so when there was more."""
    text = data.decode("utf-8", errors="replace")
    if more:
        text += "\n... [output cut]"
    return cut(text, MAX_OUTPUT_CHARS)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class ZygoteFailed(RuntimeError):
    """A zygote did not start, or stopped answering."""


class Zygote:
    """The worker's handle on one resident sandbox process (``grader.sandboxed.zygote``) for one graded folder."""

    def __init__(self, argv: list[str], config: ZygoteConfig, harness: str, log: Path, **popen: Any):
        self.before = descendants()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.control = ours
        config = dataclasses.replace(config, control_fd=theirs.fileno())
        try:
            with open(log, "wb") as errors:
                self.process = subprocess.Popen(
                    [*argv, config.to_json(), harness],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=errors,
                    pass_fds=(theirs.fileno(),),
                    start_new_session=True,
                    **popen,
                )
        except OSError as exc:
            ours.close()
            raise ZygoteFailed(f"the sandbox could not be started: {exc}") from None
        finally:
            theirs.close()
        ready = self.receive(ZYGOTE_START_TIMEOUT)
        if not ready or "ready" not in ready:
            self.kill()
            raise ZygoteFailed(f"the sandbox did not start: {_read_head(log).strip() or 'no word from it'}")

    def alive(self) -> bool:
        return self.process.poll() is None

    def send(self, message: dict[str, Any], fds: Sequence[int] = ()) -> None:
        socket.send_fds(self.control, [json.dumps(message).encode()], list(fds))

    def receive(self, timeout: float | None = 0) -> dict[str, Any] | None:
        """The next message, {} when the zygote has closed its end, None when none came within timeout."""
        ready, _, _ = select.select([self.control], [], [], timeout)
        if not ready:
            return None
        try:
            data = self.control.recv(CONTROL_MESSAGE_BYTES)
        except OSError:
            return {}
        try:
            message = json.loads(data) if data else {}
        except ValueError:
            return {}
        return message if isinstance(message, dict) else {}

    def dump_stack(self) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """At a deadline, before the stop: the call's stack to its stderr, and busy or waiting.

        Returns what the zygote saw ({"busy": ...}), or None, and an "ended"
        message when the call ended on its own meanwhile. Never raises: a
        zygote that does not answer is then stopped (and replaced) as usual.
        """
        try:
            self.send({"dump": True})
        except OSError:
            return None, None
        deadline = time.monotonic() + DUMP_WAIT
        while (left := deadline - time.monotonic()) > 0:
            message = self.receive(left)
            if not message:
                return None, None
            if "dumped" in message:
                return message["dumped"] if isinstance(message["dumped"], dict) else None, None
            if "ended" in message:
                return None, message
        return None, None

    def stop_call(self) -> dict[str, Any]:
        """Ask for the running call to be killed; the zygote's "ended" message, or raise ZygoteFailed."""
        try:
            self.send({"stop": True})
        except OSError as exc:
            raise ZygoteFailed(f"the sandbox is gone ({exc})") from None
        deadline = time.monotonic() + STOP_WAIT
        while (left := deadline - time.monotonic()) > 0:
            message = self.receive(left)
            if message is None or message == {}:
                break
            if "ended" in message:
                return message
        raise ZygoteFailed("the sandbox did not end the call")

    def kill(self, uid: int | None = None) -> None:
        """End the zygote and everything under it, whatever state it is in."""
        self.control.close()
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait()
        sweep_descendants(keep=self.before)
        if uid is not None:
            sweep_user(uid)


class Sandbox:
    """Runs scenarios against graded modules, each call in a fresh child of a resident zygote.

    What differs between isolation tiers is the tier object's (grader.isolation): this class never asks which it is.
    """

    def __init__(
        self,
        harness_dir: Path,
        python: str = sys.executable,
        limits: Limits | None = None,
        isolation: Isolation | None = None,
    ):
        self.harness_dir = Path(harness_dir)
        self.isolation = isolation or Isolation(PROCESS)
        self.tier: Tier = tier_for(self.isolation)
        self.python = self.isolation.python or python
        self.limits = limits or Limits(processes=SANDBOX_PROCESSES if self.isolation.uid is not None else 0)
        self.is_subreaper = become_subreaper()
        self.zygote_failures = 0  # calls run again because their zygote failed (see call)
        self._zygotes: dict[Path | None, Zygote] = {}
        self._own = Path(tempfile.mkdtemp(prefix="kata-sandbox-", dir=CALL_DIR_PARENT))
        self.harness_dir = self.tier.prepare(self.harness_dir)

    def close(self) -> None:
        """End every zygote and remove what the sandbox owner made outside its caller's folders."""
        for zygote in self._zygotes.values():
            zygote.kill(self.tier.uid)
        self._zygotes.clear()
        shutil.rmtree(self._own, ignore_errors=True)
        self.tier.close()

    def resident_pids(self) -> set[int]:
        """The zygotes' own processes, which outlive calls (for tests that look for leftovers)."""
        pids = set()
        for zygote in self._zygotes.values():
            pids.add(zygote.process.pid)
            try:
                pids.update(child.pid for child in psutil.Process(zygote.process.pid).children(recursive=True))
            except psutil.Error:
                pass
        return pids

    def _zygote(self, module_dir: Path) -> Zygote:
        """The running zygote for a graded folder, started (again) when there is none.

        Which zygote serves which folder is the tier's to say (Tier.zygote_key).
        """
        key = self.tier.zygote_key(module_dir)
        zygote = self._zygotes.get(key)
        if zygote is not None and zygote.alive():
            return zygote
        if zygote is not None:
            self._discard(key)
        bootstrap = [self.python, "-I", "-S", "-c", BOOTSTRAP]
        log = Path(tempfile.mkstemp(prefix="zygote-", suffix=".log", dir=self._own)[1])
        launch = self.tier.zygote_launch(bootstrap, self.harness_dir, module_dir)
        zygote = Zygote(launch.argv, launch.config, launch.harness, log, **launch.popen)
        self._zygotes[key] = zygote
        return zygote

    def _discard(self, key: Path | None) -> None:
        zygote = self._zygotes.pop(key, None)
        if zygote is not None:
            zygote.kill(self.tier.uid)

    def call(
        self,
        module: str,
        module_dir: Path,
        scenario: str,
        args: list[Any],
        start_method: str,
        timeout: float,
        import_timeout: float | None = None,
    ) -> CallResult:
        """Run scenario(module, *args) in a sandbox; always return, never leave a process.

        import_timeout, when shorter than timeout, bounds the import of the graded module alone.
        A call whose zygote failed (it did not start, died or stopped answering
        during the call) is never graded from it: the zygote is replaced and the
        call runs once more in a fresh one, whose result stands, whatever it is
        (code that kills its own sandbox does so again).
        """
        attempts = 0
        while True:
            attempts += 1
            # A short path: multiprocessing puts AF_UNIX sockets (at most 107 bytes) in TMPDIR.
            home = Path(tempfile.mkdtemp(prefix="kata-call-", dir=CALL_DIR_PARENT))
            os.chmod(home, 0o755)
            try:
                result, suspect = self._call_in(
                    home, module, Path(module_dir), scenario, args, start_method, timeout, import_timeout
                )
            finally:
                shutil.rmtree(home, ignore_errors=True)
            if not suspect or attempts > ZYGOTE_RETRIES:
                return dataclasses.replace(result, attempts=attempts)
            self.zygote_failures += 1

    def _call_in(
        self,
        home: Path,
        module: str,
        module_dir: Path,
        scenario: str,
        args: list[Any],
        start_method: str,
        timeout: float,
        import_timeout: float | None,
    ) -> tuple[CallResult, bool]:
        """The call's result, and whether its zygote failed while a result was awaited (see call).

        The call's life: a zygote, the graded code staged, the request sent, the reply awaited until the
        call ends or its deadline passes (then the zygote stops it and sweeps what it left), the result read.
        """
        key = self.tier.zygote_key(module_dir)
        try:
            zygote = self._zygote(module_dir)
        except ZygoteFailed as exc:
            return CallResult(status=CRASHED, detail=str(exc)), True
        started = time.monotonic()  # a zygote's own start (once per worker) is not the call's time
        code = self.tier.stage_code(module_dir, home)
        request = CallRequest(
            module=module,
            module_dir=code,
            scenario=scenario,
            args=list(args),
            start_method=start_method,
            home=self.tier.home_inside(home),
            limits=self._call_limits(timeout),
        )
        read_end, write_end = os.pipe()
        try:
            with open(home / "stdout", "wb") as out, open(home / "stderr", "wb") as err:
                zygote.send({"call": request.to_json()}, [write_end, out.fileno(), err.fileno()])
        except OSError as exc:
            os.close(read_end)
            self._discard(key)
            gone = f"the sandbox is gone ({exc})"
            return CallResult(status=CRASHED, detail=gone, duration=time.monotonic() - started), True
        finally:
            os.close(write_end)
        import_budget = min(timeout, import_timeout or timeout)
        try:
            ending = _await_end(zygote, read_end, started + timeout, started + import_budget)
        finally:
            os.close(read_end)
        zygote_failed = "ended" not in ending.ended
        if zygote_failed:  # the zygote is gone or stuck: end it and all it ran; the next call starts another
            self._discard(key)
        result = _call_result(ending, home, code, started, timeout, import_budget)
        # A timeout is the trusted side's own fact, whatever became of the zygote; any other result of a call whose
        # zygote failed may be the zygote's doing, not the code's.
        return result, zygote_failed and result.status != TIMEOUT

    def _call_limits(self, timeout: float) -> Limits:
        """The sandbox's limits for one call of timeout seconds."""
        return Limits(
            address_space_mib=self.limits.address_space_mib,
            open_files=self.limits.open_files,
            file_size_mib=self.limits.file_size_mib,
            # CPU time per process: a little over the wall-clock budget.
            cpu_seconds=max(self.limits.cpu_seconds, int(timeout) + 5),
            processes=self.limits.processes,
            tree_memory_mib=self.limits.tree_memory_mib,
        )


@dataclass(frozen=True)
class _Ending:
    """How a call ended, as the worker saw it once the call's processes were gone."""

    raw: bytes  # what came back on the result pipe
    ended: dict[str, Any]  # the zygote's "ended" message, or its answer to a stop; {} when the zygote is gone
    finished: bool  # the call ended by itself, not at a deadline
    overflow: bool  # the reply went over its cap
    looked: dict[str, Any] | None  # what the zygote saw of a call stuck at its deadline, if it said


def _await_end(zygote: Zygote, read_end: int, deadline: float, import_deadline: float) -> _Ending:
    """Wait for the call to end; at a deadline have its stack dumped and have it stopped; then drain the pipe."""
    looked: dict[str, Any] | None = None
    raw, ended, overflow = _wait(zygote, read_end, deadline, import_deadline)
    finished = ended is not None and not overflow  # the call ended by itself, not at a deadline
    if ended is None and not overflow:
        looked, ended = zygote.dump_stack()
    if ended is None:
        try:
            ended = zygote.stop_call()
        except ZygoteFailed:
            ended = {}
    if not overflow:
        more, overflow = _drain(read_end, MAX_REPLY_BYTES + 1 - len(raw))
        raw += more
    return _Ending(raw, ended, finished, overflow, looked)


def _call_result(
    ending: _Ending, home: Path, code: str, started: float, timeout: float, import_budget: float
) -> CallResult:
    """The call's result from how it ended and what it wrote in home (code: the graded folder as it saw it)."""
    errors, dump = split_stack_dump(home / "stderr")
    common: dict[str, Any] = {
        "stdout": _read_head(home / "stdout"),
        "stderr": errors,
        "exit_code": ending.ended.get("ended"),
        "duration": time.monotonic() - started,
    }
    budget = timeout if ending.raw.startswith(IMPORTED) else import_budget  # the deadline that passed, if one did
    result = _result(ending.raw, ending.finished, ending.overflow, budget, common)
    if result.status == TIMEOUT and ending.looked is not None:
        result = dataclasses.replace(result, stuck={**where_stuck(dump, code), "busy": ending.looked.get("busy")})
    watched = ending.ended.get("memory")
    memory: dict[str, Any] = watched if isinstance(watched, dict) else {}
    if memory.get("exceeded"):  # the watchdog ended the call: whatever came back is not its answer
        result = CallResult(status=CRASHED, detail=memory_words(memory), **common)
    peak = memory.get("peak_mib")
    return dataclasses.replace(result, memory_peak_mib=peak if isinstance(peak, (int, float)) else None)


def memory_words(memory: dict[str, Any]) -> str:
    """Why the watchdog ended a call, in a student's words."""
    return (
        f"the code's processes together used more memory than a call may use: at most {memory.get('limit_mib')} MiB "
        f"for all the processes it starts (they held {memory.get('peak_mib')} MiB when they were stopped); "
        "use less memory, or fewer processes at once"
    )


def _wait(zygote: Zygote, read_end: int, deadline: float, import_deadline: float) -> tuple[bytes, dict | None, bool]:
    """Read the reply until the zygote says the call ended, or a deadline passes.

    The runner writes IMPORTED once the graded module is imported; without it
    by import_deadline the call is over (a module that hangs at import need
    not cost a long scenario's whole budget). The pipe is never read to EOF
    while the call runs: a leftover grandchild may hold it open.
    Returns (bytes read, the zygote's "ended" message, {} if the zygote is
    gone, None at a deadline, whether the reply went over its cap).
    """
    chunks: list[bytes] = []
    size = 0
    open_pipe = True
    imported = False
    os.set_blocking(read_end, False)
    while True:
        now = time.monotonic()
        until = deadline if imported else min(deadline, import_deadline)
        if now >= until:
            return b"".join(chunks), None, False
        watched: list[Any] = [zygote.control, read_end] if open_pipe else [zygote.control]
        ready, _, _ = select.select(watched, [], [], until - now)
        if read_end in ready:
            data, open_pipe = _read_some(read_end)
            chunks += data
            size += sum(map(len, data))
            if size > MAX_REPLY_BYTES:
                return b"", None, True
            if not imported and size >= len(IMPORTED):
                imported = b"".join(chunks).startswith(IMPORTED)
        if zygote.control in ready:
            message = zygote.receive()
            if message is not None and ("ended" in message or not message):
                return b"".join(chunks), message, False


def _read_some(fd: int) -> tuple[list[bytes], bool]:
    """What a non-blocking pipe holds now, and whether it is still open."""
    chunks: list[bytes] = []
    while True:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return chunks, True
        if not data:
            return chunks, False
        chunks.append(data)
        if sum(map(len, chunks)) > MAX_REPLY_BYTES:
            return chunks, True


def _drain(fd: int, limit: int) -> tuple[bytes, bool]:
    """What is left on the result pipe once the call's processes are dead, and whether it went over limit."""
    chunks, _ = _read_some(fd)
    data = b"".join(chunks)
    if len(data) >= limit:
        return b"", True
    return data, False


def _result(raw: bytes, finished: bool, overflow: bool, budget: float, common: dict[str, Any]) -> CallResult:
    """The call's outcome from what came back on the result pipe and how the call ended."""
    if overflow:  # checked first: a flood on the pipe is invalid even if the process still ran
        return CallResult(status=INVALID, detail=f"the result is larger than {MAX_REPLY_BYTES} bytes", **common)
    imported = raw.startswith(IMPORTED)
    raw = raw.removeprefix(IMPORTED)
    if not finished and not imported:
        return CallResult(status=TIMEOUT, detail=f"did not finish its import within {budget:g} s", **common)
    if not finished:
        return CallResult(status=TIMEOUT, detail=f"did not finish within {budget:g} s", **common)
    if not raw:
        code = common["exit_code"]
        if code is None:
            detail = "the sandbox that ran the code was killed before the call ended"
            detail += " (does the code kill processes that it did not start?)"
        else:
            how = f"was killed by {_signal_name(-code)}" if code < 0 else f"exited with code {code}"
            detail = f"the process running the code {how} before returning a result"
        return CallResult(status=CRASHED, detail=detail, **common)
    try:
        reply = Reply.from_json(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # nesting deep enough to exhaust the parser
        return CallResult(status=INVALID, detail=f"the result could not be read: {cut(str(exc), 200)}", **common)
    if reply.status == RAISED:
        return CallResult(status=RAISED, error=reply.error, **common)
    return CallResult(status=reply.status, value=reply.value, **common)
