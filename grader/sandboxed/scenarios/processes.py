"""Scenarios for exercise 1 (processes), run inside the sandbox.

Each scenario takes the graded module first, drives it, and returns plain
facts (JSON data) for the hidden test to judge. Helpers that child processes
run are module-level functions, so that every start method can find them.
Every blocking call has a timeout.

The targets that run_all is given record their pid first. Called directly in
the caller's process (a mistake), they return at once instead of waiting at a
barrier or ending the process, so the test can say where they ran.

Windows opened on purpose, so that a mistake fails every time:
- "returns at once": the target of start_worker waits for an event that the
  scenario sets only after start_worker has returned, so a start_worker that
  joins first cannot return at all (and is reported as such).
- "in the same order as arg_tuples": the children of run_all end in the
  reverse of their order, so exit codes collected as processes end come back
  reversed every time.
"""

from __future__ import annotations

import functools
import importlib
import multiprocessing
import os
import queue
import sys
import time
import warnings
from collections.abc import Iterable
from types import ModuleType
from typing import Any, cast

from grader.sandboxed.scenarios.kit import (
    HUNG,
    QUICK_WITHIN,
    START_WITHIN,
    Called,
    StuckCall,
    busy_between,
    call_quick,
    call_starting_processes,
    call_with_deadline,
    identity,
    kill_and_reap,
    new_spans,
    plain,
    process_cpu_seconds,
    reap,
    receive,
    run_starting_processes,
    span_ended,
    span_started,
    start_entered,
    timeline_facts,
)

WAIT = 20.0  # seconds any blocking call here may wait: long, because a loaded machine is slow
BARRIER_WAIT = 8.0
MISSED_BARRIER_EXIT = 7
EXIT_AFTER = 0.5  # seconds a child of run_all works before it exits
STAGGER = 0.4  # seconds between the ends of run_all's children, last argument first
HOLD_WAIT = 3.0  # seconds a start_worker that waits for its child is given before it counts as waiting


def _in_caller() -> bool:
    """Whether this runs in the scenario's own process, where no target belongs."""
    return multiprocessing.parent_process() is None


def report_identity(results: Any, *args: Any, **kwargs: Any) -> None:
    """Child target (bound to its queue with functools.partial): say where it runs and what it was given."""
    info = identity()
    info.update(name=multiprocessing.current_process().name, args=plain(list(args)), kwargs=plain(kwargs))
    info.update(first=info["args"][0] if args else None, tag=kwargs.get("tag"))
    results.put(info)


def start_worker_identity(module: ModuleType, with_options: bool = True) -> dict[str, Any]:
    results: multiprocessing.queues.Queue[Any] = multiprocessing.Queue()
    target = functools.partial(report_identity, results)
    if with_options:
        returned = call_starting_processes(
            "start_worker", module.start_worker, target, args=("from-args",), kwargs={"tag": "from-kwargs"},
            name="kata-worker",
        )  # fmt: skip
    else:  # kwargs and name left to their defaults
        returned = call_starting_processes("start_worker", module.start_worker, target, ("from-args",))
    is_process = isinstance(returned, multiprocessing.process.BaseProcess)
    facts: dict[str, Any] = {
        "caller_pid": os.getpid(),
        "returned_type": type(returned).__name__,
        "is_process": is_process,
        "started": is_process and returned.pid is not None,
    }
    alive = returned.is_alive if facts["started"] else None
    first = receive(results, WAIT if facts["started"] else 0.5, alive=alive)
    facts["reports"] = [] if first is None else [first]
    while True:  # a target called twice (once directly, once in a process) reports twice
        try:
            facts["reports"].append(results.get(timeout=0.2))
        except queue.Empty:
            break
    if facts["started"]:
        returned.join(WAIT)
        facts["exitcode"] = returned.exitcode
    return facts


def wait_for_release(release: Any, results: Any) -> None:
    """Child target: report, then wait until the caller has got the process back from start_worker."""
    results.put(identity())
    release.wait(WAIT)


