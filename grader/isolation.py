"""How strongly graded code is kept from the grader: the isolation tiers, found and applied.

Tiers (``detect_isolation`` picks the strongest this machine allows):
- ``namespaces``: the zygote runs under ``bwrap`` (bubblewrap), started as
  root, with new PID, network, IPC, UTS and mount namespaces; it sees only
  /usr, the interpreter's own prefix, the graded exercise and the harness
  (read-only), and a sized /tmp and /dev/shm. It stays root inside with
  only the capabilities it needs (ZYGOTE_CAPABILITIES); each call's child
  drops to a non-root uid reserved for this pytest worker, with no groups,
  no capabilities and no new privileges, and closes every inherited
  descriptor but its own, before any graded code runs. Killing bwrap tears
  the whole PID namespace down.
- ``user``: where namespaces are refused but the grader is root: the zygote
  is an ordinary root process; each call's child drops to the worker's
  reserved uid as above (so the process-count limit holds and every process
  of that uid can be swept), reading world-readable copies of the harness
  and the graded code; the grader's work folder is closed to it.
- ``process``: the zygote and its children run as the grader's own user. It
  stops accidents (hangs, floods, leftovers), not a determined cheater.

Each tier is a small object (``tier_for``) that answers the few questions on
which the tiers differ: where the zygote reads the harness, how it is started,
which zygote serves a graded folder, where a call finds the graded code and its
own folder, which uid it runs as, and what to remove at the end. Everything else
about a call (start, wait, stop, sweep, reply) is the same under every tier and
lives in grader.sandbox.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.names import NAMESPACES, PROCESS, USER
from grader.protocol import ZygoteConfig

# Where the sandbox's folders go (its own, each call's, the user tier's copies): a short path, since
# multiprocessing puts AF_UNIX sockets (at most 107 bytes) in a call's TMPDIR.
CALL_DIR_PARENT = "/tmp" if os.access("/tmp", os.W_OK) else None

# Sandbox uids: one per pytest worker, reserved machine-wide (reserve_uid).
SANDBOX_UID_BASE = 61000
SANDBOX_UID_COUNT = 1000
UID_LOCKS = "/run/kata-grader-uids" if os.access("/run", os.W_OK) else "/tmp/kata-grader-uids"
INSIDE_CODE, INSIDE_HARNESS = "/kata/code", "/kata/harness"
TMPFS_BYTES = 256 << 20
SCRATCH = ("/dev/shm", "/tmp")  # the namespaces tier's own tmpfs mounts, emptied after every call
# What the zygote keeps inside bwrap: switching a call's child to the sandbox uid,
# killing what the call started, emptying the scratch folders it wrote, and reading
# the memory of the call's processes (/proc/PID/smaps_rollup of another uid needs
# CAP_SYS_PTRACE: without it the watchdog counts each process's resident size, and
# pages a fork shares would count once per process). A call's child has none of them.
ZYGOTE_CAPABILITIES = ("CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_SYS_PTRACE")
PROBE_TIMEOUT = 30.0


class IsolationUnavailable(RuntimeError):
    """The isolation tier that was asked for cannot work on this machine."""


@dataclass(frozen=True)
class Isolation:
    """The tier a sandbox runs under, as detect_isolation found it (grader.sandbox applies it with tier_for)."""

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


def bwrap_command(python: str, harness: Path, code: Path, env: dict[str, str]) -> list[str]:
    """The bwrap command that runs python as root, with only the capabilities a zygote needs, in fresh namespaces.

    Root inside, without a user namespace, so that the zygote can switch each
    call's child to the sandbox uid; every other capability is dropped.
    """
    real, prefix = _interpreter(python)
    command = [
        "bwrap", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
        "--die-with-parent", "--new-session", "--cap-drop", "ALL",
        *(item for cap in ZYGOTE_CAPABILITIES for item in ("--cap-add", cap)),
        "--ro-bind", "/usr", "/usr",
    ]  # fmt: skip
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        top = Path("/", name)
        if top.is_symlink():
            command += ["--symlink", os.readlink(top), str(top)]
        elif top.is_dir():
            command += ["--ro-bind", str(top), str(top)]
    command += ["--dev", "/dev", "--proc", "/proc"]
    for mount in SCRATCH:
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
    return [*command, real]


def _clean_env(home: Path) -> dict[str, str]:
    """The whole environment of a sandbox's processes: nothing of the grader's own."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HOME": str(home),
        "TMPDIR": str(home),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
    }


def _open_to_all(root: Path) -> None:
    """Make a tree readable (not writable) by every user."""
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def _namespaces_problem(uid: int) -> str | None:
    """Why the namespaces tier cannot run here, or None when a probe sandbox worked."""
    if shutil.which("bwrap") is None:
        return "bwrap is not installed (Debian package bubblewrap)"
    with tempfile.TemporaryDirectory(prefix="kata-probe-", dir=CALL_DIR_PARENT) as folder:
        os.chmod(folder, 0o755)
        # What a zygote does for every call: switch to the sandbox uid, then start Python's multiprocessing.
        probe = (
            f"import os; os.setgroups([]); os.setresgid({uid}, {uid}, {uid}); os.setresuid({uid}, {uid}, {uid}); "
            "import multiprocessing; os.getuid() != 0 or exit(3)"
        )
        command = bwrap_command(sys.executable, Path(folder), Path(folder), _clean_env(Path("/tmp")))
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
        refused = _namespaces_problem(uid)
        if refused is None:
            return Isolation(NAMESPACES, uid=uid)
        if requested == NAMESPACES:
            raise IsolationUnavailable(refused)
        problems.append(f"namespaces: {refused}")
    refused, python, readable = _user_tier(uid, list(private))
    if refused is None:
        other = "" if python == os.path.realpath(sys.executable) else f"graded code runs on {python}"
        note = "; ".join(part for part in (*problems, other, readable) if part)
        return Isolation(USER, uid=uid, python=python, note=note)
    if requested == USER:
        raise IsolationUnavailable(refused)
    return Isolation(PROCESS, note="; ".join([*problems, f"user: {refused}"]))


