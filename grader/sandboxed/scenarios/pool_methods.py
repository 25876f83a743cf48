"""Scenarios for exercise 3 (pool_methods), run inside the sandbox.

Every graded function receives a pool that the scenario made, so the scenario
controls the workers. Its initializer gives each worker three lists of events,
one event per item, shared with the scenario:

    gates[i]    the scenario opens it when item i may finish
    started[i]  the worker sets it when it begins item i
    done[i]     the worker sets it when it has finished item i

With gates the scenario decides in which order items finish, and with
started/done it sees what had happened when a graded function returned: a
function that should return at once but waited shows up as "finished before it
returned", and the results say whether their gate was ever opened. A worker
waits at most GATE_WAIT for anything, so a graded function that blocks where it
should not returns late instead of hanging. Every other wait has a timeout too.

Each scenario returns facts (plain JSON) for the hidden test to judge. Pool
tasks are module-level functions, so every start method can find them by name;
callbacks are closures, because the pool calls them in this process.
"""

from __future__ import annotations

import collections.abc
import contextlib
import multiprocessing
import multiprocessing.pool
import os
import queue
import threading
import time
from types import ModuleType
from typing import Any

# How long a worker waits for a gate or for another item: a correct solution
# opens it within a second even on a busy machine; a wrong one costs this much.
GATE_WAIT = 5.0
# How long the scenario waits for something a correct solution delivers
# promptly (a result after its gate opened, a callback): long, for busy machines.
WAIT = 20.0
# The chunk test: items 0..CHUNK_ITEMS-1 in chunks of CHUNK on 2 workers.
CHUNK = 3
CHUNK_ITEMS = 6

_gates: list[Any] = []
_started: list[Any] = []
_done: list[Any] = []


# --- what runs in the pool's workers -------------------------------------------------------------------------------


def install_events(gates: list[Any], started: list[Any], done: list[Any]) -> None:
    """Pool initializer: keep the scenario's events where the tasks can find them."""
    global _gates, _started, _done
    _gates, _started, _done = gates, started, done


def _in_a_worker() -> None:
    """Say so clearly when a task is called in the graded code's own process instead of a worker."""
    if not _gates:
        raise RuntimeError(
            "this function ran in the process that called your code, not in one of the pool's workers: "
            "hand it to a pool method instead of calling it yourself"
        )


def gated_task(item: int) -> dict[str, Any]:
    """Pool task: begin, wait until the scenario opens this item's gate, finish."""
    _in_a_worker()
    _started[item].set()
    gate_open = _gates[item].wait(GATE_WAIT)
    _done[item].set()
    return {"item": item, "pid": os.getpid(), "gate_open": gate_open}


def _after_next(item: int) -> bool:
    """Wait until item + 1 has finished (the last item does not wait); True if it did."""
    _in_a_worker()
    _started[item].set()
    later_done = _done[item + 1].wait(GATE_WAIT) if item + 1 < len(_done) else True
    _done[item].set()
    return later_done


def finish_after_next(item: int) -> dict[str, Any]:
    """Pool task: finish only after item + 1 has finished, so items finish last to first."""
    return {"item": item, "pid": os.getpid(), "next_done_first": _after_next(item)}


def finish_pair_after_next(item: int, label: str) -> dict[str, Any]:
    """Pool task with two arguments (for starmap): like finish_after_next, and echoes the label."""
    return {"item": item, "label": label, "pid": os.getpid(), "next_done_first": _after_next(item)}


def wait_for_partner(item: int) -> dict[str, Any]:
    """Pool task for the chunk test: item 0 finishes only once item CHUNK has started.

    With real chunks, items 0..CHUNK-1 run in one worker and CHUNK.. in the other;
    with one item at a time, item 0 holds its worker and the next items run elsewhere.
    """
    _in_a_worker()
    _started[item].set()
    partner_started = _started[CHUNK].wait(GATE_WAIT) if item == 0 else None
    return {"item": item, "pid": os.getpid(), "partner_started": partner_started}


def add_here(a: int, b: int) -> dict[str, Any]:
    """Pool task: add two numbers and say where it ran."""
    return {"sum": a + b, "pid": os.getpid()}


def fail_on_two(item: int) -> int:
    """Pool task: raise for item 2, naming the process it ran in."""
    if item == 2:
        raise ValueError(f"item 2 is bad (raised in process {os.getpid()})")
    return item * 10


# --- helpers of the scenarios --------------------------------------------------------------------------------------


@contextlib.contextmanager
def _left_to_the_sandbox(pool: multiprocessing.pool.Pool) -> collections.abc.Iterator[multiprocessing.pool.Pool]:
    """Use the pool, then leave it as it is: the sandbox kills every process when the call ends.

    Not Pool.terminate() (what `with pool:` calls): it hung once in 150 runs under
    forkserver on a loaded machine, when the workers went idle just as it ran, and a
    scenario must never hang on its own clean-up.
    """
    yield pool


