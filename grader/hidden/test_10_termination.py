"""Hidden tests for exercise 10 (termination). Scenarios: grader/sandboxed/scenarios/termination.py."""

import signal

import pytest

EXERCISE = "termination"

SIGTERM_CODE = -int(signal.SIGTERM)  # -15
SIGKILL_CODE = -int(signal.SIGKILL)  # -9
GRACE = 4.0  # seconds shutdown gives a worker that stops at once: it must not use them up
STUBBORN_GRACE = 0.5  # seconds shutdown gives a worker that ignores SIGTERM


def how_it_ended(code) -> str:
    names = {SIGTERM_CODE: "killed by SIGTERM", SIGKILL_CODE: "killed by SIGKILL", 0: "a normal end"}
    return f"{code} ({names[code]})" if code in names else repr(code)


def check_nothing_left(facts, function: str) -> None:
    assert not facts["running_after"], f"the worker was still running after {function}() returned"


# ---------------------------------------------------------------- task 1


@pytest.mark.task(1)
def test_stop_terminates_and_waits(student):
    """stop(process) ends it with SIGTERM, waits for it and returns -SIGTERM"""
    facts = student.call("stop_slow_worker", False)
    returned = facts["returned"]
    assert returned is not None, (
        "stop returned None: terminate() only sends the signal and returns at once, while the process is "
        "still ending. join() it, then read its exitcode"
    )
    assert returned != SIGKILL_CODE, (
        f"stop returned {how_it_ended(returned)}: it used kill() where terminate() was asked. kill() gives "
        "the process no chance to handle the signal"
    )
    assert facts["got_sigterm"], "the worker never got SIGTERM: stop(process) must call process.terminate()"
    assert returned == SIGTERM_CODE, (
        f"stop returned {how_it_ended(returned)} for a process ended by terminate(); expected {SIGTERM_CODE} "
        "(-signal.SIGTERM): return process.exitcode after join()"
    )
    check_nothing_left(facts, "stop")


@pytest.mark.task(1)
def test_stop_with_force_kills(student):
    """stop(process, force=True) ends it with SIGKILL at once and returns -SIGKILL"""
    facts = student.call("stop_slow_worker", True)
    returned = facts["returned"]
    assert not facts["got_sigterm"], (
        "with force=True the worker got SIGTERM: force means kill() straight away, without asking first"
    )
    assert returned is not None, "stop returned None: after kill(), join() the process, then read its exitcode"
    assert returned == SIGKILL_CODE, (
        f"stop(process, force=True) returned {how_it_ended(returned)}; expected {SIGKILL_CODE} (-signal.SIGKILL): "
        "call process.kill() when force is true"
    )
    check_nothing_left(facts, "stop")


# ---------------------------------------------------------------- task 2


@pytest.mark.task(2)
def test_graceful_worker_works_until_asked_to_stop(student):
    """graceful_worker gets ready, then keeps working until SIGTERM, with no cleanup before"""
    facts = student.call("graceful_worker_stopped", 0.3)
    assert facts["ready"], (
        "graceful_worker never set ready"
        + (f" and ended with exit code {facts['exitcode_before']}" if facts["exitcode_before"] is not None else "")
        + ": install the SIGTERM handler, then call ready.set()"
    )
    assert facts["alive_before"], (
        f"graceful_worker ended on its own (exit code {facts['exitcode_before']}) before anyone asked it to stop: "
        "it must keep working, step by step, until SIGTERM arrives"
    )
    assert not facts["cleaned_before"], (
        "graceful_worker cleaned up before SIGTERM arrived: cleanup belongs to the end, once a stop was asked"
    )


