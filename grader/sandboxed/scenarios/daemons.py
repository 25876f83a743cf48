"""Scenarios for exercise 9 (daemons), run inside the sandbox.

Each scenario takes the graded module first, drives it, and returns plain
facts (JSON data) for the hidden test to judge. Helpers that child processes
run are module-level functions, so that every start method can find them.
Every blocking call has a timeout.

Evidence used, and why:
- The daemon flag: the child itself reports multiprocessing.current_process().daemon,
  so a flag that only the parent's object carries does not count.
- What a daemon does to its parent's lifetime can only be seen when a parent
  really exits, and the sandbox process never does (it ends with os._exit).
  So a small program is written to a temporary folder and run in a fresh
  interpreter, under this call's start method. Its workers leave marker files
  with time stamps (time.monotonic, one clock for the whole machine): when
  they started and, if they were not cut off, when they finished. The parent
  marks the moment the graded function returned and the moment its main code
  ended, and this scenario notes the moment the program exited. A daemon's
  "done" file must be missing and the parent must be gone before the daemon
  would have finished; a non-daemon's file must be there. Both compare with
  the worker's own duration, never with a tight absolute time.
- Which returned process is which job: every child records its own pid in the
  slot of its job, and the test lines those up with the returned processes.

Windows opened on purpose, so that a mistake fails every time:
- "without waiting": the children of start_daemon, start_jobs and the workers
  of start_supervisor wait for an event that the scenario sets only after the
  graded function has returned. A function that joins first cannot return at
  all; it is then given the release, and its late return is the fact.
- "all at the same time": supervise's workers meet at a barrier of as many
  parties as there are workers; started and joined one by one, they cannot.
- "waits for them all": supervise is called right here, in the scenario's own
  process, where no exit handler joins for it (inside another process,
  multiprocessing's exit handler joins non-daemon children and hides a missing
  join). Its middle worker works longest, so that joining only the first or
  only the last worker returns while that one still works.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any, cast

from grader.sandboxed.scenarios.kit import (
    HUNG,
    call_with_deadline,
    error_fact,
    identity,
    is_running,
    plain,
    receive,
    type_name,
)

WAIT = 20.0  # seconds a blocking call may wait when nothing is wrong: long, a loaded machine is slow
HOLD_WAIT = 6.0  # seconds a function that must return at once gets while its children wait for the scenario
BARRIER_WAIT = 8.0  # seconds a supervised worker waits for its siblings at the barrier
LONG_WORK = 4.0  # seconds of work a daemon would do if nobody cut it off
SHORT_WORK = 0.5  # seconds of work that must finish before the parent exits
PROGRAM_TIMEOUT = 25.0  # the fresh program may take this long at most, whatever the graded code does
START_WAIT = 10.0  # the program waits this long at most for its workers to start
OUTPUT_TAIL = 800  # characters of the program's stderr handed back
QUICK_WORK = 0.3  # seconds a supervised worker works after the barrier
MIDDLE_WORK = 2.0  # seconds the middle worker works: joining only the first or the last returns before it ends
SLOT = 4  # ints per worker in a shared array: pid, parent pid, met the others, done


def _in_caller() -> bool:
    """Whether this runs in the scenario's own process, where no target belongs."""
    return multiprocessing.parent_process() is None


def _is_started_process(value: Any) -> bool:
    return isinstance(value, multiprocessing.process.BaseProcess) and value.pid is not None


def _process_facts(returned: Any) -> dict[str, Any]:
    """What the caller can see on an object a graded function returned as a process."""
    is_process = isinstance(returned, multiprocessing.process.BaseProcess)
    started = is_process and returned.pid is not None
    return {
        "returned_type": type_name(returned),
        "is_process": is_process,
        "started": started,
        "pid": returned.pid if started else None,
        "daemon": bool(returned.daemon) if is_process else None,
    }


def _join(processes: Any) -> list[int | None]:
    """Join what a graded function returned as processes; their exit codes (None: not a started process)."""
    codes = []
    for process in processes:
        if _is_started_process(process):
            process.join(WAIT)
            codes.append(process.exitcode)
        else:
            codes.append(None)
    return codes


