"""Scenarios for exercise 4 (queues), run inside the sandbox.

Each scenario takes the graded module first, drives it, and returns plain
facts (JSON data) for the hidden test to judge. What child processes run is a
module-level function here or in the graded module, so that every start
method finds it by name. Every blocking call has a timeout, and a graded call
that should return is made with the kit's call_with_deadline, so that a hang
is a fact, reported with what the processes around it were doing.

Evidence used, and why:
- Exactly once: every item has an identity, and what handles it returns (or
  records) the item with its pid, so the test can list the missing, the
  duplicated and the items handled in the caller's process. Items include
  falsy values (0, "", [], {}, False) and duplicates.
- Arrival: a result of process_all, or an item of collect, records its own
  arrival in the scenario's process when it is unpickled there (Arrival), so
  the scenario knows when the graded function has read everything.
- Processes started: every Process.start() in this process during the call is
  recorded (StartRecorder), so "consumers processes" is counted, not guessed.
  os.cpu_count() is faked (1, then 16) so that a count taken from the machine
  shows on any machine.
- Several consumers: the handler of each consumer's first item waits, at a
  rendezvous of files in a private folder, until every consumer has taken an
  item. A consumer that holds an item leaves the next items to the others,
  so with correct code every consumer takes part.
- "When it returns, every consumer (producer) has ended": the grader's own
  code holds those processes at their very end (after consume returned, after
  the producer put its None) until the scenario releases them. A function that
  returns while they are held did not wait for them; one that waits is
  released once it has read everything and is still waiting GRACE seconds
  later.
- Drain before join: results of 100 KB each, more than a pipe holds, so a
  process that put one cannot end until it has been read: joining first
  deadlocks every time.
- Accounting of JoinableQueue: the tasks queue of work() is a JoinableQueue
  that logs every get() and task_done() (CountingQueue), and the handler logs
  every handle(item), each with its pid: the scenario replays them per worker
  and counts, for every item and every sentinel, whether it was marked done
  exactly once and only after it was handled. No timing is involved.
- handle_all: the handler of the last item waits until the scenario releases
  it, so a handle_all that returns before every item is done returns while it
  is held, every time. Where the test is about the items, not the waiting, the
  hold ends as soon as handle_all calls tasks.join() (or GRACE later), so that
  correct code does not wait for it.
- Late items: the queue stays empty LATE seconds after a consumer's first
  item; the later producers of collect start LATE_PRODUCER seconds after the
  first one's None; every other producer of collect waits QUIET_START seconds
  before its first item, as a slow start would, so that a collect that stops
  at the first quiet moment (a get() with a timeout taken for "all done")
  loses every collect check in every run, not only when the machine is slow.
"""

from __future__ import annotations

import functools
import importlib
import multiprocessing
import multiprocessing.process
import multiprocessing.queues
import os
import queue
import tempfile
import time
import warnings
from collections.abc import Iterable
from multiprocessing import util
from types import ModuleType
from typing import Any, cast

from grader.sandboxed.scenarios.kit import (
    AFTER_RELEASE,
    GRACE,
    HUNG,
    Called,
    call_with_deadline,
    drain,
    error_fact,
    fake_cpu_count,
    is_running,
    plain,
    receive,
    wait_until,
)

# Forking from the thread that runs the graded code is safe here (nothing else holds a lock
# the child needs); Python 3.12+ warns about it anyway.
warnings.filterwarnings("ignore", message=r".*multi-threaded.*fork", category=DeprecationWarning)

WAIT = 20.0  # seconds any blocking call here may wait for something a correct solution delivers
DEADLINE = 8.0  # seconds a graded function is given before it counts as stuck (a correct one takes about 1)
RENDEZVOUS_WAIT = 6.0  # seconds a consumer waits at the rendezvous for the others (only too few keep it waiting)
STOP_WAIT = 5.0  # seconds a process is given to end once its sentinel is on the queue
LATE = 3.0  # seconds the queue stays empty after a consumer's first item
LATE_PRODUCER = 2.5  # seconds the later producers of collect wait after the first one's None
QUIET_START = 1.5  # seconds the other producers of collect wait before their first item
BIG = 100 * 1024  # bytes in one big result: more than a pipe holds

