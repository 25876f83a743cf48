"""Scenarios for exercise 2 (pool), run inside the sandbox.

Each scenario takes the graded module first, drives it, and returns plain
facts (JSON data) for the hidden test to judge. The functions that pool
workers run are module-level functions here, so that every start method can
find them by name. Every blocking call has a timeout.

Evidence used, and why:
- Tasks that run at the same time meet at a Manager barrier (a plain
  multiprocessing.Barrier cannot travel inside a task's arguments): it opens
  only when that many tasks wait on it at once.
- Order: each task waits for the next item's task to finish, so the items
  finish last to first; a result list in input order then comes from pool.map
  keeping the order, not from luck.
- Pool size: the scenario pretends the machine has some number of CPUs
  (os.cpu_count is patched in this process only), so that a pool sized from
  the CPU count instead of the asked size shows, on any machine; task 4 also
  records the size of every Pool created during the call.
- Closing: multiprocessing.active_children() right after the call, and the
  ResourceWarning that a pool left to the garbage collector emits.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.pool
import os
import time
import warnings
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

WAIT = 20.0  # seconds a blocking call may wait when nothing is wrong: long, a loaded machine is slow


# ---------------------------------------------------------------- helpers


def _plain(value: Any, depth: int = 0) -> Any:
    """value as JSON data: containers converted, anything else shown by repr."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else repr(value)
    if depth < 4 and isinstance(value, (list, tuple)):
        return [_plain(item, depth + 1) for item in value]
    if depth < 4 and isinstance(value, dict):
        return {str(key): _plain(item, depth + 1) for key, item in value.items()}
    return repr(value)


def _attempt(function: Callable[..., Any], *args: Any) -> dict[str, Any]:
    """Call function(*args); return {"value": ...} or {"raised": "Type: message"}."""
    try:
        return {"value": _plain(function(*args))}
    except Exception as exc:  # the exception is the fact to report
        return {"raised": f"{type(exc).__name__}: {exc}"}


def _is_running(pid: int) -> bool:
    """Whether pid is a live process (a zombie has finished: it is not)."""
    try:
        with open(f"/proc/{pid}/stat") as stream:
            stat = stream.read()
    except OSError:
        return False
    fields = stat.rpartition(")")[2].split()
    return bool(fields) and fields[0] not in ("Z", "X")


@contextlib.contextmanager
def _pretend_cpu_count(count: int | None, module: ModuleType) -> Iterator[None]:
    """Make os.cpu_count() (and os.process_cpu_count(), where it exists) return count, in this process.

    A graded module that did `from os import cpu_count` holds its own name for
    the function: that name is replaced too.
    """

    def pretend() -> int | None:
        return count

    originals = {name: getattr(os, name) for name in ("cpu_count", "process_cpu_count") if hasattr(os, name)}
    patched = [(os, name, original) for name, original in originals.items()]
    patched += [
        (module, name, value)
        for name, value in vars(module).items()
        if any(value is original for original in originals.values())
    ]
    for owner, name, _ in patched:
        setattr(owner, name, pretend)
    try:
        yield
    finally:
        for owner, name, original in patched:
            setattr(owner, name, original)


