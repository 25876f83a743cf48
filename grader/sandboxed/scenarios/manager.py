"""Scenarios for exercise 7 (manager), run inside the sandbox.

Each scenario takes the graded module first, drives it, and returns plain
facts (JSON data) for the hidden test to judge. What child processes run is a
module-level function here, bound with functools.partial, so that every start
method can find it by name. Every blocking call has a timeout, and every call
of a graded function goes through the kit's call_with_deadline, in this very
process (where no exit handler joins children for the caller).

Evidence used, and why:
- Where the work ran: the workers handed to the graded code report their
  pid, their parent, what they were given and the address of the manager
  behind each proxy, on a queue of the scenario's own.
- Managers are recognised by what they are, never by a process's name: the
  kit's ManagerRecorder records every BaseManager started during the call,
  whatever its class (a BaseManager subclass names its server after itself);
  a manager started before (at import) is found among the live objects. The
  test then knows, for the manager the workers used, whether its server
  still runs once the call has returned, and whether it was ever shut down.
- Plain copies: what the graded function returned is read after its manager
  should be gone; a proxy whose manager has shut down cannot be read.

Windows opened on purpose (Gate, ProcessRecorder and hold_and_release are
the generic ones of the shared_values scenarios):
- "all at the same time": collect's workers meet at a Gate and are let go
  only once all of them are there (or once the caller joins one before it
  started them all).
- "waits for them all": they are let go one at a time, the last started
  first, each once the one before has ended, after the call has had to wait
  HOLD seconds: a caller that joins none, or only the last, returns while
  others are held, every time.
- "before the child starts": Process.start() returns only once the child has
  read namespace.question and namespace.answer (kit.hold_after_start), so
  what is set after start() is late every time. The child then waits twice:
  before it answers, and after it answered; a caller that returns in between
  did not wait for the child.
- "several child processes at once, each with its own key": append_to gets a
  ContestedDict, a stand-in for the managed dict: every process reads before
  any writes, then the first writes come one at a time in a fixed order. A
  process that writes back only its own key loses nothing; one that writes
  back a copy of the whole dict puts back the others' old lists, every time.
"""

from __future__ import annotations

import functools
import gc
import importlib
import multiprocessing
import multiprocessing.managers
import os
import threading
import time
from types import ModuleType
from typing import Any

from grader.sandboxed.scenarios.kit import (
    ManagerRecorder,
    call_with_deadline,
    error_fact,
    hold_after_start,
    identity,
    is_running,
    plain,
    receive,
    type_name,
    wait_until,
)
from grader.sandboxed.scenarios.shared_values import (
    HOLD,
    WAIT,
    Gate,
    ProcessRecorder,
    collected_reports,
    hold_and_release,
)

START_WAIT = 8.0  # seconds the children of append_in_children wait for each other at the start
RENDEZVOUS_WAIT = 3.0  # seconds a first write waits for the others to read, or for its turn
SHUTDOWN_GRACE = 3.0  # seconds a manager that was shut down may take to end its server process
MISSING = "<missing>"  # what a worker saw of an attribute the namespace did not have


# ---------------------------------------------------------------- helpers


def _address(proxy: Any) -> Any:
    """The address of the manager behind a proxy, as data; None for anything that is not a proxy."""
    token = getattr(proxy, "_token", None) if isinstance(proxy, multiprocessing.managers.BaseProxy) else None
    return plain(getattr(token, "address", None))


def _read(value: Any) -> dict[str, Any]:
    """What one returned object is and holds; a proxy is read through its manager, if that still runs."""
    facts: dict[str, Any] = {"type": type_name(value)}
    facts["proxy"] = isinstance(value, multiprocessing.managers.BaseProxy)
    try:
        facts["value"] = plain(value._getvalue() if facts["proxy"] else value)
    except Exception as exc:  # a proxy whose manager is gone: the fact to report
        facts["unreadable"] = error_fact(exc)
    return facts


