"""Scenarios for exercise 8 (synchronization), run inside the sandbox.

The graded functions get the primitives and stand-ins that the scenario made,
and the scenario runs them in processes of its own (except run_in_step, which
starts its own). The stand-ins measure:

    MeasuredTotal  a number with .value: reading it enters the critical section,
                   writing it leaves. The write waits until another process is
                   inside too (or HOLD seconds), so missing exclusion always shows
                   as two processes inside at once, never by luck.
    Account        deposit() and charge() take account.lock themselves, with a
                   timeout, and note whether the caller already held it.
    Site           fetch() counts the processes inside and stays until k are
                   inside together (or a generous timeout), then a little longer,
                   so that a semaphore letting in more than k is certainly seen.
    SharedCount    a number with .value that notes which processes read it, so the
                   scenario knows every waiter has checked before it adds items.

The scenario's workers start together at a barrier of their own. Every wait
has a timeout; a stuck worker is reported, never waited for forever. Helpers
that children run are module-level, so every start method can find them.
"""

from __future__ import annotations

import functools
import importlib
import multiprocessing
import os
import queue
import sys
import threading
import time
import traceback
from types import ModuleType
from typing import Any

WAIT = 20.0  # seconds anything a correct solution delivers may take on a loaded machine
POLL = 0.005
HOLD = 0.25  # a write to MeasuredTotal waits this long for another process to come in
LOCK_WORKERS = 3
RLOCK_WORKERS = 3
RETAKE_WAIT = 0.5  # a second acquire of a lock its holder cannot take again gives up after this
ACCOUNT_WAIT = 1.0  # deposit() and charge() wait this long for account.lock
LINGER = 0.3  # a fetch stays this long after k were inside together
REACH_WAIT = 3.0  # a fetch waits this long for k to be inside together
EARLY_WAIT = 0.8  # how long the scenario watches for a waiter that passes too early
LAST_ARRIVAL_WAIT = 0.8  # the last process reaches the barrier this late, unless someone passed already
STUCK_AFTER = 4.0  # a run_in_step worker not past the barrier this long after all arrived is stopped
STUCK_EXIT = 75
CHECK_WAIT = 3.0  # every waiter must have read the box this long after it called wait_for_items
WAKE_WAIT = 5.0  # every waiter must have woken this long after the last items came
LATE_TIMEOUT = 5.0  # the timeout of a waiter whose items are there already; it should need none of it


# --- reporting from worker processes --------------------------------------------------------------------------------


def _error(exc: BaseException, module_name: str) -> dict[str, Any]:
    """An exception raised by graded code, as plain data, with the place in the graded file."""
    where = None
    function = None
    graded = getattr(sys.modules.get(module_name), "__file__", None)
    graded = os.path.realpath(graded) if graded else None
    for frame in traceback.extract_tb(exc.__traceback__):  # the scenario file has the same name: compare paths
        if graded and os.path.realpath(frame.filename) == graded:
            where = f"{module_name}.py:{frame.lineno} in {frame.name}"
            function = frame.name
    return {"type": type(exc).__name__, "message": str(exc)[:300], "where": where, "function": function}


def _start_together(start: Any) -> None:
    """Wait for the other workers of the scenario, so that they all begin at once."""
    try:
        start.wait(WAIT)
    except threading.BrokenBarrierError:
        pass  # a sibling never came: go on alone, the facts will show it


def _collect(results: Any, into: list[dict[str, Any]], until: Any, seconds: float) -> None:
    """Take reports from results into `into` until until() holds or seconds have passed."""
    deadline = time.monotonic() + seconds
    while not until() and time.monotonic() < deadline:
        try:
            into.append(results.get(timeout=POLL * 4))
        except queue.Empty:
            pass


def _finish(processes: list[Any]) -> list[Any]:
    """Join the scenario's workers (briefly), stop what is left, and return their exit codes."""
    deadline = time.monotonic() + 2.0
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            process.kill()
            process.join(1.0)
    return [process.exitcode for process in processes]


