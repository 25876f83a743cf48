"""Scenarios for exercise 11 (executors), run inside the sandbox.

Each scenario takes the graded module first, drives it, and returns plain
facts (JSON data) for the hidden test to judge. What the workers run are
module-level functions here, so that every start method finds them by name.

Evidence used, and why:
- Tasks that must run at the same time meet first: each one leaves a file in a
  folder of the scenario's and waits until every party's file is there (at most
  MEET_WAIT seconds). The file system is shared by every process under every
  start method, so no Manager is needed. Tasks run one after another never meet.
- Completion order is made certain, not likely: the tasks meet, then sleep
  durations that the hidden test chose far apart (0.4 s), so they finish in a
  known order whatever the load, and each reports the moment it finished.
- A worker dies for real (os._exit, or SIGKILL sent to itself). The graded
  function runs in a helper thread that the scenario waits for with a deadline,
  so a function that waits forever on a broken pool is reported, not hung on.
- The start method a worker was made with shows in the worker: only a forked
  worker sees a value set in the caller just before the pool started, and only
  a forkserver worker has another parent (the server) in the operating system.
- Every ProcessPoolExecutor created during a call is kept referenced, so that
  one never shut down keeps its workers alive and shows as left running.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

from grader.sandboxed.scenarios.facts import error_fact

MEET_WAIT = 8.0  # seconds a task waits for the others; a correct solution meets within a second
WAIT = 30.0  # seconds the scenario waits for a graded function that should return promptly
JOIN_WAIT = 10.0  # seconds the scenario waits for leftover workers to finish what they had begun

# Set by the caller before its pool starts (see start_method_seen); only a forked worker inherits it.
_marker_from_caller: str | None = None
# Set by the initializer in each worker (see install_label).
_label: str | None = None
_label_installed_in: int | None = None


# ---------------------------------------------------------------- what the workers run


def _meet(folder: str, name: str, parties: int) -> bool:
    """Leave this task's file in folder; wait until parties files are there. True if they all came."""
    Path(folder, name).touch()
    deadline = time.monotonic() + MEET_WAIT
    while len(os.listdir(folder)) < parties:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def square_where(x: int) -> dict[str, int]:
    """Worker task: x squared, and where it was computed."""
    return {"item": x, "square": x * x, "pid": os.getpid()}


def times_ten(x: int) -> int:
    """Worker task: ten times x, and an error for 2."""
    if x == 2:
        raise ValueError(f"item 2 is bad (raised in process {os.getpid()})")
    return x * 10


def meet_then_sleep(job: dict[str, Any]) -> dict[str, Any]:
    """Worker task: meet the other parties, sleep job["sleep"] seconds, say when it finished."""
    met = _meet(job["folder"], f"started-{job['item']}", job["parties"])
    time.sleep(job["sleep"])
    return {"item": job["item"], "pid": os.getpid(), "met": met, "finished_at": time.monotonic()}


def fail_first_then_sleep(job: dict[str, Any]) -> dict[str, Any]:
    """Worker task: item 0 fails at once; every other item leaves a file to say it started, then sleeps."""
    if job["item"] == 0:
        raise ValueError(f"item 0 is bad (raised in process {os.getpid()})")
    Path(job["folder"], f"started-{job['item']}").touch()
    time.sleep(job["sleep"])
    return {"item": job["item"], "pid": os.getpid()}


def crash_on_one(job: dict[str, Any]) -> dict[str, Any]:
    """Worker task: item 1 kills its own worker process, the others sleep a little."""
    if job["item"] == 1:
        if job["how"] == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        os._exit(3)
    time.sleep(job["sleep"])
    return {"item": job["item"], "pid": os.getpid()}


def install_label(label: str) -> None:
    """Initializer: remember label in this worker, and which process ran the initializer."""
    global _label, _label_installed_in
    _label, _label_installed_in = label, os.getpid()


def read_label(item: int) -> dict[str, Any]:
    """Worker task: what the initializer left in this worker."""
    return {"item": item, "pid": os.getpid(), "label": _label, "installed_in": _label_installed_in}