ROUND_ONE = [1, 2, 0, 3, "", 4, [], 5, 5, {}, False, 6]  # falsy items, a duplicate
ROUND_TWO = ["b", 7, "b"]
WORK_ITEMS = [1, 0, "", 2, [], 3, 3, False, "x", 4, {}, 5]
HOLD = "the last item"


def same(a: Any, b: Any) -> bool:
    """Equal and of the same type: 0, False and 0.0 are different items here."""
    return type(a) is type(b) and a == b


# --- generic helpers (candidates for the kit) -----------------------------------------------------------------------


class StartRecorder:
    """Records every process started in this process, from any thread, while it is active.

    Counts what graded code started (not what it meant to start), whatever
    its style: Process, a context's Process, a Process subclass.
    """

    def __init__(self) -> None:
        self.started: list[multiprocessing.process.BaseProcess] = []
        self._original = multiprocessing.process.BaseProcess.start

    def __enter__(self) -> StartRecorder:
        recorder, original = self, self._original

        def start(self: multiprocessing.process.BaseProcess) -> None:
            original(self)
            recorder.started.append(self)

        multiprocessing.process.BaseProcess.start = start  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        multiprocessing.process.BaseProcess.start = self._original  # type: ignore[method-assign]

    def pids(self) -> list[int]:
        return [process.pid for process in self.started if process.pid is not None]

    def running(self) -> int:
        return sum(is_running(pid) for pid in self.pids())


ARRIVED: list[Any] = []  # in the scenario's process: what graded code has received so far


def _arrive(data: dict[str, Any]) -> dict[str, Any]:
    """Unpickling an Arrival: note it in the process that receives it, and become a plain dict."""
    ARRIVED.append(data.get("id"))
    return data


class Arrival(dict):
    """A dict that, when it comes out of a queue in another process, records that it arrived there."""

    def __reduce__(self) -> tuple:
        return (_arrive, (dict(self),))


def _touch(folder: str, name: str) -> None:
    open(os.path.join(folder, name), "w").close()


def _count(folder: str, prefix: str) -> int:
    return sum(name.startswith(prefix) for name in os.listdir(folder))


def _released(folder: str) -> bool:
    return os.path.exists(os.path.join(folder, "release"))


def _hold_at_exit(folder: str, linger: bool) -> None:
    """Finalizer of a consumer process: it has left consume; say so, and stay until released if asked."""
    _touch(folder, f"exit-{os.getpid()}")
    if linger:
        wait_until(lambda: _released(folder), WAIT)


def run_graded(module_name: str, function: str, args: tuple, errors: Any, began: Any = None) -> None:
    """Child target: call a function of the graded module; report what it raised on errors.

    began, a shared counter, if given, counts this process once the graded
    module is imported, just before the call.
    """
    try:
        graded = getattr(importlib.import_module(module_name), function)
        if began is not None:
            with began.get_lock():
                began.value += 1
        graded(*args)
    except BaseException as exc:  # the error is the fact to report
        errors.put({**error_fact(exc), "function": function})
        raise


def _call_facts(call: Called) -> dict[str, Any]:
    call.value, value = None, call.value  # a result list is summarised by each scenario, not sent whole
    facts = call.facts()
    call.value = value
    return facts


# --- task 1: consume -----------------------------------------------------------------------------------------------


def handle_item(item: Any) -> dict[str, Any]:
    """Handler for consume: say which item it was and where it was handled."""
    return {"id": item, "pid": os.getpid()}


def put_all(tasks: Any, items: list[Any]) -> None:
    """Put every item; the process ends only once its queue's feeder has written them all to the pipe."""
    for item in items:
        tasks.put(item)


def consume_twice(module_name: str, tasks: Any, results: Any, errors: Any) -> None:
    """Child target: the graded consume, twice in a row in this process; after each return, a marker."""
    try:
        consume = importlib.import_module(module_name).consume
        consume(tasks, results, handle_item)
        results.put({"returned": 1})
        consume(tasks, results, handle_item)
        results.put({"returned": 2})
    except BaseException as exc:  # the error is the fact to report
        errors.put({**error_fact(exc), "function": "consume"})
        raise


def _events(found: list[Any]) -> list[Any]:
    return [plain(entry) if isinstance(entry, dict) else {"odd": plain(entry)} for entry in found]


