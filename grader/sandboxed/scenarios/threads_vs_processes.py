"""Scenarios for exercise 12 (threads_vs_processes), run inside the sandbox.

Each scenario takes the graded module first, drives it, and returns plain
facts (JSON data) for the hidden test to judge. What the workers run are
module-level functions here, so that every start method finds them by name.
The tasks share what they see through files in a folder of their own, the
one thing that threads and processes of every start method can all reach
without anything being pickled but a path.

Evidence used, and why (never a speed-up factor: other work shares the CPUs):
- Where work ran: each task reports its pid and thread ident.
- How many at once, exactly (see wave): each task marks itself inside, then
  waits until one more than max_workers are inside (a pool that is too big:
  it leaves at once), or until max_workers have been inside together for
  HOLD seconds, or until every item is inside or done. A correct pool keeps
  exactly max_workers inside; a smaller one never gets there (its tasks give
  up GIVE_UP seconds after the first began); a bigger one, or a thread per
  item, lets the next task in while the others still wait. os.cpu_count() is
  faked meanwhile (to more CPUs than max_workers, or fewer), so that a pool
  sized or capped by the machine instead of by max_workers shows on any
  machine. For processes, the processes started during the call are counted
  too (a pool may start its workers ahead of the work, so this does not
  depend on when they got to run).
- Order (see chain): every task waits until the next item's task is done, so
  the tasks finish last item first, and results gathered as they finish come
  back reversed every time.
- Computing together (see spin): each CPU-bound task first meets the others (a
  file per task in a shared folder), then computes while it watches the others'
  step counters in a small shared file. Seeing another counter move between
  two closely following steps of its own means two tasks were running at the
  same moment, on two CPUs. Threads that take turns holding the GIL, and tasks
  run one after another, never see it. A busy machine makes it rarer, not
  impossible: the tasks go on computing (up to SPIN_LIMIT) until one has seen it.
- timed_run's span: it is given a stand-in executor class that takes
  CREATE_COST seconds to create and records when its creation began; every
  task records when it ended. The seconds reported must cover both ends.
"""

from __future__ import annotations

import contextlib
import mmap
import multiprocessing.process
import os
import struct
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

from grader.sandboxed.scenarios.kit import call_with_deadline, fake_cpu_count, plain, type_name

MEET_WAIT = 8.0  # seconds a CPU-bound task waits for the others to start; they start within a second or two
WAIT = 30.0  # seconds the scenario waits for a graded function
GAP = 0.0002  # two steps of a spinning task further apart than this: it may have been paused in between
SPIN_LIMIT = 8.0  # seconds a spinning task goes on, at most, waiting to catch another one running
HOLD = 1.0  # seconds max_workers tasks stay inside together, for one too many to show up
GIVE_UP = 8.0  # seconds after the first task began that every waiting task gives up
CHAIN_GAP = 0.2  # seconds between the ends of two tasks of a chain, last item first
CREATE_COST = 0.5  # seconds the stand-in executor takes to be created
POLL = 0.005


# ---------------------------------------------------------------- what the workers run


def nap(job: dict[str, Any]) -> dict[str, Any]:
    """I/O-bound task: wait job["sleep"] seconds (as a download would), and say where and when."""
    start = time.monotonic()
    time.sleep(job["sleep"])
    end = time.monotonic()
    return {"item": job["item"], "pid": os.getpid(), "thread": threading.get_ident(), "start": start, "end": end}


def _begin(folder: str) -> float:
    """When the first task of this folder began (this one, if it is the first)."""
    first = os.path.join(folder, "first")
    mine = os.path.join(folder, f"first-{uuid.uuid4().hex}.part")
    with open(mine, "w") as stream:
        stream.write(repr(time.monotonic()))
    try:
        os.link(mine, first)  # atomic: only the first task's time stays
    except FileExistsError:
        pass
    os.unlink(mine)
    with open(first) as stream:
        return float(stream.read())


def _count(folder: str) -> tuple[int, int]:
    """Tasks inside now, and tasks done."""
    names = os.listdir(folder)
    return sum(name.startswith("in-") for name in names), sum(name.startswith("done-") for name in names)