def start_method_seen(item: int) -> dict[str, Any]:
    """Worker task: the facts that tell how this worker was started."""
    parent = multiprocessing.parent_process()
    return {
        "item": item,
        "pid": os.getpid(),
        "os_parent": os.getppid(),
        "parent": parent.pid if parent else None,
        "marker": _marker_from_caller,
    }


# ---------------------------------------------------------------- helpers


def _plain(value: Any, depth: int = 0) -> Any:
    """value as JSON data; an exception becomes {"exception": ...}; anything else is shown by repr."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else repr(value)
    if isinstance(value, BaseException):
        return {"exception": error_fact(value)}
    if depth < 5 and isinstance(value, (list, tuple)):
        return [_plain(item, depth + 1) for item in value]
    if depth < 5 and isinstance(value, dict):
        return {str(key): _plain(item, depth + 1) for key, item in value.items()}
    return repr(value)


def _returned(value: Any) -> Any:
    """What a graded function returned, as JSON data; an iterator (a map not made into a list) is drained."""
    if isinstance(value, Iterator):
        try:
            value = list(value)
        except Exception as exc:  # the error met while draining is the fact to report
            return {"iterator_raised": error_fact(exc)}
    return _plain(value)


def _call(function: Callable[..., Any], *args: Any, deadline: float = WAIT) -> dict[str, Any]:
    """Call a graded function in a helper thread and wait at most deadline seconds.

    {"returned": ...} or {"raised": {"type", "message"}} or {"silent": deadline}, with
    the seconds it took. NotImplementedError goes on up, so the student reads "not written yet".
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        begun = time.monotonic()
        try:
            outcome["returned"] = _returned(function(*args))
        except BaseException as exc:  # the exception is the fact to report
            outcome["raised"] = error_fact(exc)
            outcome["exception"] = exc
        outcome["seconds"] = time.monotonic() - begun

    helper = threading.Thread(target=run, name="graded-call", daemon=True)
    helper.start()
    helper.join(deadline)
    if helper.is_alive():
        return {"silent": deadline}
    if isinstance(outcome.get("exception"), NotImplementedError):
        raise outcome["exception"]
    outcome.pop("exception", None)
    return outcome


def _jobs(folder: str, sleeps: list[float]) -> list[dict[str, Any]]:
    return [
        {"item": item, "folder": folder, "parties": len(sleeps), "sleep": sleep} for item, sleep in enumerate(sleeps)
    ]


def _join_leftovers() -> None:
    """Wait (boundedly) until the workers that are still running have finished what they began."""
    for child in multiprocessing.active_children():
        child.join(JOIN_WAIT)


