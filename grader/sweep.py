"""The process sweep: every process a grading started ends, whatever it did to escape.

Used by the run stage (pytest and everything under it) and by the sandbox (a
zygote and the calls it ran). Three tools, each for what the others miss:

- ``become_subreaper``: orphans of our descendants (a setsid, a double fork)
  come back to us instead of to PID 1, so that they stay our descendants;
- ``sweep_descendants``: SIGKILL every descendant, round after round until
  none is left (a fork bomb cannot outrun it), and reap the zombies;
- ``sweep_user``: SIGKILL every process of a sandbox's reserved uid, wherever
  it sits in the process tree.

Processes are found by pid and start time, never by name.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Collection

import psutil

PR_SET_CHILD_SUBREAPER = 36
SWEEP_ROUNDS = 200


def become_subreaper() -> bool:
    """Make orphans of our descendants (setsid, double fork) come back to us."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def descendants() -> set[tuple[int, float]]:
    """(pid, start time) of every living descendant of this process."""
    found = set()
    for child in psutil.Process().children(recursive=True):
        try:
            found.add((child.pid, child.create_time()))
        except psutil.Error:
            pass
    return found


def sweep_descendants(keep: Collection[tuple[int, float]] = frozenset()) -> int:
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
