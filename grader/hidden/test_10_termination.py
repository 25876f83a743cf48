"""Hidden tests for exercise 10 (termination). Scenarios: grader/sandboxed/scenarios/termination.py.

The contract each test holds a solution to: grader/hidden/contracts/10_termination.toml.
"""

import signal

import pytest

from grader.names import STARTING_CALL_TIMEOUT

EXERCISE = "termination"

SIGTERM_CODE = -int(signal.SIGTERM)  # -15
SIGKILL_CODE = -int(signal.SIGKILL)  # -9
WILLING_TIMEOUT = 3.0  # seconds shutdown gives a worker that ends 0.2 s after SIGTERM
# Seconds shutdown gives a worker that ignores SIGTERM: a fixed wait is early (< 0.9 x 2.5) or late (> 1.0 + 1.0)
# for one of them. Both stay well above the moment a Worker's SIGKILL takes (0.5 s), so kill() then join(timeout)
# is never caught out by it.
STUBBORN_TIMEOUTS = [1.0, 2.5]
RELEASE_TIMEOUT = 1.5  # seconds shutdown gives the workers whose Process must be closed afterwards
LATE_MARGIN = 1.0  # seconds past the timeout by which kill() must have come
MAX_STEP = 0.25  # seconds: the longest step of work that still counts as small (WORK_STEP is 0.05)
# CPU seconds a worker may use while it works for a second: stepping with time.sleep takes milliseconds,
# a loop that never blocks takes all it can get (a quarter of a second even with eight busy processes on 2 CPUs).
MAX_CPU_WHILE_WORKING = 0.1
CALL = 40  # seconds for a scenario that calls shutdown several times


def how_it_ended(code) -> str:
    names = {SIGTERM_CODE: "killed by SIGTERM", SIGKILL_CODE: "killed by SIGKILL", 0: "a normal end"}
    return f"{code} ({names[code]})" if code in names else repr(code)


def stopped(student, facts, function: str, hang_fails: bool = True):
    """What the graded call returned; the test fails with why when it hung (unless told otherwise) or raised."""
    call = facts["call"]
    if facts["hung"] and hang_fails:
        student.returned({"outcome": "hung", "deadline": facts["hung_after"]}, function)
    if call["outcome"] == "raised" and call["error"]["type"] == "ValueError" and facts["closed"]:
        error = call["error"]
        where = f" ({error['where']})" if error.get("where") else ""
        pytest.fail(
            f"{function}() raised ValueError: {error['message']}{where}. The Process object was closed before its "
            "exitcode was read: read process.exitcode first, keep it in a variable, then close() and return it",
            pytrace=False,
        )
    if call["outcome"] == "raised" and "still running" in call["error"]["message"]:
        pytest.fail(
            f"{function}() raised ValueError: {call['error']['message']} ({call['error'].get('where')}). close() "
            "refuses a process that has not ended yet: after kill(), join() it, then read exitcode and close it",
            pytrace=False,
        )
    return student.returned(call, function)


def check_ended(facts, function: str, returned) -> None:
    assert not facts["running_after"], (
        f"{function}() returned {returned!r} while the worker was still running: wait until it has ended "
        "(join()), then return the exitcode it ended with"
    )


# ---------------------------------------------------------------- task 1


@pytest.mark.task(1)
def test_stop_terminates_and_waits(student):
    """stop(process) ends it with SIGTERM, waits until it has ended and returns -SIGTERM"""
    facts = student.call("stop_worker", False, timeout=STARTING_CALL_TIMEOUT)
    returned = stopped(student, facts, "stop")
    assert returned != SIGKILL_CODE and not facts["kill_called"], (
        f"stop(process) returned {how_it_ended(returned)}: it called kill() where terminate() was asked "
        "(force is False). kill() gives the process no chance to handle the signal"
    )
    assert facts["terminate_called"] or facts["got_sigterm"], (
        "the worker never got SIGTERM: stop(process) must call process.terminate()"
    )
    assert returned is not None, (
        f"stop returned None: the worker takes {facts['dies_after']:g} s to die of its SIGTERM, and stop did not "
        "wait for it. terminate() only sends the signal and returns at once: join() the process (no timeout), "
        "then read its exitcode"
    )
    check_ended(facts, "stop", returned)
    assert returned == SIGTERM_CODE, (
        f"stop returned {returned!r} for a process ended by terminate(); expected {SIGTERM_CODE} "
        "(-signal.SIGTERM): return process.exitcode after join()"
    )


