"""Scenarios for exercise 8 (synchronization), run inside the sandbox.

The graded functions get primitives and stand-ins that the scenario made, and
the scenario runs them in processes of its own (except run_in_step, which
starts its own). The stand-ins note what happened, so that a mistake shows as
a fact every time instead of as a lost update that happens only sometimes:

    WatchedLock    passes every acquire and release on to a real lock, and notes
                   which process holds it, how deep, and how many times it was
                   taken from free (so a release and a new acquire in between
                   two steps shows).
    MeasuredTotal  a number with .value: every read and write notes whether the
                   process holds the WatchedLock, and whether it let go of it
                   since its read.
    Account        deposit() and charge() take account.lock themselves and note
                   whether the caller held it all the way from the deposit to the
                   charge. The moment the lock is free in between, a rival
                   process is let in.
    Site           fetch() counts the processes inside and stays until k are
                   inside together (or a generous timeout), then a little longer,
                   so that a semaphore letting in more than k is certainly seen.
    Box            a number with .value for a condition: it notes who reads it,
                   whether a writer holds the condition, and (when asked to) makes
                   a reader that looks without holding the condition miss its
                   wake-up on purpose: the items come right after its look.

Windows opened on purpose, so that a mistake fails every time:
- run_in_step: the last process arrives at the barrier only after all the others
  did and someone passed (or a while later), and all but the last stay in
  second() until run_in_step returned (or a while), so an early barrier and a
  missing join both show.
- wait_for_items: a waiter is woken every WAKE_EVERY seconds without its items,
  so a timeout restarted on every wake-up runs far past the one it was given.

Every wait has a timeout; a stuck worker is reported, never waited for forever.
Helpers that children run are module-level, so every start method finds them.
"""

from __future__ import annotations

import functools
import importlib
import multiprocessing
import os
import queue
import threading
import time
from types import ModuleType
from typing import Any

from grader.sandboxed.scenarios.kit import (
    HUNG,
    call_with_deadline,
    error_fact,
    is_running,
    kill_and_reap,
    new_spans,
    span_ended,
    span_started,
    timeline_facts,
    type_name,
    wait_until,
)

WAIT = 20.0  # seconds anything a correct solution delivers may take on a loaded machine
POLL = 0.005
LOCK_WORKERS = 3
PAY_WORKERS = 3
RETAKE_WAIT = 0.5  # a second acquire of a lock its holder cannot take again gives up after this
OTHER_LOCK_WAIT = 3.0  # a free lock is taken at once; a held one makes this wait run out
ACCOUNT_WAIT = 1.0  # deposit() and charge() wait this long for account.lock
LINGER = 0.3  # a fetch stays this long after k were inside together
REACH_WAIT = 5.0  # a fetch waits this long for k to be inside together
CALL_WAIT = 5.0  # a call that should return at once (or after a short timeout) is given this long
EARLY_WAIT = 3.0  # how long the scenario watches for a waiter that passes before the event is set
ANSWER_WAIT = 5.0  # a waiter must have returned this long after what it waited for came
GO_TIMEOUT = 0.5  # the timeout of a wait_for_go whose event never comes
PAST_TIMEOUT = 2.0  # ... which must have returned this long after its timeout ran out
# EARLY_WAIT > GO_TIMEOUT + PAST_TIMEOUT: a wait_for_go that sleeps a fixed time fails one check, whatever the time.
LAST_ARRIVAL_WAIT = 0.8  # the last process reaches the barrier this late, unless someone passed already
HOLD_SECOND = 1.5  # all but the last stay in second() this long, unless run_in_step returned already
STUCK_AFTER = 4.0  # a run_in_step worker not past the barrier this long after all arrived is stopped
STUCK_ALONE = 15.0  # ... or this long after its own arrival, if the others never come
STUCK_EXIT = 75
# run_in_step is given this long: longer than the watchdogs take to stop workers stuck at the barrier, so that
# a stuck barrier is reported as such on a slow machine too. It is cut short when first() ran in the caller.
RUN_DEADLINE = STUCK_ALONE + 10.0
NO_INDEX = -(10**9)
CHECK_WAIT = 5.0  # every waiter must be asleep on the condition this long after it called wait_for_items
ITEMS_TIMEOUT = 1.0  # the timeout of a wait_for_items that is woken again and again without its items
WAKE_EVERY = 0.3  # ... how often it is woken
WAKE_FOR = 4.0  # ... for how long: a wait that restarts its timeout on every wake-up is still waiting then
LATE_TIMEOUT = 20.0  # the timeout of a waiter that should need none of it


# --- reporting from worker processes --------------------------------------------------------------------------------


def _raised(exc: BaseException) -> dict[str, Any]:
    return {"pid": os.getpid(), "raised": error_fact(exc)}


def _start_together(start: Any) -> None:
    """Wait for the other workers of the scenario, so that they all begin at once."""
    try:
        start.wait(WAIT)
    except threading.BrokenBarrierError:
        pass  # a sibling never came: go on alone, the facts will show it


def _start_all(processes: list[Any]) -> dict[str, Any] | None:
    """Start every process; the error of a start that failed (something could not be sent), after stopping the rest."""
    for process in processes:
        try:
            process.start()
        except Exception as exc:  # a threading lock cannot be pickled for spawn: that is the fact
            _finish([p for p in processes if p.pid is not None])
            return error_fact(exc)
    return None


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
        if process.pid is not None:
            process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.pid is not None and process.is_alive():
            kill_and_reap(process, 1.0)
    return [process.exitcode for process in processes]


