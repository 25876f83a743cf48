"""Scenarios for exercise 2 (pool), run inside the sandbox.

Each scenario takes the graded module first, drives it, and returns plain
facts (JSON data) for the hidden test to judge. The functions that pool
workers run are module-level functions here, so that every start method can
find them by name. Every blocking call has a timeout: the graded functions are
called with the kit's call_with_deadline, so a hang is a fact, not a timeout
of the whole call.

Evidence used, and why:
- Tasks that run at the same time meet at a Manager barrier (a plain
  multiprocessing.Barrier cannot travel inside a task's arguments): it opens
  only when that many tasks wait on it at once.
- Order: each task waits for the next item's task to finish, so the items
  finish last to first; a result list in input order then comes from keeping
  the order, not from luck.
- Pool size: the processes started during a call are counted (Process.start
  is recorded, whatever kind of pool starts them), on a machine that pretends
  to have some number of CPUs (os.cpu_count, and the graded module's own name
  for it), so that a pool sized by the CPU count instead of the size asked for
  shows on any machine.
- Where workers are counted, each task stays until every task has started
  or HOLD seconds have passed: every worker of a pool of the right size is
  then alive at once, even one that ends with its last task (a home-made
  pool of short-lived processes), and a pool with a worker per task has them
  all alive at once too.
- Task 4 goes through the graded module's own sum_of_squares, with a
  stand-in put in its place for the call: for the values, each number's task
  finishes only after the next number's (the order is kept, not lucky); for
  the pool size, each task is held as above.
- Nothing left running: the scenario looks in its own process, right after
  the call (a child's exit handler would join the workers and hide a missing
  join). Every multiprocessing.Pool made during the call gets a worker
  initializer that makes a worker take LINGER seconds longer to exit when it
  ends normally: a pool that is closed but not joined still has its workers
  running when the call returns, every time, not only when the scheduler is
  slow. (terminate(), what a with block does, kills them at once.)
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import importlib
import multiprocessing
import multiprocessing.pool
import multiprocessing.process
import multiprocessing.util
import os
import pickle
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from types import ModuleType
from typing import Any

from grader.sandboxed.scenarios.kit import (
    HUNG,
    RETURNED,
    Called,
    busy_between,
    call_with_deadline,
    error_fact,
    fake_cpu_count,
    is_running,
    plain,
    process_cpu_seconds,
    type_name,
    wait_until,
)

WAIT = 20.0  # seconds a blocking call may wait when nothing is wrong: long, a loaded machine is slow
CALL_DEADLINE = 12.0  # seconds one graded call may take before it counts as hung (a correct one takes 1 to 3)
BUSY_LOOK = 2.0  # seconds between two looks at whether a call past its deadline still computes
MORE_WHILE_BUSY = 20.0  # seconds a call past its deadline may get, at most, while its processes still compute
LINGER = 1.0  # seconds a pool worker that ends normally takes to exit (see the module's docstring)
ANY_MACHINE = 5  # CPUs a machine pretends to have where the count must not matter: neither 2 nor 3 of the calls
HOLD = 1.0  # seconds a held task stays, at most, waiting for the other tasks to start (see the docstring)
CHAIN = 3.0  # seconds a task that must finish after the next one waits for it, at most (once per call)
BIG_RESULT = 100_000  # characters of each result of the big-results call: more than a pipe holds


# ---------------------------------------------------------------- windows and records


@contextlib.contextmanager
def _machine_with_cpus(count: int | None, module: ModuleType) -> Iterator[None]:
    """The kit's fake_cpu_count, and the graded module's own names for the CPU count too.

    A graded module that did `from os import cpu_count` holds its own name
    for the function, which the kit does not reach: that name is replaced too.
    """
    originals = [os.cpu_count, multiprocessing.cpu_count]
    if hasattr(os, "process_cpu_count"):
        originals.append(os.process_cpu_count)
    aliases = [name for name, value in vars(module).items() if any(value is original for original in originals)]
    saved = {name: getattr(module, name) for name in aliases}
    with fake_cpu_count(count):  # type: ignore[arg-type]  # None: a machine that cannot tell
        for name in aliases:
            setattr(module, name, lambda: count)
        try:
            yield
        finally:
            for name, value in saved.items():
                setattr(module, name, value)


class _StartedProcesses:
    """Records every process started in this process while active: pool workers of any kind of pool.

    A pool is recognised by what it does (it starts processes), not by its
    class. peak is the most of them running at once, counted at each start: a
    pool that replaces its workers (maxtasksperchild) starts more processes
    than it has workers, but never has more running.
    """

    def __init__(self) -> None:
        self.pids: list[int] = []
        self.peak = 0
        self._original = multiprocessing.process.BaseProcess.start

    def __enter__(self) -> _StartedProcesses:
        recorder, original, pids = self, self._original, self.pids

        def start(self: multiprocessing.process.BaseProcess) -> None:
            original(self)
            if self.pid is not None:
                pids.append(self.pid)
                # The process just started counts even if it has already ended: on a loaded machine a
                # one-item worker can finish before this line runs, and was running all the same.
                recorder.peak = max(recorder.peak, len({*recorder.running(), self.pid}))

        multiprocessing.process.BaseProcess.start = start  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        multiprocessing.process.BaseProcess.start = self._original  # type: ignore[method-assign]

    def running(self) -> list[int]:
        """The recorded processes that still run."""
        return sorted(pid for pid in self.pids if is_running(pid))

    def cpu_seconds(self) -> dict[int, float | None]:
        """The CPU time each recorded process that still runs has used."""
        return {pid: process_cpu_seconds(pid) for pid in self.running()}

    def computed_since(self, before: dict[int, float | None]) -> bool:
        """Whether a process was started, or one kept computing, since before was read (cpu_seconds)."""
        now = self.cpu_seconds()
        return any(pid not in before or busy_between(before[pid], cpu) for pid, cpu in now.items())


def linger_then(initializer: Callable[..., Any] | None, *initargs: Any) -> None:
    """Pool initializer put before the graded code's own: this worker takes LINGER s more to exit normally."""
    if multiprocessing.parent_process() is not None:  # a ThreadPool runs it in the caller: nothing to do there
        multiprocessing.util.Finalize(None, time.sleep, args=(LINGER,), exitpriority=0)
    if initializer is not None:
        initializer(*initargs)