@pytest.mark.task(1)
def test_stop_with_force_kills_and_waits(student):
    """stop(process, force=True) ends it with SIGKILL, waits until it has ended and returns -SIGKILL"""
    facts = student.call("stop_worker", True, timeout=STARTING_CALL_TIMEOUT)
    returned = stopped(student, facts, "stop")
    assert not facts["got_sigterm"], (
        "with force=True the worker got SIGTERM: force means kill() straight away, without asking first"
    )
    assert facts["kill_called"] or returned is not None, (
        "stop(process, force=True) never called process.kill(), and the process was not ended"
    )
    assert returned is not None, (
        "stop(process, force=True) returned None: kill() only sends the signal and returns at once, before the "
        "process has ended. join() it, then read its exitcode"
    )
    check_ended(facts, "stop", returned)
    assert returned == SIGKILL_CODE, (
        f"stop(process, force=True) returned {returned!r}; expected {SIGKILL_CODE} (-signal.SIGKILL): "
        "call process.kill() when force is true, join(), then return process.exitcode"
    )


# ---------------------------------------------------------------- task 2


def graceful_facts(student, race: bool):
    facts = student.call("graceful_worker_run", race, timeout=STARTING_CALL_TIMEOUT)
    errors = facts["child_errors"]
    if race and errors and errors[0]["type"] != "NotImplementedError":
        error = errors[0]
        where = f" ({error['where']})" if error.get("where") else ""
        pytest.fail(
            f"SIGTERM sent the very moment graceful_worker set ready made it raise {error['type']}{where} and end "
            f"with exit code {facts['exitcode']}"
            + ("" if facts["cleaned_up"] else ", without its cleanup")
            + ": from ready.set() on, a SIGTERM must lead to the cleanup and exit code 0, wherever it comes in. "
            "Install the handler first, and if it raises, set ready inside the try whose finally cleans up",
            pytrace=False,
        )
    student.fail_on_child_errors(errors)
    assert facts["ready"], (
        "graceful_worker never set ready"
        + (f" and ended with exit code {facts['exitcode_before']}" if facts["exitcode_before"] is not None else "")
        + ": install the SIGTERM handler, then call ready.set()"
    )
    return facts


@pytest.mark.task(2)
def test_graceful_worker_works_in_small_steps_until_sigterm(student):
    """graceful_worker keeps working, in small steps, until SIGTERM, and stops at the step SIGTERM came in"""
    facts = graceful_facts(student, race=False)
    assert facts["alive_before"], (
        f"graceful_worker ended on its own (exit code {facts['exitcode_before']}) before anyone asked it to stop: "
        "it must keep working, a step of time.sleep(WORK_STEP) at a time, until SIGTERM arrives"
    )
    assert not facts["cleaned_before"], (
        "graceful_worker cleaned up before SIGTERM arrived: cleanup belongs to the end, once a stop was asked"
    )
    cpu = facts.get("cpu_while_working")
    assert cpu is None or cpu <= MAX_CPU_WHILE_WORKING, (
        f"graceful_worker used {cpu:.2f} s of CPU in the {facts['work_time']:g} s it worked: its loop never blocks, "
        "it spins. Let each step of work be time.sleep(WORK_STEP), which gives the CPU back while it waits"
    )
    longest = facts["longest_step"]
    assert longest <= MAX_STEP, (
        f"graceful_worker works in steps of time.sleep({longest:g}): SIGTERM can then wait that long before the "
        "loop sees it. Work in small steps, time.sleep(WORK_STEP), and check the handler's note after each"
    )
    after = facts["steps_after_sigterm"]
    assert after is None or after <= 1, (
        f"graceful_worker went on for {after} more steps of work after its SIGTERM handler had run: "
        "let the loop end at the step in which the handler noted the request, then clean up"
    )