def _errors(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [report["raised"] for report in reports if "raised" in report]


def _call_facts(call: Any) -> dict[str, Any]:
    """A call's facts, with the value as its repr (True and 1 differ) and seconds rounded."""
    facts = call.facts()
    facts["value"] = repr(call.value)
    if facts["seconds"] is not None:
        facts["seconds"] = round(facts["seconds"], 3)
    return facts


# --- a lock that says who holds it ----------------------------------------------------------------------------------


class Rival:
    """Another process that wants the account's lock, let in once, the moment a payer leaves it free mid-payment."""

    def __init__(self) -> None:
        self.asked = multiprocessing.Value("i", 0)
        self.go = multiprocessing.Event()
        self.done = multiprocessing.Event()
        self.got_in = multiprocessing.Value("i", 0, lock=False)

    def let_in(self) -> None:
        """In a paying process: let the rival try the lock now, and wait until it has (the first time only)."""
        with self.asked.get_lock():
            first = self.asked.value == 0
            self.asked.value += 1
        if first:
            self.go.set()
            self.done.wait(WAIT)


def _rival(lock: Any, rival: Rival, stop: Any) -> None:
    """Child: wait for a window, then take the lock if it can."""
    while not rival.go.wait(0.05):
        if stop.is_set():
            return
    if lock.acquire(True, 2.0):
        rival.got_in.value = 1
        lock.release()
    rival.done.set()


class WatchedLock:
    """Stands in for the lock a function is given: every acquire and release goes on to the real lock, and is noted.

    It notes which process holds it and how deep (so a function can be asked
    whether its caller holds the lock), and how many times it was taken from
    free (so a release and a new acquire between two steps shows).
    """

    def __init__(self, inner: Any, rival: Rival | None = None) -> None:
        self._inner = inner
        self._owner = multiprocessing.Value("i", 0, lock=False)
        self._depth = multiprocessing.Value("i", 0, lock=False)
        self._taken = multiprocessing.Value("i", 0, lock=False)
        self._rival = rival
        self.pending = False  # in this process: a deposit was made and its charge is still to come

    def acquire(self, block: bool = True, timeout: float | None = None) -> bool:
        got = self._inner.acquire(block) if timeout is None else self._inner.acquire(block, timeout)
        if got:
            me = os.getpid()
            if self._owner.value == me and self._depth.value > 0:
                self._depth.value += 1
            else:
                self._owner.value = me
                self._depth.value = 1
                self._taken.value += 1
        return got

    def release(self) -> None:
        freed = False
        if self._owner.value == os.getpid() and self._depth.value > 0:
            self._depth.value -= 1
            if self._depth.value == 0:
                self._owner.value = 0
                freed = True
        self._inner.release()
        if freed and self.pending and self._rival is not None:
            self._rival.let_in()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def held_here(self) -> bool:
        """Whether this process holds the lock (through this stand-in)."""
        return self._owner.value == os.getpid() and self._depth.value > 0

    def depth(self) -> int:
        return self._depth.value

    def taken(self) -> int:
        """How many times the lock was taken from free so far."""
        return self._taken.value

    def let_rival_in(self) -> None:
        if self._rival is not None:
            self._rival.let_in()


# --- task 1: Lock ---------------------------------------------------------------------------------------------------


class MeasuredTotal:
    """Stands in for a shared Value: every read and write of .value notes whether the lock is held, and since when."""

    def __init__(self, lock: WatchedLock) -> None:
        self._lock = lock
        self._number = multiprocessing.Value("q", 0, lock=False)
        self._counts = multiprocessing.Array("i", 6, lock=False)  # see COUNTS
        self._guard = multiprocessing.Lock()  # the scenario's own, independent of the graded lock
        self._value_lock = multiprocessing.RLock()  # what get_lock() gives, as a Value's would
        self._read: tuple[bool, int] | None = None  # in this process: the last read, (held, taken)

    COUNTS = ("reads", "writes", "unheld_reads", "unheld_writes", "released_between", "writes_without_read")

    def _count(self, *names: str) -> None:
        with self._guard:
            for name in names:
                self._counts[self.COUNTS.index(name)] += 1

    def get_lock(self) -> Any:
        return self._value_lock

    @property
    def value(self) -> int:
        held = self._lock.held_here()
        self._read = (held, self._lock.taken())
        self._count("reads", *(() if held else ("unheld_reads",)))
        return self._number.value

    @value.setter
    def value(self, number: int) -> None:
        held = self._lock.held_here()
        notes = ["writes"]
        if not held:
            notes.append("unheld_writes")
        elif self._read is None:
            notes.append("writes_without_read")
        elif not self._read[0] or self._read[1] != self._lock.taken():
            notes.append("released_between")
        self._read = None
        self._count(*notes)
        self._number.value = number

    def facts(self) -> dict[str, int]:
        return {"total": self._number.value, **dict(zip(self.COUNTS, self._counts, strict=True))}


def _add_worker(results: Any, start: Any, module_name: str, lock: Any, total: Any, amounts: list[int]) -> None:
    module = importlib.import_module(module_name)
    _start_together(start)
    try:
        for amount in amounts:  # twice in a row in one process
            module.add_to_total(lock, total, amount)
        results.put({"pid": os.getpid()})
    except BaseException as exc:
        results.put(_raised(exc))


def lock_one_at_a_time(module: ModuleType) -> dict[str, Any]:
    lock = WatchedLock(multiprocessing.Lock())
    total = MeasuredTotal(lock)
    results: multiprocessing.queues.Queue[Any] = multiprocessing.Queue()
    start = multiprocessing.Barrier(LOCK_WORKERS)
    # 1, 10, 100, ...: any lost or doubled addition shows in the sum
    amounts = [[10 ** (2 * index), 10 ** (2 * index + 1)] for index in range(LOCK_WORKERS)]
    workers = [
        multiprocessing.Process(target=_add_worker, args=(results, start, module.__name__, lock, total, pair))
        for pair in amounts
    ]
    start_error = _start_all(workers)
    reports: list[dict[str, Any]] = []
    if start_error is None:
        _collect(results, reports, lambda: len(reports) == len(workers), WAIT)
    exit_codes = _finish(workers)
    return {
        **total.facts(),
        "expected": sum(map(sum, amounts)),
        "calls": sum(map(len, amounts)),
        "workers": LOCK_WORKERS,
        "reported": len(reports),
        "errors": _errors(reports),
        "start_error": start_error,
        "exit_codes": exit_codes,
    }


# --- task 2: RLock --------------------------------------------------------------------------------------------------


def _probe_lock(lock: Any, other: Any, go: Any, results: Any) -> None:
    """Child (started before the caller takes the lock): once told, try the held lock and the other one."""
    go.wait(WAIT)
    facts: dict[str, Any] = {}
    try:
        facts["took_held"] = bool(lock.acquire(True, RETAKE_WAIT))
        if facts["took_held"]:
            lock.release()
        facts["took_other"] = bool(other.acquire(True, OTHER_LOCK_WAIT))
        if facts["took_other"]:
            other.release()
    except BaseException as exc:
        facts["raised"] = error_fact(exc)
    results.put(facts)


def account_lock_is_reentrant(module: ModuleType) -> dict[str, Any]:
    """make_account_lock(): taken twice by its holder, kept from another process, a new one per call."""
    lock = module.make_account_lock()
    other = module.make_account_lock()
    facts: dict[str, Any] = {"type": type_name(lock), "same_object": lock is other}
    go = multiprocessing.Event()
    results: multiprocessing.queues.Queue[Any] = multiprocessing.Queue()
    prober = multiprocessing.Process(target=_probe_lock, args=(lock, other, go, results))
    facts["start_error"] = _start_all([prober])  # before the lock is taken: a fork copies it free
    # In this thread: an RLock belongs to the thread that took it, and is given back by the same one.
    facts["first"] = repr(lock.acquire(True, 1.0))
    held = 1 if facts["first"] == "True" else 0
    if held:
        started = time.monotonic()
        facts["again"] = repr(lock.acquire(True, RETAKE_WAIT))
        facts["again_seconds"] = round(time.monotonic() - started, 2)
        held += 1 if facts["again"] == "True" else 0
    if facts["start_error"] is None:
        go.set()
        try:
            facts["probe"] = results.get(timeout=WAIT)
        except queue.Empty:
            facts["probe"] = None
        _finish([prober])
    released = 0
    try:
        for _ in range(held):
            lock.release()
            released += 1
    except Exception as exc:
        facts["release_error"] = error_fact(exc)
    facts["released"] = released
    return facts


class Account:
    """A balance whose deposit() and charge() take account.lock themselves, and note how the caller held it."""

    COUNTS = ("deposits", "charges", "unheld_deposits", "unheld_charges", "gaps", "charge_first", "stuck")

    def __init__(self, lock: WatchedLock, fail: str | None = None) -> None:
        self.lock = lock
        self._fail = fail  # "deposit" or "charge": that call raises
        self._balance = multiprocessing.Value("q", 0, lock=False)
        self._deposited = multiprocessing.Value("q", 0, lock=False)
        self._charged = multiprocessing.Value("q", 0, lock=False)
        self._counts = multiprocessing.Array("i", len(self.COUNTS), lock=False)
        self._guard = multiprocessing.Lock()
        self._deposit: tuple[bool, int] | None = None  # in this process: the deposit whose charge is to come

    def _count(self, *names: str) -> None:
        with self._guard:
            for name in names:
                self._counts[self.COUNTS.index(name)] += 1

    def _change(self, amount: int, into: Any) -> None:
        if not self.lock.acquire(True, ACCOUNT_WAIT):
            self._count("stuck")
            return
        try:
            with self._guard:
                self._balance.value += amount
                into.value += abs(amount)
        finally:
            self.lock.release()

    def deposit(self, amount: int) -> None:
        held = self.lock.held_here()
        self._count("deposits", *(() if held else ("unheld_deposits",)))
        if self._fail == "deposit":
            raise ValueError("the bank refused the deposit")
        self._deposit = (held, self.lock.taken())
        self._change(amount, self._deposited)
        self.lock.pending = True

    def charge(self, fee: int) -> None:
        held = self.lock.held_here()
        notes = ["charges", *(() if held else ("unheld_charges",))]
        if self._deposit is None:
            notes.append("charge_first")
        elif not (self._deposit[0] and held and self._deposit[1] == self.lock.taken()):
            notes.append("gaps")  # the lock was free at some moment since the deposit
        self._count(*notes)
        self._deposit = None
        if self.lock.pending and not held:
            self.lock.let_rival_in()  # the lock is free right now, between the deposit and the fee
        self.lock.pending = False
        if self._fail == "charge":
            raise ValueError("the bank refused the fee")
        self._change(-fee, self._charged)

    def facts(self) -> dict[str, Any]:
        return {
            "balance": self._balance.value,
            "deposited": self._deposited.value,
            "charged": self._charged.value,
            **dict(zip(self.COUNTS, self._counts, strict=True)),
        }


PAYMENTS = [(10, 1), (200, 20)]  # each worker pays twice in a row


def _pay_worker(results: Any, start: Any, module_name: str, account: Any) -> None:
    module = importlib.import_module(module_name)
    _start_together(start)
    try:
        for amount, fee in PAYMENTS:
            module.pay_with_fee(account, amount, fee)
        results.put({"pid": os.getpid()})
    except BaseException as exc:
        results.put(_raised(exc))


def pay_holds_the_lock_throughout(module: ModuleType) -> dict[str, Any]:
    """pay_with_fee in several processes, on an account whose lock is an RLock: held from deposit to charge?"""
    rival = Rival()
    lock = WatchedLock(multiprocessing.RLock(), rival)
    account = Account(lock)
    stop = multiprocessing.Event()
    rival_process = multiprocessing.Process(target=_rival, args=(lock, rival, stop))
    rival_process.start()
    results: multiprocessing.queues.Queue[Any] = multiprocessing.Queue()
    start = multiprocessing.Barrier(PAY_WORKERS)
    workers = [
        multiprocessing.Process(target=_pay_worker, args=(results, start, module.__name__, account))
        for _ in range(PAY_WORKERS)
    ]
    start_error = _start_all(workers)
    reports: list[dict[str, Any]] = []
    if start_error is None:
        _collect(results, reports, lambda: len(reports) == len(workers), WAIT)
    exit_codes = _finish(workers)
    stop.set()
    _finish([rival_process])
    return {
        **account.facts(),
        "rival_got_in": rival.got_in.value,
        "payments": PAY_WORKERS * len(PAYMENTS),
        "expected_deposited": PAY_WORKERS * sum(amount for amount, _ in PAYMENTS),
        "expected_charged": PAY_WORKERS * sum(fee for _, fee in PAYMENTS),
        "workers": PAY_WORKERS,
        "reported": len(reports),
        "errors": _errors(reports),
        "start_error": start_error,
        "exit_codes": exit_codes,
    }


def pay_lets_go_when_a_call_fails(module: ModuleType) -> dict[str, Any]:
    """pay_with_fee where deposit, then charge raises: the error reaches the caller, the lock is free again."""
    runs: list[dict[str, Any]] = []
    for failing in ("deposit", "charge"):
        lock = WatchedLock(multiprocessing.RLock())
        account = Account(lock, fail=failing)
        call = call_with_deadline(module.pay_with_fee, account, 10, 1, deadline=CALL_WAIT)
        runs.append({"failing": failing, "call": _call_facts(call), "depth_after": lock.depth()})
        if call.outcome == HUNG:
            break
    facts: dict[str, Any] = {"runs": runs}
    if any(run["call"]["outcome"] == HUNG or run["depth_after"] for run in runs):
        return facts  # the lock is still held: the test says so, a payment after it could only wait
    # And a payment that goes well, on a lock that a failed payment used before.
    lock = WatchedLock(multiprocessing.RLock())
    account = Account(lock, fail="deposit")
    call_with_deadline(module.pay_with_fee, account, 10, 1, deadline=CALL_WAIT)
    account._fail = None
    before = account.facts()["balance"]
    call = call_with_deadline(module.pay_with_fee, account, 10, 1, deadline=CALL_WAIT)
    facts.update(after=_call_facts(call), after_change=account.facts()["balance"] - before)
    return facts


# --- task 3: Semaphore ----------------------------------------------------------------------------------------------


class WatchedSemaphore:
    """Stands in for the semaphore fetch_with_slot is given: acquire and release go on to it, and are counted here."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.mine = 0  # in this process: slots taken and not yet given back
        # The most slots one process held or asked for at once: counted before a second acquire
        # blocks, so that taking two reads the same whether it deadlocks or happens to get both.
        self.most_wanted = multiprocessing.Value("i", 0)

    def acquire(self, block: bool = True, timeout: float | None = None) -> bool:
        with self.most_wanted.get_lock():
            self.most_wanted.value = max(self.most_wanted.value, self.mine + 1)
        got = self._inner.acquire(block) if timeout is None else self._inner.acquire(block, timeout)
        if got:
            self.mine += 1
        return got

    def release(self) -> None:
        self._inner.release()
        self.mine -= 1

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


class Site:
    """fetch() counts the processes inside; it stays until k were inside together, then LINGER more."""

    def __init__(self, k: int, slots: WatchedSemaphore | None = None, visitors: int = 0) -> None:
        self._k = k
        self._slots = slots
        # What ran when (for the timeline under the check): one span per visit, in the order they came.
        self._spans = new_spans(visitors)
        self._pids = multiprocessing.Array("i", visitors)
        self._visits = multiprocessing.Value("i", 0, lock=False)
        self._origin = time.monotonic()
        self._without_slot = multiprocessing.Value("i", 0, lock=False)
        self._inside = multiprocessing.Value("i", 0, lock=False)
        self._peak = multiprocessing.Value("i", 0, lock=False)
        self._gave_up = multiprocessing.Value("i", 0, lock=False)
        self._fetches = multiprocessing.Value("i", 0, lock=False)
        self._guard = multiprocessing.Lock()

    def fetch(self) -> str:
        with self._guard:
            if self._slots is not None and self._slots.mine <= 0:
                self._without_slot.value += 1
            self._inside.value += 1
            self._peak.value = max(self._peak.value, self._inside.value)
            visit = self._visits.value
            self._visits.value += 1
        if visit < len(self._pids):
            self._pids[visit] = os.getpid()
            span_started(self._spans, visit)
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
        if visit < len(self._pids):
            span_ended(self._spans, visit)
        with self._guard:
            self._inside.value -= 1
            self._fetches.value += 1
        return "page"

    def facts(self) -> dict[str, int]:
        return {
            "peak": self._peak.value,
            "fetches": self._fetches.value,
            "gave_up": self._gave_up.value,
            "without_slot": self._without_slot.value,
            "timeline": timeline_facts(self._spans, self._pids, self._origin)[: self._visits.value],
        }


class FailingSite:
    """fetch() raises, and counts how often it was called."""

    def __init__(self) -> None:
        self.calls = 0

    def fetch(self) -> str:
        self.calls += 1
        raise ConnectionError("the site is down")


def _fetch_worker(results: Any, start: Any, module_name: str, slots: Any, site: Any) -> None:
    module = importlib.import_module(module_name)
    _start_together(start)
    try:
        module.fetch_with_slot(slots, site)
        results.put({"pid": os.getpid()})
    except BaseException as exc:
        results.put(_raised(exc))


def _free_slots(slots: Any, tries: int) -> int:
    """How many times the semaphore can be taken right now (at most tries), all given back after."""
    taken = 0
    while taken < tries and slots.acquire(True, 0.05):
        taken += 1
    for _ in range(taken):
        slots.release()
    return taken


def semaphore_lets_k_in(module: ModuleType, k: int, workers: int) -> dict[str, Any]:
    made = module.make_slots(k)
    slots = WatchedSemaphore(made)
    site = Site(k, slots, visitors=workers)
    results: multiprocessing.queues.Queue[Any] = multiprocessing.Queue()
    start = multiprocessing.Barrier(workers)
    processes = [
        multiprocessing.Process(target=_fetch_worker, args=(results, start, module.__name__, slots, site))
        for _ in range(workers)
    ]
    start_error = _start_all(processes)
    reports: list[dict[str, Any]] = []
    if start_error is None:
        _collect(results, reports, lambda: len(reports) == len(processes), WAIT)
    return {
        **site.facts(),
        "k": k,
        "workers": workers,
        "slots_wanted_by_one": slots.most_wanted.value,
        "type": type_name(made),
        "reported": len(reports),
        "errors": _errors(reports),
        "start_error": start_error,
        "exit_codes": _finish(processes),
    }


def slots_of_every_size(module: ModuleType, sizes: list[int]) -> dict[str, Any]:
    """make_slots(k) for each k: how many times it can be taken before it makes a process wait; a new one per call."""
    free = {str(k): _free_slots(module.make_slots(k), k + 2) for k in sizes}
    first, second = module.make_slots(2), module.make_slots(2)
    taken = 0
    while taken < 2 and first.acquire(True, 0.05):
        taken += 1
    second_free = _free_slots(second, 4)
    for _ in range(taken):
        first.release()
    return {"free": free, "first_taken": taken, "second_free_meanwhile": second_free, "same_object": first is second}


def fetch_error_gives_the_slot_back(module: ModuleType) -> dict[str, Any]:
    """fetch_with_slot with a site whose fetch() raises, twice, then with one that works: the slots all come back."""
    slots = multiprocessing.Semaphore(2)
    failing = FailingSite()
    calls = []
    for _ in range(2):
        call = call_with_deadline(module.fetch_with_slot, slots, failing, deadline=CALL_WAIT)
        calls.append(_call_facts(call))
        if call.outcome == HUNG:
            break
    free_after_errors = _free_slots(slots, 4)
    site = Site(1)
    good = call_with_deadline(module.fetch_with_slot, slots, site, deadline=CALL_WAIT + REACH_WAIT)
    return {
        "calls": calls,
        "fetch_calls": failing.calls,
        "free_after_errors": free_after_errors,
        "good": _call_facts(good),
        "free_after_good": _free_slots(slots, 4),
        "k": 2,
    }


# --- task 4: Event --------------------------------------------------------------------------------------------------


def _go_waiter(results: Any, ready: Any, module_name: str, go: Any, timeout: float) -> None:
    module = importlib.import_module(module_name)
    with ready.get_lock():
        ready.value += 1
    try:
        passed = module.wait_for_go(go, timeout)
        at = time.monotonic()  # system-wide on Linux: comparable with the scenario's clock
        results.put({"pid": os.getpid(), "passed": repr(passed), "was_set": go.is_set(), "at": at})
    except BaseException as exc:
        results.put(_raised(exc))


def event_holds_until_set(module: ModuleType, waiters: int) -> dict[str, Any]:
    go = multiprocessing.Event()
    ready = multiprocessing.Value("i", 0)
    results: multiprocessing.queues.Queue[Any] = multiprocessing.Queue()
    processes = [
        multiprocessing.Process(target=_go_waiter, args=(results, ready, module.__name__, go, LATE_TIMEOUT))
        for _ in range(waiters)
    ]
    for process in processes:
        process.start()
    reports: list[dict[str, Any]] = []
    _collect(results, reports, lambda: ready.value == waiters, WAIT)
    # Watch for a while: a waiter that does not really wait comes back now, while the event is clear.
    _collect(results, reports, lambda: bool(reports), EARLY_WAIT)
    set_at = time.monotonic()
    go.set()
    _collect(results, reports, lambda: len(reports) == waiters, ANSWER_WAIT)
    for report in reports:
        if "at" in report:
            report["early"] = report["at"] < set_at or not report["was_set"]
            report["after_set"] = round(report.pop("at") - set_at, 3)
    return {
        "waiters": waiters,
        "timeout": LATE_TIMEOUT,
        "answer_wait": ANSWER_WAIT,
        "early_wait": EARLY_WAIT,
        "reports": reports,
        "errors": _errors(reports),
        "exit_codes": _finish(processes),
    }


def event_wait_times_out(module: ModuleType) -> dict[str, Any]:
    """wait_for_go on an event that is never set: with a short timeout, then with 0."""
    go = multiprocessing.Event()
    call = call_with_deadline(module.wait_for_go, go, GO_TIMEOUT, deadline=GO_TIMEOUT + PAST_TIMEOUT)
    facts: dict[str, Any] = {"timeout": GO_TIMEOUT, "past": PAST_TIMEOUT, "call": _call_facts(call)}
    if call.outcome == HUNG:
        go.set()  # let it end
        call.wait_longer(CALL_WAIT)
        return facts
    zero = call_with_deadline(module.wait_for_go, go, 0, deadline=CALL_WAIT)
    facts["zero"] = _call_facts(zero)
    return facts


def event_already_set(module: ModuleType) -> dict[str, Any]:
    """wait_for_go on an event that is set already: with a long timeout, then with 0."""
    go = multiprocessing.Event()
    go.set()
    call = call_with_deadline(module.wait_for_go, go, LATE_TIMEOUT, deadline=CALL_WAIT)
    facts: dict[str, Any] = {"timeout": LATE_TIMEOUT, "call": _call_facts(call)}
    if call.outcome != HUNG:
        facts["zero"] = _call_facts(call_with_deadline(module.wait_for_go, go, 0, deadline=CALL_WAIT))
    return facts


# --- task 5: Barrier ------------------------------------------------------------------------------------------------


def _in_caller() -> bool:
    return multiprocessing.parent_process() is None


def _watchdog(arrived: Any, passed: Any, stopped: Any, index: int) -> None:
    """Thread in a run_in_step worker: stop the process if it never gets past the barrier."""
    deadline = time.monotonic() + STUCK_ALONE
    all_arrived = False
    while time.monotonic() < deadline:
        if passed[index]:
            return
        if not all_arrived and all(arrived):
            all_arrived = True
            deadline = min(deadline, time.monotonic() + STUCK_AFTER)
        time.sleep(POLL * 4)
    stopped[index] = 1
    os._exit(STUCK_EXIT)


def arrive(arrived: Any, passed: Any, stopped: Any, pids: Any, bad: Any, count: int, index: int) -> None:
    """first(index): note the arrival; the last one arrives after all others did and someone passed (or late)."""
    if not (isinstance(index, int) and 0 <= index < count):
        bad.value = index if isinstance(index, int) else NO_INDEX + 1
        return
    pids[index] = os.getpid()
    if not _in_caller():
        threading.Thread(target=_watchdog, args=(arrived, passed, stopped, index), daemon=True).start()
    if index == count - 1 and count > 1:
        wait_until(lambda: all(arrived[i] for i in range(count - 1)), STUCK_ALONE, POLL)
        wait_until(lambda: any(passed), LAST_ARRIVAL_WAIT, POLL)
    arrived[index] = 1


def depart(arrived: Any, passed: Any, returned: Any, count: int, hold: bool, index: int) -> None:
    """second(index): note how many had arrived; all but the last stay a while, unless run_in_step returned."""
    if not (isinstance(index, int) and 0 <= index < count):
        return
    passed[index] = 1 + sum(arrived)  # 0 means it never got here
    if hold and index != count - 1 and not _in_caller():
        wait_until(lambda: returned.value == 1, HOLD_SECOND, POLL)


def _one_run(module: ModuleType, count: int, hold: bool) -> dict[str, Any]:
    arrived = multiprocessing.Array("i", count, lock=False)
    passed = multiprocessing.Array("i", count, lock=False)
    pids = multiprocessing.Array("i", count, lock=False)
    stopped = multiprocessing.Array("i", count, lock=False)  # stopped by the watchdog, still at the barrier
    bad = multiprocessing.Value("q", NO_INDEX, lock=False)
    returned = multiprocessing.Value("i", 0, lock=False)
    first = functools.partial(arrive, arrived, passed, stopped, pids, bad, count)
    second = functools.partial(depart, arrived, passed, returned, count, hold)

    def at_return() -> dict[str, Any]:
        seen = [pid for pid in pids if pid]
        still = sum(1 for pid in set(seen) if pid != os.getpid() and is_running(pid))
        returned.value = 1
        return {"running": still, "passed": [value - 1 if value else None for value in passed]}

    call = call_with_deadline(
        module.run_in_step,
        count,
        first,
        second,
        deadline=RUN_DEADLINE,
        after=at_return,
        hopeful=lambda: os.getpid() not in list(pids),  # steps run in this process wait here for ever
    )
    returned.value = 1
    others = [pid for pid in set(pids) if pid and pid != os.getpid()]
    # After a hang, the sandbox stops what is left when the scenario ends: no need to wait long for it.
    wait_until(lambda: not any(is_running(pid) for pid in others), WAIT if call.outcome != HUNG else 2.0)
    return {
        "count": count,
        "call": _call_facts(call),
        "arrived_when_passed": [value - 1 if value else None for value in passed],
        "arrived": list(arrived),
        "stopped": list(stopped),
        "pids": list(pids),
        "bad_index": None if bad.value == NO_INDEX else bad.value,
        "caller_pid": os.getpid(),
        "left_running": sum(1 for pid in others if is_running(pid)),
    }


def barrier_runs(module: ModuleType, counts: list[int], hold: bool) -> list[dict[str, Any]]:
    """run_in_step once per count, in this process; stops after the first run that went wrong."""
    runs = []
    for count in counts:
        run = _one_run(module, count, hold)
        runs.append(run)
        if run["call"]["outcome"] != "returned" or None in run["arrived_when_passed"]:
            break
    return runs


# --- task 6: Condition ----------------------------------------------------------------------------------------------


def _owns(condition: Any) -> bool:
    """Whether this thread holds the scenario's multiprocessing Condition."""
    return bool(condition._lock._semlock._is_mine())


def _sleepers(condition: Any) -> int:
    """How many are waiting on the scenario's multiprocessing Condition right now (as its repr counts them)."""
    return condition._sleeping_count._semlock._get_value() - condition._woken_count._semlock._get_value()


def _add_own(condition: Any, box: Box, count: int) -> None:
    """The scenario's own add_items: change the box and wake everyone, holding the condition."""
    with condition:
        box.put(count)
        condition.notify_all()


class Window:
    """Asked for by a reader that looks at the box without holding the condition: the items come now."""

    def __init__(self) -> None:
        self.asked = multiprocessing.Event()
        self.done = multiprocessing.Event()

    def open(self) -> None:
        if not self.asked.is_set():
            self.asked.set()
            self.done.wait(WAIT)


class Box:
    """Stands in for a shared Value: a number; who reads it, and whether a writer holds the condition, is noted."""

    COUNTS = ("unheld_writes", "unheld_reads", "adder_unheld_reads")

    def __init__(self, condition: Any, slots: int, wanted: int = 0, window: Window | None = None) -> None:
        self._condition = condition
        self._number = multiprocessing.Value("i", 0, lock=False)
        self._readers = multiprocessing.Array("i", slots, lock=False)
        self._counts = multiprocessing.Array("i", len(self.COUNTS), lock=False)
        self._guard = multiprocessing.Lock()
        self._main = os.getpid()
        self._wanted = wanted
        self._window = window

    def _count(self, name: str) -> None:
        with self._guard:
            self._counts[self.COUNTS.index(name)] += 1

    @property
    def value(self) -> int:
        me = os.getpid()
        held = _owns(self._condition)
        with self._guard:
            readers = list(self._readers)
            if me not in readers and 0 in readers:
                self._readers[readers.index(0)] = me
        number = self._number.value
        if not held:
            self._count("adder_unheld_reads" if me == self._main else "unheld_reads")
            if self._window is not None and me != self._main and number < self._wanted:
                self._window.open()  # the items come now, between this look and whatever the reader does next
        return number

    @value.setter
    def value(self, number: int) -> None:
        if not _owns(self._condition):
            self._count("unheld_writes")
        self._number.value = number

    def put(self, count: int) -> None:
        self._number.value += count

    def readers(self, other_than: int) -> int:
        with self._guard:
            return sum(1 for pid in self._readers if pid not in (0, other_than))

    def now(self) -> int:
        return self._number.value

    def facts(self) -> dict[str, int]:
        return {"box": self._number.value, **dict(zip(self.COUNTS, self._counts, strict=True))}


def _items_waiter(
    results: Any, calling: Any, module_name: str, condition: Any, box: Any, wanted: int, timeout: float
) -> None:
    module = importlib.import_module(module_name)
    with calling.get_lock():
        calling.value += 1
    started = time.monotonic()
    try:
        got = module.wait_for_items(condition, box, wanted, timeout)
        at = time.monotonic()
        results.put(
            {"pid": os.getpid(), "returned": repr(got), "items": box.now(), "seconds": round(at - started, 3), "at": at}
        )
    except BaseException as exc:
        results.put(_raised(exc))


def _start_waiters(module: ModuleType, condition: Any, box: Box, waiters: int, wanted: int, timeout: float) -> Any:
    results: multiprocessing.queues.Queue[Any] = multiprocessing.Queue()
    calling = multiprocessing.Value("i", 0)
    arguments = (results, calling, module.__name__, condition, box, wanted, timeout)
    processes = [multiprocessing.Process(target=_items_waiter, args=arguments) for _ in range(waiters)]
    for process in processes:
        process.start()
    return results, calling, processes


def condition_wakes_waiters(module: ModuleType, waiters: int, wanted: int) -> dict[str, Any]:
    condition = multiprocessing.Condition()
    box = Box(condition, waiters + 2)
    results, calling, processes = _start_waiters(module, condition, box, waiters, wanted, WAIT)
    me = os.getpid()
    reports: list[dict[str, Any]] = []
    _collect(results, reports, lambda: calling.value == waiters or bool(reports), WAIT)
    # Add nothing until every waiter sleeps on the condition (or one came back): then add_items's
    # notify reaches each of them, whatever the scheduler does.
    _collect(results, reports, lambda: _sleepers(condition) == waiters or bool(reports), CHECK_WAIT)
    facts: dict[str, Any] = {"waiters": waiters, "wanted": wanted, "checked_before": box.readers(me)}
    facts["asleep_before"] = _sleepers(condition)
    if _errors(reports):
        facts.update(reports=reports, errors=_errors(reports), exit_codes=_finish(processes), **box.facts())
        return facts
    first = call_with_deadline(module.add_items, condition, box, wanted - 1, deadline=CALL_WAIT)
    facts["first_add"] = _call_facts(first)
    if first.outcome == "returned":
        # Not enough yet: every waiter woken must go back to sleep; one that comes back instead passed early.
        _collect(results, reports, lambda: _sleepers(condition) == waiters or bool(reports), WAIT)
    facts["passed_early"] = [report for report in reports if "returned" in report]
    facts["items_after_first"] = box.now()
    second = call_with_deadline(module.add_items, condition, box, 1, deadline=CALL_WAIT)
    facts["second_add"] = _call_facts(second)
    _collect(results, reports, lambda: len(reports) == waiters, ANSWER_WAIT)
    facts["woken"] = len(reports)
    facts.update(box.facts())
    if len(reports) < waiters and condition.acquire(True, 1.0):
        try:
            box.put(wanted)
            condition.notify_all()  # let the sleepers go, so they end
        finally:
            condition.release()
    _collect(results, reports, lambda: len(reports) == waiters, 2.0)
    facts.update(reports=reports, errors=_errors(reports), exit_codes=_finish(processes))
    return facts


def condition_gives_up_in_time(module: ModuleType) -> dict[str, Any]:
    """One waiter for items that never come, with a timeout of ITEMS_TIMEOUT, woken every WAKE_EVERY seconds."""
    condition = multiprocessing.Condition()
    box = Box(condition, 3)
    results, calling, processes = _start_waiters(module, condition, box, 1, 5, ITEMS_TIMEOUT)
    reports: list[dict[str, Any]] = []
    _collect(results, reports, lambda: calling.value == 1 or bool(reports), WAIT)
    _collect(results, reports, lambda: _sleepers(condition) == 1 or bool(reports), CHECK_WAIT)
    wakeups = 0
    deadline = time.monotonic() + WAKE_FOR
    while not reports and time.monotonic() < deadline:
        _collect(results, reports, lambda: bool(reports), WAKE_EVERY)
        if not reports and condition.acquire(True, 1.0):
            try:
                box.put(1 if box.now() < 3 else 0)  # a few items come, never enough
                condition.notify_all()
                wakeups += 1
            finally:
                condition.release()
    _collect(results, reports, lambda: bool(reports), 0.3)
    facts: dict[str, Any] = {
        "timeout": ITEMS_TIMEOUT,
        "wake_every": WAKE_EVERY,
        "wake_for": WAKE_FOR,
        "wakeups": wakeups,
        "still_waiting": not reports,
    }
    if not reports:
        with condition:
            box.put(5)
            condition.notify_all()
        _collect(results, reports, lambda: bool(reports), 2.0)
    facts.update(reports=reports, errors=_errors(reports), exit_codes=_finish(processes))
    return facts


def condition_checks_first(module: ModuleType) -> dict[str, Any]:
    """wait_for_items in this process: items there already (also 0 wanted of 0), then items that never come."""
    condition = multiprocessing.Condition()
    box = Box(condition, 2)
    _add_own(condition, box, 2)
    ready = call_with_deadline(module.wait_for_items, condition, box, 2, LATE_TIMEOUT, deadline=CALL_WAIT)
    facts: dict[str, Any] = {"late_timeout": LATE_TIMEOUT, "ready": _call_facts(ready)}
    if ready.outcome == HUNG:
        _add_own(condition, box, 0)  # wake it, so it can end
        return facts
    empty = Box(condition, 2)
    zero = call_with_deadline(module.wait_for_items, condition, empty, 0, LATE_TIMEOUT, deadline=CALL_WAIT)
    facts["zero"] = _call_facts(zero)
    if zero.outcome == HUNG:
        _add_own(condition, empty, 0)
        return facts
    missing = call_with_deadline(module.wait_for_items, condition, box, 5, 0.3, deadline=0.3 + CALL_WAIT)
    facts["missing"] = _call_facts(missing)
    return facts


def condition_wakeup_not_lost(module: ModuleType) -> dict[str, Any]:
    """One waiter; the items come right after its first look at the box, and the condition is notified."""
    condition = multiprocessing.Condition()
    window = Window()
    box = Box(condition, 3, wanted=2, window=window)
    results, calling, processes = _start_waiters(module, condition, box, 1, 2, LATE_TIMEOUT)
    me = os.getpid()
    reports: list[dict[str, Any]] = []
    _collect(results, reports, lambda: calling.value == 1 or bool(reports), WAIT)
    _collect(results, reports, lambda: box.readers(me) > 0 or bool(reports), CHECK_WAIT)
    # A look without the condition asks for the items at once; one with it goes on to sleep on it.
    wait_until(lambda: window.asked.is_set() or _sleepers(condition) == 1 or not results.empty(), CHECK_WAIT)
    facts: dict[str, Any] = {"looked_without_lock": window.asked.is_set(), "timeout": LATE_TIMEOUT}
    _add_own(condition, box, 2)
    added_at = time.monotonic()
    window.done.set()
    _collect(results, reports, lambda: bool(reports), ANSWER_WAIT)
    facts["answer_wait"] = ANSWER_WAIT
    facts["still_waiting"] = not reports
    for report in reports:
        if "at" in report:
            report["after_items"] = round(report.pop("at") - added_at, 3)
    if not reports:
        _add_own(condition, box, 0)  # wake it, so it ends
        _collect(results, reports, lambda: bool(reports), 2.0)
    facts.update(reports=reports, errors=_errors(reports), exit_codes=_finish(processes), **box.facts())
    return facts
