"""The scenario kit: what every scenario module needs, written once.

Scenarios turn what graded code did into plain facts for a hidden test to
judge. This module is the one place for the pieces they share:

- ``plain``: any value as JSON data (the protocol refuses NaN, so a float that
  is not finite becomes its repr; an exception becomes ``{"exception": ...}``).
- ``error_fact``: an exception as data, with the line of graded code it came from.
- ``call_with_deadline``: call a graded function in a helper thread and wait at
  most so long, so that a hang becomes a fact (``"hung"``) instead of a timeout
  of the whole call; one shape of facts for every scenario.
- ``is_running``: whether a process still runs (a zombie has ended).
- Windows opened on purpose, so that a race a mistake depends on goes the
  wrong way every time instead of sometimes: ``hold_after_start`` (the child
  runs first), ``fake_cpu_count`` (a pool sized by the machine shows),
  ``ManagerRecorder`` (the managers graded code started, recognised by class).

Not a scenario module: no exercise is called "kit", so no hidden test can
name a function here.
"""

from __future__ import annotations

import contextlib
import gc
import math
import multiprocessing
import multiprocessing.managers
import multiprocessing.process
import os
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from grader.protocol import BUSY_CPU, GAVE_UP

# How deep plain() follows containers: deep enough for any result an exercise
# returns, shallow enough that a self-referencing list cannot recurse forever.
MAX_DEPTH = 6
MAX_REPR = 300  # characters of repr() for a value that is not JSON data
MAX_ITEMS = 2000  # items of one container; more are cut with a visible marker
DEADLINE = 8.0  # seconds call_with_deadline waits by default: a correct call takes a second or two
# For scenarios that hold a graded call's processes at their end, then release them: seconds a function that
# has read everything is given to return while they are held, and seconds it is given once they are released
# (a correct one needs about 0.1; under spawn on a 2-core machine running 24 gradings at once, a second or two).
GRACE = 1.5
AFTER_RELEASE = 8.0

HUNG = "hung"
RETURNED = "returned"
RAISED = "raised"
# A function whose work is all in the processes it starts enters Process.start() at once; one that has not
# after this many seconds is stuck before it, whatever the machine's load (a loop that never ends, a wait).
START_WITHIN = 3.0
# A function that only looks something up (whoami) returns at once: after this many seconds it is stuck.
QUICK_WITHIN = 3.0

