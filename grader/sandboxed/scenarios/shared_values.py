"""Scenarios for exercise 6 (shared_values), run inside the sandbox.

Each scenario takes the graded module first, drives it, and returns plain
facts (JSON data) for the hidden test to judge. What child processes run is a
module-level function here, bound with functools.partial, so that every start
method can find it by name. Every blocking call has a timeout, and every call
of a graded function goes through the kit's call_with_deadline, in this very
process (where no exit handler joins children for the caller).

Windows opened on purpose, so that a mistake fails every time:
- "waits for it": the worker handed to the graded code reads the shared value,
  then waits at a Gate that the scenario opens only after the call has been
  waiting for HOLD seconds. A call that returns while the worker is still held
  did not wait for it, whatever the machine's load.
- "starts at start": Process.start() returns only once the child has read the
  shared value (kit.hold_after_start), so a value set after start() is late
  every time.
- "at the same time": the adders of count_in_parallel meet at the Gate; the
  scenario lets them go only once all of them are there (or once the caller
  joins one before starting the rest: then they cannot all be there).
- "join them all": the adders are let go one at a time, the last started
  first, each only after the one before has ended, so a caller that joins
  only some of them reads the count while the others are still held.
- Lost updates, with certainty: add_many gets a ContestedCounter, a stand-in
  for Value("i", ...) whose read-modify-write the scenario controls. A first
  write that is not under the same hold of the counter's lock as its read
  waits until every process has read the count, so they all read the same
  number and all but one addition are lost, on any machine, however loaded.
  Under one hold of the lock nobody waits: the lock itself keeps the others
  out. A natural race would only make the loss likely.
- Type ranges: the README's own numbers, 4 processes x 10,000, overflow a
  16-bit counter; the floats (0.1, 1/3) are not exact in a C float.

Gate, ProcessRecorder and hold_and_release are generic (exercise 7 uses them
too): candidates for the kit.
"""

from __future__ import annotations

import ctypes
import functools
import importlib
import multiprocessing
import multiprocessing.managers
import multiprocessing.process
import os
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any, cast

from grader.sandboxed.scenarios.kit import (
    HUNG,
    Called,
    call_with_deadline,
    drain,
    error_fact,
    hold_after_start,
    identity,
    is_running,
    plain,
    receive,
    type_name,
    wait_until,
)

WAIT = 20.0  # seconds a blocking call may wait when nothing is wrong: long, a loaded machine is slow
ARRIVAL_WAIT = 15.0  # seconds the children of one call get to be all at the Gate at once (a loaded machine is slow)
HOLD = 1.0  # seconds a call must go on waiting while its children are held at the Gate
# Seconds at most between one child's end and letting the next go, for a caller that waits other than in join().
NEXT_GRACE = 3.0
START_WAIT = 8.0  # seconds the processes of race_add_many wait for each other at the start
RENDEZVOUS_WAIT = 3.0  # seconds an unguarded write waits for every process to read the count
FINAL_WAIT = 8.0  # seconds a call may still take once its workers are let go
GATE_SIZE = 32  # children one Gate keeps track of; more pass without waiting
SCALE, SHIFT = 2.5, 0.1  # what the workers do: x * SCALE + SHIFT (exact only in double precision)


def _in_caller() -> bool:
    """Whether this runs in the scenario's own process, where nothing can let a waiting worker go."""
    return multiprocessing.parent_process() is None


# ---------------------------------------------------------------- generic windows (candidates for the kit)


