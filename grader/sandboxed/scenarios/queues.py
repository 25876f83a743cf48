"""Scenarios for exercise 4 (queues), run inside the sandbox.

Each scenario takes the graded module first, drives it, and returns plain
facts (JSON data) for the hidden test to judge. What child processes run is a
module-level function here or in the graded module, so that every start
method finds it by name. Every blocking call has a timeout.

Evidence used, and why:
- Exactly once: every item has an id, and what handles it returns (or
  records) the id with its pid, so the test can list the missing, the
  duplicated and the items handled in the caller's process.
- Several consumers: the handler of each consumer's first item waits, at a
  rendezvous of files in a private folder, until every consumer has taken an
  item. A consumer that holds an item leaves the next items to the others,
  so with correct code every consumer takes part, and with fewer consumers
  than asked the rendezvous gives up after a few seconds and says so.
- Hangs: a graded function that should return promptly is called in a
  daemon thread and waited for with join(DEADLINE). When it is still running
  by then, the scenario looks at the children with is_alive() and at what
  the producers and handlers recorded, and reports a stuck call as a fact, so
  the test can name the mistake (a consumer without a sentinel, a producer
  joined before its queue was drained, an item never marked done) instead
  of a bare timeout.
- Order of sentinels: the producers take turns: each one flushes its items
  and its sentinel into the pipe (close() and join_thread()) before the next
  one starts putting, so a collector that stops at the first sentinel surely
  misses items (and, with megabytes, leaves a producer unable to end).
"""

from __future__ import annotations

import functools
import importlib
import multiprocessing
import os
import queue
import tempfile
import threading
import time
import warnings
from types import ModuleType
from typing import Any

from grader.sandboxed.scenarios.facts import drain, error_fact

# Forking from the thread that runs the graded code is safe here (nothing else holds a lock
# the child needs); Python 3.12+ warns about it anyway.
warnings.filterwarnings("ignore", message=r".*multi-threaded.*fork", category=DeprecationWarning)

WAIT = 20.0  # seconds any blocking call here may wait for something a correct solution delivers
DEADLINE = 8.0  # seconds a graded function is given before it counts as stuck (a correct one takes about 1)
RENDEZVOUS_WAIT = 5.0  # seconds a consumer waits at the rendezvous for the others
STOP_WAIT = 5.0  # seconds a consumer is given to end once its sentinel is on the queue


# --- what runs in child processes ----------------------------------------------------------------------------------


def handle_item(item: Any) -> dict[str, Any]:
    """Handler for consume: say which item it was and where it was handled."""
    return {"id": item, "pid": os.getpid()}


_met_already: list[bool] = []  # per process: this consumer has been to the rendezvous


def handle_at_rendezvous(item: tuple[int, str, int]) -> dict[str, Any]:
    """Handler for process_all: a consumer's first item waits until `consumers` processes have one."""
    number, folder, consumers = item
    met = None
    if not _met_already:
        _met_already.append(True)
        open(os.path.join(folder, str(os.getpid())), "w").close()
        deadline = time.monotonic() + RENDEZVOUS_WAIT
        while len(os.listdir(folder)) < consumers and time.monotonic() < deadline:
            time.sleep(0.01)
        met = len(os.listdir(folder)) >= consumers
    return {"id": number, "pid": os.getpid(), "met": met}


def run_graded(module_name: str, function: str, args: tuple, errors: Any) -> None:
    """Child target: call a function of the graded module; report what it raised on errors."""
    try:
        getattr(importlib.import_module(module_name), function)(*args)
    except BaseException as exc:  # the error is the fact to report
        errors.put(error_fact(exc))
        raise