# Every pool made during a watched call, kept until the sandbox ends: see _PoolWatch.
_KEPT: list[Any] = []


class _PoolWatch:
    """Windows on the pools graded code makes during one call, and what became of them.

    - Each multiprocessing.Pool and ProcessPoolExecutor gets linger_then as its
      workers' initializer (before the graded code's own, if any): a pool
      closed without waiting for its workers still has them running when the
      call returns, every time.
    - Each such pool is kept referenced until the sandbox ends. Otherwise
      CPython's reference counting may collect a pool the moment the call
      returns, and its finalizer stops the workers for the graded code: the
      documentation says not to rely on that, and another interpreter, a
      reference cycle or a traceback that holds the pool would not do it.
    - Each Pool.terminate() (what leaving a with block calls) records how many
      of the pool's jobs had no result yet: results asked for after the pool
      was stopped never come, and this says so even when the scheduler would
      have let them slip through.
    """

    def __init__(self) -> None:
        self.pools: list[Any] = []
        self.pending_at_terminate = 0
        self._saved: list[tuple[Any, str, Any]] = []

    def __enter__(self) -> _PoolWatch:
        watch = self
        pool_init = multiprocessing.pool.Pool.__init__
        pool_terminate = multiprocessing.pool.Pool.terminate
        executor_init = concurrent.futures.ProcessPoolExecutor.__init__

        def init(
            pool: multiprocessing.pool.Pool,
            processes: int | None = None,
            initializer: Callable[..., Any] | None = None,
            initargs: tuple = (),
            maxtasksperchild: int | None = None,
            context: Any = None,
        ) -> None:
            pool_init(pool, processes, functools.partial(linger_then, initializer), initargs, maxtasksperchild, context)
            watch.pools.append(pool)
            _KEPT.append(pool)

        def terminate(pool: multiprocessing.pool.Pool) -> None:
            if pool in watch.pools:
                watch.pending_at_terminate += len(getattr(pool, "_cache", ()))
            pool_terminate(pool)

        def executor(
            pool: concurrent.futures.ProcessPoolExecutor,
            max_workers: int | None = None,
            mp_context: Any = None,
            initializer: Callable[..., Any] | None = None,
            initargs: tuple = (),
            **kwargs: Any,
        ) -> None:
            wrapped = functools.partial(linger_then, initializer)
            executor_init(pool, max_workers, mp_context, wrapped, initargs, **kwargs)
            watch.pools.append(pool)
            _KEPT.append(pool)

        for owner, name, replacement in (
            (multiprocessing.pool.Pool, "__init__", init),
            (multiprocessing.pool.Pool, "terminate", terminate),
            (concurrent.futures.ProcessPoolExecutor, "__init__", executor),
        ):
            self._saved.append((owner, name, getattr(owner, name)))
            setattr(owner, name, replacement)
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, name, original in reversed(self._saved):
            setattr(owner, name, original)

    def states(self) -> list[dict[str, Any]]:
        """Each pool's kind and state: RUN (never closed), CLOSE (closed, not joined), TERMINATE, or shut down."""
        found = []
        for pool in self.pools:
            if isinstance(pool, concurrent.futures.ProcessPoolExecutor):
                state = "SHUTDOWN" if getattr(pool, "_shutdown_thread", False) else "RUN"
            else:
                state = str(getattr(pool, "_state", "?"))
            found.append({"kind": type_name(pool), "state": state})
        return found


