"""The sandbox's resident process: import once, fork one child per call.

Started by ``grader.sandbox`` once per pytest worker and graded folder, as
``python -I -S -c "...; zygote.serve()" CONFIG HARNESS`` inside the isolation
tier's wrapping (bubblewrap's namespaces, or none). It imports
multiprocessing, concurrent.futures and every scenario module once, then
waits on its control socket. For each call it forks a child that, before any
graded code runs:

1. starts a session of its own;
2. keeps stdin (/dev/null), stdout and stderr (the worker's capped files) and
   the result pipe as descriptor 3, and closes every other descriptor, the
   control socket first: a call must not be able to answer for a later one;
3. switches to the sandbox's uid (no groups, no new privileges) when the tier
   has one, so that it can neither signal, trace nor limit the zygote;
4. moves into the call's own folder, with a new multiprocessing key;
then hands over to ``runner.run``. While the call runs, the zygote looks at
the memory of the call's whole process tree every MEMORY_LOOK seconds (the
proportional set size of each process, so that pages a fork shares count
once) and ends the call when it passes the request's tree_memory_mib: a
per-process limit (RLIMIT_AS) does not stop a call that starts many
processes. When the child ends, the watchdog ends it, or the worker asks to
stop it, the zygote kills every process the call started (it is a child
subreaper: orphans and double-forked daemons come back to it), empties the
sandbox's own /tmp and /dev/shm, and only then answers "ended".

A child sees a copy of the zygote's memory, so the zygote holds nothing that
the sandbox could not read anyway (the protocol, the runner, the scenarios),
and it never imports graded code. Standard library only.
"""

from __future__ import annotations

import ctypes
import gc
import importlib
import json
import multiprocessing
import os
import pkgutil
import select
import shutil
import signal
import socket
import sys
import tempfile
import time
import traceback
from typing import Any

from grader.protocol import (
    BUSY_CPU,
    BUSY_LOOK,
    CONTROL_MESSAGE_BYTES,
    DUMP,
    DUMP_SIGNAL,
    RESULT_FD,
    CallRequest,
    ZygoteConfig,
)
from grader.sandboxed import runner, scenarios

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
# What graded code and the scenarios import: paid for once here instead of once per call.
PRELOAD = (
    "concurrent.futures",
    "concurrent.futures.process",
    "concurrent.futures.thread",
    "multiprocessing.connection",
    "multiprocessing.forkserver",
    "multiprocessing.heap",
    "multiprocessing.managers",
    "multiprocessing.pool",
    "multiprocessing.popen_fork",
    "multiprocessing.popen_forkserver",
    "multiprocessing.popen_spawn_posix",
    "multiprocessing.queues",
    "multiprocessing.resource_tracker",
    "multiprocessing.shared_memory",
    "multiprocessing.sharedctypes",
    "multiprocessing.synchronize",
    "queue",
    "threading",
)
SETUP_FAILED = 70  # a child's exit code when it could not become the call (EX_SOFTWARE)
SWEEP_ROUNDS = 2000
SWEEP_PAUSE = 0.001  # seconds between rounds: SIGKILLed processes need a moment to die
# Seconds between two looks at the call's memory. A tree that grows at a few GB/s (two cores touching fresh
# pages) passes its cap by a few hundred MB at most before it is killed.
MEMORY_LOOK = 0.02
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
MIB = 1 << 20

_libc = ctypes.CDLL(None, use_errno=True)


def _prctl(option: int, value: int) -> None:
    if _libc.prctl(option, value, 0, 0, 0) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"prctl({option}): {os.strerror(error)}")


def serve() -> None:
    """Answer calls on the control socket until it closes."""
    config = ZygoteConfig.from_json(sys.argv[1])
    control = socket.socket(fileno=config.control_fd)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    if config.die_with_parent:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    _preload()
    gc.collect()
    gc.freeze()  # children then share these pages instead of copying them when the collector runs
    control.send(json.dumps({"ready": os.getpid()}).encode())
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(control, CONTROL_MESSAGE_BYTES, 3)
        except OSError:
            break
        if not data:
            break  # the worker closed its end, or died
        request = _request(data)
        if request is None or len(fds) != 3:
            for fd in fds:  # a "stop" that came after its call had ended on its own
                os.close(fd)
            continue
        exit_code, memory = _run(control, request, fds, config)
        _sweep()
        _wipe(config.wipe)
        try:
            control.send(json.dumps({"ended": exit_code, "memory": memory}).encode())
        except OSError:
            break
    _sweep()
    os._exit(0)


def _preload() -> None:
    for name in PRELOAD:
        importlib.import_module(name)
    for found in pkgutil.iter_modules(scenarios.__path__, f"{scenarios.__name__}."):
        try:
            importlib.import_module(found.name)
        except Exception:  # the call that needs it imports it again and reports the error
            pass


def _request(data: bytes) -> CallRequest | None:
    try:
        return CallRequest.from_json(json.loads(data)["call"])
    except (ValueError, KeyError, TypeError):
        return None


