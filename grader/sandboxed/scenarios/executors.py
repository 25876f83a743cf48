"""Scenarios for exercise 11 (executors), run inside the sandbox.

Each scenario takes the graded module first, drives it, and returns plain
facts (JSON data) for the hidden test to judge. What the workers run are
module-level functions here, so that every start method finds them by name.
Every graded call has a deadline (kit.call_with_deadline): a hang is a fact.

What the scenario watches in its own process while a graded function runs
(``watching``: patched for the call, restored after):
- every ProcessPoolExecutor created, and the number of workers it was made
  for (``_max_workers``, what the executor itself uses to size its pool), so
  that a pool sized by the machine shows: os.cpu_count() is faked to 16;
- every Future created (a submit) and the moment the first result() or
  exception() is asked: how many tasks had been submitted by then;
- every result that reaches the caller (Future.set_result), which leaves a
  file "arrived-<item>" in the scenario's folder, and every failure
  (Future.set_exception), which leaves "arrived-failure";
- every result or failure the caller has taken: result() or exception()
  asked of a future that is done by then leaves "taken-<item>" or
  "taken-failure".

Windows opened on purpose, so that a mistake fails every time:
- Order: items finish in an order the scenario chooses, not by timing alone.
  An item given "after" waits until the result of that other item has reached
  the caller (its arrived- file), then until the caller has taken it (its
  taken- file) or "take_wait" seconds (GAP unless told) have passed, so the
  results come back in exactly that order: the reverse of the items, for
  example. Where the order the caller hands results back in is the check
  (results_as_completed), take_wait is TAKE_WAIT: code that takes each result
  as it comes never sees two done at once however slow the machine is (a set
  of done futures has no order), and code that takes them later still gets
  them seconds apart.
- Simultaneity: items given a "group" meet (each leaves a file and waits for
  the others of its group) before they go on. Items run one at a time never
  meet; the first to give up (MEET_WAIT) leaves "give-up", and every wait
  ends at once when it is there, so a wrong solution costs one MEET_WAIT,
  not one per item; a result asked before every task was submitted leaves
  it at once.
- Shut down: items given "slow_exit" make their worker take SLOW_EXIT
  seconds to exit once asked (a multiprocessing finalizer), so a shutdown
  that does not wait for its workers (or none at all) leaves them running
  when the function returns, every time.
- Cancel: in stop_at_first_failure's run, the items around the failing one
  hold until the scenario releases them: once no task is still waiting to
  start (the rest were cancelled), or GIVE_UP seconds after the failure (they
  were not). So exactly the tasks that were not cancelled run, and are
  counted by the files they leave when they start.
- A worker dies for real (os._exit, or SIGKILL sent to itself).
- The start method a worker was made with shows in the worker: only a forked
  worker sees a value set in the caller just before the pool started, and only
  a forkserver worker has another parent (the server) in the operating system.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import multiprocessing
import multiprocessing.util
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, cast

from grader.sandboxed.scenarios.kit import call_with_deadline, fake_cpu_count, plain, type_name, wait_until

MEET_WAIT = 8.0  # seconds a task waits for the others; a correct solution meets within a second
GAP = 0.4  # seconds an item waits after the result it follows has reached the caller, unless taken sooner
TAKE_WAIT = 2.0  # the same where the order results are handed back in is the check: taking ends it sooner
SLOW_EXIT = 0.4  # seconds a worker that ran a slow_exit item takes to exit once asked
GIVE_UP = 3.0  # seconds after the failure the held items wait for the rest to be cancelled
FAILURE_WAIT = 12.0  # seconds the held items wait for a failure when no ProcessPoolExecutor was made
DEADLINE = 30.0  # seconds the scenario waits for a graded function that should return promptly
JOIN_WAIT = 10.0  # seconds the scenario waits for leftover workers to finish what they had begun
MACHINE_CPUS = 16  # what os.cpu_count() says while a graded function runs
POLL = 0.005

GIVE_UP_FILE = "give-up"
RELEASE_FILE = "release"

# Set by the caller before its pool starts (see start_method_seen); only a forked worker inherits it.
_marker_from_caller: str | None = None
# Set by the initializer in each worker (see install_label).
_label_args: list[Any] | None = None
_label_calls = 0
_label_installed_in: int | None = None
# Whether this worker has already registered its slow exit.
_exits_slowly = False


# ---------------------------------------------------------------- what the workers run


def _wait_for(folder: str, name: str, seconds: float = MEET_WAIT, give_up: bool = True) -> bool:
    """Wait until folder/name exists; False when give-up appeared or seconds passed (then leave give-up if told)."""
    deadline = time.monotonic() + seconds
    while not os.path.exists(os.path.join(folder, name)):
        if os.path.exists(os.path.join(folder, GIVE_UP_FILE)):
            return False
        if time.monotonic() > deadline:
            if give_up:
                Path(folder, GIVE_UP_FILE).touch()
            return False
        time.sleep(POLL)
    return True


def _meet(folder: str, group: Any, item: Any, parties: int) -> bool:
    """Leave this item's file for its group; wait until the group's parties are all there."""
    prefix = f"meet-{group}-"
    Path(folder, f"{prefix}{item}").touch()
    deadline = time.monotonic() + MEET_WAIT
    while sum(name.startswith(prefix) for name in os.listdir(folder)) < parties:
        if os.path.exists(os.path.join(folder, GIVE_UP_FILE)):
            return False
        if time.monotonic() > deadline:
            Path(folder, GIVE_UP_FILE).touch()
            return False
        time.sleep(POLL)
    return True


def _exit_slowly() -> None:
    """Make this worker process take SLOW_EXIT seconds to exit, once it is asked to."""
    global _exits_slowly
    if not _exits_slowly and multiprocessing.parent_process() is not None:
        multiprocessing.util.Finalize(None, time.sleep, args=(SLOW_EXIT,), exitpriority=100)
        _exits_slowly = True


def job(spec: dict[str, Any]) -> dict[str, Any]:
    """Worker task driven by spec: leave a started- file; meet, wait or hold as told; then fail, die or return."""
    folder, item = spec["folder"], spec["item"]
    Path(folder, f"started-{item}").touch()
    if spec.get("slow_exit"):
        _exit_slowly()
    met = True
    if spec.get("group") is not None:
        met = _meet(folder, spec["group"], item, spec["parties"])
    if spec.get("after") is not None and _wait_for(folder, f"arrived-{spec['after']}"):
        _wait_for(folder, f"taken-{spec['after']}", spec.get("take_wait", GAP), give_up=False)
    if spec.get("hold"):
        _wait_for(folder, RELEASE_FILE, DEADLINE)
    if spec.get("fail"):
        raise ValueError(f"item {item} is bad (raised in process {os.getpid()})")
    if spec.get("die") == "exit":
        os._exit(3)
    if spec.get("die") == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    return {"item": item, "pid": os.getpid(), "met": met}


def times_ten(x: Any) -> Any:
    """Worker task: ten times x (an int or a str), and an error for 2."""
    if x == 2:
        raise ValueError(f"item 2 is bad (raised in process {os.getpid()})")
    return x * 10


def times_ten_after_the_failure(folder: str, x: Any) -> Any:
    """Worker task (bound to folder): item 2 fails at once; the others return only once that failure was taken.

    Taken, or TAKE_WAIT seconds after it arrived: see the module's docstring.
    """
    if x != 2 and _wait_for(folder, "arrived-failure"):
        _wait_for(folder, "taken-failure", TAKE_WAIT, give_up=False)
    return times_ten(x)


def install_label(*args: Any) -> None:
    """Initializer: remember what it was called with in this worker, how often, and in which process."""
    global _label_args, _label_calls, _label_installed_in
    _label_args, _label_installed_in = list(args), os.getpid()
    _label_calls += 1


def worker_facts(item: int) -> dict[str, Any]:
    """Worker task: what tells how this worker was started, and what the initializer left in it."""
    parent = multiprocessing.parent_process()
    return {
        "item": item,
        "pid": os.getpid(),
        "os_parent": os.getppid(),
        "parent": parent.pid if parent else None,
        "marker": _marker_from_caller,
        "args": _label_args,
        "calls": _label_calls,
        "installed_in": _label_installed_in,
    }


# ---------------------------------------------------------------- what the scenario watches


@dataclass
class Seen:
    """What a graded call did with executors and futures in the scenario's process."""

    folder: str
    expected_submits: int | None = None  # how many tasks the call should submit before it asks for a result
    executors: list[ProcessPoolExecutor] = field(default_factory=list)
    sizes: list[Any] = field(default_factory=list)
    futures: list[Future] = field(default_factory=list)
    submitted_when_asked: int | None = None
    failed: threading.Event = field(default_factory=threading.Event)

    def facts(self) -> dict[str, Any]:
        return {
            "executors": len(self.executors),
            "sizes": plain(self.sizes),
            "submitted": len(self.futures),
            "submitted_when_asked": self.submitted_when_asked,
        }