def _patient_call(
    started: _StartedProcesses, hopeful: Callable[[], bool], function: Callable[..., Any], *args: Any, **kwargs: Any
) -> Called:
    """call_with_deadline with CALL_DEADLINE, and more time while the call's processes still compute.

    On a loaded machine, starting a pool's workers under spawn (each a fresh
    interpreter importing the graded module) took longer than CALL_DEADLINE
    for correct code. A call whose processes use no CPU for BUSY_LOOK seconds
    is blocked, and ends at CALL_DEADLINE as before; one that still starts or
    runs processes gets BUSY_LOOK seconds more at a time, MORE_WHILE_BUSY at
    most. Only how soon a hang is told changes: no check judges this time.
    """
    call = call_with_deadline(function, *args, deadline=CALL_DEADLINE - BUSY_LOOK, hopeful=hopeful, **kwargs)
    extra = -BUSY_LOOK  # the first look still belongs to CALL_DEADLINE
    while call.outcome == HUNG and hopeful() and extra < MORE_WHILE_BUSY:
        before = started.cpu_seconds()
        call = call.wait_longer(BUSY_LOOK)
        extra += BUSY_LOOK
        if not started.computed_since(before):
            break
    return call


def _watched_call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Call a graded function with a deadline: the processes it started, its pools, and what still ran after.

    What still runs is seen in this process, the moment the function returned
    (or raised): a child's exit handler would join the workers and hide it.
    """
    with _PoolWatch() as watch, _StartedProcesses() as started:

        def look() -> dict[str, Any]:
            return {"running": started.running(), "pools": watch.states()}

        # after= looks the moment the function has returned, in the thread that called it.
        # A pool stopped with jobs pending can never give their results: no use waiting for them.
        def hopeful() -> bool:
            return not watch.pending_at_terminate

        call = _patient_call(started, hopeful, function, *args, after=look, **kwargs)
        seen = call.after if call.outcome == RETURNED else look()
    facts = call.facts()
    facts.pop("after")
    return {
        "call": facts,
        "type": type_name(call.value) if call.outcome == RETURNED else None,
        "started": len(started.pids),
        "peak": started.peak,
        "left_running": seen["running"],
        "pools": seen["pools"],
        "pending_at_terminate": watch.pending_at_terminate,
        "caller_pid": os.getpid(),
    }


# ---------------------------------------------------------------- what pool workers run


def _touch(path: str) -> None:
    with open(path, "w"):
        pass


def meet_at_barrier(item: tuple[int, Any]) -> dict[str, Any]:
    """Pool task: wait until all the other tasks run too; say where this one ran."""
    index, barrier = item
    began = time.monotonic()  # one clock for every process: the timeline under the check
    try:
        barrier.wait()
        met = True
    except Exception:  # BrokenBarrierError: the others were not running at the same time
        met = False
    return {"index": index, "pid": os.getpid(), "met": met, "began": began, "ended": time.monotonic()}


def finish_after_next(item: tuple[int, list[Any], Any, float]) -> dict[str, Any]:
    """Pool task: finish only after the task of the next item has finished (or at the deadline)."""
    index, finished, finish_order, deadline = item
    if index + 1 < len(finished):
        finished[index + 1].wait(max(0.0, deadline - time.time()))
    finish_order.append(index)
    finished[index].set()
    return {"index": index, "pid": os.getpid()}


def square_where(x: int) -> dict[str, int]:
    """Pool task: x squared, and where it was computed."""
    return {"square": x * x, "pid": os.getpid()}


def _held(folder: str, count: int) -> None:
    """Stay until count tasks have started (each leaves a file in folder), HOLD seconds at most."""
    _touch(os.path.join(folder, f"started-{os.getpid()}-{time.monotonic_ns()}"))
    deadline = time.monotonic() + HOLD
    while len(os.listdir(folder)) < count and time.monotonic() < deadline:
        time.sleep(0.005)


def held(folder: str, count: int, func: Callable[[Any], Any], x: Any) -> Any:
    """Pool task: stays until count tasks have started (HOLD s at most), then func(x)."""
    _held(folder, count)
    return func(x)


def fail_on_two(folder: str, x: int) -> int:
    """Pool task: raise for 2, naming the process it ran in, once the caller has asked for results (see _asking).

    A parallel_map that asks for its results only after its with block has
    stopped the pool must lose them every time, not only when the scheduler
    is slow: the failing task waits for the ask, and the pool is stopped first.
    """
    if x == 2:
        wait_until(lambda: os.path.exists(os.path.join(folder, ASKED)), ASK_WAIT)
        raise ValueError(f"item 2 is bad (raised in process {os.getpid()})")
    return x * 10


ASKED = "asked"  # file a caller's first ask for a pool's results creates (see _asking)
# Seconds a task waits for that ask: a way of asking _asking does not see (concurrent.futures.as_completed,
# polling ready()) costs this much once; a pool stopped right after it was given the work is stopped long before.
ASK_WAIT = 2.0


@contextlib.contextmanager
def _asking(folder: str) -> Iterator[None]:
    """While active, asking for a pool's results in this process (get, wait, next, result) creates folder/ASKED."""
    flag = os.path.join(folder, ASKED)
    patched = [
        (multiprocessing.pool.ApplyResult, "get"),
        (multiprocessing.pool.ApplyResult, "wait"),
        (multiprocessing.pool.IMapIterator, "next"),
        (multiprocessing.pool.IMapIterator, "__next__"),
        (concurrent.futures.Future, "result"),
        (concurrent.futures.Future, "exception"),
    ]
    saved = [(owner, name, owner.__dict__[name]) for owner, name in patched]

    def noting(original: Callable[..., Any]) -> Callable[..., Any]:
        def asked(*args: Any, **kwargs: Any) -> Any:
            if not os.path.exists(flag):
                _touch(flag)
            return original(*args, **kwargs)

        return asked

    for owner, name, original in saved:
        setattr(owner, name, noting(original))
    try:
        yield
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