def _managers(recorder: ManagerRecorder, addresses: list[Any]) -> list[dict[str, Any]]:
    """Every manager this process holds, started during the call or before, and whether its server still runs.

    A manager that was shut down gets SHUTDOWN_GRACE seconds for its server
    process to end; one that never was is reported as it is.
    """
    known = list(recorder.managers)
    for thing in gc.get_objects():
        if isinstance(thing, multiprocessing.managers.BaseManager) and not any(thing is m for m in known):
            known.append(thing)
    found = []
    for manager in known:
        process = getattr(manager, "_process", None)
        try:
            pid = process.pid if process is not None else None
        except ValueError:  # a closed Process
            pid = None
        state = getattr(getattr(manager, "_state", None), "value", None)
        shut_down = state == multiprocessing.managers.State.SHUTDOWN  # type: ignore[attr-defined]  # not in typeshed
        if shut_down and pid is not None:

            def ended(pid: int = pid) -> bool:
                return not is_running(pid)

            wait_until(ended, SHUTDOWN_GRACE)
        found.append(
            {
                "class": type_name(manager),
                "started_in_call": any(manager is m for m in recorder.managers),
                "used": plain(getattr(manager, "address", None)) in addresses,
                "shut_down": shut_down,
                "running": pid is not None and is_running(pid),
            }
        )
    return found


# ---------------------------------------------------------------- task 1


def contribute(gate: Gate, reports: Any, key: Any, results: Any, log: Any) -> None:
    """Worker for collect: wait at the gate, then results[key] = this pid and log.append(key); report."""
    facts = identity()
    facts.update(
        key=plain(key),
        given=[type_name(results), type_name(log)],
        addresses=[_address(results), _address(log)],
    )
    facts["let_go"] = gate.pass_through()
    try:
        results[key] = os.getpid()
        log.append(key)
    except Exception as exc:  # not a dict and a list after all, or their manager is gone: the fact to report
        facts["error"] = error_fact(exc)
    reports.put(facts)
    gate.finish()


def _keys(keys: list[Any], kind: str) -> Any:
    if kind == "generator":
        return (key for key in keys)
    return list(keys)


def _collect_call(module: ModuleType, keys: list[Any], kind: str, hold: float, order: str | None) -> dict[str, Any]:
    gate = Gate()
    reports: multiprocessing.queues.Queue[Any] = multiprocessing.Queue()
    worker = functools.partial(contribute, gate, reports)
    with ManagerRecorder() as managers, ProcessRecorder() as recorder:
        call = call_with_deadline(
            module.collect, worker, _keys(keys, kind), deadline=0.05, after=lambda: recorder.at_return(gate)
        )
        call, window = hold_and_release(call, gate, recorder, len(keys), hold=hold, order=order)
    found = collected_reports(reports, recorder)
    facts: dict[str, Any] = {
        "keys": plain(keys),
        "kind": kind,
        "call": call.facts(),
        "window": window,
        "started": len(recorder.workers),
        "reports": found,
    }
    addresses = [address for report in found for address in report["addresses"] if address is not None]
    facts["managers"] = _managers(managers, addresses)
    returned = call.value
    facts["returned_type"] = type_name(returned)
    if isinstance(returned, (tuple, list)) and len(returned) == 2:
        facts["results"], facts["log"] = _read(returned[0]), _read(returned[1])
    return facts


def collect_in_children(
    module: ModuleType, runs: list[list[Any]], hold: float = HOLD, order: str | None = "reverse"
) -> dict[str, Any]:
    """collect(worker, keys) for each [keys, kind] in runs, one call after another in this process.

    kind "list" hands the keys over as a list, "generator" as a generator.
    """
    calls = [_collect_call(module, keys, kind, hold, order) for keys, kind in runs]
    return {"caller_pid": os.getpid(), "calls": calls}


# ---------------------------------------------------------------- task 2


def answer_question(first: Gate, second: Gate, reports: Any, namespace: Any) -> None:
    """Worker for ask_in_child: read question and answer, wait, answer, wait again; report."""
    facts = identity()
    facts.update(given=type_name(namespace), address=_address(namespace))
    seen: dict[str, Any] = {}
    for name in ("question", "answer"):
        try:
            seen[name] = plain(getattr(namespace, name))
        except AttributeError:
            seen[name] = MISSING
        except Exception as exc:  # the manager is gone, or not a namespace at all
            seen[name] = MISSING
            facts["error"] = error_fact(exc)
    facts["seen"] = seen
    first.pass_through()
    question = seen["question"] if seen["question"] != MISSING else None
    answer = {"question": question, "answered_by": os.getpid()}
    try:
        namespace.answer = answer
        facts["answered"] = answer
    except Exception as exc:  # the manager is gone: the fact to report
        facts["error"] = error_fact(exc)
    second.pass_through()
    reports.put(facts)
    second.finish()


