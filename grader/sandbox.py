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

Isolation tiers (``detect_isolation`` picks the strongest this machine allows):
- ``namespaces``: the sandbox process is ``bwrap`` (bubblewrap), started as
  root, with new PID, network, IPC, UTS and mount namespaces; it sees only
  /usr, the interpreter's own prefix, a copy of the graded exercise and the
  harness (read-only), and a sized /tmp and /dev/shm. Inside, ``setpriv``
  drops to a non-root uid reserved for this pytest worker, with no
  capabilities and no new privileges, before Python starts. Killing bwrap
  tears the whole PID namespace down.
- ``user``: where namespaces are refused but the grader is root: an ordinary
  child process that runs as the worker's reserved non-root uid (so the
  process-count limit holds and every process of that uid can be swept),
  reading world-readable copies of the harness and the graded code; the
  grader's work folder (reports, collected tests) is closed to it.
- ``process``: an ordinary child of the same user in its own session. It
  stops accidents (hangs, floods, leftovers), not a determined cheater.
"""

from __future__ import annotations

import ctypes
import dataclasses
import fcntl
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from grader.protocol import (
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

NAMESPACES, USER, PROCESS = "namespaces", "user", "process"
TIERS = (NAMESPACES, USER, PROCESS)
# Sandbox uids: one per pytest worker, reserved machine-wide (reserve_uid).
SANDBOX_UID_BASE = 61000
SANDBOX_UID_COUNT = 1000
UID_LOCKS = "/run/kata-grader-uids" if os.access("/run", os.W_OK) else "/tmp/kata-grader-uids"
INSIDE_CODE, INSIDE_HARNESS = "/kata/code", "/kata/harness"
TMPFS_BYTES = 256 << 20
SANDBOX_PROCESSES = 256  # RLIMIT_NPROC for a dedicated uid (enforced: it is not root)
PROBE_TIMEOUT = 30.0


class IsolationUnavailable(RuntimeError):
    """The isolation tier that was asked for cannot work on this machine."""


@dataclass(frozen=True)
class Isolation:
    tier: str  # NAMESPACES, USER or PROCESS
    uid: int | None = None  # the sandbox's own uid (namespaces, user)
    note: str = ""  # why a weaker tier was chosen, or what it leaves open, for the scorecard and the terminal
    python: str | None = None  # the interpreter the sandbox uid can run (user), when not the grader's own


_reserved: dict[int, int] = {}  # uid -> the open lock file that holds it, for this process's lifetime


def reserve_uid() -> int:
    """A sandbox uid that no other process on this machine holds, kept until this process ends.

    Every pytest worker of every concurrent grading run needs its own uid, or
    one call's sweep of "every process of the uid" would kill another's
    sandbox. An flock on a root-only file per uid is the reservation; the
    kernel drops it when the holder dies, however it dies.
    """
    if _reserved:
        return next(iter(_reserved))
    # One folder for the whole machine: not TMPDIR, which differs between grading runs.
    locks = Path(UID_LOCKS)
    locks.mkdir(mode=0o700, exist_ok=True)
    for uid in range(SANDBOX_UID_BASE, SANDBOX_UID_BASE + SANDBOX_UID_COUNT):
        fd = os.open(locks / str(uid), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        _reserved[uid] = fd
        return uid
    raise IsolationUnavailable(f"all {SANDBOX_UID_COUNT} sandbox uids from {SANDBOX_UID_BASE} are in use")


def _interpreter(python: str) -> tuple[str, Path]:
    """The real interpreter behind python (venvs are symlinks) and the prefix it needs."""
    real = os.path.realpath(python)
    if real == os.path.realpath(sys.executable):
        return real, Path(sys.base_prefix)
    return real, Path(real).parent.parent


def bwrap_command(python: str, harness: Path, code: Path, uid: int, env: dict[str, str]) -> list[str]:
    """The bwrap + setpriv prefix that runs python as uid in fresh namespaces."""
    real, prefix = _interpreter(python)
    command = [
        "bwrap", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
        "--die-with-parent", "--new-session",
        "--ro-bind", "/usr", "/usr",
    ]  # fmt: skip
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        top = Path("/", name)
        if top.is_symlink():
            command += ["--symlink", os.readlink(top), str(top)]
        elif top.is_dir():
            command += ["--ro-bind", str(top), str(top)]
    command += ["--dev", "/dev", "--proc", "/proc"]
    for mount in ("/dev/shm", "/tmp"):
        command += ["--perms", "1777", "--size", str(TMPFS_BYTES), "--tmpfs", mount]
    if not prefix.is_relative_to("/usr"):
        # bwrap makes missing parents 0700; the sandbox uid must be able to walk to the prefix.
        for parent in reversed(prefix.parents[:-1]):
            command += ["--perms", "0755", "--dir", str(parent)]
        command += ["--ro-bind", str(prefix), str(prefix)]
    command += ["--perms", "0755", "--dir", str(Path(INSIDE_CODE).parent)]
    command += ["--ro-bind", str(harness), INSIDE_HARNESS, "--ro-bind", str(code), INSIDE_CODE]
    command += ["--chdir", "/tmp", "--clearenv"]
    for key, value in env.items():
        command += ["--setenv", key, value]
    command += [
        "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs",
        "--inh-caps=-all", "--bounding-set=-all",
        real,
    ]  # fmt: skip
    return command


def _namespaces_problem(uid: int) -> str | None:
    """Why the namespaces tier cannot run here, or None when a probe sandbox worked."""
    for tool, package in (("bwrap", "bubblewrap"), ("setpriv", "util-linux")):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian package {package})"
    with tempfile.TemporaryDirectory(prefix="kata-probe-", dir=CALL_DIR_PARENT) as folder:
        os.chmod(folder, 0o755)
        probe = "import multiprocessing, os; os.getuid() != 0 or exit(3)"
        command = bwrap_command(sys.executable, Path(folder), Path(folder), uid, _clean_env(Path("/tmp")))
        try:
            done = subprocess.run(
                [*command, "-I", "-S", "-c", probe],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=PROBE_TIMEOUT,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"bwrap could not start a sandbox: {exc}"
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip().splitlines()
        return f"bwrap could not start a sandbox ({said[-1] if said else f'exit status {done.returncode}'})"
    return None


def _run_as(uid: int, argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv,
        user=uid,
        group=uid,
        extra_groups=[],
        cwd="/",
        env=_clean_env(Path("/tmp")),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=PROBE_TIMEOUT,
    )


def _user_tier(uid: int, private: list[Path]) -> tuple[str | None, str, str]:
    """(why the user tier cannot run or None, the interpreter it can run, what it can still read)."""
    probe = "import json, multiprocessing, sys; sys.exit(0 if sys.version_info >= (3, 10) else 3)"
    for python in dict.fromkeys((os.path.realpath(sys.executable), "/usr/bin/python3")):
        try:
            if _run_as(uid, [python, "-I", "-S", "-c", probe]).returncode == 0:
                break
        except (OSError, subprocess.TimeoutExpired):
            continue
    else:
        return "no Python 3.10+ that a non-root user may run (the grader's is in a private folder)", "", ""
    look = "import os, sys; print('\\n'.join(p for p in sys.argv[1:] if os.access(p, os.R_OK)))"
    seen = _run_as(uid, [python, "-I", "-S", "-c", look, *map(str, private)]).stdout.decode().split()
    readable = f"the sandbox user can read {', '.join(seen)}" if seen else ""
    return None, python, readable


def detect_isolation(requested: str = "auto", private: tuple[Path, ...] = ()) -> Isolation:
    """The strongest tier this machine allows (or the one requested); raise if a requested tier cannot run.

    private: folders the graded code should not read (the tests and the solutions); under the user tier
    the note says which of them the sandbox user can read all the same.
    """
    if requested == PROCESS:
        return Isolation(PROCESS, note="process isolation was asked for")
    if os.geteuid() != 0:
        problem = "running each call as a user of its own needs root"
        if requested != "auto":
            raise IsolationUnavailable(problem)
        return Isolation(PROCESS, note=problem)
    uid = reserve_uid()
    problems = []
    if requested in ("auto", NAMESPACES):
        problem = _namespaces_problem(uid)
        if problem is None:
            return Isolation(NAMESPACES, uid=uid)
        if requested == NAMESPACES:
            raise IsolationUnavailable(problem)
        problems.append(f"namespaces: {problem}")
    problem, python, readable = _user_tier(uid, list(private))
    if problem is None:
        other = "" if python == os.path.realpath(sys.executable) else f"graded code runs on {python}"
        note = "; ".join(part for part in (*problems, other, readable) if part)
        return Isolation(USER, uid=uid, python=python, note=note)
    if requested == USER:
        raise IsolationUnavailable(problem)
    return Isolation(PROCESS, note="; ".join([*problems, f"user: {problem}"]))


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


def _open_to_all(root: Path) -> None:
    """Make a tree readable (not writable) by every user."""
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


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

    def __init__(
        self,
        harness_dir: Path,
        python: str = sys.executable,
        limits: Limits | None = None,
        isolation: Isolation | None = None,
    ):
        self.harness_dir = Path(harness_dir)
        self.isolation = isolation or Isolation(PROCESS)
        self.python = self.isolation.python or python
        self.limits = limits or Limits(processes=SANDBOX_PROCESSES if self.isolation.uid is not None else 0)
        self.is_subreaper = become_subreaper()
        if self.isolation.tier == NAMESPACES:
            # The sandbox uid reads the harness and the graded code through bind mounts.
            _open_to_all(self.harness_dir)
        if self.isolation.tier == USER:
            # The sandbox uid sees the real file system: give it copies outside the private work folder.
            self._visible_root = Path(tempfile.mkdtemp(prefix="kata-visible-", dir=CALL_DIR_PARENT))
            self.harness_dir = self._copy_visible(self.harness_dir, "harness")

    def close(self) -> None:
        """Remove what the sandbox owner made outside its caller's folders."""
        if self.isolation.tier == USER:
            shutil.rmtree(self._visible_root, ignore_errors=True)

    def _copy_visible(self, source: Path, name: str) -> Path:
        copy = self._visible_root / name
        shutil.copytree(source, copy, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
        _open_to_all(self._visible_root)
        return copy

    def _command(self, request: CallRequest, module_dir: Path, home: Path) -> tuple[list[str], CallRequest]:
        """The argv that starts the sandbox, and the request as the inside sees it."""
        python = [self.python, "-I", "-S", "-c", BOOTSTRAP]
        if self.isolation.tier == USER:
            # A fresh, readable copy of the graded code in the call's folder, which becomes the
            # uid's own (its TMPDIR: sockets, semaphores).
            code = home / "code"
            shutil.copytree(module_dir, code, ignore=shutil.ignore_patterns("__pycache__"))
            _open_to_all(code)
            os.chown(home, self.isolation.uid, self.isolation.uid)
            request = dataclasses.replace(request, module_dir=str(code))
        if self.isolation.tier != NAMESPACES:
            return [*python, request.to_json(), str(self.harness_dir)], request
        inside = dataclasses.replace(request, module_dir=INSIDE_CODE)
        env = _clean_env(Path("/tmp"))
        prefix = bwrap_command(self.python, self.harness_dir, module_dir, self.isolation.uid, env)
        return [*prefix, *python[1:], inside.to_json(), INSIDE_HARNESS], inside

    def _credentials(self) -> dict[str, Any]:
        """Popen's user switch for the user tier (bwrap switches inside for namespaces)."""
        if self.isolation.tier != USER:
            return {}
        return {"user": self.isolation.uid, "group": self.isolation.uid, "extra_groups": []}

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
        """
        # A short path: multiprocessing puts AF_UNIX sockets (at most 107 bytes) in TMPDIR.
        home = Path(tempfile.mkdtemp(prefix="kata-call-", dir=CALL_DIR_PARENT))
        os.chmod(home, 0o755)
        try:
            return self._call_in(home, module, module_dir, scenario, args, start_method, timeout, import_timeout)
        finally:
            shutil.rmtree(home, ignore_errors=True)

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
    ) -> CallResult:
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
                argv, request = self._command(request, Path(module_dir), home)
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    pass_fds=(write_end,),
                    start_new_session=True,
                    cwd=home,
                    env=_clean_env(home),
                    **self._credentials(),
                )
        finally:
            os.close(write_end)
        try:
            import_deadline = started + min(timeout, import_timeout or timeout)
            raw, finished, overflow = self._wait(proc, read_end, started + timeout, import_deadline)
        finally:
            os.close(read_end)
            self._stop(proc, before)
        duration = time.monotonic() - started
        stdout, stderr = _read_head(home / "stdout"), _read_head(home / "stderr")
        common = {"stdout": stdout, "stderr": stderr, "exit_code": proc.returncode, "duration": duration}

        if overflow:  # checked first: a flood on the pipe is invalid even if the process still ran
            return CallResult(status=INVALID, detail=f"the result is larger than {MAX_REPLY_BYTES} bytes", **common)
        imported = raw.startswith(IMPORTED)
        raw = raw.removeprefix(IMPORTED)
        if not finished and not imported:
            detail = f"did not finish its import within {min(timeout, import_timeout or timeout):g} s"
            return CallResult(status=TIMEOUT, detail=detail, **common)
        if not finished:
            return CallResult(status=TIMEOUT, detail=f"did not finish within {timeout:g} s", **common)
        if not raw:
            code = proc.returncode
            if self.isolation.tier == NAMESPACES and code is not None and code > 128:
                code = -(code - 128)  # bwrap reports a signal death of its child as 128 + signal
            how = f"was killed by {_signal_name(-code)}" if code and code < 0 else f"exited with code {code}"
            detail = f"the process running the code {how} before returning a result"
            return CallResult(status=CRASHED, detail=detail, **common)
        try:
            reply = Reply.from_json(raw)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # nesting deep enough to exhaust the parser
            return CallResult(status=INVALID, detail=f"the result could not be read: {cut(str(exc), 200)}", **common)
        if reply.status == RAISED:
            return CallResult(status=RAISED, error=reply.error, **common)
        return CallResult(status=reply.status, value=reply.value, **common)

    def _wait(
        self, proc: subprocess.Popen, read_end: int, deadline: float, import_deadline: float
    ) -> tuple[bytes, bool, bool]:
        """Read the reply until the process exits or a deadline passes.

        The runner writes IMPORTED once the graded module is imported; without
        it by import_deadline the call is over (a module that hangs at import
        need not cost a long scenario's whole budget). The pipe is not read to
        EOF: a leftover grandchild may hold it open.
        Returns (bytes read, whether the process exited, whether the cap was hit).
        """
        chunks: list[bytes] = []
        size = 0
        open_pipe = True
        imported = False
        os.set_blocking(read_end, False)
        try:
            exit_fd = os.pidfd_open(proc.pid)
        except (AttributeError, OSError):
            exit_fd = None
        try:
            while True:
                now = time.monotonic()
                until = deadline if imported else min(deadline, import_deadline)
                if now >= until:
                    return b"".join(chunks), False, False
                watched = ([read_end] if open_pipe else []) + ([exit_fd] if exit_fd is not None else [])
                poll = until - now if exit_fd is not None else min(until - now, 0.05)
                ready, _, _ = select.select(watched, [], [], poll)
                exited = (exit_fd in ready) if exit_fd is not None else proc.poll() is not None
                if read_end in ready or exited:
                    while open_pipe:
                        try:
                            data = os.read(read_end, 65536)
                        except BlockingIOError:
                            break
                        if not data:
                            open_pipe = False  # every writer closed it; only the exit is left to wait for
                            break
                        chunks.append(data)
                        size += len(data)
                        if size > MAX_REPLY_BYTES:
                            return b"", exited, True
                        if not imported and size >= len(IMPORTED):
                            imported = b"".join(chunks).startswith(IMPORTED)
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
        if self.isolation.uid is not None:
            sweep_user(self.isolation.uid)


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


def sweep_user(uid: int) -> int:
    """SIGKILL every process of a sandbox uid (the uid is reserved: nothing else runs as it)."""
    killed = 0
    for _ in range(SWEEP_ROUNDS):
        alive = []
        for process in psutil.process_iter(["uids", "status"]):
            try:
                if process.info["uids"].real == uid and process.info["status"] != psutil.STATUS_ZOMBIE:
                    process.kill()
                    alive.append(process)
            except psutil.Error:
                pass
        if not alive:
            return killed
        killed += len(alive)
        psutil.wait_procs(alive, timeout=0.5)
    return killed
