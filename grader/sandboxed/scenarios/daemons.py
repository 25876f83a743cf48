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
  marks the moment its main code ended, and this scenario notes the moment
  the program exited. A daemon's "done" file must be missing and the parent
  must be gone before the daemon would have finished; a non-daemon's file
  must be there. Both compare with the worker's own duration, never with a
  tight absolute time.
- A supervisor's workers record their own pid and their parent's: they must
  be children of the supervisor, and the supervisor must end with exit code 0.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import subprocess
import sys
import tempfile
import time
from types import ModuleType
from typing import Any

WAIT = 20.0  # seconds a blocking call may wait when nothing is wrong: long, a loaded machine is slow
LONG_WORK = 4.0  # seconds of work a daemon would do if nobody cut it off
SHORT_WORK = 0.5  # seconds of work that must finish before the parent exits
PROGRAM_TIMEOUT = 25.0  # the fresh program may take this long at most, whatever the graded code does
START_WAIT = 10.0  # the program waits this long at most for its workers to start
OUTPUT_TAIL = 800  # characters of the program's stderr handed back


def _in_caller() -> bool:
    """Whether this runs in the scenario's own process, where no target belongs."""
    return multiprocessing.parent_process() is None


def _process_facts(returned: Any) -> dict[str, Any]:
    """What the caller can see on an object start_daemon or start_supervisor returned."""
    is_process = isinstance(returned, multiprocessing.process.BaseProcess)
    return {
        "returned_type": type(returned).__name__,
        "is_process": is_process,
        "started": is_process and returned.pid is not None,
        "daemon": bool(returned.daemon) if is_process else None,
    }


def quick_exit() -> None:
    """Child target: nothing to do."""


# ---------------------------------------------------------------- task 1


def report_daemon_flag(results: Any) -> None:
    """Child target: say where it runs and whether it is a daemon."""
    results.put({"pid": os.getpid(), "daemon": multiprocessing.current_process().daemon})


def start_daemon_flag(module: ModuleType) -> dict[str, Any]:
    results = multiprocessing.Queue()
    try:
        returned = module.start_daemon(report_daemon_flag, (results,))
    except AssertionError as exc:  # the daemon flag set after start(): the fact to report
        return {"raised": f"AssertionError: {exc}", "caller_pid": os.getpid()}
    facts = _process_facts(returned)
    facts["caller_pid"] = os.getpid()
    try:
        facts["report"] = results.get(timeout=WAIT)
    except queue.Empty:
        facts["report"] = None
    if facts["started"]:
        returned.join(WAIT)
    return facts


# ---------------------------------------------------------------- task 2


def wait_for_release(release: Any, slots: Any, index: int) -> None:
    """Child target: record its pid and daemon flag, then wait until the scenario lets it go."""
    slots[3 * index] = os.getpid()
    slots[3 * index + 1] = int(multiprocessing.current_process().daemon)
    slots[3 * index + 2] = 1
    if not _in_caller():
        release.wait(WAIT)


def start_jobs_flags(module: ModuleType, must_finish: list[bool]) -> dict[str, Any]:
    release = multiprocessing.Event()
    slots = multiprocessing.Array("i", 3 * len(must_finish))
    jobs = [(wait_for_release, (release, slots, index), flag) for index, flag in enumerate(must_finish)]
    returned = module.start_jobs(jobs)
    facts: dict[str, Any] = {"caller_pid": os.getpid(), "returned_type": type(returned).__name__}
    processes = list(returned) if isinstance(returned, (list, tuple)) else []
    facts["processes"] = [_process_facts(process) for process in processes]
    facts["alive_on_return"] = [
        isinstance(p, multiprocessing.process.BaseProcess) and p.pid is not None and p.is_alive() for p in processes
    ]
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline and not all(slots[3 * i + 2] for i in range(len(must_finish))):
        time.sleep(0.01)
    release.set()
    for process in processes:
        if isinstance(process, multiprocessing.process.BaseProcess) and process.pid is not None:
            process.join(WAIT)
    facts["children"] = [
        {"pid": slots[3 * i], "daemon": bool(slots[3 * i + 1]), "ran": bool(slots[3 * i + 2])}
        for i in range(len(must_finish))
    ]
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


def work(name, seconds):
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
        "module_dir": os.path.dirname(os.path.abspath(module.__file__)),
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
    facts["main_done"] = _read_mark(folder, "main.done")
    facts["workers"] = {
        name: {"started": _read_mark(folder, f"{name}.started"), "done": _read_mark(folder, f"{name}.done")}
        for name in names
    }
    with open(os.path.join(folder, "stderr"), "rb") as stream:
        facts["stderr"] = stream.read().decode(errors="replace")[-OUTPUT_TAIL:]
    return facts


def _first_call(function: Any, *args: Any) -> Any:
    """Call the graded function once here, so that an unwritten one shows as its own TODO."""
    try:
        return function(*args)
    except NotImplementedError:
        raise
    except Exception:  # any other mistake is judged from what the fresh program shows
        return None


def daemon_parent_lifetime(module: ModuleType) -> dict[str, Any]:
    returned = _first_call(module.start_daemon, quick_exit)
    if isinstance(returned, multiprocessing.process.BaseProcess) and returned.pid is not None:
        returned.join(WAIT)
    return _run_program(module, "daemon", ["daemon"])


def jobs_parent_lifetime(module: ModuleType) -> dict[str, Any]:
    _first_call(module.start_jobs, [])
    return _run_program(module, "jobs", ["background", "essential"])


# ---------------------------------------------------------------- task 3


def record_lineage(slots: Any, index: int) -> None:
    """Worker target: record its pid and its parent's, work a moment, then mark itself done."""
    parent = multiprocessing.parent_process()
    slots[3 * index] = os.getpid()
    slots[3 * index + 1] = parent.pid if parent is not None else 0
    if _in_caller():
        return
    time.sleep(0.2)
    slots[3 * index + 2] = 1


def supervisor_runs_workers(module: ModuleType, count: int) -> dict[str, Any]:
    slots = multiprocessing.Array("i", 3 * count)
    returned = module.start_supervisor(record_lineage, [(slots, index) for index in range(count)])
    facts = _process_facts(returned)
    facts["caller_pid"] = os.getpid()
    facts["supervisor_pid"] = returned.pid if facts["is_process"] else None
    facts["exitcode"] = None
    if facts["started"]:
        returned.join(WAIT)
        facts["exitcode"] = returned.exitcode
    facts["workers"] = [
        {"pid": slots[3 * i], "parent_pid": slots[3 * i + 1], "done": bool(slots[3 * i + 2])} for i in range(count)
    ]
    return facts