@contextlib.contextmanager
def _recording_pools() -> Iterator[list[dict[str, Any]]]:
    """Record the kind and the workers of every Pool (ThreadPool included) created in this process."""
    pools: list[dict[str, Any]] = []
    original = multiprocessing.pool.Pool.__init__

    def recording_init(self: multiprocessing.pool.Pool, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        workers = list(getattr(self, "_pool", []))
        pools.append(
            {
                "kind": type(self).__name__,
                "workers": len(workers),
                "of_processes": all(isinstance(w, multiprocessing.process.BaseProcess) for w in workers),
            }
        )

    multiprocessing.pool.Pool.__init__ = recording_init
    try:
        yield pools
    finally:
        multiprocessing.pool.Pool.__init__ = original


@contextlib.contextmanager
def _catching_unclosed_pools() -> Iterator[list[str]]:
    """Collect the ResourceWarnings of pools that were left to the garbage collector.

    A recorded warning holds its pool (the warning's source), so such a pool's
    workers also stay alive until the sandbox ends, and show as left running.
    """
    messages: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        yield messages
        messages.extend(
            str(warning.message)
            for warning in caught
            if issubclass(warning.category, ResourceWarning) and "pool" in str(warning.message)
        )


def _left_running(ignore: set[int] = frozenset()) -> list[int]:
    """Pids of this process's children that are still alive (active_children also reaps the dead)."""
    return [child.pid for child in multiprocessing.active_children() if child.pid not in ignore]


# ---------------------------------------------------------------- task 1


def sum_of_squares_here(module: ModuleType, numbers: list[int]) -> list[Any]:
    return [_plain(module.sum_of_squares(n)) for n in numbers]


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
        return {"kind": "raised", "error": f"{type(exc).__name__}: {exc}"}
    return {"kind": "ok", "values": _plain(values)}


# ---------------------------------------------------------------- task 2


def choose_with_cpus(module: ModuleType, cases: list[list[int]]) -> list[dict[str, Any]]:
    module.choose_pool_size(1, 1)  # a TODO still there shows here, with its own name
    return [_attempt(module.choose_pool_size, n_tasks, cpus) for n_tasks, cpus in cases]


def choose_without_cpus(module: ModuleType, task_counts: list[int], pretend: list[Any]) -> dict[str, Any]:
    """choose_pool_size(n) and choose_pool_size(n, None), on this machine and on pretend ones."""
    choose = module.choose_pool_size
    choose(1, 1)  # a TODO still there shows here, with its own name

    def answers() -> list[dict[str, Any]]:
        return [{"n_tasks": n, "default": _attempt(choose, n), "none": _attempt(choose, n, None)} for n in task_counts]

    facts: dict[str, Any] = {"cpu_count": os.cpu_count(), "answers": answers(), "pretend": []}
    for count in pretend:
        with _pretend_cpu_count(count, module):
            facts["pretend"].append({"cpu_count": count, "answers": answers()})
    return facts


# ---------------------------------------------------------------- task 3


def meet_at_barrier(item: tuple[int, Any]) -> dict[str, Any]:
    """Pool task: wait until all the other tasks run too; say where this one ran."""
    index, barrier = item
    try:
        barrier.wait()
        met = True
    except Exception:  # BrokenBarrierError: the others were not running at the same time
        met = False
    return {"index": index, "pid": os.getpid(), "met": met}


def map_at_barrier(module: ModuleType, processes: int, count: int, wait: float, pretend_cpus: int) -> dict[str, Any]:
    """parallel_map over count tasks that all wait at one barrier of count parties."""
    with multiprocessing.Manager() as manager:
        barrier = manager.Barrier(count, timeout=wait)
        with _pretend_cpu_count(pretend_cpus, module):
            results = module.parallel_map(meet_at_barrier, [(index, barrier) for index in range(count)], processes)
    return {"caller_pid": os.getpid(), "type": type(results).__name__, "results": _plain(results)}


def map_recording_pools(module: ModuleType, processes: int, count: int, pretend_cpus: int) -> dict[str, Any]:
    """parallel_map on a pretend machine: the pools it made and the workers that did the work."""
    with _pretend_cpu_count(pretend_cpus, module), _recording_pools() as pools:
        results = module.parallel_map(square_where, list(range(count)), processes)
    pids = sorted({r["pid"] for r in results if isinstance(r, dict)}) if isinstance(results, list) else []
    return {"caller_pid": os.getpid(), "pools": pools, "worker_pids": pids}


def finish_after_next(item: tuple[int, list[Any], Any, float]) -> dict[str, Any]:
    """Pool task: finish only after the task of the next item has finished (or at the deadline)."""
    index, finished, finish_order, deadline = item
    if index + 1 < len(finished):
        finished[index + 1].wait(max(0.0, deadline - time.time()))
    finish_order.append(index)
    finished[index].set()
    return {"index": index, "pid": os.getpid()}


def map_finishing_backwards(module: ModuleType, count: int, wait: float) -> dict[str, Any]:
    """parallel_map with processes=count over items that finish last to first."""
    with multiprocessing.Manager() as manager:
        finished = [manager.Event() for _ in range(count)]
        finish_order = manager.list()
        deadline = time.time() + wait
        items = [(index, finished, finish_order, deadline) for index in range(count)]
        results = module.parallel_map(finish_after_next, items, count)
        order = list(finish_order)
    return {"type": type(results).__name__, "results": _plain(results), "finish_order": order}


def square_where(x: int) -> dict[str, int]:
    """Pool task: x squared, and where it was computed."""
    return {"square": x * x, "pid": os.getpid()}


def map_then_look_around(module: ModuleType, processes: int, count: int) -> dict[str, Any]:
    """parallel_map, then what is still alive the moment it has returned."""
    with _catching_unclosed_pools() as unclosed:
        results = module.parallel_map(square_where, list(range(count)), processes)
        left_running = _left_running()
    worker_pids = set()
    if isinstance(results, list):
        worker_pids = {r["pid"] for r in results if isinstance(r, dict) and isinstance(r.get("pid"), int)}
    worker_pids.discard(os.getpid())
    return {
        "type": type(results).__name__,
        "results": _plain(results),
        "left_running": left_running,
        "workers_still_running": sorted(pid for pid in worker_pids if _is_running(pid)),
        "unclosed_pools": unclosed,
    }


# ---------------------------------------------------------------- task 4


def _parallel_sums(module: ModuleType, numbers: list[int]) -> Any:
    try:
        return module.parallel_sum_of_squares(numbers)
    except NotImplementedError as exc:
        if isinstance(exc.__cause__, multiprocessing.pool.RemoteTraceback):
            module.sum_of_squares(0)  # the TODO left is in sum_of_squares: name it
        raise


def parallel_sums(module: ModuleType, inputs: list[list[int]]) -> list[dict[str, Any]]:
    """parallel_sum_of_squares for each input, beside the graded sum_of_squares run here, one by one."""
    facts = []
    for numbers in inputs:
        result = _parallel_sums(module, numbers)
        facts.append(
            {
                "numbers": numbers,
                "type": type(result).__name__,
                "result": _plain(result),
                "one_by_one": [_plain(module.sum_of_squares(n)) for n in numbers],
            }
        )
    return facts


def parallel_sums_watched(module: ModuleType, lengths: list[int], pretend_cpus: int) -> list[dict[str, Any]]:
    """parallel_sum_of_squares on a pretend machine: the pools it made, and what was left running."""
    facts = []
    for length in lengths:
        numbers = [1000 + 7 * index for index in range(length)]
        with _pretend_cpu_count(pretend_cpus, module):
            with _recording_pools() as pools, _catching_unclosed_pools() as unclosed:
                result = _parallel_sums(module, numbers)
                left_running = _left_running()
            wanted = module.choose_pool_size(length)
        facts.append(
            {
                "length": length,
                "cpu_count": pretend_cpus,
                "choose_pool_size": _plain(wanted),
                "pools": pools,
                "left_running": left_running,
                "unclosed_pools": unclosed,
                "result_length": len(result) if isinstance(result, list) else None,
            }
        )
    return facts
