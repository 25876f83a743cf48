"""Scenarios for exercise 10 (termination), run inside the sandbox.

Each scenario takes the graded module first, drives it, and returns plain
facts (JSON data) for the hidden test to judge. The workers are module-level
functions here, so that every start method can find them; each one sets a
ready Event once its signal handling is in place, and the scenario waits for
it, so that a signal never arrives before the worker is ready for it. Every
blocking call has a timeout, every call of graded code has a deadline (a hang
becomes a fact), and every worker gives up after WAIT seconds.

The processes handed to stop() and shutdown() are a Worker: a Process that
notes when terminate() and kill() were called, and whose kill() sends SIGKILL
KILL_DELAY seconds later instead of at once. The README's own words: both
only send the signal and return at once, and the process ends a moment
later. Here the moment is long enough that reading exitcode right after
kill(), without join(), gives None every time instead of only when the
scheduler is slow.

Windows opened on purpose, so that a mistake fails every time:
- stop() without a join: the worker that stop() gets takes DIE_AFTER seconds
  to die of its SIGTERM (its handler waits, then dies by the signal's default
  action), longer than a join(1); after kill(), see Worker above.
- graceful_worker setting ready before its handler is in place: in one run,
  ready is a stand-in Event whose set() sends SIGTERM to the worker at that
  very moment, so a handler installed after set() is missed every time.
- graceful_worker working in big steps, or going on after SIGTERM: in the
  worker's process, time.sleep and signal.signal are wrapped (before the
  graded function runs) to count the steps, the longest one, and how many
  began after the SIGTERM handler had run. Steps are counted, not timed.
- shutdown() keeping a willing worker waiting: the worker ends WILLING_AFTER
  seconds after SIGTERM, while the timeout is WILLING_TIMEOUT; and for a
  stubborn worker, the time between terminate() and kill() is read from the
  Worker, with several timeouts, so that a hard-coded wait cannot fit them all.
- close(): a closed Process object raises ValueError on is_alive().
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import multiprocessing.synchronize
import os
import signal
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any, SupportsIndex

from grader.sandboxed.scenarios.kit import (
    HUNG,
    call_with_deadline,
    error_fact,
    is_running,
    kill_and_reap,
    reap,
    wait_until,
)

WAIT = 20.0  # seconds any blocking call here may wait: long, because a loaded machine is slow
STEP = 0.05  # seconds of one step of a worker's pretend work
DIE_AFTER = 1.6  # seconds the worker given to stop() takes to die of its SIGTERM: longer than a join(1)
KILL_DELAY = 0.5  # seconds between a Worker's kill() and its SIGKILL
STOP_WAIT = 3.0  # seconds a graceful worker has to end after SIGTERM
WORK_TIME = 1.0  # seconds graceful_worker works before the scenario sends SIGTERM
WILLING_AFTER = 0.2  # seconds a willing worker takes to end after SIGTERM
HANG_MARGIN = 3.0  # seconds past its timeout after which shutdown() counts as hanging
CALL_DEADLINE = 8.0  # seconds stop() may take before it counts as hanging

# The slots of the record a graceful worker's wrapped time.sleep and signal.signal fill in.
STEPS, LONGEST, HANDLED_AT = 0, 1, 2
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- the processes handed to graded code


class Worker(multiprocessing.Process):
    """A Process that notes when terminate() and kill() were called; its SIGKILL comes KILL_DELAY s after kill()."""

    terminated_at: float | None = None
    killed_at: float | None = None
    _check_closed: Callable[[], None]  # BaseProcess's own: typeshed leaves it out

    def terminate(self) -> None:
        if self.terminated_at is None:
            self.terminated_at = time.monotonic()
        super().terminate()

    def kill(self) -> None:
        self._check_closed()  # a closed Process refuses, as the real kill() does
        if self.killed_at is None:
            self.killed_at = time.monotonic()
        timer = threading.Timer(KILL_DELAY, self._kill_now)
        timer.daemon = True
        timer.start()

    def _kill_now(self) -> None:
        # Once joined (returncode known) or closed, there is nothing left to kill: no signal is sent.
        with contextlib.suppress(ValueError, AttributeError, OSError):
            multiprocessing.Process.kill(self)


class TermOnSet(multiprocessing.synchronize.Event):
    """An Event whose set() sends SIGTERM to the process that set it, the very moment it is set."""

    def set(self) -> None:
        super().set()
        os.kill(os.getpid(), signal.SIGTERM)


# ---------------------------------------------------------------- the scenario's own workers


def _work_until_deadline() -> None:
    """Pretend to work, in small steps, until the scenario's patience runs out."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        time.sleep(STEP)