def _pool_with_events(workers: int, items: int) -> tuple[multiprocessing.pool.Pool, list[Any], list[Any], list[Any]]:
    gates, started, done = ([multiprocessing.Event() for _ in range(items)] for _ in range(3))
    pool = multiprocessing.Pool(workers, initializer=install_events, initargs=(gates, started, done))
    return pool, gates, started, done


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    return repr(value)


def _error(exc: BaseException) -> dict[str, Any]:
    kind = type(exc)
    name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    return {
        "type": name,
        "message": str(exc),
        "is_exception": isinstance(exc, BaseException),
        "is_multiprocessing_timeout": isinstance(exc, multiprocessing.TimeoutError),
    }


def _call(function: Any, *args: Any, **kwargs: Any) -> tuple[dict[str, Any], Any]:
    """Call a graded function: ({"returned": JSON copy} or {"raised": error}, plus seconds), and the live value.

    NotImplementedError goes on up, so that the student reads "not written yet".
    """
    begun = time.monotonic()
    try:
        value = function(*args, **kwargs)
    except NotImplementedError:
        raise
    except Exception as exc:
        return {"raised": _error(exc), "seconds": time.monotonic() - begun}, None
    return {"returned": _jsonable(value), "seconds": time.monotonic() - begun}, value


def _attempt(function: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    return _call(function, *args, **kwargs)[0]


def _drain_in_background(iterable: Any) -> queue.Queue:
    """Iterate what a graded function returned in a daemon thread, one message per item.

    A blocking next() then never blocks the scenario: it reads the queue with a timeout.
    """
    messages: queue.Queue = queue.Queue()

    def pump() -> None:
        try:
            for value in iterable:
                messages.put({"kind": "value", "value": _jsonable(value)})
        except BaseException as exc:  # the error is the fact to report
            messages.put({"kind": "raised", "error": _error(exc)})
        else:
            messages.put({"kind": "end"})

    threading.Thread(target=pump, name="drain", daemon=True).start()
    return messages


def _next_message(messages: queue.Queue, timeout: float = WAIT) -> dict[str, Any]:
    try:
        return messages.get(timeout=timeout)
    except queue.Empty:
        return {"kind": "silent", "seconds": timeout}


def _collect(messages: queue.Queue, count: int) -> dict[str, Any]:
    """Up to count values, stopping early at the end, an error or a silence."""
    values = []
    while len(values) < count:
        message = _next_message(messages)
        if message["kind"] != "value":
            return {"values": values, "stopped": message}
        values.append(message["value"])
    return {"values": values, "stopped": None}


def _what_was_returned(value: Any) -> dict[str, Any]:
    return {
        "type": type(value).__name__,
        "is_iterator": isinstance(value, collections.abc.Iterator),
        "is_async_result": isinstance(value, multiprocessing.pool.AsyncResult),
    }


# --- task 1: apply and starmap -------------------------------------------------------------------------------------


def apply_in_a_worker(module: ModuleType) -> dict[str, Any]:
    run_one = module.run_one
    with multiprocessing.Pool(2) as pool:
        value = _attempt(run_one, pool, add_here, (3, 4))
        failure = _attempt(run_one, pool, fail_on_two, (2,))
    return {"caller_pid": os.getpid(), "value": value, "failure": failure}


def starmap_pairs(module: ModuleType) -> dict[str, Any]:
    run_pairs = module.run_pairs
    pairs = [(0, "a"), (1, "b"), (2, "c")]
    pool, _, _, _ = _pool_with_events(len(pairs), len(pairs))
    with _left_to_the_sandbox(pool):
        outcome = _attempt(run_pairs, pool, finish_pair_after_next, pairs)
    return {"caller_pid": os.getpid(), "outcome": outcome}


# --- task 2: apply_async with callbacks ----------------------------------------------------------------------------


class _CallbackLog:
    """Callbacks for submit that record every call: where it ran and what it got."""

    def __init__(self) -> None:
        self.done_calls: list[dict[str, Any]] = []
        self.error_calls: list[dict[str, Any]] = []
        self.called = threading.Event()

    def on_done(self, value: Any) -> None:
        self.done_calls.append({"pid": os.getpid(), "value": _jsonable(value)})
        self.called.set()

    def on_error(self, exc: Any) -> None:
        call = {"pid": os.getpid()}
        call.update(_error(exc) if isinstance(exc, BaseException) else {"is_exception": False, "value": _jsonable(exc)})
        self.error_calls.append(call)
        self.called.set()

    def wait_for(self, returned: Any) -> None:
        """Wait until the task is over: the pool calls the callbacks before it marks a result ready."""
        if isinstance(returned, multiprocessing.pool.AsyncResult):
            returned.wait(WAIT)
        else:
            self.called.wait(GATE_WAIT)

    def facts(self) -> dict[str, Any]:
        return {"done_calls": list(self.done_calls), "error_calls": list(self.error_calls)}


def submit_returns_at_once(module: ModuleType) -> dict[str, Any]:
    submit = module.submit
    log = _CallbackLog()
    pool, gates, _, done = _pool_with_events(2, 1)
    with _left_to_the_sandbox(pool):
        begun = time.monotonic()
        returned = submit(pool, gated_task, (0,), log.on_done, log.on_error)
        seconds = time.monotonic() - begun
        finished_at_return = done[0].is_set()
        gates[0].set()
        facts = {"returned": _what_was_returned(returned), "seconds": seconds, "finished_at_return": finished_at_return}
        if isinstance(returned, multiprocessing.pool.AsyncResult):
            facts["result"] = _attempt(returned.get, WAIT)
        else:
            facts["result"] = {"returned": _jsonable(returned)}
    return facts


def _submit_and_wait(module: ModuleType, func: Any, args: tuple) -> dict[str, Any]:
    submit = module.submit
    log = _CallbackLog()
    with multiprocessing.Pool(2) as pool:
        outcome, returned = _call(submit, pool, func, args, log.on_done, log.on_error)
        log.wait_for(returned)
    outcome["returned_kind"] = _what_was_returned(returned)
    return {"caller_pid": os.getpid(), "submit": outcome, **log.facts()}


def submit_calls_back(module: ModuleType) -> dict[str, Any]:
    return _submit_and_wait(module, add_here, (3, 4))


def submit_reports_errors(module: ModuleType) -> dict[str, Any]:
    return _submit_and_wait(module, fail_on_two, (2,))


# --- task 3: map_async and get(timeout) ----------------------------------------------------------------------------


def gather_in_order(module: ModuleType) -> dict[str, Any]:
    gather = module.gather
    items = [0, 1, 2]
    pool, _, _, _ = _pool_with_events(len(items), len(items))
    with _left_to_the_sandbox(pool):
        ordered = _attempt(gather, pool, finish_after_next, items, WAIT)
        failing = _attempt(gather, pool, fail_on_two, [0, 1, 2, 3], WAIT)
    return {"caller_pid": os.getpid(), "ordered": ordered, "failing": failing}


def gather_times_out(module: ModuleType, timeout: float) -> dict[str, Any]:
    gather = module.gather
    pool, gates, _, done = _pool_with_events(2, 2)
    with _left_to_the_sandbox(pool):
        outcome = _attempt(gather, pool, gated_task, [0, 1], timeout)
        finished_at_return = [event.is_set() for event in done]
        for gate in gates:
            gate.set()
    return {"outcome": outcome, "finished_at_return": finished_at_return, "gate_wait": GATE_WAIT}


# --- tasks 4 and 5: imap, chunksize, imap_unordered ----------------------------------------------------------------


def returns_before_the_work(module: ModuleType, function_name: str) -> dict[str, Any]:
    """Call lazy_results or as_finished on gated items; open the gates only after it returned."""
    function = getattr(module, function_name)
    count = 3
    pool, gates, _, done = _pool_with_events(count, count)
    with _left_to_the_sandbox(pool):
        begun = time.monotonic()
        returned = function(pool, gated_task, list(range(count)))
        seconds = time.monotonic() - begun
        finished_at_return = [event.is_set() for event in done]
        for gate in gates:
            gate.set()
        collected = _collect(_drain_in_background(returned), count)
    return {
        "returned": _what_was_returned(returned),
        "seconds": seconds,
        "finished_at_return": finished_at_return,
        "gate_wait": GATE_WAIT,
        **collected,
    }


def ordered_although_finished_last_to_first(module: ModuleType) -> dict[str, Any]:
    """lazy_results over items that the scenario lets finish last to first."""
    lazy_results = module.lazy_results
    count = 4
    pool, gates, _, done = _pool_with_events(count, count)
    with _left_to_the_sandbox(pool):
        messages = _drain_in_background(lazy_results(pool, gated_task, list(range(count))))
        finish_order = []
        for item in reversed(range(count)):
            gates[item].set()
            if done[item].wait(WAIT):
                finish_order.append(item)
        collected = _collect(messages, count)
    return {"finish_order": finish_order, **collected}


def chunks_stay_together(module: ModuleType) -> dict[str, Any]:
    """lazy_results with chunksize=CHUNK on 2 workers: which worker ran which item."""
    lazy_results = module.lazy_results
    pool, _, _, _ = _pool_with_events(2, CHUNK_ITEMS)
    with _left_to_the_sandbox(pool):
        returned = lazy_results(pool, wait_for_partner, list(range(CHUNK_ITEMS)), chunksize=CHUNK)
        collected = _collect(_drain_in_background(returned), CHUNK_ITEMS)
    return {"chunksize": CHUNK, **collected}


def released_one_at_a_time(module: ModuleType, release_order: list[int]) -> dict[str, Any]:
    """as_finished over gated items; open one gate at a time and take the next result after each."""
    as_finished = module.as_finished
    count = len(release_order)
    pool, gates, _, done = _pool_with_events(count, count)
    with _left_to_the_sandbox(pool):
        begun = time.monotonic()
        returned = as_finished(pool, gated_task, list(range(count)))
        seconds = time.monotonic() - begun
        finished_at_return = [event.is_set() for event in done]
        messages = _drain_in_background(returned)
        steps = []
        for item in release_order:
            gates[item].set()
            steps.append({"released": item, "got": _next_message(messages)})
    return {"steps": steps, "seconds": seconds, "finished_at_return": finished_at_return, "gate_wait": GATE_WAIT}