def big_result(x: int) -> str:
    """Pool task: a result larger than a pipe's buffer."""
    return str(x) * BIG_RESULT


# ---------------------------------------------------------------- task 1


def sum_of_squares_here(module: ModuleType, numbers: list[int]) -> list[Any]:
    return [plain(module.sum_of_squares(n)) for n in numbers]


def sum_of_squares_in_workers(module: ModuleType, numbers: list[int]) -> dict[str, Any]:
    """Send the graded sum_of_squares to a pool of the scenario's own, as a worker process would get it."""
    module.sum_of_squares(0)  # a TODO still there shows here, with its own name
    # Not closed here: Pool.terminate() can hang as workers go idle; the sandbox kills them all.
    pool = multiprocessing.Pool(2)
    try:
        values = pool.map_async(module.sum_of_squares, numbers).get(timeout=WAIT)
    except multiprocessing.TimeoutError:
        return {"kind": "silent"}
    except Exception as exc:  # cannot be pickled, or failed in the worker: the fact to report
        return {"kind": "raised", "error": error_fact(exc)}
    return {"kind": "ok", "values": plain(values)}


# ---------------------------------------------------------------- task 2


def _answer(function: Callable[..., Any], *args: Any) -> dict[str, Any]:
    call = call_with_deadline(function, *args)
    return {"outcome": call.outcome, "value": plain(call.value), "error": call.facts()["error"]}