def produce_big(source: tuple[int, int, int, Any, list[Any]], results: Any) -> None:
    """Producer for collect: once the previous producer has flushed, put `chunks` chunks of `size` bytes and None.

    Taking turns makes the order of the sentinels certain: a collector that
    stops at the first None leaves every later producer's data unread.
    put_everything[index] becomes this producer's pid once its items are on
    the queue (not yet in the pipe: this process ends only when they are).
    """
    index, chunks, size, put_everything, flushed = source
    if index > 0 and not flushed[index - 1].wait(WAIT):
        return
    for sequence in range(chunks):
        results.put({"producer": index, "seq": sequence, "pid": os.getpid(), "data": _chunk(index, sequence, size)})
    results.put(None)
    put_everything[index] = os.getpid()
    results.close()
    results.join_thread()  # returns once every item is in the pipe: only a reader makes room
    flushed[index].set()


def produce_after_first(source: tuple[int, int, Any], results: Any) -> None:
    """Producer for collect: producer 0 goes first and flushes; the others put only once it has."""
    index, count, first_flushed = source
    if index > 0 and not first_flushed.wait(WAIT):
        return
    for sequence in range(count):
        results.put({"producer": index, "seq": sequence, "pid": os.getpid()})
    results.put(None)
    if index == 0:
        results.close()
        results.join_thread()  # producer 0's sentinel is in the pipe before any item of the others
        first_flushed.set()


def put_all(tasks: Any, items: list[Any]) -> None:
    """Put every item; the process ends only once its queue's feeder has written them all to the pipe."""
    for item in items:
        tasks.put(item)


def mark_handled(counts: Any, pids: Any, delay: float, item: int) -> None:
    """Handler for work: take `delay` seconds, then count item as handled here."""
    time.sleep(delay)
    with counts.get_lock():
        counts[item] += 1
    pids[item] = os.getpid()


def reference_work(tasks: Any, handle: Any) -> None:
    """A correct worker, for the test of handle_all alone."""
    while True:
        item = tasks.get()
        try:
            if item is None:
                return
            handle(item)
        finally:
            tasks.task_done()


# --- helpers -------------------------------------------------------------------------------------------------------


def _chunk(index: int, sequence: int, size: int) -> bytes:
    return bytes([(index * 31 + sequence * 7 + 1) % 256]) * size


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    return repr(value)


def _with_deadline(function: Any, *args: Any, after: Any = None, hopeful: Any = None) -> dict[str, Any]:
    """Call function(*args) in a daemon thread and wait at most DEADLINE seconds for it.

    after(), if given, runs in that thread the moment function returns, to
    record what the caller could see then. hopeful(), if given, ends the
    wait early when it turns false (the processes that could finish the call
    are gone). NotImplementedError goes on up, so that the student reads
    "not written yet".
    """
    outcome: dict[str, Any] = {}

    def call() -> None:
        begun = time.monotonic()
        try:
            outcome["value"] = function(*args)
            if after is not None:
                outcome["after"] = after()
        except BaseException as exc:  # the error is the fact to report
            outcome["error"] = exc
        outcome["seconds"] = time.monotonic() - begun

    thread = threading.Thread(target=call, name="graded-call", daemon=True)
    thread.start()
    give_up = time.monotonic() + DEADLINE
    while thread.is_alive() and time.monotonic() < give_up:
        thread.join(0.1)
        if hopeful is not None and not hopeful():
            thread.join(0.5)
            break
    if thread.is_alive():
        return {"returned": False, "deadline": DEADLINE}
    error = outcome.get("error")
    if isinstance(error, NotImplementedError):
        raise error
    facts = {"returned": error is None, "seconds": outcome["seconds"], "after": outcome.get("after")}
    if error is not None:
        facts["raised"] = error_fact(error)
    return facts | {"value": outcome.get("value")}


def _alive_children() -> int:
    return sum(child.is_alive() for child in multiprocessing.active_children())


def _drain(results: Any, count: int, process: multiprocessing.Process) -> list[Any]:
    """Up to count items, for as long as process lives to send them."""
    got: list[Any] = []
    give_up = time.monotonic() + WAIT
    while len(got) < count and time.monotonic() < give_up:
        try:
            got.append(results.get(timeout=0.2))
        except queue.Empty:
            if not process.is_alive():
                break
    return got


