"""Scenarios for exercise 7 (manager), run inside the sandbox.

Each scenario takes the graded module first, drives it, and returns plain
facts (JSON data) for the hidden test to judge. What child processes run is a
module-level function here (or a functools.partial of one), so that every
start method can find it by name. Every blocking call has a timeout.

Evidence used, and why:
- Where the work ran: the workers handed to the graded code report their
  pid and their parent on a queue of the scenario's own, apart from what
  they write through the proxies.
- The manager's process: every process started during the call is recorded
  (Process.start is wrapped in this process only); a manager's server process
  is named after its class ("SyncManager-1"). After the call, /proc says
  whether each one still runs; active_children() also shows a manager that
  was started before the call, at import.
- Plain copies: what the graded function returned is read after its manager
  should be gone; a proxy whose manager has shut down cannot be read.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import multiprocessing
import multiprocessing.managers
import multiprocessing.process
import os
import queue
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from grader.sandboxed.scenarios.facts import drain, identity

WAIT = 20.0  # seconds a blocking call may wait when nothing is wrong: long, a loaded machine is slow
FIRST_REPORT_WAIT = 8.0  # a report that has not come by then will not come


# ---------------------------------------------------------------- helpers


def _plain(value: Any, depth: int = 0) -> Any:
    """value as JSON data: containers converted, anything else (a proxy too) shown by repr."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else repr(value)
    if depth < 4 and type(value) in (list, tuple):
        return [_plain(item, depth + 1) for item in value]
    if depth < 4 and type(value) is dict:
        return {str(key): _plain(item, depth + 1) for key, item in value.items()}
    return repr(value)


def _read(value: Any) -> dict[str, Any]:
    """What one returned object is and holds; a proxy is read through its manager, if that still runs."""
    facts: dict[str, Any] = {"type": type(value).__name__}
    try:
        if isinstance(value, multiprocessing.managers.BaseProxy):
            value = value._getvalue()
        facts["value"] = _plain(value)
    except Exception as exc:  # a proxy whose manager is gone: the fact to report
        facts["unreadable"] = f"{type(exc).__name__}: {exc}"
    return facts


def _is_running(pid: int | None) -> bool:
    """Whether pid is a live process (a zombie has finished: it is not)."""
    try:
        with open(f"/proc/{pid}/stat") as stream:
            stat = stream.read()
    except (OSError, TypeError):
        return False
    fields = stat.rpartition(")")[2].split()
    return bool(fields) and fields[0] not in ("Z", "X")


@contextlib.contextmanager
def _recording_starts() -> Iterator[list[multiprocessing.process.BaseProcess]]:
    """Record every process started in this process while the block runs."""
    started: list[multiprocessing.process.BaseProcess] = []
    original = multiprocessing.process.BaseProcess.start

    def start(self: multiprocessing.process.BaseProcess) -> None:
        original(self)
        started.append(self)

    multiprocessing.process.BaseProcess.start = start
    try:
        yield started
    finally:
        multiprocessing.process.BaseProcess.start = original


def _is_manager(process: multiprocessing.process.BaseProcess) -> bool:
    return "Manager" in (process.name or "")


def _aftermath(started: list[multiprocessing.process.BaseProcess]) -> dict[str, Any]:
    """The managers started during the call, and which processes still run now that it has returned."""
    still = [p for p in started if _is_running(p.pid)]
    still += [p for p in multiprocessing.active_children() if p not in still]
    return {
        "managers_started": [p.pid for p in started if _is_manager(p)],
        "managers_running": [f"{p.name} (pid {p.pid})" for p in still if _is_manager(p)],
        "others_running": [f"{p.name} (pid {p.pid})" for p in still if not _is_manager(p)],
    }


# ---------------------------------------------------------------- task 1


def contribute(reports: Any, key: Any, results: Any, log: Any) -> None:
    """Worker for collect: results[key] = this pid, log.append(key); report where it ran."""
    facts = identity()
    facts.update(key=key, given=[type(results).__name__, type(log).__name__])
    try:
        results[key] = os.getpid()
        log.append(key)
    except Exception as exc:  # not a dict and a list after all: the fact to report
        facts["error"] = f"{type(exc).__name__}: {exc}"
    reports.put(facts)


def collect_in_children(module: ModuleType, keys: list[str]) -> dict[str, Any]:
    reports = multiprocessing.Queue()
    with _recording_starts() as started:
        returned = module.collect(functools.partial(contribute, reports), keys)
    facts = _aftermath(started)  # before anything here touches a proxy
    facts.update(
        caller_pid=os.getpid(), returned_type=type(returned).__name__, reports=drain(reports, FIRST_REPORT_WAIT)
    )
    if isinstance(returned, (tuple, list)) and len(returned) == 2:
        facts["results"], facts["log"] = _read(returned[0]), _read(returned[1])
    else:
        facts["returned"] = _read(returned)
    return facts


# ---------------------------------------------------------------- task 2


def answer_question(reports: Any, namespace: Any) -> None:
    """Worker for ask_in_child: read namespace.question, set namespace.answer; report where it ran."""
    facts = identity()
    facts["given"] = type(namespace).__name__
    try:
        question = namespace.question
        facts["question"] = _plain(question)
        namespace.answer = {"question": question, "answered_by": os.getpid()}
    except Exception as exc:  # no question on it: the fact to report
        facts["error"] = f"{type(exc).__name__}: {exc}"
    reports.put(facts)


def ask(module: ModuleType, question: str) -> dict[str, Any]:
    reports = multiprocessing.Queue()
    with _recording_starts() as started:
        returned = module.ask_in_child(functools.partial(answer_question, reports), question)
    facts = _aftermath(started)
    facts.update(caller_pid=os.getpid(), answer=_read(returned), reports=drain(reports, FIRST_REPORT_WAIT))
    return facts


# ---------------------------------------------------------------- task 3


def append_here(module: ModuleType, steps: list[list[Any]], start: dict[str, list[Any]]) -> dict[str, Any]:
    """append_to(shared, key, value) for each step, in this process, on a managed dict that starts as start."""
    with multiprocessing.Manager() as manager:
        shared = manager.dict({key: list(items) for key, items in start.items()})
        for key, value in steps:
            module.append_to(shared, key, value)
        return {"shared": _plain(shared.copy())}


def append_values(module_name: str, reports: Any, shared: Any, key: str, values: list[Any]) -> None:
    """Worker process: the graded append_to(shared, key, value) for each value, in order."""
    facts = identity()
    try:
        append_to = importlib.import_module(module_name).append_to
        for value in values:
            append_to(shared, key, value)
    except Exception as exc:  # the error is the fact to report
        facts["error"] = f"{type(exc).__name__}: {exc}"
    reports.put(facts)


def append_in_children(module: ModuleType, values: dict[str, list[Any]], start: dict[str, list[Any]]) -> dict[str, Any]:
    """One process per key appends that key's values through the graded append_to, all at once."""
    module.append_to({}, "probe", 0)  # a TODO still there shows here, with its own name
    reports = multiprocessing.Queue()
    with multiprocessing.Manager() as manager:
        shared = manager.dict({key: list(items) for key, items in start.items()})
        workers = [
            multiprocessing.Process(target=append_values, args=(module.__name__, reports, shared, key, items))
            for key, items in values.items()
        ]
        for worker in workers:
            worker.start()
        found = []
        for _ in workers:
            try:
                found.append(reports.get(timeout=WAIT))
            except queue.Empty:
                break
        for worker in workers:
            worker.join(WAIT)
        final = _plain(shared.copy())
    return {"caller_pid": os.getpid(), "shared": final, "reports": found}