@pytest.mark.task(2)
def test_graceful_worker_cleans_up_on_sigterm(student):
    """On SIGTERM graceful_worker cleans up and ends with exit code 0"""
    facts = student.call("graceful_worker_stopped", 0.2)
    assert facts["ready"], "graceful_worker never set ready: install the SIGTERM handler, then call ready.set()"
    code = facts["exitcode"]
    assert code is not None, (
        f"graceful_worker was still running {facts['stop_time']:.1f} s after SIGTERM: the handler ran, but the work "
        "never stopped. Let the handler note the request and let the work loop end on it"
    )
    assert code != SIGTERM_CODE, (
        f"graceful_worker ended with {how_it_ended(code)}, without its cleanup: there is no SIGTERM handler, so the "
        "signal's default action ended it on the spot. Install one with signal.signal(signal.SIGTERM, handler)"
    )
    assert facts["cleaned_up"], (
        f"graceful_worker ended with exit code {code} but never cleaned up: set cleaned_up.value = 1 before it ends"
    )
    assert code == 0, f"graceful_worker cleaned up, then ended with exit code {code}: end normally, with exit code 0"


# ---------------------------------------------------------------- task 3


@pytest.mark.task(3)
def test_shutdown_lets_a_willing_worker_stop_by_itself(student):
    """shutdown asks first: a worker that handles SIGTERM cleans up, and shutdown returns at once"""
    facts = student.call("shutdown_graceful", GRACE)
    assert not facts["hung"], "shutdown never returned for a worker that stops on SIGTERM"
    returned = facts["returned"]
    assert returned != SIGKILL_CODE or facts["cleaned_up"], (
        f"shutdown returned {how_it_ended(returned)} and the worker never cleaned up: it was killed without being "
        "asked to stop first. terminate() first; kill() only when it is still alive after the timeout"
    )
    assert returned is not None, "shutdown returned None: join() the process before reading its exitcode"
    assert facts["cleaned_up"] and returned == 0, (
        f"shutdown returned {how_it_ended(returned)} for a worker that cleans up on SIGTERM and ends with 0: "
        "ask it with terminate() and wait for it with join(timeout)"
    )
    assert facts["elapsed"] < GRACE - 1.0, (
        f"shutdown took {facts['elapsed']:.1f} s for a worker that stops at once: join(timeout) returns as soon "
        "as the process has ended; do not wait out the whole timeout"
    )
    check_nothing_left(facts, "shutdown")


@pytest.mark.task(3)
def test_shutdown_kills_a_stubborn_worker_after_the_timeout(student):
    """shutdown kills a worker that ignores SIGTERM once the timeout has passed, not before, not never"""
    facts = student.call("shutdown_stubborn", STUBBORN_GRACE)
    assert not facts["hung"], (
        f"shutdown(process, {STUBBORN_GRACE}) was still waiting {facts['elapsed']:.1f} s later for a worker that "
        "ignores SIGTERM: join(timeout), then kill() it if is_alive() is still True"
    )
    returned = facts["returned"]
    assert returned is not None, "shutdown returned None: after kill(), join() the process, then read its exitcode"
    assert returned == SIGKILL_CODE, (
        f"shutdown returned {how_it_ended(returned)} for a worker that ignores SIGTERM; expected {SIGKILL_CODE}: "
        "when it is still alive after the timeout, kill() it"
    )
    assert facts["elapsed"] >= 0.9 * STUBBORN_GRACE, (
        f"shutdown killed the worker after {facts['elapsed']:.2f} s: it must get the whole timeout "
        f"({STUBBORN_GRACE} s) to stop by itself first"
    )
    check_nothing_left(facts, "shutdown")
    assert facts["left_running"] == 0, "a child process was still running after shutdown returned"


# ---------------------------------------------------------------- task 4


@pytest.mark.task(4)
def test_shutdown_releases_the_process(student):
    """After shutdown the Process object is closed, whether the worker stopped politely or was killed"""
    facts = student.call("shutdown_releases", STUBBORN_GRACE)
    for kind, said in (("plain", "stopped by SIGTERM"), ("stubborn", "killed after the timeout")):
        outcome = facts[kind]  # a shutdown that hangs is task 3's failure; here only close() counts
        assert outcome["closed"], (
            f"after shutdown, the Process object of a worker {said} was still open (is_alive() still answered): "
            "call process.close() once it has ended and you have read its exitcode"
        )
