"""Scenarios for exercise 6 (shared_values), run inside the sandbox.

Each scenario takes the graded module first, drives it, and returns plain
facts (JSON data) for the hidden test to judge. What child processes run is a
module-level function here (or a functools.partial of one), so that every
start method can find it by name. Every blocking call has a timeout.

Evidence used, and why:
- Where the work ran: the workers the scenarios hand to the graded code
  report their pid, their parent and what they were given on a queue.
- Waiting for the child: a worker changes the shared value only after a
  pause, so a caller that reads it without join() sees the old number.
- Lost updates, with certainty: add_many gets a ContestedCounter, a stand-in
  for Value("i", 0) whose read-modify-write the scenario controls. A first
  write that is not under the same hold of the counter's lock as its read
  waits until every process has read the count, so they all read the same
  number and all but one addition are lost, on any machine, however loaded.
  Under one hold of the lock nobody waits: the lock itself keeps the others
  out. A natural race would only make the loss likely.
"""

from __future__ import annotations

import ctypes
import functools
import importlib
import multiprocessing
import os
import queue
import threading
import time
from types import ModuleType
from typing import Any

from grader.sandboxed.scenarios.facts import drain, identity

WAIT = 20.0  # seconds a blocking call may wait when nothing is wrong: long, a loaded machine is slow
FIRST_REPORT_WAIT = 8.0  # a report that has not come by then will not come
START_WAIT = 8.0  # seconds the workers of one call wait for each other at the start
RENDEZVOUS_WAIT = 3.0  # seconds an unguarded write waits for every process to read the count
CHILD_PAUSE = 0.3  # seconds a worker waits before it changes the shared value
SCALE, SHIFT = 2.5, 0.1  # what the workers do: x * SCALE + SHIFT (exact only in double precision)


# ---------------------------------------------------------------- helpers


def _plain(value: Any, depth: int = 0) -> Any:
    """value as JSON data: containers converted, anything else shown by repr."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else repr(value)
    if depth < 4 and isinstance(value, (list, tuple)):
        return [_plain(item, depth + 1) for item in value]
    return repr(value)


def _attempt(function: Any, *args: Any) -> dict[str, Any]:
    """Call function(*args): {"value": ...}, or {"raised": ...} for an error other than a TODO left in place."""
    try:
        returned = function(*args)
    except NotImplementedError:
        raise  # the grader says which TODO is left
    except Exception as exc:  # the error is the fact to report
        return {"raised": f"{type(exc).__name__}: {exc}", "raised_type": type(exc).__name__}
    return {"value": _plain(returned), "type": type(returned).__name__}


def _c_type(shared: Any) -> str:
    """The ctypes type a Value or an Array holds ("c_double", "c_int", ...), or the object's own type."""
    inner = shared.get_obj() if hasattr(shared, "get_obj") else shared
    if isinstance(inner, ctypes.Array):
        return inner._type_.__name__
    if isinstance(inner, ctypes._SimpleCData):
        return type(inner).__name__
    return type(shared).__name__


def _left_running() -> list[str]:
    return [f"{child.name} (pid {child.pid})" for child in multiprocessing.active_children()]


# ---------------------------------------------------------------- tasks 1 and 2


def scale_number(reports: Any, value: Any) -> None:
    """Worker: after a pause, value.value = value.value * SCALE + SHIFT; report where and what."""
    facts = identity()
    facts["given"] = type(value).__name__
    facts["c_type"] = _c_type(value)
    time.sleep(CHILD_PAUSE)
    try:
        value.value = value.value * SCALE + SHIFT
        facts["changed"] = True
    except Exception as exc:  # a plain float, or a typecode that cannot hold the result
        facts["error"] = f"{type(exc).__name__}: {exc}"
    reports.put(facts)


def shared_number(module: ModuleType, start: float) -> dict[str, Any]:
    reports = multiprocessing.Queue()
    outcome = _attempt(module.run_with_shared_number, functools.partial(scale_number, reports), start)
    left = _left_running()
    return {
        "caller_pid": os.getpid(),
        "outcome": outcome,
        "reports": drain(reports, FIRST_REPORT_WAIT),
        "left_running": left,
    }


