"""Scenarios for exercise 12 (threads_vs_processes), run inside the sandbox.

Each scenario takes the graded module first, drives it, and returns plain
facts (JSON data) for the hidden test to judge. What the workers run are
module-level functions here, so that every start method finds them by name.

Evidence used, and why (never a speed-up factor: other work shares the CPUs):
- Where work ran: each task reports its pid and thread ident.
- Waiting together: each task that waits reports when it began and ended
  (time.monotonic is one clock for every process of the machine); the test
  counts how many waited at the same moment.
- Computing together: each CPU-bound task first meets the others (a file per
  task in a shared folder), then computes while it watches the others' step
  counters in a small shared file (see spin). Seeing another counter move
  between two closely following steps of its own means two tasks were running
  at the same moment, on two CPUs. Threads that take turns holding the GIL, and
  tasks run one after another, never see it. A busy machine makes it rarer, not
  impossible: the tasks go on computing (up to SPIN_LIMIT) until one has seen it.
"""

from __future__ import annotations

import mmap
import os
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

from grader.sandboxed.scenarios.facts import error_fact

MEET_WAIT = 8.0  # seconds a CPU-bound task waits for the others to start; they start within a second or two
WAIT = 30.0  # seconds the scenario waits for a graded function
GAP = 0.0002  # two steps of a spinning task further apart than this: it may have been paused in between
SPIN_LIMIT = 8.0  # seconds a spinning task goes on, at most, waiting to catch another one running


# ---------------------------------------------------------------- what the workers run


def nap(job: dict[str, Any]) -> dict[str, Any]:
    """I/O-bound task: wait job["sleep"] seconds (as a download would), and say where and when."""
    start = time.monotonic()
    time.sleep(job["sleep"])
    end = time.monotonic()
    return {"item": job["item"], "pid": os.getpid(), "thread": threading.get_ident(), "start": start, "end": end}


def _meet(folder: str, name: str, parties: int) -> bool:
    Path(folder, name).touch()
    deadline = time.monotonic() + MEET_WAIT
    while len(os.listdir(folder)) < parties:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def spin(job: dict[str, Any]) -> dict[str, Any]:
    """CPU-bound task: meet the others, then compute, watching whether another task computes at the same moment.

    Every party has a counter in a small shared file (job["board"]) that it bumps
    at every step. When another party's counter moves between two steps of this
    one that follow each other closely (less than GAP apart, so this one ran all
    along), the two were running at the same moment: on two CPUs. Threads that
    take turns holding the GIL, and tasks run one after another, never see that.
    A party computes for at least job["busy"] seconds, then on until some party
    has seen another running job["enough"] times, until another party has
    finished, or for SPIN_LIMIT seconds in all (a party that met nobody, or
    that needs to see nothing, stops after job["busy"] seconds).
    """
    me, parties = job["item"], job["parties"]
    met = _meet(job["folder"], f"started-{me}", parties)
    with open(job["board"], "r+b") as file, mmap.mmap(file.fileno(), _board_size(parties)) as board:
        seen, co_running = 0, 0.0
        others = [party for party in range(parties) if party != me]
        counts = [struct.unpack_from("Q", board, 8 * party)[0] for party in range(parties)]
        step = 0
        begun = last = time.monotonic()
        while True:
            step += 1
            struct.pack_into("Q", board, 8 * me, step)
            now = time.monotonic()
            moved = False
            for party in others:
                count = struct.unpack_from("Q", board, 8 * party)[0]
                moved = moved or count != counts[party]
                counts[party] = count
            if moved and now - last < GAP:
                seen += 1
                co_running += now - last
                if seen >= job["enough"]:
                    board[_flag_offset(parties)] = 1
            last = now
            if now - begun >= job["busy"]:
                finished = any(board[_finished_offset(parties) + party] for party in others)
                waits_for_others = met and job["enough"] > 0
                if not waits_for_others or board[_flag_offset(parties)] or finished or now - begun > SPIN_LIMIT:
                    break
        board[_finished_offset(parties) + me] = 1
    return {"item": me, "square": me**2, "pid": os.getpid(), "met": met, "seen": seen, "co_running": co_running}


def _board_size(parties: int) -> int:
    """A counter (8 bytes) and a finished byte per party, then the flag."""
    return 9 * parties + 1