def plain_worker(ready: Any) -> None:
    """Worker with the default SIGTERM action: the signal ends it at once."""
    ready.set()
    _work_until_deadline()


def slow_to_die_worker(ready: Any, got_sigterm: Any, die_after: float, ending: Any = None) -> None:
    """Worker that notes SIGTERM, takes die_after seconds, then dies of the signal all the same (noting when)."""

    def on_sigterm(signum: int, frame: Any) -> None:
        got_sigterm.value = 1
        time.sleep(die_after)
        if ending is not None:
            ending.value = time.monotonic()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_sigterm)
    ready.set()
    _work_until_deadline()


def cleaning_worker(ready: Any, got_sigterm: Any, cleaned_up: Any, ending: Any) -> None:
    """Worker that, on SIGTERM, finishes its step, cleans up for WILLING_AFTER seconds and ends with exit code 0."""
    stopping = False

    def on_sigterm(signum: int, frame: Any) -> None:
        nonlocal stopping
        got_sigterm.value = 1
        stopping = True

    signal.signal(signal.SIGTERM, on_sigterm)
    ready.set()
    deadline = time.monotonic() + WAIT
    while not stopping and time.monotonic() < deadline:
        time.sleep(STEP)
    time.sleep(WILLING_AFTER)
    cleaned_up.value = 1
    ending.value = time.monotonic()


def stubborn_worker(ready: Any, got_sigterm: Any) -> None:
    """Worker that notes SIGTERM and carries on: only SIGKILL ends it."""

    def on_sigterm(signum: int, frame: Any) -> None:
        got_sigterm.value = 1

    signal.signal(signal.SIGTERM, on_sigterm)
    ready.set()
    _work_until_deadline()


# ---------------------------------------------------------------- helpers


def _wait_ready(process: multiprocessing.process.BaseProcess, ready: Any) -> bool:
    """Wait until the worker is ready, or has ended without getting ready, or WAIT has passed."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if ready.wait(STEP):
            return True
        if not process.is_alive():
            return ready.is_set()
    return False


def _start(target: Any, *args: Any) -> Worker:
    ready = multiprocessing.Event()
    process = Worker(target=target, args=(ready, *args))
    process.start()
    if not _wait_ready(process, ready):
        raise RuntimeError("the grader's own worker did not start in time: the machine is too busy")
    return process


def _cpu_seconds(pid: int | None) -> float | None:
    """CPU time (user and system) a process has used so far, from /proc; None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stream:
            fields = stream.read().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _is_closed(process: multiprocessing.process.BaseProcess) -> bool:
    try:
        process.is_alive()
    except ValueError:
        return True
    return False


def _finish(process: multiprocessing.process.BaseProcess, pid: int) -> None:
    """The scenario's own clean-up, whatever the graded code left behind."""
    if is_running(pid) and not _is_closed(process):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    if not _is_closed(process):
        process.join(WAIT)


def _kill_gap(process: Worker, call: Any) -> float | None:
    """Seconds from asking the worker to stop to killing it; the call's own start and end stand in for os.kill()."""
    if call.ended_at is None:
        return None
    asked = process.terminated_at if process.terminated_at is not None else call.ended_at - call.seconds
    killed = process.killed_at if process.killed_at is not None else call.ended_at
    return killed - asked