def _join_leftovers() -> None:
    """Join every child still known to this process, so that none outlives the facts."""
    for child in multiprocessing.active_children():
        child.join(WAIT)


def _listed(value: Any) -> list[Any] | None:
    return list(value) if isinstance(value, (list, tuple)) else None


def _generated(items: list[Any]) -> Iterator[Any]:
    yield from items


def quick_exit() -> None:
    """Child target: nothing to do."""


# ---------------------------------------------------------------- task 1


def report_daemon_flag(results: Any, *args: Any) -> None:
    """Child target (bound to its queue): say where it runs, whether it is a daemon and what it was given."""
    info = identity()
    info.update(daemon=multiprocessing.current_process().daemon, args=plain(list(args)))
    results.put(info)


def start_daemon_flag(module: ModuleType) -> dict[str, Any]:
    """start_daemon(target, args), then start_daemon(target) with args left to its default."""
    facts: dict[str, Any] = {"caller_pid": os.getpid()}
    for label, args in (("with_args", ("from-args", 0, "")), ("default_args", None)):
        results: multiprocessing.queues.Queue[Any] = multiprocessing.Queue()
        target = functools.partial(report_daemon_flag, results)
        entry: dict[str, Any] = {"given": None if args is None else list(args)}
        try:
            returned = module.start_daemon(target) if args is None else module.start_daemon(target, args)
        except NotImplementedError:
            raise
        except Exception as exc:  # for example the flag set after start(): the fact to report
            entry["error"] = error_fact(exc)
            entry["report"] = receive(results, 2.0)
            _join_leftovers()
            facts[label] = entry
            continue
        entry.update(_process_facts(returned), error=None)
        alive = returned.is_alive if entry["started"] else None
        entry["report"] = receive(results, WAIT if entry["started"] else 0.5, alive=alive)
        entry["exitcode"] = _join([returned])[0]
        facts[label] = entry
    return facts


def wait_for_release(release: Any, results: Any, *ignored: Any) -> None:
    """Child target (bound to its event and queue): report, then wait until the scenario has the process back.

    It takes any further arguments, so that a mistake with args shows in its own test only.
    """
    info = identity()
    info["daemon"] = multiprocessing.current_process().daemon
    results.put(info)
    if not _in_caller():
        release.wait(WAIT)


def start_daemon_returns_at_once(module: ModuleType) -> dict[str, Any]:
    """start_daemon with a target that keeps running until the scenario has the process back."""
    release = multiprocessing.Event()
    results: multiprocessing.queues.Queue[Any] = multiprocessing.Queue()
    target = functools.partial(wait_for_release, release, results)
    call = call_with_deadline(module.start_daemon, target, (), deadline=HOLD_WAIT)
    facts: dict[str, Any] = {"outcome": call.outcome, "caller_pid": os.getpid()}
    if call.outcome == HUNG:
        release.set()  # waiting for its process, or stuck for another reason? Let the process end and see.
        call = call.wait_longer(WAIT)
        facts["after_release"] = call.facts()
    facts["error"] = call.facts()["error"]
    returned = call.value
    facts.update(_process_facts(returned))
    facts["alive_at_return"] = _is_started_process(returned) and returned.is_alive()
    started = _is_started_process(returned)
    facts["report"] = receive(results, WAIT if started else 0.5, alive=returned.is_alive if started else None)
    release.set()
    if call.outcome != HUNG:
        facts["exitcode"] = _join([returned])[0]
    return facts


# ---------------------------------------------------------------- task 2


def hold_job(release: Any, slots: Any, index: int) -> None:
    """Child target: record its pid and daemon flag in its job's slot, then wait until the scenario lets it go."""
    slots[3 * index] = os.getpid()
    slots[3 * index + 1] = int(multiprocessing.current_process().daemon)
    slots[3 * index + 2] = 1
    if not _in_caller():
        release.wait(WAIT)


def _job_reports(slots: Any, count: int) -> list[dict[str, Any]]:
    return [
        {"pid": slots[3 * i], "daemon": bool(slots[3 * i + 1]), "ran": bool(slots[3 * i + 2])} for i in range(count)
    ]