def _items_in(result: Any) -> list[Any]:
    """The items a result speaks for: a job's dict, or a list of them (executor.map sends chunks)."""
    found = result if isinstance(result, list) else [result]
    return [entry["item"] for entry in found if isinstance(entry, dict) and "item" in entry]


@contextlib.contextmanager
def watching(folder: str, expected_submits: int | None = None) -> Iterator[Seen]:
    """Watch executors and futures (see the module's docstring) while the block runs; faked CPU count too."""
    seen = Seen(folder, expected_submits)
    originals: dict[tuple[type, str], Callable[..., Any]] = {
        (ProcessPoolExecutor, "__init__"): ProcessPoolExecutor.__init__,
        (Future, "__init__"): Future.__init__,
        (Future, "result"): Future.result,
        (Future, "exception"): Future.exception,
        (Future, "set_result"): Future.set_result,
        (Future, "set_exception"): Future.set_exception,
    }

    def executor_init(self: ProcessPoolExecutor, *args: Any, **kwargs: Any) -> None:
        originals[ProcessPoolExecutor, "__init__"](self, *args, **kwargs)
        seen.executors.append(self)
        seen.sizes.append(getattr(self, "_max_workers", None))

    # self is typed as object.__init__'s is, since typeshed gives Future no __init__ of its own.
    def future_init(self: object, *args: Any, **kwargs: Any) -> None:
        originals[Future, "__init__"](self, *args, **kwargs)
        seen.futures.append(cast(Future, self))

    def asking(name: str) -> Any:
        def ask(self: Future, *args: Any, **kwargs: Any) -> Any:
            if seen.submitted_when_asked is None:
                seen.submitted_when_asked = len(seen.futures)
                if seen.expected_submits is not None and len(seen.futures) < seen.expected_submits:
                    Path(folder, GIVE_UP_FILE).touch()  # the others will not come: nobody waits for them
            try:
                return originals[Future, name](self, *args, **kwargs)
            finally:
                with contextlib.suppress(Exception):  # watching never changes what the graded call sees
                    taken(self)

        return ask

    def taken(future: Future) -> None:
        """Leave the taken- file of a future the caller has just asked, if it was done."""
        if not future.done() or future.cancelled():
            return
        failure = originals[Future, "exception"](future, 0)
        if failure is None:
            names = [f"taken-{item}" for item in _items_in(originals[Future, "result"](future, 0))]
        else:
            names = [] if isinstance(failure, concurrent.futures.process.BrokenProcessPool) else ["taken-failure"]
        for name in names:
            with contextlib.suppress(OSError):
                Path(folder, name).touch()

    def set_result(self: Future, result: Any) -> None:
        originals[Future, "set_result"](self, result)
        for item in _items_in(result):
            with contextlib.suppress(OSError):
                Path(folder, f"arrived-{item}").touch()

    def set_exception(self: Future, exception: BaseException | None) -> None:
        originals[Future, "set_exception"](self, exception)
        if not isinstance(exception, concurrent.futures.process.BrokenProcessPool):
            with contextlib.suppress(OSError):
                Path(folder, "arrived-failure").touch()
        seen.failed.set()

    ProcessPoolExecutor.__init__ = executor_init  # type: ignore[method-assign]
    Future.__init__ = future_init  # type: ignore[method-assign]
    Future.result = asking("result")  # type: ignore[method-assign]
    Future.exception = asking("exception")  # type: ignore[method-assign]
    Future.set_result = set_result  # type: ignore[method-assign]
    Future.set_exception = set_exception  # type: ignore[method-assign]
    try:
        with fake_cpu_count(MACHINE_CPUS):
            yield seen
    finally:
        for (owner, name), original in originals.items():
            setattr(owner, name, original)