class Gate:
    """A place where the children graded code starts wait until the scenario lets them go.

    A child calls pass_through(): it notes its pid (in the order of arrival)
    and waits until the scenario releases it, by pid or all at once (open()).
    In the scenario's own process (a worker called directly, or in a thread)
    it never waits, since nothing could let it go while the caller is busy.
    A child calls finish() once its work is done, so that the scenario can
    tell which children had not finished when the graded call returned.
    Everything lives in shared memory: the Gate goes to children in args.
    """

    def __init__(self, size: int = GATE_SIZE, *, opened: bool = False) -> None:
        self._books = multiprocessing.Lock()
        self._size = size
        self._arrived = multiprocessing.RawArray("i", size)
        self._arrivals = multiprocessing.RawValue("i", 0)
        self._released = multiprocessing.RawArray("i", size)
        self._releases = multiprocessing.RawValue("i", 0)
        self._finished = multiprocessing.RawArray("i", size)
        self._finishes = multiprocessing.RawValue("i", 0)
        self._open = multiprocessing.RawValue("i", int(opened))

    def _note(self, pids: Any, count: Any, pid: int) -> None:
        with self._books:
            if count.value < self._size:
                pids[count.value] = pid
                count.value += 1

    def _read(self, pids: Any, count: Any) -> list[int]:
        with self._books:
            return list(pids[: count.value])

    # In the children.

    def pass_through(self, seconds: float = WAIT) -> bool:
        """Arrive, then wait until let go; whether that came within seconds (always True in the caller)."""
        pid = os.getpid()
        self._note(self._arrived, self._arrivals, pid)
        if _in_caller():
            return True
        deadline = time.monotonic() + seconds
        while not self._open.value and pid not in self._read(self._released, self._releases):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def finish(self) -> None:
        self._note(self._finished, self._finishes, os.getpid())

    # In the scenario.

    def arrived(self) -> list[int]:
        return self._read(self._arrived, self._arrivals)

    def finished(self) -> list[int]:
        return self._read(self._finished, self._finishes)

    def release(self, pid: int) -> None:
        self._note(self._released, self._releases, pid)

    def open(self) -> None:
        self._open.value = 1

    def held(self) -> list[int]:
        """The pids waiting at the gate now: arrived, and not let go."""
        if self._open.value:
            return []
        released = set(self._read(self._released, self._releases))
        return [pid for pid in self.arrived() if pid not in released and pid != os.getpid()]


class ProcessRecorder:
    """Records the processes that graded code starts in this process, and its first join.

    workers: every Process started while the recorder is on, in order, except
    a manager's server (a start inside BaseManager.start, whatever the
    manager's class); servers: those. joins: for each join(), how many
    workers had been started then. Patches BaseProcess.start and .join, and
    BaseManager.start, in this process only.
    """

    def __init__(self) -> None:
        self.workers: list[multiprocessing.process.BaseProcess] = []
        self.servers: list[multiprocessing.process.BaseProcess] = []
        self.joins: list[int] = []
        self.joining: list[multiprocessing.process.BaseProcess] = []  # the workers whose join() is under way
        self._in_manager_start = 0
        self._saved: list[tuple[Any, str, Any]] = []

    def __enter__(self) -> ProcessRecorder:
        recorder = self
        base_process = multiprocessing.process.BaseProcess
        base_manager = multiprocessing.managers.BaseManager
        start, join, manager_start = base_process.start, base_process.join, base_manager.start
        self._saved = [
            (base_process, "start", start),
            (base_process, "join", join),
            (base_manager, "start", manager_start),
        ]

        # Each names its first parameter as the method it stands in for does.
        def recorded_start(self: multiprocessing.process.BaseProcess) -> None:
            start(self)
            (recorder.servers if recorder._in_manager_start else recorder.workers).append(self)

        def recorded_join(self: multiprocessing.process.BaseProcess, timeout: float | None = None) -> None:
            if self in recorder.workers:
                recorder.joins.append(len(recorder.workers))
            recorder.joining.append(self)
            try:
                join(self, timeout)
            finally:
                recorder.joining.remove(self)

        def recorded_manager_start(self: multiprocessing.managers.BaseManager, *args: Any, **kwargs: Any) -> None:
            recorder._in_manager_start += 1
            try:
                manager_start(self, *args, **kwargs)
            finally:
                recorder._in_manager_start -= 1

        base_process.start = recorded_start  # type: ignore[method-assign]
        base_process.join = recorded_join  # type: ignore[method-assign]
        base_manager.start = recorded_manager_start  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, name, original in reversed(self._saved):
            setattr(owner, name, original)

    def starting_a_server(self) -> bool:
        """Whether this runs inside BaseManager.start: the process being started is a manager's server."""
        return self._in_manager_start > 0

    def pids(self) -> list[int]:
        return [process.pid for process in self.workers if process.pid is not None]

    def joining_one_of(self, pids: set[int]) -> bool:
        """Whether the caller is waiting in join() for one of these workers now."""
        return any(process.pid in pids for process in list(self.joining))

    def joined_before(self, count: int) -> bool:
        """Whether the caller joined a worker before it had started count of them."""
        return any(started < count for started in self.joins)

    def settled(self, gate: Gate) -> bool:
        """Whether every worker started so far is at the gate (or has ended): hold_after_start's until()."""
        if self.starting_a_server():
            return True
        arrived = set(gate.arrived())
        return all(pid in arrived or not is_running(pid) for pid in self.pids())

    def at_return(self, gate: Gate) -> dict[str, Any]:
        """What a caller that returns now leaves behind: workers held at the gate, workers not finished."""
        finished = set(gate.finished())
        return {
            "held": len(gate.held()),
            "unfinished": len([pid for pid in self.pids() if pid not in finished]),
            "running": len([pid for pid in self.pids() if is_running(pid)]),
        }


