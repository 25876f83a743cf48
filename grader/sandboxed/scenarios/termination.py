"""Scenarios for exercise 10 (termination), run inside the sandbox.

Each scenario takes the graded module first, drives it, and returns plain
facts (JSON data) for the hidden test to judge. The workers are module-level
functions here, so that every start method can find them; each one sets a
ready Event once its signal handling is in place, and the scenario waits for
it, so that a signal never arrives before the worker is ready for it. Every
blocking call has a timeout, and every worker gives up after WAIT seconds.

Evidence used, and why:
- Exit codes are read after the graded function returns: a stop that does not
  join would return None. The worker that stop() gets takes DIE_AFTER seconds
  to die of its SIGTERM (its handler waits, then dies by the signal's default
  action), so a missing join shows every time, not by luck.
- A graceful worker's cleanup is a shared Value that only its SIGTERM handling
  sets; the exit code says how it ended.
- shutdown() on a worker that ignores SIGTERM runs in a thread with a limit:
  a join without a timeout is noticed within seconds (the scenario then kills
  the worker itself so that the call ends) instead of hanging the test.
- "Nothing left running": the worker's pid is looked up in /proc, where a
  process that has ended but was never joined shows as a zombie.
- close(): a closed Process object raises ValueError on is_alive().
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import time
from types import ModuleType
from typing import Any

WAIT = 20.0  # seconds any blocking call here may wait: long, because a loaded machine is slow
STEP = 0.05  # seconds of one step of a worker's pretend work
DIE_AFTER = 0.5  # seconds the slow worker takes to die of its SIGTERM
STOP_WAIT = 3.0  # seconds a graceful worker has to end after SIGTERM
HANG_MARGIN = 4.0  # seconds past its timeout after which shutdown() counts as hanging
PROBE_WAIT = 0.5  # seconds the first, threaded call of graceful_worker may take to fail


# ---------------------------------------------------------------- workers


def _work_until_deadline() -> None:
    """Pretend to work, in small steps, until the scenario's patience runs out."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        time.sleep(STEP)


def plain_worker(ready: Any) -> None:
    """Worker with the default SIGTERM action: the signal ends it at once."""
    ready.set()
    _work_until_deadline()


def slow_to_die_worker(ready: Any, got_sigterm: Any) -> None:
    """Worker that notes SIGTERM, takes DIE_AFTER seconds, then dies of the signal all the same."""

    def on_sigterm(signum: int, frame: Any) -> None:
        got_sigterm.value = 1
        time.sleep(DIE_AFTER)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_sigterm)
    ready.set()
    _work_until_deadline()


def graceful_scenario_worker(ready: Any, cleaned_up: Any) -> None:
    """Worker that cleans up on SIGTERM and ends with exit code 0."""

    def on_sigterm(signum: int, frame: Any) -> None:
        cleaned_up.value = 1
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_sigterm)
    ready.set()
    _work_until_deadline()