def _ask_call(module: ModuleType, question: Any, hold: float) -> dict[str, Any]:
    first, second = Gate(), Gate()
    reports: multiprocessing.queues.Queue[Any] = multiprocessing.Queue()
    worker = functools.partial(answer_question, first, second, reports)

    def at_return() -> dict[str, Any]:
        facts = recorder.at_return(second)
        facts.update(before_answer=len(first.held()), after_answer=len(second.held()))
        facts["held"] = facts["before_answer"] + facts["after_answer"]
        return facts

    with ManagerRecorder() as managers, ProcessRecorder() as recorder:
        with hold_after_start(until=lambda: recorder.settled(first)):
            call = call_with_deadline(module.ask_in_child, worker, question, deadline=0.05, after=at_return)
            call, before = hold_and_release(call, first, recorder, 1, hold=hold, final_wait=0.0)
        call, after = hold_and_release(call, second, recorder, 1, hold=hold)
    found = collected_reports(reports, recorder)
    addresses = [report["address"] for report in found if report["address"] is not None]
    return {
        "question": plain(question),
        "call": call.facts(),
        "answer": _read(call.value),
        "windows": [before, after],
        "started": len(recorder.workers),
        "reports": found,
        "managers": _managers(managers, addresses),
    }


def ask(module: ModuleType, questions: list[Any], hold: float = HOLD) -> dict[str, Any]:
    """ask_in_child(worker, question) for each question, one call after another in this process."""
    calls = [_ask_call(module, question, hold) for question in questions]
    return {"caller_pid": os.getpid(), "calls": calls}


# ---------------------------------------------------------------- task 3


def append_here(module: ModuleType, steps: list[list[Any]], start: dict[str, list[Any]]) -> dict[str, Any]:
    """append_to(shared, key, value) for each step, in this process, on a managed dict that starts as start."""
    with multiprocessing.Manager() as manager:
        shared = manager.dict({key: list(items) for key, items in start.items()})
        after: list[Any] = []
        for key, value in steps:
            call = call_with_deadline(module.append_to, shared, key, value)
            if call.outcome != "returned":
                return {"call": call.facts(), "step": [key, value], "after": after}
            after.append(plain(shared.copy()))
        return {"call": None, "after": after}


