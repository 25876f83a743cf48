"""The one place that starts, limits and stops processes running graded code.

    pytest worker (trusted, a child subreaper)
      |
      +-- sandbox process   python -I -S -c runner.main() REQUEST
            |  own session and process group; limits set before the import
            |  imports the graded module, runs one scenario, writes one reply
            |
            +-- whatever the graded code starts (pools, managers, daemons,
                setsid orphans: orphans are re-parented to the worker,
                because it is a subreaper)

Ownership and ending, for every call, whatever happens:
1. The worker waits for the sandbox process to exit (a pidfd), reading the
   result pipe as it goes, until the call's deadline.
2. It kills the sandbox's process group, then sweeps every descendant of
   its own that did not exist before the call (SIGKILL, repeated until none
   is left, so that a fork bomb cannot outrun it), then reaps them.
3. Only then is the reply parsed. The reply is JSON, capped in size; stdout
   and stderr went to files that are read capped. Nothing is unpickled.

A reply that never came is a TIMEOUT (deadline) or a CRASHED (the process
ended first); a reply that does not parse is INVALID. The verdict is made by
the hidden test from this plain data, in the worker, never in the sandbox.
"""

from __future__ import annotations

import ctypes
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from grader.protocol import (
    CRASHED,
    INVALID,
    MAX_OUTPUT_CHARS,
    MAX_REPLY_BYTES,
    RAISED,
    TIMEOUT,
    CallRequest,
    CallResult,
    Limits,
    Reply,
    cut,
)

PR_SET_CHILD_SUBREAPER = 36
# The code that the sandbox runs first: the harness folder holds a copy of
# the grader's protocol and runner and the scenarios, and nothing else.
BOOTSTRAP = "import sys; sys.path.insert(0, sys.argv[2]); from grader.sandboxed.runner import main; main()"
# What the sandbox copies of this package: stdlib-only modules.
HARNESS_FILES = ("__init__.py", "protocol.py", "sandboxed")
SWEEP_ROUNDS = 200
CALL_DIR_PARENT = "/tmp" if os.access("/tmp", os.W_OK) else None


def stage_harness(destination: Path) -> Path:
    """Copy the sandbox side of the grader (runner, protocol, scenarios) to destination."""
    package = Path(__file__).resolve().parent
    target = destination / "grader"
    target.mkdir(parents=True, exist_ok=True)
    for name in HARNESS_FILES:
        source = package / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
        else:
            shutil.copy2(source, target / name)
    return destination