def _step(call: Called, seconds: float) -> Called:
    return call.wait_longer(seconds) if call.outcome == HUNG else call


def _wait(call: Called, condition: Callable[[Called], bool], seconds: float) -> Called:
    """Wait until condition(call) holds or seconds pass, following the call meanwhile; the call as it is then."""
    deadline = time.monotonic() + seconds
    while not condition(call) and time.monotonic() < deadline:
        if call.outcome == HUNG:
            call = call.wait_longer(0.02)
        else:
            time.sleep(0.02)
    return call


def hold_and_release(
    call: Called,
    gate: Gate,
    recorder: ProcessRecorder,
    parties: int,
    *,
    hold: float = HOLD,
    order: str | None = None,
    final_wait: float = FINAL_WAIT,
) -> tuple[Called, dict[str, Any]]:
    """Drive a call whose workers stop at gate: let them meet, hold them, then let them go.

    First wait until parties workers are at the gate at once (or the caller
    joined a worker before starting them all, or it returned and every worker
    it started is at the gate or has ended, or ARRIVAL_WAIT passed). Then keep
    them there for hold seconds, while the call must go on waiting. Then let
    them go: all at once (order None), or one at a time, each once the one
    before has ended, in the order they were started ("forward") or the last
    started first ("reverse"). In reverse, the next one goes only once the
    caller is back in a join() of one still held (as a caller that joins them
    all is) or has returned, or NEXT_GRACE passed: a caller that waited only
    for the last one has then returned what it read, on a loaded machine too,
    while the others were still held. Then wait final_wait seconds more for
    the call. Returns the call (ended, unless it hangs) and what was
    seen.
    """

    def met(call: Called) -> bool:
        if len(gate.arrived()) >= parties or recorder.joined_before(parties):
            return True
        return call.outcome != HUNG and recorder.settled(gate)

    call = _wait(call, met, ARRIVAL_WAIT)
    facts: dict[str, Any] = {
        "met": len(gate.arrived()),
        "joined_early": recorder.joined_before(parties),
        "started_before_release": len(recorder.workers),
    }
    if hold:
        call = _step(call, hold)
    if order is not None:
        started = [process for process in recorder.workers if process.pid is not None]
        started = started[::-1] if order == "reverse" else started
        for index, process in enumerate(started):
            gate.release(cast(int, process.pid))  # started holds only processes with a pid

            def ended(process: multiprocessing.process.BaseProcess = process) -> bool:
                return not is_running(process.pid)

            wait_until(ended, WAIT)
            if order == "reverse" and index < len(started) - 1:
                held = {cast(int, later.pid) for later in started[index + 1 :]}

                def waits_or_returned(call: Called, held: set[int] = held) -> bool:
                    return call.outcome != HUNG or recorder.joining_one_of(held)

                call = _wait(call, waits_or_returned, NEXT_GRACE)
    gate.open()
    return _step(call, final_wait), facts