def _left_running() -> list[int | None]:
    """Pids of this process's worker processes that still run."""
    return [child.pid for child in multiprocessing.active_children()]


def _clean_up(seen: Seen) -> None:
    """End whatever the call left: release every wait, shut every executor down, wait for the workers (bounded)."""
    for name in (RELEASE_FILE, GIVE_UP_FILE):
        with contextlib.suppress(OSError):
            Path(seen.folder, name).touch()
    for executor in seen.executors:
        with contextlib.suppress(Exception):
            executor.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + JOIN_WAIT
    for child in multiprocessing.active_children():
        child.join(max(0.0, deadline - time.monotonic()))


def _started(folder: str) -> list[Any]:
    return sorted(int(name.removeprefix("started-")) for name in os.listdir(folder) if name.startswith("started-"))


def _called(function: Any, *args: Any, deadline: float = DEADLINE) -> dict[str, Any]:
    """Call a graded function with a deadline; its facts, with what was left running the moment it ended."""
    call = call_with_deadline(function, *args, deadline=deadline, after=_left_running)
    facts = call.facts()
    facts["type"] = type_name(call.value) if call.outcome == "returned" else None
    facts["is_list"] = isinstance(call.value, list)
    if call.outcome == "raised":  # the moment it raised: slow_exit workers are still exiting for SLOW_EXIT s
        facts["after"] = _left_running()
    return facts