def become_subreaper() -> bool:
    """Make orphans of our descendants (setsid, double fork) come back to us."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _clean_env(home: Path) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HOME": str(home),
        "TMPDIR": str(home),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
    }


def _read_head(path: Path) -> str:
    try:
        with open(path, "rb") as stream:
            data = stream.read(MAX_OUTPUT_CHARS * 4 + 1)
            more = stream.read(1) != b""
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    if more:
        text += "\n... [output cut]"
    return cut(text, MAX_OUTPUT_CHARS)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class Sandbox:
    """Runs scenarios against graded modules in throw-away processes."""

    def __init__(self, harness_dir: Path, python: str = sys.executable, limits: Limits | None = None):
        self.harness_dir = Path(harness_dir)
        self.python = python
        self.limits = limits or Limits()
        self.is_subreaper = become_subreaper()

    def call(
        self,
        module: str,
        module_dir: Path,
        scenario: str,
        args: list[Any],
        start_method: str,
        timeout: float,
    ) -> CallResult:
        """Run scenario(module, *args) in a sandbox; always return, never leave a process."""
        # A short path: multiprocessing puts AF_UNIX sockets (at most 107 bytes) in TMPDIR.
        home = Path(tempfile.mkdtemp(prefix="kata-call-", dir=CALL_DIR_PARENT))
        os.chmod(home, 0o755)
        before = descendants()
        read_end, write_end = os.pipe()
        request = CallRequest(
            module=module,
            module_dir=str(module_dir),
            scenario=scenario,
            args=list(args),
            start_method=start_method,
            result_fd=write_end,
            limits=Limits(
                address_space_mib=self.limits.address_space_mib,
                open_files=self.limits.open_files,
                file_size_mib=self.limits.file_size_mib,
                # CPU time per process: a little over the wall-clock budget.
                cpu_seconds=max(self.limits.cpu_seconds, int(timeout) + 5),
                processes=self.limits.processes,
            ),
        )
        started = time.monotonic()
        try:
            with open(home / "stdout", "wb") as out, open(home / "stderr", "wb") as err:
                proc = subprocess.Popen(
                    [self.python, "-I", "-S", "-c", BOOTSTRAP, request.to_json(), str(self.harness_dir)],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    pass_fds=(write_end,),
                    start_new_session=True,
                    cwd=home,
                    env=_clean_env(home),
                )
        finally:
            os.close(write_end)
        try:
            raw, finished, overflow = self._wait(proc, read_end, started + timeout)
        finally:
            os.close(read_end)
            self._stop(proc, before)
        duration = time.monotonic() - started
        stdout, stderr = _read_head(home / "stdout"), _read_head(home / "stderr")
        shutil.rmtree(home, ignore_errors=True)
        common = {"stdout": stdout, "stderr": stderr, "exit_code": proc.returncode, "duration": duration}

        if not finished:
            return CallResult(status=TIMEOUT, detail=f"did not finish within {timeout:g} s", **common)
        if overflow:
            return CallResult(status=INVALID, detail=f"the result is larger than {MAX_REPLY_BYTES} bytes", **common)
        if not raw:
            code = proc.returncode
            how = f"was killed by {_signal_name(-code)}" if code and code < 0 else f"exited with code {code}"
            detail = f"the process running the code {how} before returning a result"
            return CallResult(status=CRASHED, detail=detail, **common)
        try:
            reply = Reply.from_json(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            return CallResult(status=INVALID, detail=f"the result could not be read: {cut(str(exc), 200)}", **common)
        if reply.status == RAISED:
            return CallResult(status=RAISED, error=reply.error, **common)
        return CallResult(status=reply.status, value=reply.value, **common)

    def _wait(self, proc: subprocess.Popen, read_end: int, deadline: float) -> tuple[bytes, bool, bool]:
        """Read the reply until the process exits or the deadline passes.

        The pipe is not read to EOF: a leftover grandchild may hold it open.
        Returns (bytes read, whether the process exited, whether the cap was hit).
        """
        chunks: list[bytes] = []
        size = 0
        os.set_blocking(read_end, False)
        try:
            exit_fd = os.pidfd_open(proc.pid)
        except (AttributeError, OSError):
            exit_fd = None
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return b"".join(chunks), False, False
                watched = [read_end] + ([exit_fd] if exit_fd is not None else [])
                ready, _, _ = select.select(watched, [], [], min(remaining, 0.05 if exit_fd is None else remaining))
                exited = (exit_fd in ready) if exit_fd is not None else proc.poll() is not None
                if read_end in ready or exited:
                    while True:
                        try:
                            data = os.read(read_end, 65536)
                        except BlockingIOError:
                            break
                        if not data:
                            break
                        chunks.append(data)
                        size += len(data)
                        if size > MAX_REPLY_BYTES:
                            return b"", exited, True
                if exited:
                    return b"".join(chunks), True, False
        finally:
            if exit_fd is not None:
                os.close(exit_fd)

    def _stop(self, proc: subprocess.Popen, before: set[tuple[int, float]]) -> None:
        """Kill the sandbox's group, then every new descendant, until none is left."""
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()
        sweep_descendants(keep=before)


def descendants() -> set[tuple[int, float]]:
    """(pid, start time) of every living descendant of this process."""
    found = set()
    for child in psutil.Process().children(recursive=True):
        try:
            found.add((child.pid, child.create_time()))
        except psutil.Error:
            pass
    return found


def sweep_descendants(keep: set[tuple[int, float]] = frozenset()) -> int:
    """SIGKILL every descendant not in keep, round after round, and reap them.

    Returns how many processes were killed. Zombies are reaped, not counted:
    a process in state Z is already gone.
    """
    me = os.getpid()
    killed = 0
    for _ in range(SWEEP_ROUNDS):
        alive = []
        for child in psutil.Process(me).children(recursive=True):
            try:
                if (child.pid, child.create_time()) in keep:
                    continue
                if child.status() == psutil.STATUS_ZOMBIE:
                    if child.ppid() == me:
                        os.waitpid(child.pid, os.WNOHANG)
                    continue
                child.kill()
                alive.append(child)
            except (psutil.Error, ChildProcessError):
                pass
        if not alive:
            return killed
        killed += len(alive)
        psutil.wait_procs(alive, timeout=0.5)
        for child in alive:
            try:
                os.waitpid(child.pid, os.WNOHANG)
            except (ChildProcessError, OSError):
                pass
    return killed