def wave(job: dict[str, Any]) -> dict[str, Any]:
    """A task that waits with the others, to show how many a pool lets in at once (see the module's docstring)."""
    folder, me, count, limit = job["folder"], job["item"], job["count"], job["max_workers"]
    give_up = _begin(folder) + GIVE_UP
    inside = os.path.join(folder, f"in-{me}")
    Path(inside).touch()
    start = time.monotonic()
    peak, full_since = 0, None
    while True:
        now = time.monotonic()
        waiting, done = _count(folder)
        peak = max(peak, waiting)
        if waiting > limit or waiting + done >= count or now >= give_up:
            break
        full_since = (full_since or now) if waiting == limit else None
        if full_since is not None and now - full_since >= HOLD:
            break
        time.sleep(POLL)
    os.rename(inside, os.path.join(folder, f"done-{me}"))
    end = time.monotonic()
    return {"item": me, "pid": os.getpid(), "thread": threading.get_ident(), "peak": peak, "start": start, "end": end}


def chain(job: dict[str, Any]) -> dict[str, Any]:
    """A task that ends only after the next item's task has ended: the items finish last one first."""
    folder, me, count = job["folder"], job["item"], job["count"]
    give_up = _begin(folder) + GIVE_UP
    start = time.monotonic()
    following = os.path.join(folder, f"done-{me + 1}")
    in_turn = True
    if me + 1 < count:
        while not os.path.exists(following):
            if time.monotonic() >= give_up:
                in_turn = False
                break
            time.sleep(POLL)
    time.sleep(job.get("work", CHAIN_GAP))
    end = time.monotonic()
    Path(folder, f"done-{me}").touch()
    return {"item": me, "pid": os.getpid(), "thread": threading.get_ident(), "in_turn": in_turn,
            "start": start, "end": end}  # fmt: skip


def record(item: tuple[Any, str]) -> Any:
    """A task that leaves a file per call in its folder and returns its value as it is (0, "" and None too)."""
    value, folder = item
    Path(folder, f"call-{uuid.uuid4().hex}").touch()
    return value


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


@contextlib.contextmanager
def counted_process_starts() -> Iterator[list[int]]:
    """Count the processes this process starts meanwhile (multiprocessing's, whichever pool starts them)."""
    started: list[int] = []
    original = multiprocessing.process.BaseProcess.start

    def start(self: multiprocessing.process.BaseProcess) -> None:
        original(self)
        started.append(self.pid or 0)

    multiprocessing.process.BaseProcess.start = start  # type: ignore[method-assign]
    try:
        yield started
    finally:
        multiprocessing.process.BaseProcess.start = original  # type: ignore[method-assign]


def _jobs(folder: str, count: int, **extra: Any) -> list[dict[str, Any]]:
    return [{"item": item, "folder": folder, "count": count, **extra} for item in range(count)]


def _called(function: Any, *args: Any) -> dict[str, Any]:
    """One call of a graded function, with the thread it ran in; a returned iterator is gone through."""
    where: dict[str, Any] = {}

    def run() -> Any:
        where["thread"] = threading.get_ident()
        where["began"] = time.monotonic()
        value = function(*args)
        where["ended"] = time.monotonic()
        return list(value) if isinstance(value, Iterator) else value

    call = call_with_deadline(run, deadline=WAIT)
    return {**call.facts(), "thread": where.get("thread"), "began": where.get("began"), "ended": where.get("ended")}


def _generated(items: list[Any]) -> Iterator[Any]:
    yield from items


# ---------------------------------------------------------------- task 1


def choose(module: ModuleType, kinds: list[Any]) -> list[dict[str, Any]]:
    answers = []
    for kind in kinds:
        call = call_with_deadline(module.choose_executor, kind, deadline=WAIT)
        answer: dict[str, Any] = {"kind": kind, **call.facts()}
        chosen = call.value
        answer["returned"] = chosen.__name__ if isinstance(chosen, type) else type_name(chosen)
        answer["is_class"] = isinstance(chosen, type)
        answer["is"] = next(
            (name for name, cls in (("ThreadPoolExecutor", ThreadPoolExecutor),
                                    ("ProcessPoolExecutor", ProcessPoolExecutor)) if chosen is cls),
            None,
        )  # fmt: skip
        answers.append(answer)
        if isinstance(chosen, (ThreadPoolExecutor, ProcessPoolExecutor)):
            chosen.shutdown(wait=False)
    return answers


# ---------------------------------------------------------------- tasks 2 and 3


def _run_function(module: ModuleType, kind: str) -> Any:
    return module.run_io_bound if kind == "io" else module.run_cpu_bound


def at_once(module: ModuleType, kind: str, count: int, max_workers: int, cpus: int) -> dict[str, Any]:
    """run_io_bound or run_cpu_bound over count wave tasks, on a machine that seems to have cpus CPUs."""
    with tempfile.TemporaryDirectory() as folder:
        jobs = _jobs(folder, count, max_workers=max_workers)
        with fake_cpu_count(cpus), counted_process_starts() as started:
            call = _called(_run_function(module, kind), wave, jobs, max_workers)
    return {
        "caller_pid": os.getpid(),
        "call": call,
        "processes_started": len(started),
        "count": count,
        "max_workers": max_workers,
        "cpus": cpus,
    }