def _specs(folder: str, count: int, **common: Any) -> list[dict[str, Any]]:
    return [{"item": item, "folder": folder, **common} for item in range(count)]


def _in_reverse(specs: list[dict[str, Any]], take_wait: float = GAP) -> list[dict[str, Any]]:
    """Every item but the last waits for the result of the one after it: they finish last item first."""
    for spec in specs[:-1]:
        spec["after"] = spec["item"] + 1
        spec["take_wait"] = take_wait
    return specs


def _scenario(function: Any, specs_of: Any, max_workers: int, expected_submits: int | None = None) -> dict[str, Any]:
    """Run function(job, specs, max_workers) in a fresh folder, watched; facts of the call and of what it did."""
    with tempfile.TemporaryDirectory() as folder, watching(folder, expected_submits) as seen:
        specs = specs_of(folder)
        try:
            facts: dict[str, Any] = {"call": _called(function, job, specs, max_workers)}
        finally:
            _clean_up(seen)
        facts.update(seen.facts(), caller_pid=os.getpid(), max_workers=max_workers, count=len(specs))
        facts["started"] = _started(folder)
    return facts


# ---------------------------------------------------------------- tasks 1 to 4: the functions over items


def in_reverse(module: ModuleType, function: str, count: int, take_wait: float = GAP) -> dict[str, Any]:
    """function(job, items, count): the items meet, then finish last one first; their workers exit slowly."""

    def specs_of(folder: str) -> list[dict[str, Any]]:
        return _in_reverse(_specs(folder, count, group="all", parties=count, slow_exit=True), take_wait)

    return _scenario(getattr(module, function), specs_of, count, expected_submits=count)


def taken_in_reverse(module: ModuleType, function: str, count: int) -> dict[str, Any]:
    """in_reverse, for a function whose order is the check: an item ends once the one it follows was taken."""
    return in_reverse(module, function, count, TAKE_WAIT)


def in_pairs(module: ModuleType, function: str, count: int, max_workers: int) -> dict[str, Any]:
    """function(job, items, max_workers) with more items than workers: items 0 and 1 meet, then 2 and 3, ..."""

    def specs_of(folder: str) -> list[dict[str, Any]]:
        specs = _specs(folder, count, parties=max_workers)
        for spec in specs:
            spec["group"] = spec["item"] // max_workers
        return specs

    return _scenario(getattr(module, function), specs_of, max_workers, expected_submits=count)


def over_plain_items(module: ModuleType, function: str, items: list[Any], max_workers: int) -> dict[str, Any]:
    """function(times_ten, items, max_workers): its facts, with what it left running."""
    with tempfile.TemporaryDirectory() as folder, watching(folder) as seen:
        try:
            facts: dict[str, Any] = {"call": _called(getattr(module, function), times_ten, list(items), max_workers)}
        finally:
            _clean_up(seen)
        facts.update(seen.facts(), caller_pid=os.getpid())
    return facts


