"""Scenarios for exercise 1 (processes), run inside the sandbox.

Each scenario takes the graded module first, drives it, and returns plain
facts (JSON data) for the hidden test to judge. Helpers that child processes
run are module-level functions, so that every start method can find them.
Every blocking call has a timeout.

The targets that run_all is given record their pid first. Called directly in
the caller's process (a mistake), they return at once instead of waiting at a
barrier or ending the process, so the test can say where they ran.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import queue
import sys
import time
from types import ModuleType
from typing import Any

from grader.sandboxed.scenarios.facts import identity

WAIT = 20.0  # seconds any blocking call here may wait: long, because a loaded machine is slow
BARRIER_WAIT = 8.0
MISSED_BARRIER_EXIT = 7
EXIT_AFTER = 0.5  # seconds a child of run_all works before it exits


def _in_caller() -> bool:
    """Whether this runs in the scenario's own process, where no target belongs."""
    return multiprocessing.parent_process() is None


def report_identity(results: Any, first: Any, *, tag: Any = None) -> None:
    """Child target: say where it runs and what it was given."""
    info = identity()
    info.update(name=multiprocessing.current_process().name, first=first, tag=tag)
    results.put(info)


def start_worker_identity(module: ModuleType, with_options: bool = True) -> dict[str, Any]:
    results = multiprocessing.Queue()
    if with_options:
        returned = module.start_worker(
            report_identity, args=(results, "from-args"), kwargs={"tag": "from-kwargs"}, name="kata-worker"
        )
    else:  # kwargs and name left to their defaults
        returned = module.start_worker(report_identity, (results, "from-args"))
    facts: dict[str, Any] = {
        "caller_pid": os.getpid(),
        "returned_type": type(returned).__name__,
        "is_process": isinstance(returned, multiprocessing.process.BaseProcess),
        "started": False,
    }
    if facts["is_process"]:
        facts["started"] = returned.pid is not None
    try:
        facts["reports"] = [results.get(timeout=WAIT)]
    except queue.Empty:
        facts["reports"] = []
    while True:  # a target called twice (once directly, once in a process) reports twice
        try:
            facts["reports"].append(results.get(timeout=0.2))
        except queue.Empty:
            break
    if facts["is_process"] and facts["started"]:
        returned.join(WAIT)
        facts["exitcode"] = returned.exitcode
    return facts


def meet_at_barrier(barrier: Any, met: Any, pids: Any, index: int) -> None:
    """Child target: wait until every sibling is running too."""
    pids[index] = os.getpid()
    if _in_caller():
        return
    try:
        barrier.wait()
    except Exception:  # BrokenBarrierError: the others were not running at the same time
        sys.exit(MISSED_BARRIER_EXIT)
    met[index] = 1
    time.sleep(EXIT_AFTER)  # see exit_with: no exit code may be ready before a join


def run_all_together(module: ModuleType, count: int) -> dict[str, Any]:
    barrier = multiprocessing.Barrier(count, timeout=BARRIER_WAIT)
    met = multiprocessing.Array("i", count)
    pids = multiprocessing.Array("i", count)
    codes = module.run_all(meet_at_barrier, [(barrier, met, pids, i) for i in range(count)])
    return {"exit_codes": _plain_list(codes), "met": list(met), "pids": list(pids), "caller_pid": os.getpid()}


def finish_later(done: Any, pids: Any, index: int, delay: float) -> None:
    """Child target: work for a while, then mark itself done."""
    pids[index] = os.getpid()
    if _in_caller():
        return
    time.sleep(delay)
    done[index] = 1


def run_all_waits(module: ModuleType, count: int, delay: float) -> dict[str, Any]:
    done = multiprocessing.Array("i", count)
    pids = multiprocessing.Array("i", count)
    started = time.monotonic()
    codes = module.run_all(finish_later, [(done, pids, i, delay) for i in range(count)])
    elapsed = time.monotonic() - started
    # What the caller could see the moment run_all returned:
    return {
        "exit_codes": _plain_list(codes),
        "done": list(done),
        "elapsed": elapsed,
        "left_running": len(multiprocessing.active_children()),
        "pids": list(pids),
        "caller_pid": os.getpid(),
    }


def exit_with(code: int, pids: Any, index: int) -> None:
    """Child target: record the pid, work a moment, then end with the given exit code.

    The moment of work matters: a child that ended at once could have exited
    before a run_all that never joins read its exitcode, and that mistake
    would then pass by luck.
    """
    pids[index] = os.getpid()
    if _in_caller():
        return
    time.sleep(EXIT_AFTER)
    if code == 1:
        raise RuntimeError("this worker fails on purpose")
    if code:
        sys.exit(code)


def run_all_exit_codes(module: ModuleType, codes: list[int]) -> dict[str, Any]:
    pids = multiprocessing.Array("i", len(codes))
    result = module.run_all(exit_with, [(code, pids, i) for i, code in enumerate(codes)])
    return {"exit_codes": _plain_list(result), "pids": list(pids), "caller_pid": os.getpid()}


def whoami_here(module: ModuleType) -> dict[str, Any]:
    return {"answer": _plain_dict(module.whoami()), "pid": os.getpid(), "name": multiprocessing.current_process().name}


def report_whoami(results: Any, module_name: str) -> None:
    """Child target: ask the graded module who this process is."""
    try:
        results.put(("ok", _plain_dict(importlib.import_module(module_name).whoami())))
    except BaseException as exc:  # the error is the fact to report
        results.put(("raised", f"{type(exc).__name__}: {exc}"))


def whoami_in_child(module: ModuleType) -> dict[str, Any]:
    results = multiprocessing.Queue()
    child = multiprocessing.Process(target=report_whoami, args=(results, module.__name__), name="kata-child")
    child.start()
    try:
        kind, answer = results.get(timeout=WAIT)
    except queue.Empty:
        kind, answer = "silent", None
    child.join(WAIT)
    return {"kind": kind, "answer": answer, "caller_pid": os.getpid(), "child_pid": child.pid}


def _plain(item: Any) -> Any:
    return item if isinstance(item, (int, str, type(None))) else repr(item)


def _plain_list(value: Any) -> Any:
    return [_plain(item) for item in value] if isinstance(value, (list, tuple)) else repr(value)


def _plain_dict(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    return repr(value)