class ContestedDict:
    """A stand-in for a managed dict that makes the first writes of several processes collide on purpose.

    Every operation goes to a real managed dict. In each process, the first
    write waits until every process has read the dict at least once, and
    until it is this process's turn (its number, set by the worker before
    append_to runs); after it, the process waits until every process has made
    its first write. So all first reads come before all first writes, and the
    first writes come one at a time, in order. Writing back one's own key
    loses nothing; writing back a copy of the whole dict (or of other keys)
    puts back what the others had before, after they wrote: their change is
    lost every time. RENDEZVOUS_WAIT bounds every wait (a process that never
    reads or never writes does not hold the others for longer).
    """

    def __init__(self, proxy: Any, parties: int) -> None:
        self._proxy = proxy
        self._parties = parties
        self._books = multiprocessing.Lock()
        self._reads = multiprocessing.RawValue("i", 0)  # processes that have read
        self._writes = multiprocessing.RawValue("i", 0)  # first writes made, in turn order
        self._opened = multiprocessing.RawValue("i", 0)  # 1 once a wait gave up: nobody waits any more
        self.turn: int | None = None
        self._local_state()

    def _local_state(self) -> None:
        self._has_read = False
        self._has_written = False

    def __getstate__(self) -> dict[str, Any]:
        return {key: value for key, value in vars(self).items() if key in CONTESTED_FIELDS}

    def __setstate__(self, state: dict[str, Any]) -> None:
        vars(self).update(state)
        self.turn = None
        self._local_state()

    def _wait(self, ready: Any) -> None:
        deadline = time.monotonic() + RENDEZVOUS_WAIT
        while not self._opened.value:
            with self._books:
                if ready():
                    return
                if time.monotonic() > deadline:
                    self._opened.value = 1
                    return
            time.sleep(0.001)

    def _count_read(self) -> None:
        if not self._has_read and self.turn is not None:
            self._has_read = True
            with self._books:
                self._reads.value += 1

    def _reading(self, operation: str, *args: Any) -> Any:
        """A read: done first, then counted, so that no first write comes before it has happened."""
        result = getattr(self._proxy, operation)(*args)
        self._count_read()
        return result

    def _write(self, operation: str, *args: Any) -> Any:
        first = not self._has_written and self.turn is not None
        if first:
            self._wait(lambda: self._reads.value >= self._parties and self._writes.value == self.turn)
        try:
            return getattr(self._proxy, operation)(*args)
        finally:
            if first:
                self._has_written = True
                with self._books:
                    if self._writes.value == self.turn:
                        self._writes.value += 1
                self._wait(lambda: self._writes.value >= self._parties)

    # Reads.
    def __getitem__(self, key: Any) -> Any:
        return self._reading("__getitem__", key)

    def get(self, *args: Any) -> Any:
        return self._reading("get", *args)

    def __contains__(self, key: Any) -> bool:
        return self._reading("__contains__", key)

    def keys(self) -> Any:
        return self._reading("keys")

    def values(self) -> Any:
        return self._reading("values")

    def items(self) -> Any:
        return self._reading("items")

    def copy(self) -> Any:
        return self._reading("copy")

    def _getvalue(self) -> Any:
        return self._reading("_getvalue")

    def __len__(self) -> int:
        return self._reading("__len__")

    def __iter__(self) -> Any:
        return iter(self._reading("keys"))

    # Writes; the ones that read too count as a read first (they read and write in one step).
    def __setitem__(self, key: Any, value: Any) -> None:
        self._write("__setitem__", key, value)

    def __delitem__(self, key: Any) -> None:
        self._write("__delitem__", key)

    def update(self, *args: Any, **kwargs: Any) -> None:
        self._write("update", dict(*args, **kwargs))

    def clear(self) -> None:
        self._write("clear")

    def pop(self, *args: Any) -> Any:
        self._count_read()
        return self._write("pop", *args)

    def popitem(self) -> Any:
        self._count_read()
        return self._write("popitem")

    def setdefault(self, *args: Any) -> Any:
        self._count_read()
        return self._write("setdefault", *args)


CONTESTED_FIELDS = ("_proxy", "_parties", "_books", "_reads", "_writes", "_opened")


def append_values(
    module_name: str, reports: Any, shared: ContestedDict, key: str, values: list[Any], turn: int, start: Any
) -> None:
    """Worker process: wait for the others, then the graded append_to(shared, key, value) for each value, in order."""
    facts = identity()
    facts["key"] = key
    shared.turn = turn
    try:
        start.wait()
    except threading.BrokenBarrierError:
        facts["together"] = False
    try:
        append_to = importlib.import_module(module_name).append_to
        for value in values:
            append_to(shared, key, value)
    except Exception as exc:  # the error is the fact to report
        facts["error"] = {**error_fact(exc), "function": "append_to"}
    reports.put(facts)


def append_in_children(module: ModuleType, values: dict[str, list[Any]], start: dict[str, list[Any]]) -> dict[str, Any]:
    """One process per key appends that key's values through the graded append_to, all at once.

    The keys take their first turns in the order of values: put a key that
    start already holds first, so that a process writing back a copy of the
    whole dict puts back its old list.
    """
    reports: multiprocessing.queues.Queue[Any] = multiprocessing.Queue()
    with multiprocessing.Manager() as manager:
        proxy = manager.dict({key: list(items) for key, items in start.items()})
        shared = ContestedDict(proxy, len(values))
        barrier = multiprocessing.Barrier(len(values), timeout=START_WAIT)
        workers = [
            multiprocessing.Process(
                target=append_values, args=(module.__name__, reports, shared, key, items, turn, barrier)
            )
            for turn, (key, items) in enumerate(values.items())
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
        final = plain(proxy.copy())
    return {"caller_pid": os.getpid(), "shared": final, "reports": found}