def consume_until_sentinel(module: ModuleType) -> dict[str, Any]:
    """consume called twice in one child: two rounds of items, each ended by None, then one more item."""
    tasks: multiprocessing.queues.Queue[Any] = multiprocessing.Queue()
    results: multiprocessing.queues.Queue[Any] = multiprocessing.Queue()
    errors: multiprocessing.queues.Queue[Any] = multiprocessing.Queue()
    # Every item is in the pipe before the consumer starts (a putter that has ended has flushed them):
    # a consumer that stops when empty() says so then fails only the test of late items, and always does.
    putter = multiprocessing.Process(
        target=put_all, args=(tasks, [*ROUND_ONE, None, *ROUND_TWO, None, "after-the-sentinel"])
    )
    putter.start()
    putter.join(WAIT)
    consumer = multiprocessing.Process(target=consume_twice, args=(module.__name__, tasks, results, errors))
    consumer.start()
    found: list[Any] = []
    expected = len(ROUND_ONE) + len(ROUND_TWO) + 2
    while len(found) < expected:
        # The first result may wait for the child to start; the others come at once, or not at all.
        entry = receive(results, STOP_WAIT if found else WAIT, alive=consumer.is_alive)
        if entry is None:
            break
        found.append(entry)
    consumer.join(STOP_WAIT)
    found += drain(results)
    try:
        left = plain(tasks.get(timeout=1.0))
    except queue.Empty:
        left = "nothing"
    return {
        "caller_pid": os.getpid(),
        "consumer_pid": consumer.pid,
        "round_one": plain(ROUND_ONE),
        "round_two": plain(ROUND_TWO),
        "events": _events(found),
        "ended": not consumer.is_alive(),
        "exitcode": consumer.exitcode,
        "left_on_queue": left,
        "errors": drain(errors),
    }


def consume_late_items(module: ModuleType) -> dict[str, Any]:
    """A consumer that finds the queue empty for LATE seconds after its first item."""
    tasks: multiprocessing.queues.Queue[Any] = multiprocessing.Queue()
    results: multiprocessing.queues.Queue[Any] = multiprocessing.Queue()
    errors: multiprocessing.queues.Queue[Any] = multiprocessing.Queue()
    late = ["late-1", "late-2", "late-3"]
    tasks.put("first")
    consumer = multiprocessing.Process(
        target=run_graded, args=(module.__name__, "consume", (tasks, results, handle_item), errors)
    )
    consumer.start()
    found = []
    first = receive(results, WAIT, alive=consumer.is_alive)
    if first is not None:
        found.append(first)
    # A consumer that stops at an empty queue, or gives up after a short get(timeout), is gone by then.
    ended_early = wait_until(lambda: not consumer.is_alive(), LATE)
    for item in late:
        tasks.put(item)
    tasks.put(None)
    while not ended_early and len(found) < 1 + len(late):
        entry = receive(results, STOP_WAIT, alive=consumer.is_alive)
        if entry is None:
            break
        found.append(entry)
    consumer.join(STOP_WAIT)
    found += drain(results)
    return {
        "caller_pid": os.getpid(),
        "late": LATE,
        "events": _events(found),
        "ended_early": ended_early,
        "ended": not consumer.is_alive(),
        "exitcode": consumer.exitcode,
        "errors": drain(errors),
    }


# --- task 2: process_all -------------------------------------------------------------------------------------------

_met_already: list[bool] = []  # per process: this consumer has been to the rendezvous


def handle_at_rendezvous(item: tuple[int, str, int, int, bool]) -> Arrival:
    """Handler for process_all: a consumer's first item waits until `consumers` processes have one.

    In a child, the first item also arranges that the process, once it leaves
    consume, says so (a file) and, with linger, stays until released.
    """
    number, folder, consumers, size, linger = item
    met = None
    if not _met_already and multiprocessing.parent_process() is not None:
        _met_already.append(True)
        util.Finalize(None, _hold_at_exit, args=(folder, linger), exitpriority=0)
        _touch(folder, f"in-{os.getpid()}")
        met = wait_until(lambda: _count(folder, "in-") >= consumers, RENDEZVOUS_WAIT, step=0.01)
    return Arrival(id=number, pid=os.getpid(), met=met, data=_chunk(number, 0, size))


def _chunk(index: int, sequence: int, size: int) -> bytes:
    return bytes([(index * 31 + sequence * 7 + 1) % 256]) * size