@pytest.mark.task(2)
def test_graceful_worker_cleans_up_on_sigterm(student):
    """On SIGTERM graceful_worker cleans up and ends with exit code 0"""
    facts = graceful_facts(student, race=False)
    code = facts["exitcode"]
    assert code is not None, (
        f"graceful_worker was still running {facts['stop_seconds']:.1f} s after SIGTERM"
        + (": its handler ran, but the work never stopped. Let the handler note the request and let the work "
           "loop end on it" if facts["handled"] else "")
    )  # fmt: skip
    assert code != SIGTERM_CODE, (
        f"graceful_worker ended with {how_it_ended(code)}, without its cleanup: no SIGTERM handler of its own was "
        "in place, so the signal's default action ended it on the spot. Install one with "
        "signal.signal(signal.SIGTERM, handler) in graceful_worker"
    )
    assert facts["cleaned_up"], (
        f"graceful_worker ended with exit code {code} but never cleaned up: set cleaned_up.value = 1 before it ends"
    )
    assert facts["cleaned_up"] == 1, (
        f"graceful_worker set cleaned_up.value to {facts['cleaned_up']}, not 1: its cleanup is cleaned_up.value = 1"
    )
    assert code == 0, f"graceful_worker cleaned up, then ended with exit code {code}: end normally, with exit code 0"


@pytest.mark.task(2)
def test_graceful_worker_is_ready_only_once_it_handles_sigterm(student):
    """SIGTERM sent the very moment graceful_worker sets ready is handled: it still cleans up and ends with 0"""
    facts = graceful_facts(student, race=True)
    code = facts["exitcode"]
    if code == SIGTERM_CODE:
        pytest.fail(
            "SIGTERM sent the very moment graceful_worker set ready ended it on the spot (exit code -15), without "
            "its cleanup: its handler was not in place yet. Install the handler with signal.signal first, and "
            "only then call ready.set(): whoever waits for ready may send SIGTERM at once",
            pytrace=False,
        )
    assert code is not None, (
        f"SIGTERM came the very moment graceful_worker set ready, and {facts['stop_seconds']:.1f} s later it was "
        "still running: once SIGTERM is handled, the work loop must end and the worker clean up"
    )
    assert facts["cleaned_up"] == 1 and code == 0, (
        f"SIGTERM came the very moment graceful_worker set ready; it ended with exit code {code}"
        + (" without cleaning up" if not facts["cleaned_up"] else "")
        + ": from ready.set() on, a SIGTERM must lead to the cleanup and exit code 0, wherever it interrupts"
    )


# ---------------------------------------------------------------- task 3