def in_order(module: ModuleType, kind: str, count: int) -> dict[str, Any]:
    """run_io_bound or run_cpu_bound over count chain tasks (they end last item first), max_workers=count."""
    with tempfile.TemporaryDirectory() as folder:
        call = _called(_run_function(module, kind), chain, _jobs(folder, count), count)
    return {"caller_pid": os.getpid(), "call": call, "count": count}


EDGE_VALUES = [0, 3, 0, "", None, 3]  # duplicates and falsy values


def any_iterable(module: ModuleType, kind: str, max_workers: int) -> dict[str, Any]:
    """A generator of items with duplicates and falsy values, then an empty list, then the same items again."""
    facts: dict[str, Any] = {"caller_pid": os.getpid(), "values": EDGE_VALUES}
    function = _run_function(module, kind)
    for label in ("generator", "empty", "again"):
        with tempfile.TemporaryDirectory() as folder:
            items = [] if label == "empty" else [(value, folder) for value in EDGE_VALUES]
            call = _called(function, record, _generated(items) if label == "generator" else items, max_workers)
            calls = sum(name.startswith("call-") for name in os.listdir(folder))
        facts[label] = {"call": call, "calls": calls, "count": len(items)}
        if call["outcome"] == "hung":
            break
    return facts


# ---------------------------------------------------------------- task 3: computing at the same moment


def cpu_bound(module: ModuleType, parties: int, busy: float, enough: int) -> dict[str, Any]:
    """run_cpu_bound over parties tasks that meet, then compute for busy seconds or more; max_workers = parties."""
    with tempfile.TemporaryDirectory() as folder, tempfile.TemporaryDirectory() as boards:
        board = os.path.join(boards, "board")
        Path(board).write_bytes(bytes(_board_size(parties)))
        jobs = [
            {"item": item, "folder": folder, "board": board, "parties": parties, "busy": busy, "enough": enough}
            for item in range(parties)
        ]
        call = _called(module.run_cpu_bound, spin, jobs, parties)
    return {"caller_pid": os.getpid(), "cpus": len(os.sched_getaffinity(0)), "call": call}


# ---------------------------------------------------------------- task 4


STAND_IN: dict[str, Any] = {}  # what the stand-in executors saw during one call of timed_run


def _note_creation(max_workers: Any) -> None:
    STAND_IN.setdefault("created", []).append(time.monotonic())
    STAND_IN.setdefault("max_workers", []).append(plain(max_workers))
    time.sleep(CREATE_COST)  # as if starting its workers took a while


class SlowThreadPool(ThreadPoolExecutor):
    """A ThreadPoolExecutor that takes CREATE_COST seconds to create and records what is asked of it."""

    def __init__(self, max_workers: Any = None, *args: Any, **kwargs: Any) -> None:
        _note_creation(max_workers)
        super().__init__(max_workers, *args, **kwargs)

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        STAND_IN["submitted"] = STAND_IN.get("submitted", 0) + 1
        return super().submit(*args, **kwargs)


class SlowProcessPool(ProcessPoolExecutor):
    """A ProcessPoolExecutor that takes CREATE_COST seconds to create and records what is asked of it."""

    def __init__(self, max_workers: Any = None, *args: Any, **kwargs: Any) -> None:
        _note_creation(max_workers)
        super().__init__(max_workers, *args, **kwargs)

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        STAND_IN["submitted"] = STAND_IN.get("submitted", 0) + 1
        return super().submit(*args, **kwargs)


def timed(module: ModuleType, kind: str, count: int, as_generator: bool = False) -> dict[str, Any]:
    """timed_run(a stand-in executor class, chain, count items, max_workers=count)."""
    STAND_IN.clear()
    executor_class = SlowThreadPool if kind == "threads" else SlowProcessPool
    with tempfile.TemporaryDirectory() as folder:
        jobs = _jobs(folder, count)
        call = _called(module.timed_run, executor_class, chain, _generated(jobs) if as_generator else jobs, count)
    return {
        "caller_pid": os.getpid(),
        "call": call,
        "count": count,
        "created": STAND_IN.get("created", []),
        "max_workers": STAND_IN.get("max_workers", []),
        "submitted": STAND_IN.get("submitted", 0),
        "create_cost": CREATE_COST,
    }