def _results(value: Any, size: int) -> Any:
    """A returned list of results as data: each result's item, pid and whether its data came back intact."""
    if not isinstance(value, (list, tuple)):
        return None
    found = []
    for result in value:
        if isinstance(result, dict) and "id" in result:
            data, number = result.get("data"), result["id"]
            intact = isinstance(data, bytes) and isinstance(number, int) and data == _chunk(number, 0, size)
            found.append({"id": plain(result["id"]), "pid": result.get("pid"), "intact": intact})
        else:
            found.append({"odd": plain(result)})
    return found


def _process_all_call(
    module: ModuleType,
    numbers: list[int],
    consumers: int,
    *,
    size: int = 0,
    linger: bool = False,
    generator: bool = False,
    cpus: int = 1,
) -> dict[str, Any]:
    """One call of process_all, with everything the test needs to know about it."""
    folder = tempfile.mkdtemp(prefix="process-all-")
    ARRIVED.clear()
    items = [(number, folder, consumers, size, linger) for number in numbers]
    given = (item for item in items) if generator else items
    with fake_cpu_count(cpus), StartRecorder() as starts:

        def everyone_at_exit() -> bool:
            pids = starts.pids()
            return bool(pids) and all(os.path.exists(os.path.join(folder, f"exit-{pid}")) or not is_running(pid)
                                      for pid in pids)  # fmt: skip

        def still_waiting() -> bool:
            return not (len(ARRIVED) >= len(items) or everyone_at_exit())

        call = call_with_deadline(
            module.process_all,
            given,
            handle_at_rendezvous,
            consumers,
            deadline=DEADLINE + RENDEZVOUS_WAIT,  # too few consumers keep the first item waiting that long
            after=starts.running,
            hopeful=still_waiting if linger else None,
        )
        if linger and call.outcome == HUNG and not still_waiting():
            call = call.wait_longer(GRACE)  # it has read everything: time enough to return, if it does not join
        returned_while_held = linger and call.outcome != HUNG
        _touch(folder, "release")
        stuck = call.outcome == HUNG
        if stuck:
            call = call.wait_longer(AFTER_RELEASE)
        facts = _call_facts(call)
        facts.update(
            count=len(items),
            numbers=list(numbers),
            consumers=consumers,
            cpus=cpus,
            generator=generator,
            results=_results(call.value, size),
            returned_type=type(call.value).__name__,
            running_at_return=call.after,
            returned_while_held=returned_while_held,
            stuck_before_release=stuck,
            started=len(starts.started),
            arrived=len(ARRIVED),
            left_consume=_count(folder, "exit-"),
            still_in_consume=sum(
                is_running(pid) and not os.path.exists(os.path.join(folder, f"exit-{pid}")) for pid in starts.pids()
            ),
            at_rendezvous=_count(folder, "in-"),
            running_now=starts.running(),
        )
    return facts


def process_all_every_item(module: ModuleType) -> dict[str, Any]:
    """A generator of items with duplicates; then, in the same process, a list; then an empty list."""
    calls = [_process_all_call(module, [*range(20), 3, 7, 7], 3, generator=True)]
    if calls[-1]["outcome"] != HUNG:
        calls.append(_process_all_call(module, list(range(100, 110)), 2))
    if calls[-1]["outcome"] != HUNG:
        calls.append(_process_all_call(module, [], 2))
    return {"caller_pid": os.getpid(), "calls": calls}


def process_all_consumer_count(module: ModuleType) -> dict[str, Any]:
    """3 consumers on a machine that says it has 1 CPU, then 2 consumers on one that says 16."""
    calls = [_process_all_call(module, list(range(12)), 3, cpus=1)]
    if calls[-1]["outcome"] != HUNG:
        calls.append(_process_all_call(module, list(range(12, 20)), 2, cpus=16))
    return {"caller_pid": os.getpid(), "calls": calls}


def process_all_waits(module: ModuleType) -> dict[str, Any]:
    """Every consumer is held at its end (after consume returned) until process_all has had GRACE to return."""
    return {"caller_pid": os.getpid(), **_process_all_call(module, list(range(9)), 3, linger=True)}


def process_all_big(module: ModuleType) -> dict[str, Any]:
    """Results of BIG bytes each: a consumer cannot end until its results are read."""
    return {"caller_pid": os.getpid(), "size": BIG, **_process_all_call(module, list(range(12)), 3, size=BIG)}