@contextlib.contextmanager
def _keeping_executors() -> Iterator[list[ProcessPoolExecutor]]:
    """Keep a reference to every ProcessPoolExecutor created meanwhile, so none is collected unseen."""
    kept: list[ProcessPoolExecutor] = []
    original = ProcessPoolExecutor.__init__

    def keeping_init(self: ProcessPoolExecutor, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        kept.append(self)

    ProcessPoolExecutor.__init__ = keeping_init
    try:
        yield kept
    finally:
        ProcessPoolExecutor.__init__ = original


# ---------------------------------------------------------------- task 1: submit and result


def run_all_values(module: ModuleType, items: list[int], max_workers: int) -> dict[str, Any]:
    return {"caller_pid": os.getpid(), "outcome": _call(module.run_all, square_where, items, max_workers)}


def run_all_meeting(module: ModuleType, parties: int) -> dict[str, Any]:
    """run_all over tasks that all must be running at once to meet; max_workers = parties."""
    with tempfile.TemporaryDirectory() as folder:
        outcome = _call(module.run_all, meet_then_sleep, _jobs(folder, [0.0] * parties), parties)
    return {"caller_pid": os.getpid(), "outcome": outcome, "meet_wait": MEET_WAIT}


def run_all_failing(module: ModuleType) -> dict[str, Any]:
    return {"outcome": _call(module.run_all, times_ten, [0, 1, 2, 3], 2)}


def run_all_then_look_around(module: ModuleType, items: list[int], max_workers: int) -> dict[str, Any]:
    """run_all, then which of its workers are still alive the moment it has returned."""
    with _keeping_executors() as kept:
        outcome = _call(module.run_all, square_where, items, max_workers)
        left_running = [child.pid for child in multiprocessing.active_children()]
    return {"outcome": outcome, "executors": len(kept), "left_running": left_running}


# ---------------------------------------------------------------- task 2: as_completed


def completion_order(module: ModuleType, function_name: str, sleeps: list[float]) -> dict[str, Any]:
    """function_name over tasks that meet, then sleep the given seconds: they finish in a certain order."""
    function = getattr(module, function_name)
    with tempfile.TemporaryDirectory() as folder:
        outcome = _call(function, meet_then_sleep, _jobs(folder, sleeps), len(sleeps))
    return {"caller_pid": os.getpid(), "outcome": outcome, "sleeps": sleeps}


def as_completed_failing(module: ModuleType) -> dict[str, Any]:
    return {"outcome": _call(module.results_as_completed, times_ten, [0, 1, 2, 3], 2)}


# ---------------------------------------------------------------- task 3: map


def map_failing(module: ModuleType) -> dict[str, Any]:
    return {"outcome": _call(module.map_in_order, times_ten, [0, 1, 2, 3], 2)}


# ---------------------------------------------------------------- task 4: wait, cancel, a broken pool


def fail_fast(module: ModuleType, later_items: int, sleep: float) -> dict[str, Any]:
    """stop_at_first_failure with one worker: item 0 fails at once, then later_items items of sleep seconds."""
    stop = module.stop_at_first_failure
    working = _call(stop, square_where, [0, 1, 2], 2)
    with tempfile.TemporaryDirectory() as folder:
        jobs = [{"item": item, "folder": folder, "sleep": sleep} for item in range(later_items + 1)]
        failing = _call(stop, fail_first_then_sleep, jobs, 1)
        _join_leftovers()
        started = sorted(int(name.removeprefix("started-")) for name in os.listdir(folder))
    return {"working": working, "failing": failing, "started": started, "later_items": later_items}


def worker_dies(module: ModuleType, how: str) -> dict[str, Any]:
    """stop_at_first_failure while item 1 kills its own worker (os._exit or SIGKILL)."""
    jobs = [{"item": item, "how": how, "sleep": 0.2} for item in range(4)]
    return {"how": how, "outcome": _call(module.stop_at_first_failure, crash_on_one, jobs, 2, deadline=12.0)}


# ---------------------------------------------------------------- task 5: mp_context and initializer


def executor_with_context(module: ModuleType, method: str) -> dict[str, Any]:
    """make_executor(2, get_context(method)); how were its workers started?"""
    global _marker_from_caller
    _marker_from_caller = "set in the caller"
    try:
        executor = module.make_executor(2, multiprocessing.get_context(method))
        facts: dict[str, Any] = {
            "caller_pid": os.getpid(),
            "default_method": multiprocessing.get_start_method(),
            "type": type(executor).__name__,
        }
        if isinstance(executor, ProcessPoolExecutor):
            with executor:
                facts["workers"] = _call(lambda: [executor.submit(start_method_seen, 0).result(timeout=WAIT)])
    finally:
        _marker_from_caller = None
    return facts


def executor_with_initializer(module: ModuleType, label: str, tasks: int) -> dict[str, Any]:
    """make_executor(2, None, install_label, (label,)); what did each task find in its worker?"""
    global _label, _label_installed_in
    executor = module.make_executor(2, None, install_label, (label,))
    facts: dict[str, Any] = {"caller_pid": os.getpid(), "type": type(executor).__name__}
    if isinstance(executor, ProcessPoolExecutor):
        with executor:
            futures = [executor.submit(read_label, item) for item in range(tasks)]
            facts["tasks"] = _call(lambda: [future.result(timeout=WAIT) for future in futures])
    # Whatever the initializer did in this process (it should not have run here) is undone.
    _label, _label_installed_in = None, None
    return facts