@pytest.mark.task(3)
def test_shutdown_lets_a_willing_worker_stop_by_itself(student):
    """shutdown asks first: a worker that stops when asked is not killed, and shutdown returns as soon as it ends"""
    facts = student.call("shutdown_willing", WILLING_TIMEOUT, timeout=CALL)
    ends_after = facts["ends_after"]
    for kind, expected, said in (
        ("cleaning", 0, "cleans up and ends with exit code 0 when asked"),
        ("dying", SIGTERM_CODE, "dies of SIGTERM when asked"),
    ):
        run = facts[kind]
        said = f"{said} ({ends_after:g} s after SIGTERM)"
        returned = stopped(student, run, "shutdown")
        assert run["got_sigterm"] or returned != SIGKILL_CODE, (
            f"shutdown returned {how_it_ended(returned)} for a worker that {said}, and it never got SIGTERM: "
            "ask first with terminate(); kill() only what is still alive after the timeout"
        )
        assert run["got_sigterm"], (
            f"shutdown never sent SIGTERM to a worker that {said}: ask it to stop with terminate() first"
        )
        assert returned != SIGKILL_CODE and not run["killed_while_alive"], (
            f"shutdown called kill() on a worker that {said}, while it was still ending, although the timeout was "
            f"{WILLING_TIMEOUT:g} s: kill() only a process that is still alive once the whole timeout has passed"
        )
        assert returned is not None, "shutdown returned None: wait for the process to end before reading its exitcode"
        check_ended(run, "shutdown", returned)
        assert returned == expected, (
            f"shutdown returned {returned!r} for a worker that {said}; expected {how_it_ended(expected)}: "
            "return process.exitcode once it has ended"
        )
        seconds = run["call"]["seconds"]
        assert seconds <= WILLING_TIMEOUT / 2, (
            f"shutdown took {seconds:.1f} s for a worker that {said}: it kept it "
            f"waiting for the whole timeout ({WILLING_TIMEOUT:g} s). join(timeout) returns as soon as the process "
            "has ended; time.sleep(timeout) does not"
        )


@pytest.mark.task(3)
def test_shutdown_kills_a_stubborn_worker_once_the_timeout_has_passed(student):
    """shutdown kills a worker that ignores SIGTERM once the timeout has passed: not before, not much after"""
    facts = student.call("shutdown_stubborn", STUBBORN_TIMEOUTS, timeout=CALL)
    for run in facts["runs"]:
        timeout = run["timeout"]
        if run["hung"]:
            pytest.fail(
                f"shutdown(process, {timeout:g}) was still waiting {run['hung_after']:g} s later for a worker "
                "that ignores SIGTERM: join(timeout), then kill() it if is_alive() is still True, and join() it",
                pytrace=False,
            )
        returned = stopped(student, run, "shutdown")
        assert run["got_sigterm"], (
            f"shutdown(process, {timeout:g}) never sent SIGTERM to the worker: ask it with terminate() first, "
            "and kill() it only if it is still alive once the timeout has passed"
        )
        assert returned is not None, (
            f"shutdown(process, {timeout:g}) returned None for a worker that ignores SIGTERM: kill() only sends "
            "the signal; join() the process after it, then read its exitcode"
        )
        assert returned == SIGKILL_CODE, (
            f"shutdown(process, {timeout:g}) returned {how_it_ended(returned)} for a worker that ignores SIGTERM; "
            f"expected {SIGKILL_CODE}: when it is still alive after the timeout, kill() it"
        )
        check_ended(run, "shutdown", returned)
        gap = run["kill_after_terminate"]
        assert gap >= 0.9 * timeout, (
            f"shutdown(process, {timeout:g}) killed the worker {gap:.2f} s after asking it to stop: it must give "
            f"it the whole timeout it was given ({timeout:g} s), whatever that is, before kill()"
        )
        assert gap <= timeout + LATE_MARGIN, (
            f"shutdown(process, {timeout:g}) killed the worker only {gap:.2f} s after asking it to stop: at most "
            f"timeout seconds in all, so one join(timeout) after terminate(), then kill()"
        )
    assert facts["left_running"] == 0, "a child process was still running after shutdown returned"


# ---------------------------------------------------------------- task 4


@pytest.mark.task(4)
def test_shutdown_releases_the_process(student):
    """After shutdown the Process object is closed, whether the worker stopped politely or was killed"""
    facts = student.call("shutdown_releases", RELEASE_TIMEOUT, timeout=CALL)
    for kind, said in (("plain", "stopped by SIGTERM"), ("stubborn", "killed after the timeout")):
        run = facts[kind]
        # An error fails here too (close() is part of it); a hang or a wrong exit code is task 3's.
        stopped(student, run, "shutdown", hang_fails=False)
        assert run["closed"], (
            f"after shutdown, the Process object of a worker {said} was still open (is_alive() still answered): "
            "call process.close() once it has ended and you have read its exitcode"
        )