def scale_numbers(reports: Any, array: Any) -> None:
    """Worker: after a pause, array[i] = array[i] * SCALE + SHIFT for every i; report where and what."""
    facts = identity()
    facts["given"] = type(array).__name__
    facts["c_type"] = _c_type(array)
    time.sleep(CHILD_PAUSE)
    try:
        for index in range(len(array)):
            array[index] = array[index] * SCALE + SHIFT
        facts["changed"] = True
    except Exception as exc:  # not indexable, or a typecode that cannot hold the result
        facts["error"] = f"{type(exc).__name__}: {exc}"
    reports.put(facts)


def shared_array(module: ModuleType, numbers: list[float]) -> dict[str, Any]:
    reports = multiprocessing.Queue()
    outcome = _attempt(module.run_with_shared_array, functools.partial(scale_numbers, reports), numbers)
    left = _left_running()
    return {
        "caller_pid": os.getpid(),
        "outcome": outcome,
        "reports": drain(reports, FIRST_REPORT_WAIT),
        "left_running": left,
    }


# ---------------------------------------------------------------- task 3


class ContestedCounter:
    """A stand-in for Value("i", 0) that turns a badly guarded increment into a certain loss.

    It offers what a Value offers to add_many: .value, get_lock(), and the
    lock's own use through `with counter:` or acquire()/release(). The count
    lives in shared memory without a lock of its own, so the only lock is the
    one the graded code takes.

    Each process keeps its own note of a read not yet followed by its write.
    Such a write is unguarded when the read was not done under the lock, or
    the lock was let go between the read and the write. The first unguarded
    write, or the first letting go of the lock between a read and its write,
    waits (RENDEZVOUS_WAIT at most, once for all processes) until every
    process has read the count: they all read the same number, and all but
    one of their writes are lost. A write under the same hold of the lock as
    its read never waits.
    """

    def __init__(self, parties: int) -> None:
        self._parties = parties
        self._count = multiprocessing.RawValue("i", 0)
        self._lock = multiprocessing.RLock()  # the counter's own lock, as Value's is by default
        self._books = multiprocessing.Lock()  # guards the shared bookkeeping below
        self._first_reads = multiprocessing.RawValue("i", 0)  # processes that have read the count
        self._opened = multiprocessing.RawValue("i", 0)  # 1 once every process has read, or the wait gave up
        self._lock_uses = multiprocessing.RawValue("i", 0)
        self._local_state()

    def _local_state(self) -> None:
        self._holds = 0  # how deep this process holds the lock
        self._has_read = False
        self._pending_read = False  # read, and not written yet
        self._read_guarded = False  # that read was under the lock, held ever since

    def __getstate__(self) -> dict[str, Any]:
        return {key: value for key, value in vars(self).items() if key in SHARED_FIELDS}

    def __setstate__(self, state: dict[str, Any]) -> None:
        vars(self).update(state)
        self._local_state()

    @property
    def value(self) -> int:
        number = self._count.value
        if not self._has_read:
            self._has_read = True
            with self._books:
                self._first_reads.value += 1
        self._pending_read = True
        self._read_guarded = self._holds > 0
        return number

    @value.setter
    def value(self, number: int) -> None:
        if self._pending_read and not self._read_guarded:
            self._wait_for_every_read()
        self._pending_read = False
        self._count.value = number

    def _wait_for_every_read(self) -> None:
        deadline = time.monotonic() + RENDEZVOUS_WAIT
        while not self._opened.value:
            with self._books:
                if self._first_reads.value >= self._parties or time.monotonic() > deadline:
                    self._opened.value = 1
                    break
            time.sleep(0.001)

    def get_lock(self) -> _WatchedLock:
        return _WatchedLock(self)

    def acquire(self, *args: Any, **kwargs: Any) -> bool:
        return _WatchedLock(self).acquire(*args, **kwargs)

    def release(self) -> None:
        _WatchedLock(self).release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def facts(self) -> dict[str, int]:
        return {"count": self._count.value, "lock_uses": self._lock_uses.value, "first_reads": self._first_reads.value}