def run_all_any_iterable(module: ModuleType) -> dict[str, Any]:
    """run_all over a generator, then an empty list, then the generator's items again, in one process."""
    calls = {}
    with tempfile.TemporaryDirectory() as folder, watching(folder) as seen:
        try:
            calls["generator"] = _called(module.run_all, times_ten, (x for x in [1, 0, 3]), 2)
            calls["empty"] = _called(module.run_all, times_ten, [], 2)
            calls["again"] = _called(module.run_all, times_ten, [1, 0, 3], 2)
        finally:
            _clean_up(seen)
    return calls


def shutting_down(module: ModuleType, function: str) -> dict[str, Any]:
    """function over items whose workers exit slowly: once it has returned, and once it has raised."""
    facts: dict[str, Any] = {}
    for fails in (False, True):
        with tempfile.TemporaryDirectory() as folder, watching(folder) as seen:
            specs = _specs(folder, 3, slow_exit=True)
            specs[2]["fail"] = fails
            try:
                facts["raising" if fails else "returning"] = _called(getattr(module, function), job, specs, 2)
            finally:
                _clean_up(seen)
            facts["executors"] = facts.get("executors", 0) + len(seen.executors)
    return facts


def failure_arrives_first(module: ModuleType) -> dict[str, Any]:
    """results_as_completed over a generator of [2, 3, 0, 3, ""]: 2 fails at once, the others end after it."""
    items = [2, 3, 0, 3, ""]
    with tempfile.TemporaryDirectory() as folder, watching(folder) as seen:
        func = functools.partial(times_ten_after_the_failure, folder)
        try:
            facts: dict[str, Any] = {"call": _called(module.results_as_completed, func, (x for x in items), 2)}
        finally:
            _clean_up(seen)
        facts.update(seen.facts(), items=items)
    return facts


def fail_fast(module: ModuleType, later: int, max_workers: int) -> dict[str, Any]:
    """stop_at_first_failure: item 0 holds, item 1 fails at once, items 2.. hold too, until released.

    They are released once no task waits to start any more (the rest were
    cancelled), or GIVE_UP seconds after the failure (they were not). Item 0
    fails too once released: the first failure, the one to raise, is item 1's.
    """
    with tempfile.TemporaryDirectory() as folder, watching(folder) as seen:
        specs = _specs(folder, later + 2, hold=True)
        specs[0]["fail"] = True
        specs[1] = {"item": 1, "folder": folder, "fail": True}
        stop_watching = threading.Event()
        settled: list[bool] = []

        def release_when_settled() -> None:
            # Code without a ProcessPoolExecutor has no future to fail: release its tasks all the same, later.
            give_up = time.monotonic() + FAILURE_WAIT
            while not seen.failed.wait(0.05):
                if stop_watching.is_set() or (time.monotonic() > give_up and not seen.executors):
                    Path(folder, RELEASE_FILE).touch()
                    return
            # Settled: no task waits to start any more (cancelled, or already handed to a worker).
            settled.append(wait_until(lambda: all(f.running() or f.done() for f in seen.futures), GIVE_UP))
            Path(folder, RELEASE_FILE).touch()

        watcher = threading.Thread(target=release_when_settled, daemon=True)
        watcher.start()
        try:
            facts: dict[str, Any] = {"call": _called(module.stop_at_first_failure, job, specs, max_workers)}
        finally:
            stop_watching.set()
            _clean_up(seen)
            watcher.join(GIVE_UP + 1.0)
        facts.update(seen.facts(), later=later, max_workers=max_workers, give_up=GIVE_UP)
        facts["cancelled_in_time"] = settled == [True]
        facts["started_later"] = [item for item in _started(folder) if item >= 2]
    return facts


def worker_dies(module: ModuleType, how: str) -> dict[str, Any]:
    """stop_at_first_failure while item 1 kills its own worker (os._exit or SIGKILL)."""
    with tempfile.TemporaryDirectory() as folder, watching(folder) as seen:
        specs = _specs(folder, 4)
        specs[1]["die"] = how
        try:
            facts: dict[str, Any] = {"call": _called(module.stop_at_first_failure, job, specs, 2, deadline=12.0)}
        finally:
            _clean_up(seen)
    facts["how"] = how
    return facts


# ---------------------------------------------------------------- task 5: make_executor


def _run_on(executor: Any, task: Any, count: int) -> dict[str, Any]:
    """Submit count tasks to an executor the graded code made; their results, or why there are none."""

    def run() -> list[Any]:
        futures = [executor.submit(task, item) for item in range(count)]
        return [future.result(timeout=DEADLINE) for future in futures]

    return call_with_deadline(run, deadline=DEADLINE).facts()