@dataclass(frozen=True)
class ZygoteLaunch:
    """How to start one zygote: what grader.sandbox.Zygote runs, and with what."""

    argv: list[str]  # the command; the zygote's config and harness folder are appended as its last two arguments
    config: ZygoteConfig  # its settings for every call (control_fd is filled in when it starts)
    harness: str  # the harness folder, as the zygote sees it
    popen: dict[str, Any]  # further subprocess.Popen arguments (cwd, env)


class Tier:
    """What one isolation tier decides for a sandbox; these answers are the process tier's, which the others change.

    A tier object belongs to one grader.sandbox.Sandbox, from its start (prepare) to its end (close).
    """

    def __init__(self, isolation: Isolation) -> None:
        self.isolation = isolation

    @property
    def uid(self) -> int | None:
        """The uid each call's child switches to and whose processes are swept; None: the grader's own."""
        return self.isolation.uid

    def prepare(self, harness: Path) -> Path:
        """Make a staged harness readable to the zygote; the folder the zygote is to read it from."""
        return harness

    def zygote_key(self, module_dir: Path) -> Path | None:
        """Which zygote serves a graded folder: None is the one that serves every folder."""
        return None

    def zygote_launch(self, bootstrap: list[str], harness: Path, module_dir: Path) -> ZygoteLaunch:
        """How to start a zygote for a graded folder; bootstrap is the interpreter and its arguments."""
        config = ZygoteConfig(control_fd=-1, uid=self.uid)
        return ZygoteLaunch(bootstrap, config, str(harness), {"cwd": "/", "env": _clean_env(Path("/tmp"))})

    def stage_code(self, module_dir: Path, home: Path) -> str:
        """Make the graded code visible to one call, whose own folder is home; the folder the call imports from."""
        return str(module_dir)

    def home_inside(self, home: Path) -> str:
        """A call's own folder (its current folder, HOME and TMPDIR), as the call sees it."""
        return str(home)

    def close(self) -> None:
        """Remove what this tier made for the sandbox (the zygotes are the sandbox's to end)."""


class ProcessTier(Tier):
    """Everything as the grader's own user, in place: one zygote, the folders themselves."""


class NamespacesTier(Tier):
    """A zygote per graded folder under bwrap, which sees the harness and the code through read-only bind mounts."""

    def prepare(self, harness: Path) -> Path:
        # The sandbox uid reads the harness and the graded code through bind mounts.
        _open_to_all(harness)
        return harness

    def zygote_key(self, module_dir: Path) -> Path | None:
        # The folder is bound into the zygote's view: each folder has a zygote of its own.
        return module_dir

    def zygote_launch(self, bootstrap: list[str], harness: Path, module_dir: Path) -> ZygoteLaunch:
        python, *arguments = bootstrap
        argv = [*bwrap_command(python, harness, module_dir, _clean_env(Path("/tmp"))), *arguments]
        config = ZygoteConfig(control_fd=-1, uid=self.uid, wipe=list(SCRATCH))
        return ZygoteLaunch(argv, config, INSIDE_HARNESS, {"cwd": "/"})

    def stage_code(self, module_dir: Path, home: Path) -> str:
        return INSIDE_CODE

    def home_inside(self, home: Path) -> str:
        return "/tmp"  # the zygote's own tmpfs, emptied after every call (SCRATCH)


class UserTier(Tier):
    """One root zygote on the real file system; each call's child, as the sandbox uid, reads copies open to all."""

    def __init__(self, isolation: Isolation) -> None:
        super().__init__(isolation)
        self._visible_root: Path | None = None

    def prepare(self, harness: Path) -> Path:
        # The sandbox uid sees the real file system: give it copies outside the private work folder.
        self._visible_root = Path(tempfile.mkdtemp(prefix="kata-visible-", dir=CALL_DIR_PARENT))
        copy = self._visible_root / "harness"
        shutil.copytree(harness, copy, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
        _open_to_all(self._visible_root)
        return copy

    def stage_code(self, module_dir: Path, home: Path) -> str:
        # A fresh, readable copy of the graded code that the sandbox uid cannot change, in the
        # call's folder, which becomes the uid's own (its TMPDIR: sockets, semaphores).
        code = home / "code"
        shutil.copytree(module_dir, code, ignore=shutil.ignore_patterns("__pycache__"))
        _open_to_all(code)
        assert self.uid is not None  # the user tier always has a uid of its own
        os.chown(home, self.uid, self.uid)
        return str(code)

    def close(self) -> None:
        if self._visible_root is not None:
            shutil.rmtree(self._visible_root, ignore_errors=True)


def tier_for(isolation: Isolation) -> Tier:
    """The object that applies isolation's tier to one sandbox."""
    tiers: dict[str, type[Tier]] = {NAMESPACES: NamespacesTier, USER: UserTier, PROCESS: ProcessTier}
    return tiers[isolation.tier](isolation)