def collected_reports(source: Any, recorder: ProcessRecorder) -> list[Any]:
    """Every report the workers sent, once every worker the caller started has ended (or WAIT passed)."""
    wait_until(lambda: not any(is_running(pid) for pid in recorder.pids()), WAIT)
    return drain(source, 0.5)


def _c_type(shared: Any) -> str:
    """The ctypes type a Value or an Array holds ("c_double", "c_int", ...), or the object's own type."""
    try:
        inner = shared.get_obj() if hasattr(shared, "get_obj") else shared
    except Exception:  # a stand-in that is not what it claims: say what it is
        return type(shared).__name__
    if isinstance(inner, ctypes.Array):
        return inner._type_.__name__
    if isinstance(inner, ctypes._SimpleCData):
        return type(inner).__name__
    return type(shared).__name__


def _returned(call: Called) -> dict[str, Any]:
    """The call as facts, with the exact type of what it returned and of its items."""
    facts = call.facts()
    facts["type"] = type_name(call.value)
    if isinstance(call.value, (list, tuple)):
        facts["item_types"] = sorted({type_name(item) for item in call.value})
    return facts


# ---------------------------------------------------------------- tasks 1 and 2


def change_number(gate: Gate, reports: Any, value: Any) -> None:
    """Worker: read the number, wait at the gate, then value.value = value.value * SCALE + SHIFT; report."""
    facts = identity()
    facts.update(given=type_name(value), c_type=_c_type(value))
    try:
        facts["seen"] = plain(value.value)
    except Exception as exc:  # a plain float, or something else without .value
        facts["error"] = error_fact(exc)
    facts["let_go"] = gate.pass_through()
    if "error" not in facts:
        try:
            value.value = value.value * SCALE + SHIFT
            facts["changed"] = True
        except Exception as exc:  # a typecode that cannot hold the result
            facts["error"] = error_fact(exc)
    reports.put(facts)
    gate.finish()


def change_numbers(gate: Gate, reports: Any, array: Any) -> None:
    """Worker: read the array, wait at the gate, then array[i] = array[i] * SCALE + SHIFT for every i; report."""
    facts = identity()
    facts.update(given=type_name(array), c_type=_c_type(array))
    try:
        facts["seen"] = plain(list(array[:]))
    except Exception as exc:  # not an array
        facts["error"] = error_fact(exc)
    facts["let_go"] = gate.pass_through()
    if "error" not in facts:
        try:
            for index in range(len(array)):
                array[index] = array[index] * SCALE + SHIFT
            facts["changed"] = True
        except Exception as exc:  # a typecode that cannot hold the result
            facts["error"] = error_fact(exc)
    reports.put(facts)
    gate.finish()


def _run_one_child(function: Callable[..., Any], worker_body: Callable[..., None], given: Any, hold: float) -> dict:
    """function(worker, given) with a worker that reads first and is then held; the facts of that one call."""
    gate = Gate()
    reports: multiprocessing.queues.Queue[Any] = multiprocessing.Queue()
    worker = functools.partial(worker_body, gate, reports)
    with ProcessRecorder() as recorder, hold_after_start(until=lambda: recorder.settled(gate)):
        call = call_with_deadline(function, worker, given, deadline=0.05, after=lambda: recorder.at_return(gate))
        call, window = hold_and_release(call, gate, recorder, 1, hold=hold)
    return {
        "call": _returned(call),
        "window": window,
        "started": len(recorder.workers),
        "reports": collected_reports(reports, recorder),
    }


def shared_number(module: ModuleType, starts: list[float], hold: float = HOLD) -> dict[str, Any]:
    """run_with_shared_number(worker, start) for each start, one call after another in this process."""
    calls = [_run_one_child(module.run_with_shared_number, change_number, start, hold) for start in starts]
    return {"caller_pid": os.getpid(), "calls": calls}


def shared_array(module: ModuleType, lists: list[list[float]], hold: float = HOLD) -> dict[str, Any]:
    """run_with_shared_array(worker, numbers) for each list, one call after another in this process."""
    calls = [_run_one_child(module.run_with_shared_array, change_numbers, numbers, hold) for numbers in lists]
    return {"caller_pid": os.getpid(), "calls": calls}