def _finished_offset(parties: int) -> int:
    return 8 * parties


def _flag_offset(parties: int) -> int:
    return 9 * parties


# ---------------------------------------------------------------- helpers


def _plain(value: Any, depth: int = 0) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else repr(value)
    if depth < 5 and isinstance(value, (list, tuple)):
        return [_plain(item, depth + 1) for item in value]
    if depth < 5 and isinstance(value, dict):
        return {str(key): _plain(item, depth + 1) for key, item in value.items()}
    return repr(value)


def _call(function: Callable[..., Any], *args: Any) -> dict[str, Any]:
    """Call a graded function in a helper thread, waiting at most WAIT seconds.

    {"value": live value, "seconds": ...} or {"raised": ...} or {"silent": WAIT};
    the caller makes the value plain. NotImplementedError goes on up.
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        outcome["thread"] = threading.get_ident()
        begun = time.monotonic()
        try:
            value = function(*args)
            outcome["value"] = list(value) if isinstance(value, Iterator) else value
        except BaseException as exc:  # the exception is the fact to report
            outcome["raised"] = error_fact(exc)
            outcome["exception"] = exc
        outcome["seconds"] = time.monotonic() - begun

    helper = threading.Thread(target=run, name="graded-call", daemon=True)
    helper.start()
    helper.join(WAIT)
    if helper.is_alive():
        return {"silent": WAIT}
    if isinstance(outcome.get("exception"), NotImplementedError):
        raise outcome["exception"]
    outcome.pop("exception", None)
    return outcome


# ---------------------------------------------------------------- task 1


def choose(module: ModuleType, kinds: list[str]) -> list[dict[str, Any]]:
    answers = []
    for kind in kinds:
        try:
            chosen = module.choose_executor(kind)
        except NotImplementedError:
            raise
        except Exception as exc:  # the error is the fact to report
            answers.append({"kind": kind, "raised": error_fact(exc)})
            continue
        name = chosen.__name__ if isinstance(chosen, type) else repr(chosen)
        answers.append({"kind": kind, "returned": name, "is_class": isinstance(chosen, type)})
    return answers


# ---------------------------------------------------------------- task 2


def io_bound(module: ModuleType, count: int, sleep: float, max_workers: int) -> dict[str, Any]:
    """run_io_bound over count tasks that each wait sleep seconds."""
    jobs = [{"item": item, "sleep": sleep} for item in range(count)]
    outcome = _call(module.run_io_bound, nap, jobs, max_workers)
    if "value" in outcome:
        outcome["value"] = _plain(outcome["value"])
    return {"caller_pid": os.getpid(), "outcome": outcome}


# ---------------------------------------------------------------- task 3


def cpu_bound(module: ModuleType, parties: int, busy: float, enough: int) -> dict[str, Any]:
    """run_cpu_bound over parties tasks that meet, then compute for busy seconds or more; max_workers = parties."""
    with tempfile.TemporaryDirectory() as folder, tempfile.TemporaryDirectory() as boards:
        board = os.path.join(boards, "board")
        Path(board).write_bytes(bytes(_board_size(parties)))
        jobs = [
            {"item": item, "folder": folder, "board": board, "parties": parties, "busy": busy, "enough": enough}
            for item in range(parties)
        ]
        outcome = _call(module.run_cpu_bound, spin, jobs, parties)
    if "value" in outcome:
        outcome["value"] = _plain(outcome["value"])
    return {"caller_pid": os.getpid(), "cpus": len(os.sched_getaffinity(0)), "outcome": outcome}


# ---------------------------------------------------------------- task 4


def timed(module: ModuleType, count: int, sleep: float, max_workers: int) -> dict[str, Any]:
    """timed_run with ThreadPoolExecutor, then with ProcessPoolExecutor, over tasks that wait."""
    jobs = [{"item": item, "sleep": sleep} for item in range(count)]
    facts: dict[str, Any] = {"caller_pid": os.getpid()}
    for name, executor_class in (("threads", ThreadPoolExecutor), ("processes", ProcessPoolExecutor)):
        outcome = _call(module.timed_run, executor_class, nap, jobs, max_workers)
        if "value" in outcome:
            outcome["value"] = _plain(outcome["value"])
        facts[name] = outcome
    return facts
