"""Hidden tests for exercise 9 (daemons). Scenarios: grader/sandboxed/scenarios/daemons.py."""

import pytest

EXERCISE = "daemons"

PROGRAM_CALL = 40.0  # a fresh program that may be slow: it starts its own interpreter and workers
ALREADY_STARTED = "process has already started"


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def check_program_ran(facts, function: str) -> None:
    """Fail with the program's own error when the fresh parent did not get to the end of its main code."""
    assert not facts["timed_out"], (
        f"a program that called {function}() did not end within 25 s: something in it waits forever"
    )
    if ALREADY_STARTED in facts["stderr"]:
        pytest.fail(
            f"{function}() raised AssertionError: {ALREADY_STARTED}. The daemon flag can only be set before "
            "start(): pass daemon=... to Process, or set it before calling start()",
            pytrace=False,
        )
    assert facts["main_done"] is not None, (
        f"a program that called {function}() failed before its main code ended: {last_line(facts['stderr'])}"
    )


# ---------------------------------------------------------------- task 1


@pytest.mark.task(1)
def test_start_daemon_starts_a_daemon(student):
    """start_daemon starts a process that knows it is a daemon"""
    facts = student.call("start_daemon_flag")
    if "raised" in facts:
        pytest.fail(
            f"start_daemon raised {facts['raised']}. The daemon flag can only be set before start(): "
            "pass daemon=True to Process, or set process.daemon = True before calling start()",
            pytrace=False,
        )
    report = facts["report"]
    assert report is not None, "the target never ran: start_daemon must create the Process and call start() on it"
    assert report["pid"] != facts["caller_pid"], (
        "the target ran in the calling process: give it to Process(target=...) and start() it"
    )
    assert facts["is_process"], f"start_daemon returned {facts['returned_type']}, not the Process it started"
    assert facts["started"], "the returned process was never started: call start() before returning it"
    assert report["daemon"], (
        "the process is not a daemon: multiprocessing.current_process().daemon is False inside it. "
        "Pass daemon=True to Process (or set the flag before start())"
    )


@pytest.mark.task(1)
def test_a_daemon_does_not_keep_its_parent_alive(student):
    """A program whose only child is a daemon ends at once, and its daemon is cut off"""
    facts = student.call("daemon_parent_lifetime", timeout=PROGRAM_CALL)
    check_program_ran(facts, "start_daemon")
    daemon = facts["workers"]["daemon"]
    assert daemon["started"] is not None, "the daemon never started its work: start_daemon must start() the process"
    lived = facts["parent_end"] - facts["main_done"]
    assert daemon["done"] is None and facts["parent_end"] < daemon["started"] + facts["long"], (
        f"the program's main code had ended, yet it lived {lived:.1f} s longer, until its child finished "
        f"{facts['long']:g} s of work: the child kept it alive, so it is not a daemon. Pass daemon=True"
    )
    assert facts["returncode"] == 0, f"the program ended with exit code {facts['returncode']}: {facts['stderr']}"


# ---------------------------------------------------------------- task 2


@pytest.mark.task(2)
def test_start_jobs_sets_each_flag_before_start(student):
    """start_jobs starts every job at once, a daemon exactly when it need not finish"""
    must_finish = [True, False, False, True]
    facts = student.call("start_jobs_flags", must_finish)
    processes = facts["processes"]
    assert processes, f"start_jobs returned {facts['returned_type']}, not the list of processes it started"
    assert len(processes) == len(must_finish), f"start_jobs returned {len(processes)} processes for 4 jobs"
    assert all(p["is_process"] and p["started"] for p in processes), (
        "start_jobs must return the processes it started, in the order of the jobs, each one started"
    )
    children = facts["children"]
    assert all(child["ran"] for child in children), "some jobs never ran"
    assert facts["caller_pid"] not in {child["pid"] for child in children}, (
        "a job ran in the calling process: give it to Process(target=...) and start() it"
    )
    assert all(facts["alive_on_return"]), (
        "some jobs had already ended when start_jobs returned: start them and return, do not join them"
    )
    flags = [child["daemon"] for child in children]
    expected = [not finish for finish in must_finish]
    assert flags == expected, (
        f"for must_finish {must_finish} the processes had daemon={flags}, expected daemon={expected}: "
        "a job that must finish is an ordinary process, one that may be cut off is a daemon"
    )


@pytest.mark.task(2)
def test_the_parent_waits_for_essential_jobs_only(student):
    """At exit the parent waits for the job that must finish and cuts the background job off"""
    facts = student.call("jobs_parent_lifetime", timeout=PROGRAM_CALL)
    check_program_ran(facts, "start_jobs")
    background, essential = facts["workers"]["background"], facts["workers"]["essential"]
    assert background["started"] is not None and essential["started"] is not None, (
        "a job never started its work: start_jobs must start() every process"
    )
    assert essential["done"] is not None, (
        f"the job that must finish ({facts['short']:g} s of work) was cut off when the program ended: "
        "it was a daemon. A job that must finish runs with daemon=False, and the program waits for it at exit"
    )
    lived = facts["parent_end"] - facts["main_done"]
    assert background["done"] is None and facts["parent_end"] < background["started"] + facts["long"], (
        f"the program lived {lived:.1f} s after its main code ended, until the background job finished "
        f"{facts['long']:g} s of work: a job that need not finish must be a daemon, so that it does not keep "
        "the program alive"
    )
    assert facts["returncode"] == 0, f"the program ended with exit code {facts['returncode']}: {facts['stderr']}"


# ---------------------------------------------------------------- task 3


@pytest.mark.task(3)
def test_the_supervisor_starts_its_own_workers(student):
    """The supervisor is an ordinary process whose workers are its own children"""
    facts = student.call("supervisor_runs_workers", 3)
    assert facts["is_process"], f"start_supervisor returned {facts['returned_type']}, not the Process it started"
    assert facts["started"], "the supervisor was never started: call start() before returning it"
    workers = facts["workers"]
    if facts["daemon"]:
        pytest.fail(
            "the supervisor is a daemon, and a daemon may not start processes of its own "
            "(AssertionError: daemonic processes are not allowed to have children). "
            "Start the supervisor as an ordinary process",
            pytrace=False,
        )
    still_running = " (still running after 20 s: does it join its workers?)" if facts["exitcode"] is None else ""
    assert facts["exitcode"] == 0, f"the supervisor ended with exit code {facts['exitcode']}{still_running}"
    pids = [worker["pid"] for worker in workers]
    assert all(pids), "some workers never ran: supervise must start one process per tuple"
    assert facts["caller_pid"] not in pids and facts["supervisor_pid"] not in pids, (
        "a worker ran inside the supervisor itself or in the caller: supervise must start one process per tuple"
    )
    assert len(set(pids)) == len(pids), "two workers shared one process: start one process per tuple"
    assert all(worker["parent_pid"] == facts["supervisor_pid"] for worker in workers), (
        "the workers were not started by the supervisor: supervise, running in the supervisor, must start them"
    )
    assert all(worker["done"] for worker in workers), (
        "some workers were cut off before they finished their work: start them as ordinary processes and join every one"
    )