def start_jobs_mixed(module: ModuleType, must_finish: list[bool]) -> dict[str, Any]:
    """start_jobs with jobs that wait for the scenario's release, must_finish mixed as given."""
    release = multiprocessing.Event()
    slots = multiprocessing.Array("i", 3 * len(must_finish))
    jobs = [(hold_job, (release, slots, index), flag) for index, flag in enumerate(must_finish)]
    snapshot: dict[str, Any] = {}

    def call() -> Any:
        returned = module.start_jobs(jobs)
        listed = _listed(returned) or []
        snapshot["alive"] = [_is_started_process(p) and p.is_alive() for p in listed]
        return returned

    outcome = call_with_deadline(call, deadline=HOLD_WAIT)
    facts: dict[str, Any] = {"outcome": outcome.outcome, "caller_pid": os.getpid(), "count": len(must_finish)}
    if outcome.outcome == HUNG:
        release.set()
        outcome = outcome.wait_longer(WAIT)
        facts["after_release"] = outcome.facts()
    facts["error"] = outcome.facts()["error"]
    returned = outcome.value
    listed = _listed(returned)
    facts["returned_type"] = type_name(returned)
    facts["processes"] = [_process_facts(p) for p in listed] if listed is not None else None
    facts["alive_at_return"] = snapshot.get("alive")
    # Let every child that was started record itself before the release (a call that raised started few, if any).
    deadline = time.monotonic() + (WAIT if listed is not None else 2.0)
    while time.monotonic() < deadline and not all(slots[3 * i + 2] for i in range(len(must_finish))):
        if listed is not None and not any(_is_started_process(p) and p.is_alive() for p in listed):
            time.sleep(0.3)
            break
        time.sleep(0.01)
    release.set()
    _join(listed or [])
    _join_leftovers()
    facts["children"] = _job_reports(slots, len(must_finish))
    return facts


def record_job(slots: Any, index: int) -> None:
    """Child target: record its pid in its job's slot."""
    slots[3 * index] = os.getpid()
    slots[3 * index + 1] = int(multiprocessing.current_process().daemon)
    slots[3 * index + 2] = 1


def start_jobs_any_iterable(module: ModuleType) -> dict[str, Any]:
    """start_jobs given a generator, then an empty list, then a list again, in one process."""
    facts: dict[str, Any] = {"caller_pid": os.getpid()}
    for label, flags, as_generator in (("generator", [False, True, True], True), ("empty", [], False),
                                       ("again", [True, False], False)):  # fmt: skip
        slots = multiprocessing.Array("i", 3 * max(1, len(flags)))
        jobs = [(record_job, (slots, index), flag) for index, flag in enumerate(flags)]
        call = call_with_deadline(module.start_jobs, _generated(jobs) if as_generator else jobs, deadline=WAIT)
        entry: dict[str, Any] = {"call": call.facts(), "count": len(flags)}
        listed = _listed(call.value) if call.outcome != HUNG else None
        entry["processes"] = [_process_facts(p) for p in listed] if listed is not None else None
        _join(listed or [])
        _join_leftovers()
        entry["children"] = _job_reports(slots, len(flags))
        facts[label] = entry
        if call.outcome == HUNG:
            break
    return facts


# ---------------------------------------------------------------- tasks 1 and 2: a parent that really exits

PROGRAM = '''\
"""A parent that starts workers through the graded module, then simply ends."""

import importlib
import multiprocessing
import os
import sys
import time

CONFIG = {config!r}
sys.path.insert(0, CONFIG["module_dir"])


def mark(name, what):
    path = os.path.join(CONFIG["folder"], name + "." + what)
    with open(path + ".part", "w") as stream:
        stream.write(repr(time.monotonic()))
    os.replace(path + ".part", path)


def work(*args):
    if len(args) == 1 and isinstance(args[0], tuple):  # args wrapped once more: the args check says so
        args = args[0]
    name, seconds = args
    mark(name, "started")
    time.sleep(seconds)
    mark(name, "done")


if __name__ == "__main__":
    multiprocessing.set_start_method(CONFIG["start_method"])
    graded = importlib.import_module(CONFIG["module"])
    if CONFIG["kind"] == "daemon":
        graded.start_daemon(work, ("daemon", CONFIG["long"]))
        names = ["daemon"]
    else:
        graded.start_jobs([(work, ("background", CONFIG["long"]), False), (work, ("essential", CONFIG["short"]), True)])
        names = ["background", "essential"]
    mark("main", "returned")
    deadline = time.monotonic() + CONFIG["start_wait"]
    while time.monotonic() < deadline:
        if all(os.path.exists(os.path.join(CONFIG["folder"], name + ".started")) for name in names):
            break
        time.sleep(0.01)
    mark("main", "done")
'''