def choose_with_cpus(module: ModuleType, cases: list[list[int]], machine_cpus: int) -> list[dict[str, Any]]:
    """choose_pool_size(n_tasks, cpus) for each case, on a machine that pretends to have machine_cpus CPUs."""
    module.choose_pool_size(1, 1)  # a TODO still there shows here, with its own name
    with _machine_with_cpus(machine_cpus, module):
        return [_answer(module.choose_pool_size, n_tasks, cpus) for n_tasks, cpus in cases]


def choose_without_cpus(module: ModuleType, task_counts: list[int], pretend: list[Any]) -> dict[str, Any]:
    """choose_pool_size(n) and choose_pool_size(n, None), on this machine and on pretend ones."""
    choose = module.choose_pool_size
    choose(1, 1)  # a TODO still there shows here, with its own name

    def answers() -> list[dict[str, Any]]:
        return [{"n_tasks": n, "default": _answer(choose, n), "none": _answer(choose, n, None)} for n in task_counts]

    facts: dict[str, Any] = {"cpu_count": os.cpu_count(), "answers": answers(), "pretend": []}
    for count in pretend:
        with _machine_with_cpus(count, module):
            facts["pretend"].append({"cpu_count": count, "answers": answers()})
    return facts


# ---------------------------------------------------------------- task 3


def map_at_barrier(module: ModuleType, processes: int, count: int, wait: float, pretend_cpus: int) -> dict[str, Any]:
    """parallel_map over count tasks that all wait at one barrier of count parties."""
    with multiprocessing.Manager() as manager:
        barrier = manager.Barrier(count, timeout=wait)
        with _machine_with_cpus(pretend_cpus, module):
            items = [(index, barrier) for index in range(count)]
            origin = time.monotonic()
            return {**_watched_call(module.parallel_map, meet_at_barrier, items, processes), "origin": origin}


def map_counting_workers(
    module: ModuleType, processes: int | None, count: int, pretend_cpus: int, pass_processes: bool = True
) -> dict[str, Any]:
    """parallel_map on a pretend machine: how many processes it started, and which of them did the work.

    With pass_processes false, processes is left out of the call (its default).
    """
    with tempfile.TemporaryDirectory() as folder, _machine_with_cpus(pretend_cpus, module):
        task = functools.partial(held, folder, count, square_where)
        args = (task, list(range(count))) + ((processes,) if pass_processes else ())
        facts = _watched_call(module.parallel_map, *args)
    value = facts["call"]["value"]
    results = value if isinstance(value, list) else []
    facts["worker_pids"] = sorted({r["pid"] for r in results if isinstance(r, dict) and isinstance(r.get("pid"), int)})
    return facts