# --- task 1: consume -----------------------------------------------------------------------------------------------


def _start_consumer(module: ModuleType, tasks: Any, results: Any, errors: Any) -> multiprocessing.Process:
    consumer = multiprocessing.Process(
        target=run_graded, args=(module.__name__, "consume", (tasks, results, handle_item), errors)
    )
    consumer.start()
    return consumer


def consume_until_sentinel(module: ModuleType, count: int) -> dict[str, Any]:
    """A consumer process over count items, the sentinel, and one more item after it."""
    tasks, results, errors = multiprocessing.Queue(), multiprocessing.Queue(), multiprocessing.Queue()
    # Every item is in the pipe before the consumer starts (a putter that has ended has flushed them):
    # a consumer that stops when empty() says so then fails only the test of the gap, and always does.
    putter = multiprocessing.Process(target=put_all, args=(tasks, [*range(count), None, "after-the-sentinel"]))
    putter.start()
    putter.join(WAIT)
    consumer = _start_consumer(module, tasks, results, errors)
    handled = _drain(results, count, consumer)
    consumer.join(STOP_WAIT)
    handled += drain(results)
    try:
        left = tasks.get(timeout=1.0)
    except queue.Empty:
        left = "nothing"
    return {
        "caller_pid": os.getpid(),
        "consumer_pid": consumer.pid,
        "handled": _plain(handled),
        "ended": not consumer.is_alive(),
        "exitcode": consumer.exitcode,
        "left_on_queue": _plain(left),
        "errors": drain(errors),
    }


def consume_late_items(module: ModuleType, count: int) -> dict[str, Any]:
    """A consumer that finds the queue empty for a while after its first item."""
    tasks, results, errors = multiprocessing.Queue(), multiprocessing.Queue(), multiprocessing.Queue()
    tasks.put(0)
    consumer = _start_consumer(module, tasks, results, errors)
    first = _drain(results, 1, consumer)
    consumer.join(0.8)  # a consumer that stops at an empty queue is gone by now
    ended_early = not consumer.is_alive()
    for item in range(1, count):
        tasks.put(item)
    tasks.put(None)
    handled = first + _drain(results, count - 1, consumer)
    consumer.join(STOP_WAIT)
    handled += drain(results)
    return {
        "caller_pid": os.getpid(),
        "handled": _plain(handled),
        "ended_early": ended_early,
        "ended": not consumer.is_alive(),
        "errors": drain(errors),
    }


# --- task 2: process_all -------------------------------------------------------------------------------------------


def process_all_rendezvous(module: ModuleType, count: int, consumers: int) -> dict[str, Any]:
    folder = tempfile.mkdtemp(prefix="rendezvous-")
    items = [(number, folder, consumers) for number in range(count)]
    facts = _with_deadline(module.process_all, items, handle_at_rendezvous, consumers, after=_alive_children)
    value = facts.pop("value", None)
    return {
        "caller_pid": os.getpid(),
        **facts,
        "results": _plain(value) if isinstance(value, (list, tuple)) else None,
        "returned_type": type(value).__name__,
        "alive_after": facts["after"] if facts["returned"] else None,
        "alive_now": _alive_children(),
        "at_rendezvous": len(os.listdir(folder)),
    }


# --- task 3: collect -----------------------------------------------------------------------------------------------


def _summary(value: Any, check_data: bool) -> Any:
    if not isinstance(value, (list, tuple)):
        return None
    items = []
    for item in value:
        if not isinstance(item, dict):
            items.append({"odd": repr(item)[:80]})
            continue
        entry = {key: item.get(key) for key in ("producer", "seq", "pid")}
        if check_data:
            data = item.get("data")
            entry["intact"] = isinstance(data, bytes) and data == _chunk(item["producer"], item["seq"], len(data))
            entry["size"] = len(data) if isinstance(data, bytes) else None
        items.append(entry)
    return items