def _read_mark(folder: str, name: str) -> float | None:
    try:
        with open(os.path.join(folder, name)) as stream:
            return float(stream.read())
    except (OSError, ValueError):
        return None


def _run_program(module: ModuleType, kind: str, names: list[str]) -> dict[str, Any]:
    """Run a fresh parent that starts workers through the graded module; report how it lived and ended."""
    folder = tempfile.mkdtemp(prefix="daemons-")
    config = {
        "kind": kind,
        "folder": folder,
        "module": module.__name__,
        "module_dir": os.path.dirname(os.path.abspath(cast(str, module.__file__))),  # imported from its .py file
        "start_method": multiprocessing.get_start_method(),
        "long": LONG_WORK,
        "short": SHORT_WORK,
        "start_wait": START_WAIT,
    }
    program = os.path.join(folder, "parent.py")
    with open(program, "w") as stream:
        stream.write(PROGRAM.format(config=config))
    facts: dict[str, Any] = {"long": LONG_WORK, "short": SHORT_WORK, "timed_out": False}
    with open(os.path.join(folder, "stdout"), "wb") as out, open(os.path.join(folder, "stderr"), "wb") as err:
        # Output goes to files, not pipes: a pipe would make run() wait for every child holding it.
        try:
            done = subprocess.run(
                [sys.executable, "-I", "-S", program],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=folder,
                timeout=PROGRAM_TIMEOUT,
            )
            facts["returncode"] = done.returncode
        except subprocess.TimeoutExpired:
            facts["timed_out"] = True
            facts["returncode"] = None
    facts["parent_end"] = time.monotonic()
    facts["main_returned"] = _read_mark(folder, "main.returned")
    facts["main_done"] = _read_mark(folder, "main.done")
    facts["workers"] = {
        name: {"started": _read_mark(folder, f"{name}.started"), "done": _read_mark(folder, f"{name}.done")}
        for name in names
    }
    with open(os.path.join(folder, "stderr"), "rb") as stream:
        facts["stderr"] = stream.read().decode(errors="replace")[-OUTPUT_TAIL:]
    return facts


def _first_call(function: Callable[..., Any], *args: Any) -> Any:
    """Call the graded function once here, so that an unwritten one shows as its own TODO."""
    try:
        return function(*args)
    except NotImplementedError:
        raise
    except Exception:  # any other mistake is judged from what the fresh program shows
        return None


def daemon_parent_lifetime(module: ModuleType) -> dict[str, Any]:
    returned = _first_call(module.start_daemon, quick_exit)
    _join([returned])
    return _run_program(module, "daemon", ["daemon"])


def jobs_parent_lifetime(module: ModuleType) -> dict[str, Any]:
    _first_call(module.start_jobs, [])
    return _run_program(module, "jobs", ["background", "essential"])


# ---------------------------------------------------------------- task 3


def meet_then_work(barrier: Any, release: Any, slots: Any, index: int, work: float) -> None:
    """Worker target: record its pid and its parent's, meet every sibling, work, then mark itself done.

    Whether it met the others or not (they were not running at the same
    time), it then does its work, so that a mistake in when workers start
    does not also show as one in how they are waited for. With a release
    event, it also waits for the scenario before its work. Called in the
    scenario's own process (a mistake), it only records where it ran.
    """
    parent = multiprocessing.parent_process()
    slots[SLOT * index] = os.getpid()
    slots[SLOT * index + 1] = parent.pid if parent is not None else 0
    if _in_caller():
        return
    try:
        barrier.wait()
        slots[SLOT * index + 2] = 1
    except threading.BrokenBarrierError:  # the siblings were not running at the same time
        pass
    if release is not None:
        release.wait(WAIT)
    time.sleep(work)
    slots[SLOT * index + 3] = 1