# ---------------------------------------------------------------- task 3


class ContestedCounter:
    """A stand-in for Value("i", start) that turns a badly guarded increment into a certain loss.

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

    def __init__(self, parties: int, start: int = 0) -> None:
        self._parties = parties
        self._count = multiprocessing.RawValue("i", start)
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
        facts["error"] = {**error_fact(exc), "function": "add_many"}
    reports.put(facts)


def race_add_many(module: ModuleType, parties: int, times: int) -> dict[str, Any]:
    """add_many(counter, times) in parties processes at once, on a ContestedCounter."""
    module.add_many(ContestedCounter(1), 0)  # a TODO still there shows here, with its own name
    counter = ContestedCounter(parties)
    start = multiprocessing.Barrier(parties, timeout=START_WAIT)
    reports: multiprocessing.queues.Queue[Any] = multiprocessing.Queue()
    workers = [
        multiprocessing.Process(target=add_in_child, args=(module.__name__, counter, times, start, reports))
        for _ in range(parties)
    ]
    for worker in workers:
        worker.start()
    found = []
    for _ in workers:
        report = receive(reports, WAIT, alive=lambda: any(worker.is_alive() for worker in workers))
        if report is None:
            break
        found.append(report)
    for worker in workers:
        worker.join(WAIT)
    return {
        "caller_pid": os.getpid(),
        "expected": parties * times,
        "reports": found,
        "exit_codes": [worker.exitcode for worker in workers],
        **counter.facts(),
    }


def add_many_here(module: ModuleType, start: int, steps: list[int]) -> dict[str, Any]:
    """add_many(counter, times) in this process for each times in steps, on one counter that starts at start."""
    counter = ContestedCounter(1, start)
    counts: list[int] = []
    for times in steps:
        call = call_with_deadline(module.add_many, counter, times)
        if call.outcome != "returned":
            return {"call": call.facts(), "times": times, "counts": counts, **counter.facts()}
        counts.append(counter.facts()["count"])
    return {"call": None, "counts": counts, **counter.facts()}


# ---------------------------------------------------------------- task 4


def count_and_report(gate: Gate, reports: Any, counter: Any, times: int) -> None:
    """The adder given to count_in_parallel: wait at the gate, add times under the counter's lock, report."""
    facts = identity()
    facts.update(given=type_name(counter), c_type=_c_type(counter), times=plain(times))
    facts["let_go"] = gate.pass_through()
    try:
        lock = counter.get_lock()
        for _ in range(times):
            with lock:
                counter.value += 1
    except Exception as exc:  # no get_lock (a plain int, lock=False, RawValue): the fact to report
        facts["error"] = error_fact(exc)
    reports.put(facts)
    gate.finish()


def _count_call(module: ModuleType, processes: int, times: int, hold: float, order: str | None) -> dict[str, Any]:
    gate = Gate()
    reports: multiprocessing.queues.Queue[Any] = multiprocessing.Queue()
    adder = functools.partial(count_and_report, gate, reports)
    with ProcessRecorder() as recorder:
        call = call_with_deadline(
            module.count_in_parallel, adder, processes, times, deadline=0.05, after=lambda: recorder.at_return(gate)
        )
        call, window = hold_and_release(call, gate, recorder, processes, hold=hold, order=order)
    return {
        "processes": processes,
        "times": times,
        "call": _returned(call),
        "window": window,
        "started": len(recorder.workers),
        "reports": collected_reports(reports, recorder),
    }


def count_together(
    module: ModuleType, runs: list[list[int]], hold: float = 0.0, order: str | None = None
) -> dict[str, Any]:
    """count_in_parallel(adder, processes, times) for each [processes, times], one call after another.

    The adders meet at a Gate and are let go once all of them are there, one
    at a time in the given order (see hold_and_release).
    """
    calls = [_count_call(module, processes, times, hold, order) for processes, times in runs]
    return {"caller_pid": os.getpid(), "calls": calls}