def map_finishing_backwards(module: ModuleType, count: int, wait: float) -> dict[str, Any]:
    """parallel_map with processes=count over items that finish last to first (count CPUs, whatever the machine)."""
    with multiprocessing.Manager() as manager:
        finished = [manager.Event() for _ in range(count)]
        finish_order = manager.list()
        deadline = time.time() + wait
        items = [(index, finished, finish_order, deadline) for index in range(count)]
        with _machine_with_cpus(count, module):
            facts = _watched_call(module.parallel_map, finish_after_next, items, count)
        facts["finish_order"] = list(finish_order) if facts["call"]["outcome"] == RETURNED else None
    return facts


def map_then_look_around(module: ModuleType, processes: int, count: int) -> dict[str, Any]:
    """parallel_map, then what is still running in this very process the moment it has returned."""
    facts = _watched_call(module.parallel_map, square_where, list(range(count)), processes)
    value = facts["call"]["value"]
    results = value if isinstance(value, list) else []
    pids = {r["pid"] for r in results if isinstance(r, dict) and isinstance(r.get("pid"), int)} - {os.getpid()}
    facts["workers_still_running"] = sorted(pid for pid in pids if is_running(pid))
    return facts


def map_that_raises(module: ModuleType, processes: int) -> dict[str, Any]:
    """parallel_map of a function that raises for one item: what reached the caller, and what still runs."""
    with tempfile.TemporaryDirectory() as folder, _asking(folder):
        return _watched_call(module.parallel_map, functools.partial(fail_on_two, folder), [0, 1, 2, 3], processes)


def _generated(values: list[Any]) -> Iterator[Any]:
    yield from values


def map_any_iterable(module: ModuleType) -> dict[str, Any]:
    """parallel_map called again and again in one process: items from a generator, no items, falsy and equal
    items with another pool size, results bigger than a pipe holds.

    A call that hangs ends the scenario: the calls after it are left out.
    """
    calls: dict[str, tuple[Callable[[Any], Any], Iterable[Any], int]] = {
        "generator": (abs, _generated([-3, 0, -3, 5]), 2),
        "empty": (abs, [], 2),
        "falsy": (repr, [0, "", None, 0, ""], 3),
        "big": (big_result, [1, 2, 3, 4], 2),
    }
    facts: dict[str, Any] = {"cpu_count": ANY_MACHINE}
    for name, (func, items, processes) in calls.items():
        with tempfile.TemporaryDirectory() as folder, _machine_with_cpus(ANY_MACHINE, module):
            if name == "falsy":  # its workers are counted
                assert isinstance(items, list)  # as calls says
                func = functools.partial(held, folder, len(items), func)
            watched = _watched_call(module.parallel_map, func, items, processes)
        value = watched["call"]["value"]
        if name == "big" and isinstance(value, list):  # only the lengths travel back: the results are 400 KB
            watched["call"]["value"] = [len(v) if isinstance(v, str) else plain(v) for v in value]
        facts[name] = watched
        if watched["call"]["outcome"] == HUNG:
            break
    return facts


# ---------------------------------------------------------------- task 4


# Under fork, workers inherit the stand-in in the graded module's place: they
# find the graded sum_of_squares here. Under spawn and forkserver a worker
# imports the graded module afresh, with its own sum_of_squares.
_graded_sum_of_squares: dict[str, Callable[[int], Any]] = {}


def _sum_of_squares_of(module_name: str) -> Callable[[int], Any]:
    if module_name in _graded_sum_of_squares:
        return _graded_sum_of_squares[module_name]
    return importlib.import_module(module_name).sum_of_squares