def collect_big(module: ModuleType, producers: int, chunks: int, size: int) -> dict[str, Any]:
    """Producers that put more than a pipe holds: the collector must drain before it joins."""
    put_everything = multiprocessing.Array("i", producers)
    flushed = [multiprocessing.Event() for _ in range(producers)]
    sources = [(index, chunks, size, put_everything, flushed) for index in range(producers)]
    facts = _with_deadline(module.collect, produce_big, sources)
    value = facts.pop("value", None)
    alive = {child.pid for child in multiprocessing.active_children() if child.is_alive()}
    return {
        "caller_pid": os.getpid(),
        **facts,
        "items": _summary(value, check_data=True),
        "returned_type": type(value).__name__,
        "stuck_with_data": sum(pid in alive for pid in put_everything if pid),
        "alive_now": len(alive),
    }


def collect_staggered(module: ModuleType, producers: int, count: int) -> dict[str, Any]:
    """Producer 0's sentinel arrives before every item of the others."""
    first_flushed = multiprocessing.Event()
    sources = [(index, count, first_flushed) for index in range(producers)]
    facts = _with_deadline(module.collect, produce_after_first, sources)
    value = facts.pop("value", None)
    return {
        "caller_pid": os.getpid(),
        **facts,
        "items": _summary(value, check_data=False),
        "returned_type": type(value).__name__,
        "alive_now": _alive_children(),
    }


# --- task 4: JoinableQueue -----------------------------------------------------------------------------------------


def _stop_workers(tasks: Any, workers: list[multiprocessing.Process]) -> list[Any]:
    for _ in workers:
        tasks.put(None)
    for worker in workers:
        worker.join(WAIT)
    return [worker.exitcode for worker in workers]


def join_after_work(module: ModuleType, count: int, workers: int, delay: float) -> dict[str, Any]:
    """The graded work() in worker processes; the scenario waits with tasks.join()."""
    tasks, errors = multiprocessing.JoinableQueue(), multiprocessing.Queue()
    counts, pids = multiprocessing.Array("i", count), multiprocessing.Array("i", count)
    handle = functools.partial(mark_handled, counts, pids, delay)
    started = [
        multiprocessing.Process(target=run_graded, args=(module.__name__, "work", (tasks, handle), errors))
        for _ in range(workers)
    ]
    for worker in started:
        worker.start()
    for item in range(count):
        tasks.put(item)
    facts = _with_deadline(
        tasks.join, after=lambda: sum(counts), hopeful=lambda: any(worker.is_alive() for worker in started)
    )
    facts.pop("value", None)
    handled_by_deadline = sum(counts)
    exitcodes = _stop_workers(tasks, started) if facts["returned"] else None
    return {
        "caller_pid": os.getpid(),
        **facts,
        "count": count,
        "handled_at_join": facts.get("after"),
        "handled_by_deadline": handled_by_deadline,
        "counts": list(counts),
        "pids": list(pids),
        "exitcodes": exitcodes,
        "errors": drain(errors),
    }


def handle_all_waits(module: ModuleType, count: int, workers: int, delay: float) -> dict[str, Any]:
    """Correct workers; the graded handle_all puts the items and must wait until all are done."""
    tasks = multiprocessing.JoinableQueue()
    counts, pids = multiprocessing.Array("i", count), multiprocessing.Array("i", count)
    handle = functools.partial(mark_handled, counts, pids, delay)
    started = [multiprocessing.Process(target=reference_work, args=(tasks, handle)) for _ in range(workers)]
    for worker in started:
        worker.start()
    facts = _with_deadline(module.handle_all, tasks, list(range(count)), after=lambda: sum(counts))
    facts.pop("value", None)
    if facts["returned"]:
        _stop_workers(tasks, started)  # after the items: the workers end once every item is handled
    return {
        "count": count,
        **facts,
        "handled_at_return": facts.get("after"),
        "counts_later": list(counts),
    }