_KIT_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_LIBRARY_DIRS = tuple(
    {os.path.realpath(path) for path in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
)


# ---------------------------------------------------------------- facts


def plain(value: Any, depth: int = 0) -> Any:
    """value as JSON data.

    bool, None, int and str stay as they are; a finite float too, and NaN or
    infinity become their repr (JSON has no word for them); an exception
    becomes {"exception": error_fact}; lists and tuples become lists, dicts
    become dicts with str keys; anything else (a manager's proxy, an
    iterator, a custom class) is its repr, cut to MAX_REPR characters, so a
    test can tell that it was not plain data.
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, BaseException):
        return {"exception": error_fact(value)}
    if depth < MAX_DEPTH and isinstance(value, (list, tuple)):
        items = [plain(item, depth + 1) for item in value[:MAX_ITEMS]]
        return items + ([f"... {len(value) - MAX_ITEMS} more"] if len(value) > MAX_ITEMS else [])
    if depth < MAX_DEPTH and isinstance(value, dict):
        return {str(key): plain(item, depth + 1) for key, item in list(value.items())[:MAX_ITEMS]}
    return _repr(value)


def _repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:  # a hostile __repr__ must not hide the fact itself
        text = f"<{type(value).__name__} whose repr() failed>"
    return text if len(text) <= MAX_REPR else text[:MAX_REPR] + "..."


def type_name(value: Any) -> str:
    """The qualified name of value's type (built-ins by their bare name)."""
    kind = value if isinstance(value, type) else type(value)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def _is_graded_file(filename: str) -> bool:
    """Whether a traceback frame is in graded code: not this harness, not the standard library."""
    path = os.path.realpath(filename)
    return (
        not path.startswith(_KIT_DIR + os.sep) and not path.startswith(_LIBRARY_DIRS) and not filename.startswith("<")
    )


def graded_frame(tb: TracebackType | None) -> str | None:
    """The innermost frame of graded code in a traceback, as "file.py:line in function"."""
    where = None
    for frame in traceback.extract_tb(tb):
        if _is_graded_file(frame.filename):
            where = f"{os.path.basename(frame.filename)}:{frame.lineno} in {frame.name}"
    return where


def error_fact(exc: BaseException) -> dict[str, Any]:
    """An exception as data: its type (qualified unless built in), message and where in graded code it was raised."""
    try:
        message = str(exc)
    except Exception:  # a hostile __str__ must not hide the error itself
        message = "(the exception's message could not be read)"
    return {"type": type_name(exc), "message": message[: MAX_REPR * 2], "where": graded_frame(exc.__traceback__)}


def identity() -> dict[str, Any]:
    """Where this runs: its pid and the pid of the process that started it (None in the main process)."""
    parent = multiprocessing.parent_process()
    return {"pid": os.getpid(), "parent_pid": parent.pid if parent else None}


def is_running(process: Any) -> bool:
    """Whether a process (a pid, or a Process object) still runs; a zombie has ended, a closed Process is unknown."""
    if not isinstance(process, int):
        try:
            process = process.pid
        except ValueError:  # a closed Process: it can no longer say
            return False
        if process is None:
            return False
    try:
        with open(f"/proc/{process}/stat") as stream:
            stat = stream.read()
    except OSError:
        return False
    fields = stat.rpartition(")")[2].split()
    return bool(fields) and fields[0] not in ("Z", "X")


def children_running() -> list[int]:
    """Pids of this process's direct children that still run (zombies excluded), from /proc."""
    me = str(os.getpid())
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stream:
                fields = stream.read().rpartition(")")[2].split()
        except OSError:
            continue
        if len(fields) > 1 and fields[1] == me and fields[0] not in ("Z", "X"):
            found.append(int(entry))
    return found


def drain(source: Any, first_wait: float = 0.1) -> list[Any]:
    """Everything on a queue: the first item may take first_wait seconds, the others are already there."""
    found = []
    wait = first_wait
    while True:
        try:
            found.append(source.get(timeout=wait))
        except queue.Empty:
            return found
        wait = 0.1


def receive(source: Any, seconds: float, alive: Callable[[], bool] | None = None) -> Any:
    """The next item of a queue, waiting at most seconds; None if none came.

    With alive(), the wait ends early once alive() turns false and nothing
    more came within half a second: a child that died cannot report.
    """
    deadline = time.monotonic() + seconds
    ended_at = None
    while True:
        try:
            return source.get(timeout=0.1)
        except queue.Empty:
            pass
        now = time.monotonic()
        if now >= deadline:
            return None
        if alive is not None and ended_at is None and not alive():
            ended_at = now
        if ended_at is not None and now - ended_at > 0.5:
            return None


def wait_until(condition: Callable[[], bool], seconds: float, step: float = 0.02) -> bool:
    """Poll condition() until it holds or seconds pass; whether it held."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)
    return True


def reap(process: Any, seconds: float) -> bool:
    """Wait up to seconds for a started process to end; whether it did.

    Seen by its exit status, not by join(): join() waits for the process's
    sentinel pipe to close, and a grandchild forked from the process keeps that
    pipe open after the process itself has died.
    """
    return wait_until(lambda: process.exitcode is not None, seconds, step=0.01)


def kill_and_reap(process: Any, seconds: float) -> None:
    """SIGKILL a process still running and collect its exit status."""
    if process.exitcode is None:
        process.kill()
        reap(process, seconds)


# ---------------------------------------------------------------- calls with a deadline


@dataclass
class Called:
    """What one call of a graded function did, seen from the caller."""

    outcome: str  # RETURNED, RAISED or HUNG (still running at the deadline)
    value: Any = None  # what it returned (the live object)
    error: BaseException | None = None  # what it raised
    seconds: float | None = None  # how long it ran, when it ended
    ended_at: float | None = None  # time.monotonic() when it ended
    after: Any = None  # what after() saw the moment it returned
    deadline: float = DEADLINE
    extra: dict[str, Any] = field(default_factory=dict)
    stuck: dict[str, Any] | None = None  # for a hung call: where it was and whether it was busy (see stuck_at)
    # For a call still running at its deadline: wait for it some more (see wait_longer).
    _resume: Callable[[float], Called] | None = field(default=None, repr=False)

    def wait_longer(self, seconds: float) -> Called:
        """A hung call, given seconds more (for example after the scenario let its child end); else itself."""
        return self._resume(seconds) if self._resume is not None and self.outcome == HUNG else self

    def facts(self) -> dict[str, Any]:
        """The call as JSON data: outcome, value, error, seconds, after, deadline."""
        return {
            "outcome": self.outcome,
            "value": plain(self.value),
            "error": error_fact(self.error) if self.error is not None else None,
            "seconds": self.seconds,
            "after": plain(self.after),
            "deadline": self.deadline,
            "stuck": self.stuck,
            **self.extra,
        }


def call_with_deadline(
    function: Callable[..., Any],
    *args: Any,
    deadline: float = DEADLINE,
    after: Callable[[], Any] | None = None,
    hopeful: Callable[[], bool] | None = None,
    **kwargs: Any,
) -> Called:
    """Call function(*args, **kwargs) in a daemon thread and wait at most deadline seconds.

    after(), if given, runs in that thread the moment the function returns, to
    record what the caller could see then. hopeful(), if given, ends this first
    wait early once it turns false (what could finish the call is gone); a
    wait_longer() of the result always waits its whole time.
    NotImplementedError goes on up, so that the student reads "not written yet".
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        begun = time.monotonic()
        try:
            outcome["value"] = function(*args, **kwargs)
            if after is not None:
                outcome["after"] = after()
        except BaseException as exc:  # the exception is the fact to report
            outcome["error"] = exc
        outcome["ended_at"] = time.monotonic()
        outcome["seconds"] = outcome["ended_at"] - begun

    helper = threading.Thread(target=run, name="graded-call", daemon=True)
    helper.start()
    started = time.monotonic()
    cpu_at_start = _thread_cpu_seconds(helper)

    def wait(seconds: float, waited: float, patient: bool = False) -> Called:
        give_up = time.monotonic() + seconds
        while helper.is_alive() and time.monotonic() < give_up:
            helper.join(0.05)
            if not patient and hopeful is not None and helper.is_alive() and not hopeful():
                helper.join(0.5)
                break
        if helper.is_alive():
            # A wait asked for after this one (wait_longer) lasts its whole time: the scenario has
            # changed something (released what it held), so what hopeful() saw no longer decides.
            resume = lambda more: wait(more, waited + seconds, patient=True)  # noqa: E731
            stuck = stuck_at(helper, time.monotonic() - started, cpu_at_start)
            return Called(HUNG, deadline=waited + seconds, _resume=resume, stuck=stuck)
        error = outcome.get("error")
        if isinstance(error, NotImplementedError):
            raise error
        return Called(
            RAISED if error is not None else RETURNED,
            value=outcome.get("value"),
            error=error,
            seconds=outcome["seconds"],
            ended_at=outcome["ended_at"],
            after=outcome.get("after"),
            deadline=waited + seconds,
        )

    return wait(deadline, 0.0)


class StuckCall(Exception):
    """Raised by a scenario to end at once: the graded call it made is stuck (the runner reports it as data)."""

    def __init__(self, call: Called, function: str) -> None:
        super().__init__(f"{function}() is stuck")
        self.call = call
        self.function = function

    def reply(self) -> dict[str, Any]:
        """What the scenario returns instead: the hidden test fails it as a timeout, in words."""
        return {GAVE_UP: self.call.facts(), "function": self.function}


@contextlib.contextmanager
def start_entered() -> Iterator[Callable[[], bool]]:
    """While active, whether any Process.start() of this process has been entered (a pool's workers too)."""
    original = multiprocessing.process.BaseProcess.start
    entered: list[bool] = []

    def start(self: multiprocessing.process.BaseProcess) -> None:
        entered.append(True)
        original(self)

    multiprocessing.process.BaseProcess.start = start  # type: ignore[method-assign]
    try:
        yield lambda: bool(entered)
    finally:
        multiprocessing.process.BaseProcess.start = original  # type: ignore[method-assign]


def call_starting_processes(name: str, function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """function(*args, **kwargs) for a function whose work is in the processes it starts; its value.

    name: the function's name in the exercise, for the message. It raises what
    the function raised, and StuckCall for a call stuck before its first
    process (see run_starting_processes).
    """
    return run_starting_processes(name, function, *args, **kwargs).value


def run_starting_processes(
    name: str, function: Callable[..., Any], /, *args: Any, after: Callable[[], Any] | None = None, **kwargs: Any
) -> Called:
    """The call of function(*args, **kwargs), returned (after(): what was seen the moment it returned, in its thread).

    A call that has entered no Process.start() after START_WITHIN seconds is
    stuck before its first process: StuckCall ends the scenario then,
    instead of the sandbox's whole budget later. Once it has started one, it
    may take as long as the budget. What the function raised is raised.
    """
    begun = time.monotonic()
    with start_entered() as started:
        hopeful = lambda: started() or time.monotonic() - begun < START_WITHIN  # noqa: E731
        call = call_with_deadline(function, *args, deadline=3600.0, after=after, hopeful=hopeful, **kwargs)
    if call.outcome == HUNG:
        call.deadline = round(time.monotonic() - begun, 1)  # how long it was given, for the message
    _value_of(call, name)
    return call


def call_quick(name: str, function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """function(*args, **kwargs) for a function that returns at once; its value, or StuckCall after QUICK_WITHIN s."""
    return _value_of(call_with_deadline(function, *args, deadline=QUICK_WITHIN, **kwargs), name)


def _value_of(call: Called, name: str) -> Any:
    if call.outcome == HUNG:
        raise StuckCall(call, name)
    if call.outcome == RAISED:
        assert call.error is not None
        raise call.error
    return call.value


def _thread_cpu_seconds(thread: threading.Thread) -> float | None:
    """CPU time a thread of this process has used (user and system), from /proc; None where it cannot be read."""
    return _cpu_seconds(f"/proc/self/task/{thread.native_id}/stat")


def process_cpu_seconds(pid: int | None) -> float | None:
    """CPU time a process has used (user and system, all its threads), from /proc; None where it cannot be read."""
    return _cpu_seconds(f"/proc/{pid}/stat")


def _cpu_seconds(stat: str) -> float | None:
    try:
        with open(stat) as stream:
            fields = stream.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, TypeError):
        return None


def busy_between(before: float | None, after: float | None) -> bool | None:
    """Whether CPU seconds read before and after a wait show a process that kept computing (None: unknown)."""
    if before is None or after is None:
        return None
    # A blocked process uses no CPU at all; a loop that never ends uses all it gets, which on a machine
    # loaded many times over is still more than these two clock ticks.
    return (after - before) >= BUSY_CPU


def _frame_of(thread: threading.Thread) -> Any:
    """The thread's current frame, with the collector paused while it is read.

    Up to Python 3.11, sys._current_frames() holds the runtime's lock of thread
    states while it allocates; a collection that starts then and frees a thread
    state waits for that lock forever (CPython gh-106883). On a loaded machine
    this hung the scenario itself, and a mistake that should fail read as a timeout.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        # A thread not started yet has no ident, and no frame.
        return sys._current_frames().get(thread.ident) if thread.ident is not None else None
    finally:
        if collecting:
            gc.enable()


def stuck_at(thread: threading.Thread, seconds: float, cpu_at_start: float | None) -> dict[str, Any]:
    """Where a hung call's thread is now, as data: the innermost line of graded code, the call it waits in, busy or not.

    where: "file.py:line in function" of the innermost graded frame (None if no
    graded code is on the stack); waiting_in: the innermost call that is not
    graded code (join, get, acquire...), the one it is blocked in; busy: it kept
    using the CPU (a loop that never ends) rather than waiting.
    """
    frame = _frame_of(thread)
    where = waiting_in = None
    innermost = frame
    while frame is not None:
        if _is_graded_file(frame.f_code.co_filename):
            where = f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno} in {frame.f_code.co_name}"
            break
        frame = frame.f_back
    if innermost is not None and where is not None:
        # The outermost library call below the graded line: what graded code called, e.g. join or get.
        calls = []
        step = innermost
        while step is not None and not _is_graded_file(step.f_code.co_filename):
            calls.append(step.f_code.co_name)
            step = step.f_back
        waiting_in = calls[-1] if calls else None
    busy = busy_between(cpu_at_start, _thread_cpu_seconds(thread)) if seconds > 0 else None
    return {"where": where, "waiting_in": waiting_in, "busy": busy}


# ---------------------------------------------------------------- what ran when

MAX_TIMELINE_ROWS = 16


def new_spans(count: int) -> Any:
    """Shared start and end times (time.monotonic(), one clock for every process) for count processes; 0: not yet."""
    return multiprocessing.Array("d", 2 * count)


def span_started(spans: Any, index: int) -> None:
    spans[2 * index] = time.monotonic()


def span_ended(spans: Any, index: int) -> None:
    spans[2 * index + 1] = time.monotonic()


def timeline_facts(spans: Any, pids: Any, origin: float) -> list[dict[str, Any]]:
    """What ran when, as data: per process its pid, start and end in seconds from origin (None: never/still)."""
    rows = []
    for index in range(min(len(spans) // 2, MAX_TIMELINE_ROWS)):
        start, end = spans[2 * index], spans[2 * index + 1]
        rows.append(
            {
                "pid": int(pids[index]) if pids is not None else index + 1,
                "start": round(start - origin, 3) if start else None,
                "end": round(end - origin, 3) if end else None,
            }
        )
    return rows


# ---------------------------------------------------------------- windows opened on purpose


@contextlib.contextmanager
def hold_after_start(until: Callable[[], bool] | None = None, seconds: float = 0.5) -> Iterator[None]:
    """Make every Process.start() in this process return only after the child has run a while.

    With until(), start() returns once until() holds (at most 10 s): for
    example once the child's target has read the state it was given. Without
    it, start() returns after seconds. Code that sets up shared state after
    start() instead of before is then late every time, not only when the
    scheduler happens to favour the child.
    """
    original = multiprocessing.process.BaseProcess.start

    def start(self: multiprocessing.process.BaseProcess) -> None:
        original(self)
        if until is not None:
            wait_until(until, 10.0)
        else:
            time.sleep(seconds)

    multiprocessing.process.BaseProcess.start = start  # type: ignore[method-assign]
    try:
        yield
    finally:
        multiprocessing.process.BaseProcess.start = original  # type: ignore[method-assign]


@contextlib.contextmanager
def fake_cpu_count(count: int) -> Iterator[None]:
    """Make this process believe the machine has count CPUs.

    A pool sized by the machine instead of by the number it was given then
    shows on any machine, not only where the two happen to differ.
    """
    patched = [(os, "cpu_count"), (multiprocessing, "cpu_count")]
    if hasattr(os, "process_cpu_count"):  # 3.13: what ProcessPoolExecutor asks
        patched.append((os, "process_cpu_count"))
    saved = [(owner, name, getattr(owner, name)) for owner, name in patched]
    for owner, name in patched:
        setattr(owner, name, lambda: count)
    try:
        yield
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


class ManagerRecorder:
    """Records every manager that graded code starts in this process, whatever its class.

    A manager is recognised by what it is (a BaseManager that was started),
    not by the name of its server process, which a BaseManager subclass names
    after itself.
    """

    def __init__(self) -> None:
        self.managers: list[multiprocessing.managers.BaseManager] = []
        self._original = multiprocessing.managers.BaseManager.start

    def __enter__(self) -> ManagerRecorder:
        recorder = self
        original = self._original

        # Its first parameter is named as the method's is, so that it can stand in for it.
        def start(self: multiprocessing.managers.BaseManager, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            recorder.managers.append(self)

        multiprocessing.managers.BaseManager.start = start  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        multiprocessing.managers.BaseManager.start = self._original  # type: ignore[method-assign]

    def server_pids(self) -> list[int]:
        """The pids of the recorded managers' server processes."""
        pids = []
        for manager in self.managers:
            process = getattr(manager, "_process", None)
            if process is not None and process.pid is not None:
                pids.append(process.pid)
        return pids

    def facts(self) -> dict[str, Any]:
        """How many managers were started, of which classes, and how many servers still run."""
        return {
            "started": len(self.managers),
            "classes": [type_name(manager) for manager in self.managers],
            "still_running": sum(1 for pid in self.server_pids() if is_running(pid)),
        }