# --- task 3: collect -----------------------------------------------------------------------------------------------


def produce_big(source: tuple[int, int, int, Any, list[Any]], results: Any) -> None:
    """Producer for collect: once the previous producer has flushed, put `chunks` chunks of `size` bytes and None.

    Taking turns makes the order of the sentinels certain: a collector that
    stops at the first None leaves every later producer's data unread.
    put_everything[index] becomes this producer's pid once its items are on
    the queue (not yet in the pipe: this process ends only when they are).
    """
    index, chunks, size, put_everything, flushed = source
    if index == 0:
        time.sleep(QUIET_START)
    elif not flushed[index - 1].wait(WAIT):
        return
    for sequence in range(chunks):
        results.put({"producer": index, "seq": sequence, "pid": os.getpid(), "data": _chunk(index, sequence, size)})
    results.put(None)
    put_everything[index] = os.getpid()
    results.close()
    results.join_thread()  # returns once every item is in the pipe: only a reader makes room
    flushed[index].set()


def produce_after_first(source: tuple[int, int, Any], results: Any) -> None:
    """Producer for collect: producer 0 goes first and flushes; the others start LATE_PRODUCER s after that."""
    index, count, first_flushed = source
    if index > 0:
        if not first_flushed.wait(WAIT):
            return
        time.sleep(LATE_PRODUCER)
    for sequence in range(count):
        results.put({"producer": index, "seq": sequence, "pid": os.getpid()})
    results.put(None)
    if index == 0:
        results.close()
        results.join_thread()  # producer 0's sentinel is in the pipe before any item of the others
        first_flushed.set()


FALSY_ITEMS = [0, ""]  # items too, which a collector must not take for the sentinel


def produce_tagged(source: tuple[str, int], results: Any) -> None:
    """Producer for collect: count items tagged with the source's name, FALSY_ITEMS after the first, then None."""
    tag, count = source
    time.sleep(QUIET_START)
    for sequence in range(count):
        results.put({"source": tag, "seq": sequence, "pid": os.getpid()})
        if sequence == 0:
            for item in FALSY_ITEMS:
                results.put(item)
    results.put(None)


def produce_and_linger(source: tuple[int, int, Any, Any], results: Any) -> None:
    """Producer for collect: put items (that note their arrival) and None, flush them, then stay until released."""
    index, count, flushed, release = source
    time.sleep(QUIET_START)
    for sequence in range(count):
        results.put(Arrival(id=[index, sequence], producer=index, seq=sequence, pid=os.getpid()))
    results.put(None)
    results.close()
    results.join_thread()  # everything, None included, is in the pipe
    flushed.release()
    release.wait(WAIT)


def _summary(value: Any, check_data: bool) -> Any:
    if not isinstance(value, (list, tuple)):
        return None
    items = []
    for item in value:
        if not isinstance(item, dict):
            items.append({"odd": plain(item)})
            continue
        entry = {key: plain(item.get(key)) for key in ("producer", "source", "seq", "pid")}
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
    with StartRecorder() as starts:
        call = call_with_deadline(module.collect, produce_big, sources)
        facts = _call_facts(call)
        alive = [pid for pid in starts.pids() if is_running(pid)]
        facts.update(
            caller_pid=os.getpid(),
            items=_summary(call.value, check_data=True),
            returned_type=type(call.value).__name__,
            put_everything=sum(1 for pid in cast("Iterable[int]", put_everything) if pid),
            stuck_with_data=sum(pid in alive for pid in cast("Iterable[int]", put_everything) if pid),
            running_now=len(alive),
        )
    return facts


def collect_staggered(module: ModuleType, producers: int, count: int) -> dict[str, Any]:
    """Producer 0's sentinel arrives before every item of the others, which come LATE_PRODUCER s later."""
    first_flushed = multiprocessing.Event()
    sources = [(index, count, first_flushed) for index in range(producers)]
    call = call_with_deadline(module.collect, produce_after_first, sources)
    facts = _call_facts(call)
    facts.update(
        caller_pid=os.getpid(),
        late=LATE_PRODUCER,
        items=_summary(call.value, check_data=False),
        returned_type=type(call.value).__name__,
    )
    return facts