def sum_of_squares_backwards(module_name: str, folder: str, numbers: list[int], n: int) -> Any:
    """Stand-in for sum_of_squares: n's task finishes only after the next number's task (CHAIN s at most)."""
    index = numbers.index(n)
    broken = os.path.join(folder, "broken")  # a task waited in vain: the tasks do not all run at once
    if index + 1 < len(numbers) and not os.path.exists(broken):
        following = os.path.join(folder, f"done-{index + 1}")
        deadline = time.monotonic() + CHAIN
        while not os.path.exists(following) and not os.path.exists(broken):
            if time.monotonic() > deadline:
                _touch(broken)
            time.sleep(0.005)
    result = _sum_of_squares_of(module_name)(n)
    _touch(os.path.join(folder, f"done-{index}"))
    return result


def sum_of_squares_held(module_name: str, folder: str, count: int, n: int) -> Any:
    """Stand-in for sum_of_squares: stays until count tasks have started (HOLD s at most), then works n out."""
    _held(folder, count)
    return _sum_of_squares_of(module_name)(n)


@contextlib.contextmanager
def _sum_of_squares_replaced(module: ModuleType, stand_in: Callable[..., Any], *args: Any) -> Iterator[None]:
    """The graded module's sum_of_squares is stand_in(module name, a fresh folder, *args, n) while active.

    Not when the graded one cannot travel to a worker by its name (a lambda,
    a function made inside another): that mistake must show as it is.
    """
    original = module.sum_of_squares
    try:
        pickle.dumps(original)
    except Exception:
        yield
        return
    with tempfile.TemporaryDirectory() as folder:
        _graded_sum_of_squares[module.__name__] = original
        replacement = functools.partial(stand_in, module.__name__, folder, *args)
        # The ignores: typeshed's ModuleType lets any attribute be read, none be set.
        module.sum_of_squares = replacement  # type: ignore[attr-defined]
        try:
            yield
        finally:
            module.sum_of_squares = original  # type: ignore[attr-defined]
            del _graded_sum_of_squares[module.__name__]


def _parallel_sums(module: ModuleType, numbers: list[int]) -> Any:
    try:
        return module.parallel_sum_of_squares(numbers)
    except NotImplementedError as exc:
        # RemoteTraceback: how a pool passes on a worker's traceback; typeshed leaves it out.
        if isinstance(exc.__cause__, multiprocessing.pool.RemoteTraceback):  # type: ignore[attr-defined]
            _sum_of_squares_of(module.__name__)(0)  # the TODO left is in sum_of_squares: name it
        raise


def parallel_sums(module: ModuleType, inputs: list[list[int]]) -> list[dict[str, Any]]:
    """parallel_sum_of_squares for each input, beside the graded sum_of_squares run here, one by one.

    Stops at the first call that did not return: the facts end with it.
    """
    facts = []
    for numbers in inputs:
        # As many CPUs as numbers: a pool of choose_pool_size(len(numbers)) then runs every task at once.
        with (
            _machine_with_cpus(max(1, len(numbers)), module),
            _sum_of_squares_replaced(module, sum_of_squares_backwards, numbers),
        ):
            watched = _watched_call(_parallel_sums, module, numbers)
        watched.update(numbers=numbers, one_by_one=[plain(module.sum_of_squares(n)) for n in numbers])
        facts.append(watched)
        if watched["call"]["outcome"] != RETURNED:
            break
    return facts


def parallel_sums_watched(module: ModuleType, lengths: list[int], pretend_cpus: int) -> list[dict[str, Any]]:
    """parallel_sum_of_squares on a pretend machine: the processes it started, and what was left running.

    Stops at the first call that did not return: the facts end with it.
    """
    facts = []
    for length in lengths:
        numbers = [1000 + 7 * index for index in range(length)]
        with _machine_with_cpus(pretend_cpus, module):
            with _sum_of_squares_replaced(module, sum_of_squares_held, length):
                watched = _watched_call(_parallel_sums, module, numbers)
            wanted = module.choose_pool_size(length)
        value = watched["call"]["value"]
        watched.update(
            length=length,
            cpu_count=pretend_cpus,
            choose_pool_size=plain(wanted),
            result_length=len(value) if isinstance(value, list) else None,
        )
        facts.append(watched)
        if watched["call"]["outcome"] != RETURNED:
            break
    return facts