def _run(
    control: socket.socket, request: CallRequest, fds: list[int], config: ZygoteConfig
) -> tuple[int | None, dict[str, object]]:
    """Fork the call's child and wait for its exit, the worker's stop or the memory cap; return its exit code.

    Also returns what the watchdog saw: the peak of the tree's memory, the cap, and whether the cap ended the call.
    """
    cap = request.limits.tree_memory_mib * MIB
    memory: dict[str, object] = {"limit_mib": request.limits.tree_memory_mib, "peak_mib": 0.0, "exceeded": False}
    pid = os.fork()
    if pid == 0:
        try:
            control.close()
            _become_the_call(request, fds, config.uid)
            runner.run(request)
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(SETUP_FAILED)
    for fd in fds:
        os.close(fd)
    try:
        exited = os.pidfd_open(pid)
    except (AttributeError, OSError):
        exited = None
    peak = 0
    try:
        while True:
            watched: list[Any] = [control] if exited is None else [control, exited]
            ready, _, _ = select.select(watched, [], [], MEMORY_LOOK)
            if exited is None or exited in ready:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    return os.waitstatus_to_exitcode(status), memory
            if control in ready:
                message = control.recv(CONTROL_MESSAGE_BYTES)
                if message == DUMP:
                    control.send(json.dumps({"dumped": _dump(pid)}).encode())
                    continue
                # "stop", or the end of the socket: either way, stop
                return _kill(pid), memory
            held = _tree_memory()
            if held > peak:
                peak = held
                memory["peak_mib"] = round(peak / MIB, 1)
            if held > cap:
                memory["exceeded"] = True
                return _kill(pid), memory
    finally:
        if exited is not None:
            os.close(exited)


def _kill(pid: int) -> int:
    """SIGKILL the call's child and every process under it now (the sweep after the call makes sure); its code."""
    os.kill(pid, signal.SIGKILL)
    for other in _living_descendants():
        try:
            os.kill(other, signal.SIGKILL)
        except OSError:
            pass
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _tree_memory() -> int:
    """Bytes the call's processes hold together: each one's proportional set size (its resident size if unreadable)."""
    return sum(_process_memory(pid) for pid in _living_descendants())


def _process_memory(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as rollup:
            for line in rollup:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * PAGE_BYTES
    except (OSError, ValueError, IndexError):
        return 0


def _cpu_ticks(pid: int) -> int | None:
    """The CPU time (user and system, all threads) a process has used, in clock ticks."""
    try:
        with open(f"/proc/{pid}/stat") as stream:
            fields = stream.read().rpartition(")")[2].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, ValueError, IndexError):
        return None


def _dump(pid: int) -> dict[str, object]:
    """Before a call is stopped at its deadline: its stack to its stderr, and whether it is busy or waiting.

    The runner registered faulthandler for DUMP_SIGNAL, so the stack goes to the
    call's stderr file. Busy: the call's process used the CPU during a short
    look (a blocked process uses none; a loop that never ends gets some even on
    a machine loaded many times over).
    """
    before = _cpu_ticks(pid)
    try:
        os.kill(pid, DUMP_SIGNAL)
    except OSError:
        pass
    time.sleep(BUSY_LOOK)
    after = _cpu_ticks(pid)
    used = None if before is None or after is None else (after - before) / os.sysconf("SC_CLK_TCK")
    return {"cpu_seconds": used, "looked": BUSY_LOOK, "busy": None if used is None else used >= BUSY_CPU}


def _become_the_call(request: CallRequest, fds: list[int], uid: int | None) -> None:
    """Give this fresh child the call's descriptors, identity and folder."""
    result, stdout, stderr = fds
    os.setsid()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(stdout, 1)
    os.dup2(stderr, 2)
    if result != RESULT_FD:
        os.dup2(result, RESULT_FD)
    os.set_inheritable(RESULT_FD, False)  # spawned children must not get the result pipe
    _close_all_but(range(RESULT_FD + 1))
    os.environ["HOME"] = os.environ["TMPDIR"] = request.home
    tempfile.tempdir = None
    os.chdir(request.home)
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
        # A change of uid makes a process undumpable: its /proc files turn root's, and the graded code
        # could not even rename itself. It is the uid's own process now, as if it had been started so.
        _prctl(PR_SET_DUMPABLE, 1)
    # The zygote's key is in every child's memory; a call's managers get a key of their own.
    multiprocessing.current_process().authkey = os.urandom(32)


def _close_all_but(kept: range) -> None:
    try:
        open_fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        os.closerange(kept.stop, 65536)
        return
    for fd in open_fds:
        if fd not in kept:
            try:
                os.close(fd)
            except OSError:
                pass  # the listing's own descriptor, already closed


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for thread in threads:
        try:
            with open(f"/proc/{pid}/task/{thread}/children") as listing:
                found += [int(child) for child in listing.read().split()]
        except OSError:
            pass
    return found


def _living_descendants() -> list[int]:
    """Every descendant of this process that is not a zombie."""
    found, queue = [], _children(os.getpid())
    while queue:
        pid = queue.pop()
        try:
            with open(f"/proc/{pid}/stat") as stat:
                state = stat.read().rpartition(")")[2].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            found.append(pid)
        queue += _children(pid)
    return found


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _sweep() -> None:
    """SIGKILL every descendant, round after round until none is left, so that a fork bomb cannot outrun it."""
    for _ in range(SWEEP_ROUNDS):
        _reap()
        victims = _living_descendants()
        if not victims:
            return
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(SWEEP_PAUSE)


def _wipe(folders: list[str]) -> None:
    """Empty the sandbox's own scratch folders, so that no call sees what an earlier one left."""
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
            except OSError:
                pass