def _collect_call(module: ModuleType, sources: list[tuple[str, int]], generator: bool) -> dict[str, Any]:
    with StartRecorder() as starts:
        given = (source for source in sources) if generator else sources
        call = call_with_deadline(module.collect, produce_tagged, given, after=starts.running)
        facts = _call_facts(call)
        value = call.value
        falsy = [item for item in value if any(same(item, f) for f in FALSY_ITEMS)] if isinstance(value, list) else []
        facts.update(
            sources=plain(sources),
            generator=generator,
            items=_summary([item for item in value if not any(same(item, f) for f in FALSY_ITEMS)], False)
            if isinstance(value, list)
            else None,
            falsy_items=plain(falsy),
            falsy_expected=plain(FALSY_ITEMS * len(sources)),
            returned_type=type(call.value).__name__,
            started=len(starts.started),
            producer_pids=starts.pids(),
        )
    return facts


def collect_every_source(module: ModuleType) -> dict[str, Any]:
    """A generator of sources with two equal ones; then, in the same process, a list; then no sources."""
    calls = [_collect_call(module, [("a", 3), ("b", 2), ("a", 3)], generator=True)]
    if calls[-1]["outcome"] != HUNG:
        calls.append(_collect_call(module, [("c", 2)], generator=False))
    if calls[-1]["outcome"] != HUNG:
        calls.append(_collect_call(module, [], generator=False))
    return {"caller_pid": os.getpid(), "calls": calls}


def collect_waits(module: ModuleType, producers: int, count: int) -> dict[str, Any]:
    """Every producer stays, after its None is in the pipe, until collect has had GRACE to return."""
    ARRIVED.clear()
    flushed = multiprocessing.Semaphore(0)
    release = multiprocessing.Event()
    sources = [(index, count, flushed, release) for index in range(producers)]
    everyone = {"flushed": 0}

    def still_waiting() -> bool:
        while flushed.acquire(False):
            everyone["flushed"] += 1
        return everyone["flushed"] < producers

    with StartRecorder() as starts:
        call = call_with_deadline(
            module.collect, produce_and_linger, sources, after=starts.running, hopeful=still_waiting
        )
        if call.outcome == HUNG and not still_waiting():
            call = call.wait_longer(GRACE)
        returned_while_held = call.outcome != HUNG
        release.set()
        if call.outcome == HUNG:
            call = call.wait_longer(AFTER_RELEASE)
        facts = _call_facts(call)
        facts.update(
            caller_pid=os.getpid(),
            count=producers * count,
            producers=producers,
            items=_summary(call.value, check_data=False),
            returned_type=type(call.value).__name__,
            returned_while_held=returned_while_held,
            running_at_return=call.after,
            flushed=everyone["flushed"],
            arrived=len(ARRIVED),
            started=len(starts.started),
        )
    return facts


# --- task 4: JoinableQueue -----------------------------------------------------------------------------------------


class CountingQueue(multiprocessing.queues.JoinableQueue):
    """A JoinableQueue that logs, on log, every get() and task_done() with the pid that made it."""

    _unfinished_tasks: multiprocessing.synchronize.Semaphore  # JoinableQueue's own: typeshed leaves it out

    def __init__(self, log: Any, ctx: Any) -> None:
        super().__init__(ctx=ctx)
        self._log = log

    # A queue's state is a tuple, which this one extends with the log; typeshed keeps it opaque (a NewType per
    # queue class), hence Any here.
    def __getstate__(self) -> Any:
        return (*cast("tuple[Any, ...]", super().__getstate__()), self._log)

    def __setstate__(self, state: Any) -> None:
        super().__setstate__(state[:-1])
        self._log = state[-1]

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        item = super().get(block, timeout)
        self._log.put(("got", os.getpid(), item))
        return item

    def task_done(self) -> None:
        self._log.put(("done", os.getpid(), None))
        super().task_done()


def log_handled(log: Any, item: Any) -> None:
    """Handler for work: log that item was handled, and where."""
    log.put(("handled", os.getpid(), item))