def _call_and_look(module: ModuleType, function: str, process: Worker, *args: Any, deadline: float, **kwargs: Any):
    """Call module.function(process, ...); if it hangs, kill the worker so that it can return; then look around."""
    pid = process.pid
    assert pid is not None  # process comes from _start, which started it
    call = call_with_deadline(getattr(module, function), process, *args, deadline=deadline, **kwargs)
    hung = call.outcome == HUNG
    if hung:  # a join() that waits for the worker: ending it lets the join return
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        call = call.wait_longer(WAIT)
    facts = {
        "call": call.facts(),
        "hung": hung,
        "hung_after": deadline,
        "running_after": is_running(pid),
        "closed": _is_closed(process),
        "terminate_called": process.terminated_at is not None,
        "kill_called": process.killed_at is not None,
        "killed_at": process.killed_at,
        "kill_after_terminate": _kill_gap(process, call),
    }
    _finish(process, pid)
    return facts


# ---------------------------------------------------------------- task 1


def stop_worker(module: ModuleType, force: bool) -> dict[str, Any]:
    """stop(process) or stop(process, force=True) on a worker that takes DIE_AFTER s to die of SIGTERM."""
    got_sigterm = multiprocessing.Value("i", 0)
    process = _start(slow_to_die_worker, got_sigterm, DIE_AFTER)
    kwargs = {"force": True} if force else {}
    facts = _call_and_look(module, "stop", process, deadline=CALL_DEADLINE, **kwargs)
    facts.update(got_sigterm=bool(got_sigterm.value), dies_after=DIE_AFTER)
    return facts


# ---------------------------------------------------------------- task 2


def graceful_in_child(module_name: str, ready: Any, cleaned_up: Any, record: Any, errors: Any) -> None:
    """Child target: run the graded graceful_worker, counting its sleep steps and when its SIGTERM handler ran.

    Only observes: every call goes on to the real time.sleep and signal.signal,
    and the exit code is the graded function's own. An exception it raises is
    reported (errors) before it ends this process as it would have anyway.
    """
    module = importlib.import_module(module_name)
    real_sleep, real_signal = time.sleep, signal.signal

    def counted_sleep(seconds: float | SupportsIndex) -> None:
        record[STEPS] += 1
        if record[HANDLED_AT] < 0:
            record[LONGEST] = max(record[LONGEST], float(seconds))
        real_sleep(seconds)

    def noting_signal(signalnum: int, handler: Any) -> Any:  # signal.signal's own parameter names
        if signalnum == signal.SIGTERM and callable(handler):
            graded_handler = handler

            def handler(signum: int, frame: Any) -> Any:
                if record[HANDLED_AT] < 0:
                    record[HANDLED_AT] = record[STEPS]
                return graded_handler(signum, frame)

        return real_signal(signalnum, handler)

    time.sleep, signal.signal = counted_sleep, noting_signal
    for name, value in list(vars(module).items()):  # `from time import sleep` and the like
        if value is real_sleep:
            setattr(module, name, counted_sleep)
        elif value is real_signal:
            setattr(module, name, noting_signal)
    try:
        module.graceful_worker(ready, cleaned_up)
    except SystemExit:
        raise
    except BaseException as exc:
        errors.put(error_fact(exc))
        raise