def start_worker_returns_at_once(module: ModuleType) -> dict[str, Any]:
    """start_worker with a target that keeps running until the scenario has the process back."""
    release = multiprocessing.Event()
    results: multiprocessing.queues.Queue[Any] = multiprocessing.Queue()
    with start_entered() as started:
        call = call_with_deadline(module.start_worker, wait_for_release, (release, results), deadline=HOLD_WAIT)
        facts: dict[str, Any] = {"outcome": call.outcome, "call": call.facts()}
        if call.outcome == HUNG:
            # Waiting for its process, or stuck for another reason? Let the process end and see.
            release.set()
            # One that has not even started a process yet only waited on the target it called itself (then it
            # returns now) or is stuck before start() (then it never will): it gets seconds, not the budget.
            call = call.wait_longer(WAIT if started() else START_WITHIN)
            if call.outcome == HUNG and not started():
                raise StuckCall(call, "start_worker")
            facts["after_release"] = call.facts()
    returned = call.value
    is_process = isinstance(returned, multiprocessing.process.BaseProcess)
    facts["is_process"] = is_process
    if is_process:
        facts["alive_at_return"] = returned.is_alive()
    # A target called in this process has reported by now; one in a child may take a moment.
    facts["report"] = receive(results, WAIT if is_process else 0.5, alive=returned.is_alive if is_process else None)
    release.set()  # from here on the child may end
    if call.outcome != HUNG and is_process:
        returned.join(WAIT)
        facts["exitcode"] = returned.exitcode
    facts["caller_pid"] = os.getpid()
    return facts


def report_plainly(results: Any) -> None:
    """Child target with no arguments at all: say where it runs and under which name."""
    info = identity()
    info["name"] = multiprocessing.current_process().name
    results.put(info)


def start_worker_defaults(module: ModuleType) -> dict[str, Any]:
    """start_worker(target, args) with no kwargs and no name: Python names the process."""
    results: multiprocessing.queues.Queue[Any] = multiprocessing.Queue()
    returned = call_starting_processes("start_worker", module.start_worker, report_plainly, (results,))
    is_process = isinstance(returned, multiprocessing.process.BaseProcess)
    facts: dict[str, Any] = {"caller_pid": os.getpid(), "is_process": is_process}
    facts["report"] = receive(results, WAIT if is_process else 0.5, alive=returned.is_alive if is_process else None)
    if is_process:
        returned.join(WAIT)
        facts["exitcode"] = returned.exitcode
        # What Python calls a process it was given no name for: its class's name and its place in the family.
        facts["default_name"] = f"{type(returned).__name__}-{':'.join(map(str, returned._identity))}"
    return facts


def meet_at_barrier(barrier: Any, met: Any, pids: Any, spans: Any, index: int) -> None:
    """Child target: wait until every sibling is running too (and note when it ran, for the timeline)."""
    pids[index] = os.getpid()
    if _in_caller():
        return
    span_started(spans, index)
    try:
        barrier.wait()
    except Exception:  # BrokenBarrierError: the others were not running at the same time
        span_ended(spans, index)
        sys.exit(MISSED_BARRIER_EXIT)
    met[index] = 1
    time.sleep(EXIT_AFTER)  # see exit_with: no exit code may be ready before a join
    span_ended(spans, index)


def run_all_together(module: ModuleType, count: int) -> dict[str, Any]:
    barrier = multiprocessing.Barrier(count, timeout=BARRIER_WAIT)
    met = multiprocessing.Array("i", count)
    pids = multiprocessing.Array("i", count)
    spans = new_spans(count)
    origin = time.monotonic()
    jobs = [(barrier, met, pids, spans, i) for i in range(count)]
    codes = call_starting_processes("run_all", module.run_all, meet_at_barrier, jobs)
    return {
        "exit_codes": _plain_list(codes),
        "met": list(cast("Iterable[int]", met)),
        "pids": list(cast("Iterable[int]", pids)),
        "caller_pid": os.getpid(),
        "timeline": timeline_facts(spans, pids, origin),
    }


def finish_later(done: Any, pids: Any, index: int, delay: float) -> None:
    """Child target: work for a while, then mark itself done."""
    pids[index] = os.getpid()
    if _in_caller():
        return
    time.sleep(delay)
    done[index] = 1


def run_all_waits(module: ModuleType, count: int, delay: float) -> dict[str, Any]:
    done = multiprocessing.Array("i", count)
    pids = multiprocessing.Array("i", count)

    def seen() -> dict[str, Any]:  # what the caller could see the moment run_all returned, in its thread
        return {"done": list(cast("Iterable[int]", done)), "left_running": len(multiprocessing.active_children())}

    jobs = [(done, pids, i, delay) for i in range(count)]
    call = run_starting_processes("run_all", module.run_all, finish_later, jobs, after=seen)
    return {
        "exit_codes": _plain_list(call.value),
        "done": call.after["done"],
        "elapsed": call.seconds,
        "left_running": call.after["left_running"],
        "pids": list(cast("Iterable[int]", pids)),
        "caller_pid": os.getpid(),
    }


def exit_with(code: int, pids: Any, index: int, work: float = EXIT_AFTER) -> None:
    """Child target: record the pid, work a while, then end with the given exit code.

    The work matters: a child that ended at once could have exited before a
    run_all that never joins read its exitcode, and that mistake would then
    pass by luck.
    """
    pids[index] = os.getpid()
    if _in_caller():
        return
    time.sleep(work)
    if code == 1:
        raise RuntimeError("this worker fails on purpose")
    if code:
        sys.exit(code)