def _replay(events: list[tuple[str, int, Any]], pids: list[int | None]) -> dict[str, Any]:
    """Per worker, pair every get() with its task_done() and its handle(); count what is wrong, item by item."""
    handled: list[Any] = []
    done_before_handled: list[Any] = []
    never_done: list[Any] = []
    handled_untaken: list[Any] = []
    extra_done = sentinels_taken = sentinels_done = 0
    ended_without_sentinel = []
    for pid in pids:
        open_items: list[list[Any]] = []  # [item, handled?], oldest first
        took_sentinel = False
        last_taken: Any = "nothing"
        for kind, who, item in events:
            if who != pid:
                continue
            if kind == "got":
                open_items.append([item, False])
                last_taken = item
                if item is None:
                    took_sentinel = True
                    sentinels_taken += 1
            elif kind == "handled":
                handled.append(item)
                entry = next((e for e in open_items if same(e[0], item) and not e[1]), None)
                if entry is not None:
                    entry[1] = True
                elif not any(same(taken, item) for kind2, who2, taken in events if who2 == pid and kind2 == "got"):
                    handled_untaken.append(item)
            elif kind == "done":
                if not open_items:
                    extra_done += 1
                    continue
                item_done, was_handled = open_items.pop(0)
                if item_done is None:
                    sentinels_done += 1
                elif not was_handled:
                    done_before_handled.append(item_done)
        never_done += [item for item, _ in open_items if item is not None]
        if not took_sentinel:
            ended_without_sentinel.append({"pid": pid, "last_taken": plain(last_taken)})
    return {
        "handled": plain(handled),
        "done_before_handled": plain(done_before_handled),
        "never_done": plain(never_done),
        "handled_untaken": plain(handled_untaken),
        "extra_done": extra_done,
        "sentinels_taken": sentinels_taken,
        "sentinels_done": sentinels_done,
        "without_sentinel": ended_without_sentinel,
    }


def work_accounting(module: ModuleType, workers: int) -> dict[str, Any]:
    """The graded work() in `workers` processes on a CountingQueue; the scenario puts the items, then one None each."""
    log: multiprocessing.queues.Queue[Any] = multiprocessing.Queue()
    errors: multiprocessing.queues.Queue[Any] = multiprocessing.Queue()
    tasks = CountingQueue(log, multiprocessing.get_context())
    handle = functools.partial(log_handled, log)
    began = multiprocessing.Value("i", 0)
    started = [
        multiprocessing.Process(target=run_graded, args=(module.__name__, "work", (tasks, handle), errors, began))
        for _ in range(workers)
    ]
    for worker in started:
        worker.start()
    for item in WORK_ITEMS:
        tasks.put(item)
    for _ in started:
        tasks.put(None)
    # STOP_WAIT counts from the moment every worker is in work(): starting a process under spawn on a loaded
    # machine took longer than STOP_WAIT once, and a correct work() read as one that never returns.
    wait_until(lambda: began.value >= workers or not all(worker.is_alive() for worker in started), WAIT)
    ended = wait_until(lambda: not any(worker.is_alive() for worker in started), STOP_WAIT)
    events = drain(log, first_wait=1.0)
    try:
        unfinished = tasks._unfinished_tasks.get_value()
    except (AttributeError, NotImplementedError):  # pragma: no cover - Linux has it
        unfinished = None
    return {
        "caller_pid": os.getpid(),
        "items": plain(WORK_ITEMS),
        "workers": workers,
        "worker_pids": [worker.pid for worker in started],
        "handled_in": sorted({who for kind, who, _ in events if kind == "handled"}),
        **_replay(events, [worker.pid for worker in started]),
        "ended": ended,
        "stop_wait": STOP_WAIT,
        "exitcodes": [worker.exitcode for worker in started],
        "unfinished": unfinished,
        "errors": drain(errors),
    }


def reference_work(tasks: Any, handle: Any, foreign: Any, stopping: Any) -> None:
    """A correct worker, for the tests of handle_all alone.

    It counts every None it finds before the scenario began to stop the
    workers (a None that handle_all put), marks it done and goes on.
    """
    while True:
        item = tasks.get()
        try:
            if item is None:
                if stopping.value:
                    return
                with foreign.get_lock():
                    foreign.value += 1
                continue
            handle(item)
        finally:
            tasks.task_done()


def hold_last(
    held: Any, release: Any, counts: Any, values: list[Any], item: Any, hold: Any = HOLD, wait: float = WAIT
) -> None:
    """Handler for handle_all: the item hold waits until released (wait at most); every item is counted once handled."""
    if same(item, hold):
        held.set()
        release.wait(wait)
    index = next((i for i, value in enumerate(values) if same(value, item)), None)
    if index is not None:
        with counts.get_lock():
            counts[index] += 1