SHARED_FIELDS = ("_parties", "_count", "_lock", "_books", "_first_reads", "_opened", "_lock_uses")


class _WatchedLock:
    """The counter's lock as get_lock() gives it: it notes who holds it, for the counter."""

    def __init__(self, counter: ContestedCounter) -> None:
        self._counter = counter

    def acquire(self, *args: Any, **kwargs: Any) -> bool:
        counter = self._counter
        got = counter._lock.acquire(*args, **kwargs)
        if got:
            counter._holds += 1
            with counter._books:
                counter._lock_uses.value += 1
        return got

    def release(self) -> None:
        counter = self._counter
        counter._lock.release()
        counter._holds = max(0, counter._holds - 1)
        if counter._holds == 0 and counter._pending_read and counter._read_guarded:
            # Let go between a read and its write: the write will not be under the read's hold.
            # Wait here, with the lock free, for the others to read the same count.
            counter._read_guarded = False
            counter._wait_for_every_read()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def add_in_child(module_name: str, counter: ContestedCounter, times: int, start: Any, reports: Any) -> None:
    """Worker process: wait for the others, then call the graded add_many(counter, times)."""
    facts = identity()
    try:
        start.wait()
        facts["together"] = True
    except threading.BrokenBarrierError:
        facts["together"] = False
    try:
        importlib.import_module(module_name).add_many(counter, times)
    except Exception as exc:  # the error is the fact to report
        facts["error"] = f"{type(exc).__name__}: {exc}"
    reports.put(facts)


def race_add_many(module: ModuleType, parties: int, times: int) -> dict[str, Any]:
    """add_many(counter, times) in parties processes at once, on a ContestedCounter."""
    module.add_many(ContestedCounter(1), 0)  # a TODO still there shows here, with its own name
    counter = ContestedCounter(parties)
    start = multiprocessing.Barrier(parties, timeout=START_WAIT)
    reports = multiprocessing.Queue()
    workers = [
        multiprocessing.Process(target=add_in_child, args=(module.__name__, counter, times, start, reports))
        for _ in range(parties)
    ]
    for worker in workers:
        worker.start()
    found = []
    deadline = time.monotonic() + WAIT
    while len(found) < parties and time.monotonic() < deadline:
        try:
            found.append(reports.get(timeout=max(0.1, deadline - time.monotonic())))
        except queue.Empty:
            break
    for worker in workers:
        worker.join(WAIT)
    return {
        "caller_pid": os.getpid(),
        "expected": parties * times,
        "reports": found,
        "exit_codes": [worker.exitcode for worker in workers],
        **counter.facts(),
    }


def add_many_here(module: ModuleType, times: int) -> dict[str, Any]:
    """add_many(counter, times) in this process alone."""
    counter = ContestedCounter(1)
    outcome = _attempt(module.add_many, counter, times)
    return {"outcome": outcome, **counter.facts()}


# ---------------------------------------------------------------- task 4


def add_and_report(reports: Any, start: Any, counter: Any, times: int) -> None:
    """The adder given to count_in_parallel: wait for the others, add times under the lock, report."""
    facts = identity()
    facts["given"] = type(counter).__name__
    facts["c_type"] = _c_type(counter)
    try:
        start.wait()
        facts["together"] = True
    except threading.BrokenBarrierError:
        facts["together"] = False
    try:
        lock = counter.get_lock()
        for _ in range(times):
            with lock:
                counter.value += 1
    except Exception as exc:  # no get_lock (a plain int, lock=False, RawValue): the fact to report
        facts["error"] = f"{type(exc).__name__}: {exc}"
    reports.put(facts)


def count_together(module: ModuleType, processes: int, times: int) -> dict[str, Any]:
    reports = multiprocessing.Queue()
    start = multiprocessing.Barrier(processes, timeout=START_WAIT)
    adder = functools.partial(add_and_report, reports, start)
    outcome = _attempt(module.count_in_parallel, adder, processes, times)
    left = _left_running()
    return {
        "caller_pid": os.getpid(),
        "outcome": outcome,
        "reports": drain(reports, FIRST_REPORT_WAIT),
        "left_running": left,
    }