def run_all_exit_codes(module: ModuleType, codes: list[int]) -> dict[str, Any]:
    """run_all with children that end in the reverse of their order, each with its own exit code."""
    pids = multiprocessing.Array("i", len(codes))
    last = len(codes) - 1
    jobs = [(code, pids, i, EXIT_AFTER + STAGGER * (last - i)) for i, code in enumerate(codes)]
    result = call_starting_processes("run_all", module.run_all, exit_with, jobs)
    return {"exit_codes": _plain_list(result), "pids": list(cast("Iterable[int]", pids)), "caller_pid": os.getpid()}


def _generated(jobs: list[tuple]) -> Any:
    yield from jobs


def run_all_any_iterable(module: ModuleType, codes: list[int]) -> dict[str, Any]:
    """run_all given a generator, then an empty list, then the same jobs again, in one process."""
    pids = multiprocessing.Array("i", len(codes))
    jobs = [(code, pids, i) for i, code in enumerate(codes)]
    first = call_starting_processes("run_all", module.run_all, exit_with, _generated(jobs))
    first_pids = list(cast("Iterable[int]", pids))
    empty = call_starting_processes("run_all", module.run_all, exit_with, [])
    again = call_starting_processes("run_all", module.run_all, exit_with, list(jobs))
    return {
        "from_generator": _plain_list(first),
        "generator_pids": first_pids,
        "empty": _plain_list(empty),
        "again": _plain_list(again),
        "caller_pid": os.getpid(),
        "left_running": len(multiprocessing.active_children()),
    }


def whoami_here(module: ModuleType) -> dict[str, Any]:
    answer = call_quick("whoami", module.whoami)
    return {"answer": _plain_dict(answer), "pid": os.getpid(), "name": multiprocessing.current_process().name}


def report_whoami(results: Any, module_name: str) -> None:
    """Child target: ask the graded module who this process is."""
    try:
        whoami = importlib.import_module(module_name).whoami
        results.put(("asking", None))  # from here on, whoami has QUICK_WITHIN seconds to answer
        results.put(("ok", _plain_dict(whoami())))
    except BaseException as exc:  # the error is the fact to report
        results.put(("raised", f"{type(exc).__name__}: {exc}"))


def _ask_child(context: Any, module_name: str, name: str) -> dict[str, Any]:
    results = context.Queue()
    child = context.Process(target=report_whoami, args=(results, module_name), name=name)
    child.start()
    answer = receive(results, WAIT, alive=child.is_alive)
    if answer is not None and answer[0] == "asking":
        cpu_before = process_cpu_seconds(child.pid)
        answer = receive(results, QUICK_WITHIN, alive=child.is_alive)
        if answer is None and child.is_alive():
            busy = busy_between(cpu_before, process_cpu_seconds(child.pid))
            kill_and_reap(child, WAIT)
            stuck = {"where": None, "waiting_in": None, "busy": busy}
            raise StuckCall(Called(HUNG, deadline=QUICK_WITHIN, stuck=stuck), "whoami")
    reap(child, WAIT)  # whoami may have left a process of its own running: that is not this test's concern
    kind, value = answer if answer is not None else ("silent", None)
    return {"kind": kind, "answer": value, "child_pid": child.pid, "name": name}


def whoami_in_child(module: ModuleType) -> dict[str, Any]:
    """whoami in a child started with this call's start method, and in children forked and made by a forkserver.

    "Right in any process, including a child started with forkserver", whatever
    this call's own start method: a forked child shares what this process had
    worked out at import, so an answer cached then shows under every method; a
    forkserver child's operating-system parent is the server, so os.getppid()
    shows under every method too.
    """
    children = [_ask_child(multiprocessing.get_context(), module.__name__, "kata-child")]
    with warnings.catch_warnings():  # 3.12+ warns about forking with threads running: harmless here
        warnings.simplefilter("ignore", DeprecationWarning)
        children.append(_ask_child(multiprocessing.get_context("fork"), module.__name__, "kata-forked-child"))
    children.append(_ask_child(multiprocessing.get_context("forkserver"), module.__name__, "kata-forkserver-child"))
    return {"children": children, "caller_pid": os.getpid()}


def _plain_list(value: Any) -> Any:
    """A returned list as data; anything else (a generator, None) as its repr, so the test can name it."""
    return plain(value) if isinstance(value, (list, tuple)) else repr(value)


def _plain_dict(value: Any) -> Any:
    return plain(value) if isinstance(value, dict) else repr(value)