def stubborn_worker(ready: Any) -> None:
    """Worker that ignores SIGTERM: only SIGKILL ends it."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
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


def _start(target: Any, *args: Any) -> multiprocessing.process.BaseProcess:
    ready = multiprocessing.Event()
    process = multiprocessing.Process(target=target, args=(ready, *args))
    process.start()
    if not _wait_ready(process, ready):
        raise RuntimeError("the grader's own worker did not start in time: the machine is too busy")
    return process


def _is_running(pid: int) -> bool:
    """Whether pid is a live process (a zombie has finished: it is not)."""
    try:
        with open(f"/proc/{pid}/stat") as stream:
            stat = stream.read()
    except OSError:
        return False
    fields = stat.rpartition(")")[2].split()
    return bool(fields) and fields[0] not in ("Z", "X")


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stream:
            return stream.read().rpartition(")")[2].split()[:1] == ["Z"]
    except OSError:
        return False


def _plain(value: Any) -> Any:
    return value if value is None or isinstance(value, (bool, int, str)) else repr(value)


def _is_closed(process: multiprocessing.process.BaseProcess) -> bool:
    try:
        process.is_alive()
    except ValueError:
        return True
    return False


def _after(process: multiprocessing.process.BaseProcess, pid: int) -> dict[str, Any]:
    """What is left of a worker once the graded function has returned; then make sure it is gone."""
    facts = {"running_after": _is_running(pid), "zombie_after": _is_zombie(pid), "closed": _is_closed(process)}
    if not facts["closed"]:  # a closed process has been reaped: its pid may not be ours any more
        with contextlib.suppress(OSError):
            process.kill()  # the scenario's own clean-up, whatever the graded code left; a no-op once reaped
        process.join(WAIT)
    return facts


def _shutdown_with_limit(module: ModuleType, process: Any, timeout: float) -> dict[str, Any]:
    """Call module.shutdown(process, timeout) in a thread; if it hangs, end the worker so that it returns."""
    outcome: dict[str, Any] = {}

    def call() -> None:
        try:
            outcome["returned"] = _plain(module.shutdown(process, timeout))
        except BaseException as exc:  # re-raised in the scenario's own thread below
            outcome["error"] = exc

    pid = process.pid
    started = time.monotonic()
    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    caller.join(timeout + HANG_MARGIN)
    hung = caller.is_alive()
    if hung:  # the graded join() has not reaped the worker yet: killing it lets that join() return
        with contextlib.suppress(OSError, ValueError):
            process.kill()
        caller.join(WAIT)
    elapsed = time.monotonic() - started
    if "error" in outcome:
        raise outcome["error"]
    return {"returned": outcome.get("returned"), "elapsed": elapsed, "hung": hung, **_after(process, pid)}


# ---------------------------------------------------------------- task 1


def stop_slow_worker(module: ModuleType, force: bool) -> dict[str, Any]:
    got_sigterm = multiprocessing.Value("i", 0)
    process = _start(slow_to_die_worker, got_sigterm)
    pid = process.pid
    returned = module.stop(process, force=True) if force else module.stop(process)
    facts = {"returned": _plain(returned), "got_sigterm": bool(got_sigterm.value)}
    facts.update(_after(process, pid))
    return facts


# ---------------------------------------------------------------- task 2


def _first_call_in_a_thread(module: ModuleType) -> None:
    """Let an unwritten graceful_worker show as its own TODO, without running a written one here.

    A written one fails at once in a thread (signal.signal works in the main
    thread only) or keeps working there harmlessly, on objects nobody reads.
    """
    errors: list[BaseException] = []

    def call() -> None:
        try:
            module.graceful_worker(threading.Event(), multiprocessing.Value("i", 0))
        except BaseException as exc:  # kept to be re-raised below if it is the stub's
            errors.append(exc)

    probe = threading.Thread(target=call, daemon=True)
    probe.start()
    probe.join(PROBE_WAIT)
    if errors and isinstance(errors[0], NotImplementedError):
        raise errors[0]


def graceful_worker_stopped(module: ModuleType, work_for: float) -> dict[str, Any]:
    _first_call_in_a_thread(module)
    ready = multiprocessing.Event()
    cleaned_up = multiprocessing.Value("i", 0)
    process = multiprocessing.Process(target=module.graceful_worker, args=(ready, cleaned_up))
    process.start()
    facts: dict[str, Any] = {"ready": _wait_ready(process, ready)}
    if facts["ready"]:
        time.sleep(work_for)
    facts["alive_before"] = process.is_alive()
    facts["exitcode_before"] = process.exitcode
    facts["cleaned_before"] = bool(cleaned_up.value)
    started = time.monotonic()
    process.terminate()
    process.join(STOP_WAIT)
    facts["stop_time"] = time.monotonic() - started
    facts["exitcode"] = process.exitcode
    facts["cleaned_up"] = bool(cleaned_up.value)
    if process.exitcode is None:
        process.kill()
        process.join(WAIT)
    return facts


# ---------------------------------------------------------------- tasks 3 and 4


def shutdown_graceful(module: ModuleType, timeout: float) -> dict[str, Any]:
    cleaned_up = multiprocessing.Value("i", 0)
    process = _start(graceful_scenario_worker, cleaned_up)
    facts = _shutdown_with_limit(module, process, timeout)
    facts["cleaned_up"] = bool(cleaned_up.value)
    return facts


def shutdown_stubborn(module: ModuleType, timeout: float) -> dict[str, Any]:
    process = _start(stubborn_worker)
    facts = _shutdown_with_limit(module, process, timeout)
    facts["left_running"] = len(multiprocessing.active_children())
    return facts


def shutdown_releases(module: ModuleType, timeout: float) -> dict[str, Any]:
    plain = _shutdown_with_limit(module, _start(plain_worker), timeout)
    stubborn = _shutdown_with_limit(module, _start(stubborn_worker), timeout)
    return {"plain": plain, "stubborn": stubborn}