def _errors(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [report["raised"] for report in reports if "raised" in report]


# --- task 1: Lock ---------------------------------------------------------------------------------------------------


class MeasuredTotal:
    """Stands in for a shared Value: read .value to enter the critical section, write it to leave."""

    def __init__(self, slots: int, hold: float) -> None:
        self._number = multiprocessing.Value("q", 0, lock=False)
        self._inside = multiprocessing.Array("i", slots, lock=False)  # pids between their read and their write
        self._peak = multiprocessing.Value("i", 0, lock=False)
        self._guard = multiprocessing.Lock()  # the scenario's own, independent of the graded lock
        self._hold = hold

    @property
    def value(self) -> int:
        me = os.getpid()
        with self._guard:
            inside = list(self._inside)
            if me not in inside and 0 in inside:
                self._inside[inside.index(0)] = me
                self._peak.value = max(self._peak.value, sum(1 for pid in self._inside if pid))
            return self._number.value

    @value.setter
    def value(self, number: int) -> None:
        me = os.getpid()
        # Wait for another process to come in: with exclusion none can, without it one surely does.
        deadline = time.monotonic() + self._hold
        while time.monotonic() < deadline:
            with self._guard:
                if any(pid not in (0, me) for pid in self._inside):
                    break
            time.sleep(POLL)
        with self._guard:
            self._number.value = number
            inside = list(self._inside)
            if me in inside:
                self._inside[inside.index(me)] = 0

    def facts(self) -> dict[str, int]:
        return {"peak": self._peak.value, "total": self._number.value}


def _add_worker(results: Any, start: Any, module_name: str, lock: Any, total: Any, amount: int) -> None:
    module = importlib.import_module(module_name)
    _start_together(start)
    try:
        module.add_to_total(lock, total, amount)
        results.put({"pid": os.getpid()})
    except BaseException as exc:
        results.put({"pid": os.getpid(), "raised": _error(exc, module_name)})


def lock_one_at_a_time(module: ModuleType) -> dict[str, Any]:
    lock = multiprocessing.Lock()
    total = MeasuredTotal(LOCK_WORKERS + 2, HOLD)
    results = multiprocessing.Queue()
    start = multiprocessing.Barrier(LOCK_WORKERS)
    amounts = [10 ** (index + 1) for index in range(LOCK_WORKERS)]  # 10, 100, 1000: a lost one shows in the sum
    workers = [
        multiprocessing.Process(target=_add_worker, args=(results, start, module.__name__, lock, total, amount))
        for amount in amounts
    ]
    for worker in workers:
        worker.start()
    reports: list[dict[str, Any]] = []
    _collect(results, reports, lambda: len(reports) == len(workers), WAIT)
    exit_codes = _finish(workers)
    return {
        **total.facts(),
        "expected": sum(amounts),
        "workers": LOCK_WORKERS,
        "reported": len(reports),
        "errors": _errors(reports),
        "exit_codes": exit_codes,
    }


# --- task 2: RLock --------------------------------------------------------------------------------------------------


class Account:
    """A balance whose deposit() and charge() take account.lock themselves, with a timeout."""

    def __init__(self, lock: Any) -> None:
        self.lock = lock
        self._balance = multiprocessing.Value("q", 0, lock=False)
        self._calls = multiprocessing.Value("i", 0, lock=False)
        self._held_by_caller = multiprocessing.Value("i", 0, lock=False)
        self._stuck = multiprocessing.Value("i", 0, lock=False)
        self._guard = multiprocessing.Lock()

    def _change(self, amount: int) -> None:
        semlock = getattr(self.lock, "_semlock", None)
        held = bool(semlock._is_mine()) if semlock is not None else False
        got = self.lock.acquire(timeout=ACCOUNT_WAIT)
        with self._guard:
            self._calls.value += 1
            self._held_by_caller.value += held
            self._stuck.value += not got
        if not got:
            return
        try:
            self._balance.value += amount
        finally:
            self.lock.release()

    def deposit(self, amount: int) -> None:
        self._change(amount)

    def charge(self, fee: int) -> None:
        self._change(-fee)

    def facts(self) -> dict[str, int]:
        return {
            "balance": self._balance.value,
            "calls": self._calls.value,
            "held_by_caller": self._held_by_caller.value,
            "stuck": self._stuck.value,
        }


def _try_lock(lock: Any, taken: Any) -> None:
    """Child: say whether the lock could be taken from another process."""
    if lock.acquire(timeout=0.3):
        taken.value = 1
        lock.release()


def _pay_worker(results: Any, start: Any, module_name: str, account: Any, amount: int, fee: int) -> None:
    module = importlib.import_module(module_name)
    _start_together(start)
    try:
        module.pay_with_fee(account, amount, fee)
        results.put({"pid": os.getpid()})
    except BaseException as exc:
        results.put({"pid": os.getpid(), "raised": _error(exc, module_name)})


def rlock_taken_again(module: ModuleType) -> dict[str, Any]:
    lock = module.make_account_lock()
    facts: dict[str, Any] = {"type": type(lock).__name__, "has_semlock": hasattr(lock, "_semlock")}
    facts["first"] = bool(lock.acquire(timeout=1.0))
    started = time.monotonic()
    facts["again"] = bool(facts["first"] and lock.acquire(timeout=RETAKE_WAIT))
    facts["again_seconds"] = round(time.monotonic() - started, 2)
    taken = multiprocessing.Value("i", 0, lock=False)
    if facts["first"]:
        other = multiprocessing.Process(target=_try_lock, args=(lock, taken))
        other.start()
        other.join(WAIT)
        facts["other_took_it"] = bool(taken.value)
        lock.release()
        if facts["again"]:
            lock.release()
    if not (facts["first"] and facts["again"]):
        return facts  # the workers could only wait for themselves

    account = Account(lock)
    results = multiprocessing.Queue()
    start = multiprocessing.Barrier(RLOCK_WORKERS)
    workers = [
        multiprocessing.Process(target=_pay_worker, args=(results, start, module.__name__, account, 10, 1))
        for _ in range(RLOCK_WORKERS)
    ]
    for worker in workers:
        worker.start()
    reports: list[dict[str, Any]] = []
    _collect(results, reports, lambda: len(reports) == len(workers), WAIT)
    facts.update(account.facts())
    facts.update(
        expected=RLOCK_WORKERS * 9,
        workers=RLOCK_WORKERS,
        reported=len(reports),
        errors=_errors(reports),
        exit_codes=_finish(workers),
    )
    return facts


# --- task 3: Semaphore ----------------------------------------------------------------------------------------------


class Site:
    """fetch() counts the processes inside; it stays until k were inside together, then LINGER more."""

    def __init__(self, k: int) -> None:
        self._k = k
        self._inside = multiprocessing.Value("i", 0, lock=False)
        self._peak = multiprocessing.Value("i", 0, lock=False)
        self._gave_up = multiprocessing.Value("i", 0, lock=False)
        self._fetches = multiprocessing.Value("i", 0, lock=False)
        self._guard = multiprocessing.Lock()

    def fetch(self) -> str:
        with self._guard:
            self._inside.value += 1
            self._peak.value = max(self._peak.value, self._inside.value)
        entered = time.monotonic()
        while True:
            now = time.monotonic()
            with self._guard:
                peak, gave_up = self._peak.value, self._gave_up.value
            if peak > self._k:
                break  # too many already: nothing more to see
            if (peak >= self._k or gave_up) and now - entered >= LINGER:
                break
            if now - entered >= REACH_WAIT:
                with self._guard:
                    self._gave_up.value = 1  # k never came in together: the others need not wait as long
                break
            time.sleep(POLL)
        with self._guard:
            self._inside.value -= 1
            self._fetches.value += 1
        return "page"

    def facts(self) -> dict[str, int]:
        return {"peak": self._peak.value, "fetches": self._fetches.value, "gave_up": self._gave_up.value}


def _fetch_worker(results: Any, start: Any, module_name: str, slots: Any, site: Any) -> None:
    module = importlib.import_module(module_name)
    _start_together(start)
    try:
        module.fetch_with_slot(slots, site)
        results.put({"pid": os.getpid()})
    except BaseException as exc:
        results.put({"pid": os.getpid(), "raised": _error(exc, module_name)})


def _free_slots(slots: Any, tries: int) -> int:
    """How many times the semaphore can be taken right now (at most tries), all given back after."""
    taken = 0
    while taken < tries and slots.acquire(timeout=0.05):
        taken += 1
    for _ in range(taken):
        slots.release()
    return taken


def semaphore_lets_k_in(module: ModuleType, k: int, workers: int, probe_k: int) -> dict[str, Any]:
    # First, in this process, a semaphore of another size, so that a number written into the code shows.
    probe = module.make_slots(probe_k)
    facts: dict[str, Any] = {"probe_k": probe_k, "probe_free": _free_slots(probe, probe_k + 2)}
    slots = module.make_slots(k)
    site = Site(k)
    results = multiprocessing.Queue()
    start = multiprocessing.Barrier(workers)
    processes = [
        multiprocessing.Process(target=_fetch_worker, args=(results, start, module.__name__, slots, site))
        for _ in range(workers)
    ]
    for process in processes:
        process.start()
    reports: list[dict[str, Any]] = []
    _collect(results, reports, lambda: len(reports) == len(processes), WAIT)
    facts.update(site.facts())
    facts.update(k=k, workers=workers, reported=len(reports), errors=_errors(reports), exit_codes=_finish(processes))
    return facts


# --- task 4: Event --------------------------------------------------------------------------------------------------


def _go_waiter(results: Any, ready: Any, module_name: str, go: Any, timeout: float) -> None:
    module = importlib.import_module(module_name)
    with ready.get_lock():
        ready.value += 1
    try:
        passed = module.wait_for_go(go, timeout)
        results.put({"pid": os.getpid(), "passed": repr(passed), "was_set": go.is_set()})
    except BaseException as exc:
        results.put({"pid": os.getpid(), "raised": _error(exc, module_name)})


def event_holds_until_set(module: ModuleType, waiters: int) -> dict[str, Any]:
    go = multiprocessing.Event()
    ready = multiprocessing.Value("i", 0)
    results = multiprocessing.Queue()
    processes = [
        multiprocessing.Process(target=_go_waiter, args=(results, ready, module.__name__, go, WAIT))
        for _ in range(waiters)
    ]
    for process in processes:
        process.start()
    reports: list[dict[str, Any]] = []
    _collect(results, reports, lambda: ready.value == waiters, WAIT)
    # Watch for a while: a waiter that does not really wait comes back now, while the event is clear.
    _collect(results, reports, lambda: bool(reports), EARLY_WAIT)
    go.set()
    _collect(results, reports, lambda: len(reports) == waiters, WAIT)
    return {"waiters": waiters, "reports": reports, "errors": _errors(reports), "exit_codes": _finish(processes)}


def _timeout_waiter(results: Any, module_name: str, go: Any, timeout: float) -> None:
    module = importlib.import_module(module_name)
    started = time.monotonic()
    try:
        passed = module.wait_for_go(go, timeout)
        results.put({"passed": repr(passed), "seconds": round(time.monotonic() - started, 3)})
    except BaseException as exc:
        results.put({"raised": _error(exc, module_name)})


def event_wait_times_out(module: ModuleType, timeout: float) -> dict[str, Any]:
    go = multiprocessing.Event()  # never set
    results = multiprocessing.Queue()
    waiter = multiprocessing.Process(target=_timeout_waiter, args=(results, module.__name__, go, timeout))
    waiter.start()
    reports: list[dict[str, Any]] = []
    _collect(results, reports, lambda: bool(reports), timeout + 3.0)
    _finish([waiter])
    return {"timeout": timeout, "report": reports[0] if reports else None, "errors": _errors(reports)}


# --- task 5: Barrier ------------------------------------------------------------------------------------------------


def _watchdog(arrived: Any, passed: Any, index: int) -> None:
    """Thread in a run_in_step worker: stop the process if it never gets past the barrier.

    It counts STUCK_AFTER from the moment every process has arrived (a right barrier opens then), and
    gives up on arrivals that never come after WAIT.
    """
    deadline = time.monotonic() + WAIT
    all_arrived = False
    while time.monotonic() < deadline:
        if passed[index]:
            return
        if not all_arrived and all(arrived):
            all_arrived = True
            deadline = min(deadline, time.monotonic() + STUCK_AFTER)
        time.sleep(POLL * 4)
    os._exit(STUCK_EXIT)


def arrive(arrived: Any, passed: Any, pids: Any, count: int, index: int) -> None:
    """first(index): note the arrival; the last process arrives only once someone passed, or late."""
    pids[index] = os.getpid()
    threading.Thread(target=_watchdog, args=(arrived, passed, index), daemon=True).start()
    if index == count - 1:
        deadline = time.monotonic() + LAST_ARRIVAL_WAIT
        while time.monotonic() < deadline and not any(passed):
            time.sleep(POLL)
    arrived[index] = 1


def depart(arrived: Any, passed: Any, index: int) -> None:
    """second(index): note how many processes had arrived when this one got past the barrier."""
    passed[index] = 1 + sum(arrived)  # 0 means it never got here


def barrier_holds_until_all_arrive(module: ModuleType, count: int) -> dict[str, Any]:
    arrived = multiprocessing.Array("i", count, lock=False)
    passed = multiprocessing.Array("i", count, lock=False)
    pids = multiprocessing.Array("i", count, lock=False)
    first = functools.partial(arrive, arrived, passed, pids, count)
    second = functools.partial(depart, arrived, passed)
    module.run_in_step(count, first, second)
    return {
        "count": count,
        "arrived_when_passed": [value - 1 if value else None for value in passed],
        "pids": list(pids),
        "caller_pid": os.getpid(),
        "left_running": len(multiprocessing.active_children()),
    }


# --- task 6: Condition ----------------------------------------------------------------------------------------------


class SharedCount:
    """Stands in for a shared Value: .value is a number, and every process that reads it is noted."""

    def __init__(self, slots: int) -> None:
        self._number = multiprocessing.Value("i", 0, lock=False)
        self._readers = multiprocessing.Array("i", slots, lock=False)
        self._guard = multiprocessing.Lock()

    @property
    def value(self) -> int:
        me = os.getpid()
        with self._guard:
            readers = list(self._readers)
            if me not in readers and 0 in readers:
                self._readers[readers.index(0)] = me
            return self._number.value

    @value.setter
    def value(self, number: int) -> None:
        self._number.value = number

    def readers(self, other_than: int) -> int:
        with self._guard:
            return sum(1 for pid in self._readers if pid not in (0, other_than))

    def now(self) -> int:
        return self._number.value


def _items_waiter(
    results: Any, calling: Any, module_name: str, condition: Any, box: Any, wanted: int, timeout: float
) -> None:
    module = importlib.import_module(module_name)
    with calling.get_lock():
        calling.value += 1
    try:
        got = module.wait_for_items(condition, box, wanted, timeout)
        results.put({"pid": os.getpid(), "returned": repr(got), "items": box.now()})
    except BaseException as exc:
        results.put({"pid": os.getpid(), "raised": _error(exc, module_name)})


def condition_wakes_waiters(module: ModuleType, waiters: int, wanted: int) -> dict[str, Any]:
    condition = multiprocessing.Condition()
    box = SharedCount(waiters + 2)
    results = multiprocessing.Queue()
    calling = multiprocessing.Value("i", 0)
    arguments = (results, calling, module.__name__, condition, box, wanted, WAIT)
    processes = [multiprocessing.Process(target=_items_waiter, args=arguments) for _ in range(waiters)]
    for process in processes:
        process.start()
    me = os.getpid()
    reports: list[dict[str, Any]] = []
    _collect(results, reports, lambda: calling.value == waiters or bool(reports), WAIT)
    # Once every waiter has read the box under the condition, add_items can take the condition only when
    # each of them waits. A waiter that never reads it before waiting is given CHECK_WAIT.
    _collect(results, reports, lambda: box.readers(me) == waiters or bool(reports), CHECK_WAIT)
    facts: dict[str, Any] = {"waiters": waiters, "wanted": wanted, "checked_before": box.readers(me)}
    if _errors(reports):
        facts.update(reports=reports, errors=_errors(reports), exit_codes=_finish(processes))
        return facts
    try:
        module.add_items(condition, box, wanted - 1)  # not enough yet: nobody may pass
        _collect(results, reports, lambda: bool(reports), EARLY_WAIT)
        facts["passed_early"] = len(reports)
        module.add_items(condition, box, 1)  # now enough for every waiter
    except BaseException:
        _finish(processes)  # before the error goes up: no child is left half started
        raise
    _collect(results, reports, lambda: len(reports) == waiters, WAKE_WAIT)
    facts["woken"] = len(reports)
    if len(reports) < waiters and condition.acquire(timeout=1.0):
        try:
            condition.notify_all()  # let the sleepers go, so they end
        finally:
            condition.release()
    _collect(results, reports, lambda: len(reports) == waiters, 2.0)
    facts.update(reports=reports, errors=_errors(reports), exit_codes=_finish(processes))
    return facts


def condition_checks_first(module: ModuleType) -> dict[str, Any]:
    condition = multiprocessing.Condition()
    box = SharedCount(2)
    module.add_items(condition, box, 2)
    started = time.monotonic()
    ready = module.wait_for_items(condition, box, 2, LATE_TIMEOUT)  # the items are there already
    ready_seconds = time.monotonic() - started
    started = time.monotonic()
    missing = module.wait_for_items(condition, box, 5, 0.3)  # they never will be
    missing_seconds = time.monotonic() - started
    return {
        "late_timeout": LATE_TIMEOUT,
        "ready": repr(ready),
        "ready_seconds": round(ready_seconds, 3),
        "missing": repr(missing),
        "missing_seconds": round(missing_seconds, 3),
    }