def _made(module: ModuleType, seen: Seen, *args: Any, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
    """make_executor(*args, **kwargs), and what it did before it returned it."""
    before = len(seen.futures)
    executor = module.make_executor(*args, **kwargs)
    processes = getattr(executor, "_processes", None)
    return executor, {
        "type": type_name(executor),
        "is_executor": isinstance(executor, ProcessPoolExecutor),
        "submitted": len(seen.futures) - before,
        "workers_started": len(processes) if isinstance(processes, dict) else None,
        "size": getattr(executor, "_max_workers", None),
    }


def executor_with_context(module: ModuleType, method: str) -> dict[str, Any]:
    """make_executor(2, context=get_context(method)): how were its workers started?"""
    global _marker_from_caller
    facts: dict[str, Any] = {"caller_pid": os.getpid(), "default_method": multiprocessing.get_start_method()}
    with tempfile.TemporaryDirectory() as folder, watching(folder) as seen:
        _marker_from_caller = "set in the caller"
        try:
            executor, facts["made"] = _made(module, seen, 2, context=multiprocessing.get_context(method))
            if facts["made"]["is_executor"]:
                facts["workers"] = _run_on(executor, worker_facts, 2)
                executor.shutdown(wait=True)
        finally:
            _marker_from_caller = None
            _clean_up(seen)
    return facts


def executor_defaults(module: ModuleType, methods: list[str]) -> dict[str, Any]:
    """make_executor(2) alone, once with each of methods as the default start method: do its workers follow it?"""
    global _marker_from_caller
    default = multiprocessing.get_start_method()
    facts: dict[str, Any] = {"caller_pid": os.getpid(), "runs": []}
    with tempfile.TemporaryDirectory() as folder, watching(folder) as seen:
        try:
            for method in methods:
                multiprocessing.set_start_method(method, force=True)
                _marker_from_caller = "set in the caller"
                executor, made = _made(module, seen, 2)
                run = {"default_method": method, "made": made}
                if made["is_executor"]:
                    run["workers"] = _run_on(executor, worker_facts, 2)
                    executor.shutdown(wait=True)
                facts["runs"].append(run)
        finally:
            _marker_from_caller = None
            multiprocessing.set_start_method(default, force=True)
            _clean_up(seen)
    return facts


def executor_with_initializer(module: ModuleType, initargs: list[Any], tasks: int) -> dict[str, Any]:
    """make_executor(2, initializer=install_label, initargs=...); what did each task find in its worker?"""
    global _label_args, _label_calls, _label_installed_in
    facts: dict[str, Any] = {"caller_pid": os.getpid()}
    with tempfile.TemporaryDirectory() as folder, watching(folder) as seen:
        try:
            executor, facts["made"] = _made(module, seen, 2, initializer=install_label, initargs=tuple(initargs))
            facts["ran_in_caller"] = _label_calls
            if facts["made"]["is_executor"]:
                facts["tasks"] = _run_on(executor, worker_facts, tasks)
                executor.shutdown(wait=True)
        finally:
            # Whatever the initializer did in this process (it should not have run here) is undone.
            _label_args, _label_calls, _label_installed_in = None, 0, None
            _clean_up(seen)
    return facts


def executor_fresh(module: ModuleType, max_workers: int) -> dict[str, Any]:
    """make_executor twice: each new, unused, not shut down, of max_workers workers (the machine says 16 CPUs)."""
    facts: dict[str, Any] = {"caller_pid": os.getpid(), "machine_cpus": MACHINE_CPUS}
    with tempfile.TemporaryDirectory() as folder, watching(folder) as seen:
        try:
            first, facts["first"] = _made(module, seen, max_workers)
            second, facts["second"] = _made(module, seen, max_workers)
            facts["same_object"] = first is second
            if facts["first"]["is_executor"]:
                facts["first_runs"] = _run_on(first, worker_facts, 2 * max_workers)
                first.shutdown(wait=True)
            if facts["second"]["is_executor"]:
                facts["second_runs"] = _run_on(second, worker_facts, 2 * max_workers)
                second.shutdown(wait=True)
        finally:
            _clean_up(seen)
    return facts