def _workers(slots: Any, count: int) -> list[dict[str, Any]]:
    return [
        {
            "pid": slots[SLOT * i],
            "parent_pid": slots[SLOT * i + 1],
            "met": bool(slots[SLOT * i + 2]),
            "done": bool(slots[SLOT * i + 3]),
        }
        for i in range(count)
    ]


def _works(count: int) -> list[float]:
    """Seconds each worker works after the barrier: the middle one longest."""
    return [MIDDLE_WORK if i == count // 2 else QUICK_WORK for i in range(count)]


def supervise_here(module: ModuleType, count: int) -> dict[str, Any]:
    """supervise called in this process: its workers meet at a barrier, then the middle one works longest."""
    barrier = multiprocessing.Barrier(count, timeout=BARRIER_WAIT)
    slots = multiprocessing.Array("i", SLOT * count)
    tuples = [(barrier, None, slots, index, work) for index, work in enumerate(_works(count))]

    def at_return() -> dict[str, Any]:
        pids = [slots[SLOT * i] for i in range(count)]
        return {
            "done": [bool(slots[SLOT * i + 3]) for i in range(count)],
            "running": [bool(pid) and is_running(pid) for pid in pids],
        }

    call = call_with_deadline(module.supervise, meet_then_work, tuples, deadline=WAIT, after=at_return)
    facts: dict[str, Any] = {"call": call.facts(), "caller_pid": os.getpid(), "works": _works(count)}
    _join_leftovers()
    facts["workers"] = _workers(slots, count)
    return facts


def supervise_any_iterable(module: ModuleType) -> dict[str, Any]:
    """supervise given a generator, then an empty list, then a list again, in this process."""
    facts: dict[str, Any] = {"caller_pid": os.getpid()}
    for label, count, as_generator in (("generator", 3, True), ("empty", 0, False), ("again", 2, False)):
        barrier = multiprocessing.Barrier(1)  # when they run is supervise_here's question
        slots = multiprocessing.Array("i", SLOT * max(1, count))
        tuples = [(barrier, None, slots, index, 0.0) for index in range(count)]
        given = _generated(tuples) if as_generator else tuples
        call = call_with_deadline(
            module.supervise, meet_then_work, given, deadline=WAIT, after=functools.partial(_workers, slots, count)
        )
        facts[label] = {"call": call.facts(), "count": count, "caller_pid": os.getpid()}
        _join_leftovers()
        facts[label]["workers"] = _workers(slots, count)
        if call.outcome == HUNG:
            break
    return facts


def start_supervisor_here(module: ModuleType, count: int, as_generator: bool = False) -> dict[str, Any]:
    """start_supervisor with workers that meet, then wait for the scenario's release before they work."""
    barrier = multiprocessing.Barrier(1)  # when they run is supervise_here's question
    release = multiprocessing.Event()
    slots = multiprocessing.Array("i", SLOT * count)
    tuples = [(barrier, release, slots, index, QUICK_WORK) for index in range(count)]
    snapshot: dict[str, Any] = {}

    def call() -> Any:
        returned = module.start_supervisor(meet_then_work, _generated(tuples) if as_generator else tuples)
        snapshot["alive"] = _is_started_process(returned) and returned.is_alive()
        return returned

    outcome = call_with_deadline(call, deadline=HOLD_WAIT)
    facts: dict[str, Any] = {"outcome": outcome.outcome, "caller_pid": os.getpid(), "count": count}
    if outcome.outcome == HUNG:
        release.set()
        outcome = outcome.wait_longer(WAIT)
        facts["after_release"] = outcome.facts()
    facts["error"] = outcome.facts()["error"]
    returned = outcome.value
    facts.update(_process_facts(returned))
    facts["alive_at_return"] = snapshot.get("alive", False)
    release.set()
    facts["exitcode"] = _join([returned])[0] if outcome.outcome != HUNG else None
    facts["still_running"] = _is_started_process(returned) and returned.is_alive()
    _join_leftovers()
    facts["workers"] = _workers(slots, count)
    return facts