def graceful_worker_run(module: ModuleType, race: bool) -> dict[str, Any]:
    """graceful_worker in a process: SIGTERM after WORK_TIME s of work, or (race) the moment ready is set."""
    ready = TermOnSet(ctx=multiprocessing.get_context()) if race else multiprocessing.Event()
    cleaned_up = multiprocessing.Value("i", 0)
    record = multiprocessing.RawArray("d", [0.0, 0.0, -1.0])
    errors: multiprocessing.queues.SimpleQueue[Any] = multiprocessing.SimpleQueue()
    process = multiprocessing.Process(
        target=graceful_in_child, args=(module.__name__, ready, cleaned_up, record, errors)
    )
    process.start()
    facts: dict[str, Any] = {"ready": _wait_ready(process, ready), "work_time": WORK_TIME}
    if facts["ready"] and not race:
        cpu_before = _cpu_seconds(process.pid)
        wait_until(lambda: not process.is_alive(), WORK_TIME)  # it works; it should not end by itself
        cpu_after = _cpu_seconds(process.pid)
        # A loop that steps with time.sleep uses milliseconds of CPU; one that never blocks, all it can get.
        if cpu_before is not None and cpu_after is not None and process.is_alive():
            facts["cpu_while_working"] = cpu_after - cpu_before
    facts["alive_before"] = process.is_alive()
    facts["exitcode_before"] = process.exitcode
    facts["cleaned_before"] = cleaned_up.value
    facts["steps_before"] = int(record[STEPS])
    started = time.monotonic()
    if not race:
        process.terminate()
    reap(process, STOP_WAIT)
    facts["stop_seconds"] = time.monotonic() - started
    facts["exitcode"] = process.exitcode
    facts["cleaned_up"] = cleaned_up.value
    kill_and_reap(process, WAIT)
    steps, handled_at = int(record[STEPS]), int(record[HANDLED_AT])
    facts.update(
        steps=steps,
        longest_step=record[LONGEST],
        handled=handled_at >= 0,
        steps_after_sigterm=steps - handled_at if handled_at >= 0 else None,
    )
    facts["child_errors"] = []
    while not errors.empty():
        facts["child_errors"].append(dict(errors.get(), function="graceful_worker"))
    return facts


# ---------------------------------------------------------------- tasks 3 and 4


def _shutdown(module: ModuleType, process: Worker, timeout: float) -> dict[str, Any]:
    facts = _call_and_look(module, "shutdown", process, timeout, deadline=timeout + HANG_MARGIN)
    facts["timeout"] = timeout
    return facts


def shutdown_willing(module: ModuleType, timeout: float) -> dict[str, Any]:
    """shutdown on a worker that cleans up and ends with 0, then one that dies of SIGTERM, each WILLING_AFTER s late."""
    runs = {}
    for kind in ("cleaning", "dying"):
        got_sigterm, cleaned_up, ending = (multiprocessing.Value(code, 0) for code in "iid")
        if kind == "cleaning":
            worker = _start(cleaning_worker, got_sigterm, cleaned_up, ending)
        else:
            worker = _start(slow_to_die_worker, got_sigterm, WILLING_AFTER, ending)
        run = _shutdown(module, worker, timeout)
        # Killed while alive: kill() came before the worker had begun to end by itself (a kill() of a
        # process on its way out is harmless; the SIGKILL itself comes KILL_DELAY later, see Worker).
        killed_at = run.pop("killed_at")
        run.update(
            got_sigterm=bool(got_sigterm.value),
            cleaned_up=bool(cleaned_up.value),
            killed_while_alive=killed_at is not None and (not ending.value or killed_at < ending.value),
        )
        runs[kind] = run
    return {**runs, "ends_after": WILLING_AFTER}


def shutdown_stubborn(module: ModuleType, timeouts: list[float]) -> dict[str, Any]:
    """shutdown, once per timeout, on a worker that ignores SIGTERM."""
    runs = []
    for timeout in timeouts:
        got_sigterm = multiprocessing.Value("i", 0)
        facts = _shutdown(module, _start(stubborn_worker, got_sigterm), timeout)
        facts["got_sigterm"] = bool(got_sigterm.value)
        runs.append(facts)
    return {"runs": runs, "left_running": len(multiprocessing.active_children())}


def shutdown_releases(module: ModuleType, timeout: float) -> dict[str, Any]:
    """shutdown on a worker that SIGTERM ends, then on one that only SIGKILL ends: is each Process closed?"""
    plain = _shutdown(module, _start(plain_worker), timeout)
    stubborn = _shutdown(module, _start(stubborn_worker, multiprocessing.Value("i", 0)), timeout)
    return {"plain": plain, "stubborn": stubborn}