def _start_reference_workers(tasks: Any, handle: Any, workers: int) -> tuple[list[Any], Any, Any]:
    foreign, stopping = multiprocessing.Value("i", 0), multiprocessing.Value("i", 0)
    started = [
        multiprocessing.Process(target=reference_work, args=(tasks, handle, foreign, stopping)) for _ in range(workers)
    ]
    for worker in started:
        worker.start()
    return started, foreign, stopping


def _stop_reference_workers(tasks: Any, started: list[Any], stopping: Any) -> None:
    stopping.value = 1
    for _ in started:
        tasks.put(None)
    for worker in started:
        worker.join(STOP_WAIT)


def handle_all_waits(module: ModuleType, workers: int) -> dict[str, Any]:
    """Correct workers; the last item is held until handle_all has had GRACE to return, then released."""
    values = [0, 1, "", 2, [], HOLD]
    items = [0, 1, "", 2, 2, [], HOLD]
    tasks: multiprocessing.queues.JoinableQueue[Any] = multiprocessing.JoinableQueue()
    held, release = multiprocessing.Event(), multiprocessing.Event()
    counts = multiprocessing.Array("i", len(values))
    handle = functools.partial(hold_last, held, release, counts, values)
    started, foreign, stopping = _start_reference_workers(tasks, handle, workers)
    call = call_with_deadline(
        module.handle_all,
        tasks,
        items,
        after=lambda: {"handled": sum(cast("Iterable[int]", counts)), "held": held.is_set()},
        hopeful=lambda: not held.is_set(),
    )
    if call.outcome == HUNG and held.is_set():
        call = call.wait_longer(GRACE)
    returned_before_release = call.outcome != HUNG
    release.set()
    if call.outcome == HUNG:
        call = call.wait_longer(AFTER_RELEASE)
    facts = _call_facts(call)
    if call.outcome != HUNG:
        _stop_reference_workers(tasks, started, stopping)
    return {
        **facts,
        "count": len(items),
        "held_at_return": call.after["held"] if call.after else None,
        "returned_before_release": returned_before_release,
        "handled_at_return": call.after["handled"] if call.after else None,
        "foreign_sentinels": foreign.value,
    }


def handle_all_any_items(module: ModuleType, workers: int) -> dict[str, Any]:
    """handle_all given a generator with duplicates, then an empty list, then a list, on the same workers."""
    values = [0, "", 1, [], "x", "y"]
    batches = [("generator", [0, "", 1, 1, [], "x"]), ("empty", []), ("list", ["y", 0])]
    tasks: multiprocessing.queues.JoinableQueue[Any] = multiprocessing.JoinableQueue()
    held, release = multiprocessing.Event(), multiprocessing.Event()
    counts = multiprocessing.Array("i", len(values))
    # The generator's last item is held until handle_all waits with join() (GRACE at most, for another way of
    # waiting), so a handle_all that returns before the items are done misses it every time, not only when the
    # worker is slow. Only this process calls join(); the workers' copies of tasks keep the real one.
    real_join = tasks.join

    def join_releases() -> None:
        release.set()
        real_join()

    tasks.join = join_releases  # type: ignore[method-assign]
    handle = functools.partial(hold_last, held, release, counts, values, hold="x", wait=GRACE)
    started, foreign, stopping = _start_reference_workers(tasks, handle, workers)
    calls = []
    expected = [0] * len(values)
    for kind, batch in batches:
        for item in batch:
            expected[next(i for i, value in enumerate(values) if same(value, item))] += 1
        given = (item for item in batch) if kind == "generator" else batch
        call = call_with_deadline(module.handle_all, tasks, given, after=lambda: list(cast("Iterable[int]", counts)))
        release.set()  # it returned (or hung): the held item may end
        facts = _call_facts(call)
        facts.update(kind=kind, batch=plain(batch), expected=list(expected), foreign_sentinels=foreign.value)
        calls.append(facts)
        if call.outcome == HUNG:
            break
    else:
        _stop_reference_workers(tasks, started, stopping)
    return {"values": plain(values), "calls": calls, "foreign_sentinels": foreign.value}
