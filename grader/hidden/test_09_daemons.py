"""Hidden tests for exercise 9 (daemons). Scenarios: grader/sandboxed/scenarios/daemons.py.

The contract each test holds a solution to: grader/hidden/contracts/09_daemons.toml.
"""

from typing import Any

import pytest

from grader.names import STARTING_CALL_TIMEOUT
from grader.plugin import cannot_be_pickled

EXERCISE = "daemons"

PROGRAM_CALL = 40.0  # a fresh program that may be slow: it starts its own interpreter and workers
LONG_CALL = 40.0  # scenarios that may wait for a hold, then for a release
ALREADY_STARTED = "process has already started"
DAEMONIC_CHILDREN = "daemonic processes are not allowed to have children"
MUST_FINISH = [True, False, False, True, True, False]
SUPERVISED = 3
RAN_IN_CALLER = "give the function to Process(target=..., args=...) and start() it, do not call it yourself"


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def where(error: dict[str, Any]) -> str:
    return f" ({error['where']})" if error.get("where") else ""


def fail_on_flag_after_start(error: dict[str, Any] | None, function: str) -> None:
    if error and error["type"] == "AssertionError" and ALREADY_STARTED in error["message"]:
        pytest.fail(
            f"{function} raised AssertionError: {ALREADY_STARTED}{where(error)}. The daemon flag can only be set "
            "before start(): pass daemon=... to Process, or set process.daemon before calling start()",
            pytrace=False,
        )


def program_said(facts: dict[str, Any]) -> str:
    """The program's last line of error output, as a clause, if it wrote any."""
    said = last_line(facts["stderr"])
    return f" (the program's last words: {said})" if said else ""


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


def value_of(student, call: dict[str, Any], function: str, shown: str) -> Any:
    """The value of one call the scenario made; fail with what it raised (naming the call as shown) or the hang."""
    if call["outcome"] == "raised":
        fail_on_flag_after_start(call["error"], function)
        error = call["error"]
        pytest.fail(f"{shown} raised {error['type']}: {error['message']}{where(error)}", pytrace=False)
    return student.returned(call, function)


def held_call(student, facts: dict[str, Any], function: str, children: str, them: str = "them") -> None:
    """Fail a call that should have returned while its children still waited for the scenario."""
    if facts["outcome"] == "hung":
        # It never returned, even once its children could end: a hang of its own, not a wait for them.
        student.returned(facts["after_release"], function)
        pytest.fail(
            f"{function} returned only once {children} could end: it waits for {them} (join(), or is_alive() "
            f"in a loop). Start {them} and return at once: the caller decides when to wait",
            pytrace=False,
        )
    if facts["outcome"] == "raised":
        fail_on_flag_after_start(facts["error"], function)
        error = facts["error"]
        pytest.fail(f"{function} raised {error['type']}: {error['message']}{where(error)}", pytrace=False)


# ---------------------------------------------------------------- task 1


@pytest.mark.task(1)
def test_start_daemon_starts_a_daemon(student):
    """start_daemon starts a process that knows it is a daemon, and returns that process"""
    facts = student.call("start_daemon_flag", timeout=STARTING_CALL_TIMEOUT)
    call = facts["with_args"]
    fail_on_flag_after_start(call["error"], "start_daemon")
    if call["error"]:
        error = call["error"]
        pytest.fail(f"start_daemon raised {error['type']}: {error['message']}{where(error)}", pytrace=False)
    report = call["report"]
    assert report is not None, "the target never ran: start_daemon must create the Process and call start() on it"
    assert report["pid"] != facts["caller_pid"], f"the target ran in the calling process: {RAN_IN_CALLER}"
    assert call["is_process"], f"start_daemon returned {call['returned_type']}, not the Process it started"
    assert call["started"], "the returned process was never started: call start() before returning it"
    assert call["pid"] == report["pid"], (
        f"start_daemon returned the process {call['pid']}, but the target ran in the process {report['pid']}: "
        "return the very process you started"
    )
    assert report["daemon"], (
        "the process is not a daemon: multiprocessing.current_process().daemon is False inside it. "
        "Pass daemon=True to Process (or set the flag before start())"
    )
    assert call["daemon"], "inside, the process knows it is a daemon, but the returned process says daemon=False"


@pytest.mark.task(1)
def test_start_daemon_passes_the_args(student):
    """start_daemon calls target(*args), and target() when no args are given"""
    facts = student.call("start_daemon_flag", timeout=STARTING_CALL_TIMEOUT)
    for label, given, shown in (
        ("with_args", ["from-args", 0, ""], "start_daemon(target, ('from-args', 0, ''))"),
        ("default_args", [], "start_daemon(target)"),
    ):
        call = facts[label]
        fail_on_flag_after_start(call["error"], "start_daemon")
        if call["error"]:
            error = call["error"]
            advice = (
                ": without args the target gets no arguments. Keep args=() as the default in the def line, "
                "and pass args on to Process as it is"
                if label == "default_args"
                else ""
            )
            pytest.fail(f"{shown} raised {error['type']}: {error['message']}{where(error)}{advice}", pytrace=False)
        report = call["report"]
        assert report is not None, f"{shown} never ran the target: start the Process you made for it"
        assert report["args"] == given, (
            f"{shown} called the target with the arguments {tuple(report['args'])!r}, not {tuple(given)!r}: "
            "pass args=args to Process as it is (it is already a tuple)"
        )


@pytest.mark.task(1)
def test_start_daemon_returns_while_the_daemon_runs(student):
    """start_daemon returns the started daemon at once, without waiting for it"""
    facts = student.call("start_daemon_returns_at_once", timeout=LONG_CALL)
    report = facts["report"]
    assert report is None or report["pid"] != facts["caller_pid"], (
        f"the target ran in the calling process: {RAN_IN_CALLER}"
    )
    held_call(student, facts, "start_daemon", "its daemon", "it")
    assert facts["is_process"] and facts["started"], (
        f"start_daemon returned {facts['returned_type']}, not the started Process"
    )
    assert report is not None, "the target never ran: start_daemon must start target(*args) in the Process"
    assert facts["alive_at_return"], (
        "the process start_daemon returned had already ended, although its target was still waiting: do not wait for it"
    )


@pytest.mark.task(1)
def test_a_daemon_does_not_keep_its_parent_alive(student):
    """A program whose only child is a daemon ends at once, and its daemon is cut off"""
    facts = student.call("daemon_parent_lifetime", timeout=PROGRAM_CALL)
    check_program_ran(facts, "start_daemon")
    daemon = facts["workers"]["daemon"]
    assert daemon["started"] is not None, (
        f"the daemon never started its work{program_said(facts)}: start_daemon must start target(*args) in the process"
    )
    if daemon["done"] is not None and facts["main_returned"] >= daemon["done"]:
        pytest.fail(
            f"start_daemon returned only after its daemon had finished {facts['long']:g} s of work: it waited for "
            "it. Start the daemon and return at once",
            pytrace=False,
        )
    lived = facts["parent_end"] - facts["main_done"]
    assert daemon["done"] is None and facts["parent_end"] < daemon["started"] + facts["long"], (
        f"the program's main code had ended, yet it lived {lived:.1f} s longer, until its child finished "
        f"{facts['long']:g} s of work: the child kept it alive, so it is not a daemon. Pass daemon=True"
    )
    assert facts["returncode"] == 0, f"the program ended with exit code {facts['returncode']}: {facts['stderr']}"


# ---------------------------------------------------------------- task 2


def started_jobs(facts: dict[str, Any]) -> list[dict[str, Any]]:
    """The processes start_jobs returned, each started, one per job; fail with what was wrong otherwise."""
    processes = facts["processes"]
    assert processes is not None, f"start_jobs returned {facts['returned_type']}, not a list of the processes"
    count = facts["count"]
    assert len(processes) == count, f"start_jobs returned {len(processes)} processes for {count} jobs"
    assert all(p["is_process"] and p["started"] for p in processes), (
        "start_jobs must return the processes it started, each one started: "
        f"it returned {[p['returned_type'] + ('' if p['started'] else ' (not started)') for p in processes]}"
    )
    children = facts["children"]
    assert all(child["ran"] for child in children), (
        f"the jobs {[i for i, child in enumerate(children) if not child['ran']]} never ran: start one process per job"
    )
    assert facts["caller_pid"] not in {child["pid"] for child in children}, (
        f"a job ran in the calling process: {RAN_IN_CALLER}"
    )
    return processes


@pytest.mark.task(2)
def test_start_jobs_sets_each_flag_before_start(student):
    """start_jobs starts every job, a daemon exactly when it need not finish"""
    facts = student.call("start_jobs_mixed", MUST_FINISH, timeout=LONG_CALL)
    if facts["outcome"] == "hung":
        student.returned(facts["after_release"], "start_jobs")
    elif facts["outcome"] == "raised":
        fail_on_flag_after_start(facts["error"], "start_jobs")
        student.returned(facts, "start_jobs")
    started_jobs(facts)
    flags = [child["daemon"] for child in facts["children"]]
    expected = [not finish for finish in MUST_FINISH]
    assert flags == expected, (
        f"for must_finish {MUST_FINISH} the processes knew themselves as daemon={flags}, expected daemon={expected}: "
        "a job that must finish is an ordinary process, one that may be cut off is a daemon (daemon=not must_finish)"
    )


@pytest.mark.task(2)
def test_start_jobs_returns_the_processes_in_the_order_of_the_jobs(student):
    """start_jobs returns one started process per job, in the order of the jobs"""
    facts = student.call("start_jobs_mixed", MUST_FINISH, timeout=LONG_CALL)
    if facts["outcome"] == "hung":
        student.returned(facts["after_release"], "start_jobs")
    elif facts["outcome"] == "raised":
        fail_on_flag_after_start(facts["error"], "start_jobs")
        student.returned(facts, "start_jobs")
    processes = started_jobs(facts)
    returned = [p["pid"] for p in processes]
    ran = [child["pid"] for child in facts["children"]]
    if sorted(returned) == sorted(ran):
        assert returned == ran, (
            f"start_jobs returned the processes of the jobs in the order {[ran.index(pid) for pid in returned]}, "
            f"not in the order of the jobs (must_finish {MUST_FINISH}): return them in the order you were given them"
        )
    assert returned == ran, (
        f"start_jobs returned processes {returned}, but the jobs ran in the processes {ran}: "
        "return the very processes you started, one per job, in the order of the jobs"
    )


@pytest.mark.task(2)
def test_start_jobs_returns_while_the_jobs_run(student):
    """start_jobs returns at once, without waiting for any job"""
    facts = student.call("start_jobs_mixed", MUST_FINISH, timeout=LONG_CALL)
    held_call(student, facts, "start_jobs", "its jobs")
    started_jobs(facts)
    ended = [i for i, running in enumerate(facts["alive_at_return"]) if not running]
    assert not ended, (
        f"the processes of the jobs {ended} had already ended when start_jobs returned, although their targets "
        "were still waiting: do not wait for any job"
    )


@pytest.mark.task(2)
def test_start_jobs_takes_any_iterable_and_keeps_nothing_between_calls(student):
    """start_jobs takes a generator or an empty list, and a second call is like the first"""
    facts = student.call("start_jobs_any_iterable", timeout=LONG_CALL)
    for label, shown in (
        ("generator", "start_jobs(a generator of 3 jobs)"),
        ("empty", "start_jobs([])"),
        ("again", "a second start_jobs of 2 jobs in the same process"),
    ):
        entry = facts[label]
        value_of(student, entry["call"], "start_jobs", shown)
        processes = entry["processes"]
        assert processes is not None, f"{shown} returned {entry['call']['value']}, not a list of processes"
        if label == "generator":
            assert len(processes) == entry["count"], (
                f"{shown} returned {len(processes)} processes: jobs can be any iterable, and a generator can be "
                "gone through only once. Go through the jobs once, making each process as you go"
            )
        if label == "empty":
            assert processes == [], (
                f"{shown} returned {len(processes)} processes, not []"
                + (": those are processes of an earlier call. Keep the processes of one call in a local list, "
                   "not in one that lives on between calls" if processes else "")
            )  # fmt: skip
        assert len(processes) == entry["count"], (
            f"{shown} returned {len(processes)} processes, not {entry['count']}: keep the processes of one call "
            "in a local list, not in one that lives on between calls"
        )
        returned = [p["pid"] for p in processes]
        ran = [child["pid"] for child in entry["children"]]
        # Their order is test_start_jobs_returns_the_processes_in_the_order_of_the_jobs's question.
        assert sorted(returned) == sorted(ran) and all(child["ran"] for child in entry["children"]), (
            f"{shown}: the jobs ran in the processes {ran}, but it returned {returned}: start one process per job "
            "and return those processes"
        )


@pytest.mark.task(2)
def test_the_parent_waits_for_essential_jobs_only(student):
    """At exit the parent waits for the job that must finish and cuts the background job off"""
    facts = student.call("jobs_parent_lifetime", timeout=PROGRAM_CALL)
    check_program_ran(facts, "start_jobs")
    background, essential = facts["workers"]["background"], facts["workers"]["essential"]
    assert background["started"] is not None and essential["started"] is not None, (
        f"a job never started its work{program_said(facts)}: start_jobs must start target(*args) in a process per job"
    )
    assert essential["done"] is not None, (
        f"the job that must finish ({facts['short']:g} s of work) was cut off when the program ended: "
        "it was a daemon. A job that must finish runs with daemon=False, and the program waits for it at exit"
    )
    if background["done"] is not None and facts["main_returned"] >= background["done"]:
        pytest.fail(
            f"start_jobs returned only after the job that need not finish had done its {facts['long']:g} s of "
            "work: it waited for it. Start the jobs and return at once; the daemon flag decides who waits at exit",
            pytrace=False,
        )
    lived = facts["parent_end"] - facts["main_done"]
    assert background["done"] is None and facts["parent_end"] < background["started"] + facts["long"], (
        f"the program lived {lived:.1f} s after its main code ended, until the background job finished "
        f"{facts['long']:g} s of work: a job that need not finish must be a daemon, so that it does not keep "
        "the program alive"
    )
    assert facts["returncode"] == 0, f"the program ended with exit code {facts['returncode']}: {facts['stderr']}"


# ---------------------------------------------------------------- task 3


def supervised_workers(student, facts: dict[str, Any], function: str, shown: str | None = None) -> list[dict]:
    """The workers of one supervise call, each run in a child of the caller; fail with what was wrong otherwise."""
    value_of(student, facts["call"], function, shown or function)
    workers = facts["workers"]
    pids = [worker["pid"] for worker in workers]
    assert facts["caller_pid"] not in pids, f"a worker ran in the process that called {function}: {RAN_IN_CALLER}"
    assert all(pids), (
        f"the workers {[i for i, pid in enumerate(pids) if not pid]} never ran: start one process per tuple"
    )
    assert len(set(pids)) == len(pids), "two workers shared one process: start one process per tuple"
    assert all(worker["parent_pid"] == facts["caller_pid"] for worker in workers), (
        f"the workers were not children of the process that called {function}: start them right there, "
        "one Process per tuple"
    )
    return workers


@pytest.mark.task(3)
def test_supervise_runs_every_worker_at_the_same_time(student):
    """supervise runs one process per tuple, all at the same time"""
    facts = student.call("supervise_here", SUPERVISED, timeout=LONG_CALL)
    workers = supervised_workers(student, facts, "supervise")
    assert all(worker["met"] for worker in workers), (
        f"the {SUPERVISED} workers did not run at the same time: each waited at a barrier for its siblings, "
        "who were not running. Start every worker first, then join every worker"
    )


@pytest.mark.task(3)
def test_supervise_waits_for_every_worker(student):
    """supervise returns only once every worker has ended"""
    facts = student.call("supervise_here", SUPERVISED, timeout=LONG_CALL)
    workers = supervised_workers(student, facts, "supervise")
    at_return = facts["call"]["after"]
    unfinished = [i for i, done in enumerate(at_return["done"]) if not done]
    works = facts["works"]
    assert not unfinished, (
        f"when supervise returned, the workers {unfinished} (of {SUPERVISED}, working {works} s after they met) "
        "were still working: join() every worker, not only one of them, before supervise returns"
    )
    assert not any(at_return["running"]), (
        f"when supervise returned, the workers {[i for i, r in enumerate(at_return['running']) if r]} were still "
        "running: join() every worker before returning"
    )
    assert all(worker["done"] for worker in workers), "some workers never finished their work"


@pytest.mark.task(3)
def test_supervisor_takes_any_iterable_and_keeps_nothing_between_calls(student):
    """supervise and start_supervisor take a generator; supervise takes an empty list and runs twice alike"""
    facts = student.call("supervise_any_iterable", timeout=LONG_CALL)
    for label, shown in (
        ("generator", "supervise(target, a generator of 3 tuples)"),
        ("empty", "supervise(target, [])"),
        ("again", "a second supervise of 2 tuples in the same process"),
    ):
        entry = facts[label]
        call = entry["call"]
        twice = call["outcome"] == "raised" and "cannot start a process twice" in call["error"]["message"]
        if label != "generator" and twice:
            error = call["error"]
            pytest.fail(
                f"{shown}, after an earlier call, raised {error['type']}: {error['message']}{where(error)}: it "
                "started the earlier call's processes again. Keep the processes of one call in a local list, not in "
                "one that lives on between calls",
                pytrace=False,
            )
        ran = any(worker["pid"] for worker in entry["workers"])
        if label == "generator" and call["outcome"] == "returned" and not ran:
            pytest.fail(
                f"{shown} started no worker: arg_tuples can be any iterable, and a generator can be gone through "
                "only once. Make your list of processes from it in one go",
                pytrace=False,
            )
        # Whether it waited for them is test_supervise_waits_for_every_worker's question.
        supervised_workers(student, entry, "supervise", shown)
    facts = student.call("start_supervisor_here", SUPERVISED, True, timeout=LONG_CALL)
    shown = f"start_supervisor(target, a generator of {SUPERVISED} tuples)"
    if facts["outcome"] == "raised" and cannot_be_pickled(facts["error"]):
        error = facts["error"]
        pytest.fail(
            f"{shown} raised {error['type']}: {error['message']}{where(error)}. Under spawn and forkserver the "
            "arguments of a process are pickled, and a generator cannot be: make a list of arg_tuples before you "
            "hand it to the supervisor's Process",
            pytrace=False,
        )
    if facts["outcome"] == "raised":
        value_of(student, facts, "start_supervisor", shown)
    if facts["outcome"] == "hung" or (facts["exitcode"] == 0 and all(w["done"] for w in facts["workers"])):
        return  # whether it waited is test_start_supervisor_returns_while_the_supervisor_runs's question
    given_a_list = supervisor_facts(student)
    if given_a_list["exitcode"] == 0 and all(w["done"] for w in given_a_list["workers"]):
        unfinished = [i for i, w in enumerate(facts["workers"]) if not w["done"]]
        pytest.fail(
            f"{shown}: the supervisor ended with exit code {facts['exitcode']} and the workers {unfinished} never "
            "finished (given a list, they all did): arg_tuples can be any iterable, and a generator can be gone "
            "through only once. Make a list of it before you hand it to the supervisor's Process",
            pytrace=False,
        )


def supervisor_facts(student) -> dict[str, Any]:
    return student.call("start_supervisor_here", SUPERVISED, timeout=LONG_CALL)


@pytest.mark.task(3)
def test_the_supervisor_starts_its_own_workers(student):
    """start_supervisor starts an ordinary process that runs supervise: its workers are its own children"""
    facts = supervisor_facts(student)
    workers = facts["workers"]
    pids = [worker["pid"] for worker in workers]
    if facts["caller_pid"] in {worker["parent_pid"] for worker in workers}:
        pytest.fail(
            "the workers were started by the process that called start_supervisor: start_supervisor must start a "
            "process of its own that runs supervise(target, arg_tuples), not call supervise itself",
            pytrace=False,
        )
    if facts["outcome"] == "hung":
        student.returned(facts["after_release"], "start_supervisor")
    elif facts["outcome"] == "raised":
        student.returned(facts, "start_supervisor")
    assert facts["is_process"], f"start_supervisor returned {facts['returned_type']}, not the Process it started"
    assert facts["started"], "the supervisor was never started: call start() before returning it"
    if facts["daemon"]:
        pytest.fail(
            "the supervisor is a daemon, and a daemon may not start processes of its own "
            f"(AssertionError: {DAEMONIC_CHILDREN}). Start the supervisor as an ordinary process",
            pytrace=False,
        )
    assert all(pids), (
        f"the workers {[i for i, pid in enumerate(pids) if not pid]} never ran (the supervisor ended with exit code "
        f"{facts['exitcode']}): the supervisor must run supervise(target, arg_tuples)"
    )
    assert facts["caller_pid"] not in pids and facts["pid"] not in pids, (
        "a worker ran inside the supervisor itself or in the caller: supervise must start one process per tuple"
    )
    assert len(set(pids)) == len(pids), "two workers shared one process: start one process per tuple"
    assert all(worker["parent_pid"] == facts["pid"] for worker in workers), (
        "the workers were not started by the supervisor: the supervisor's process must run supervise"
    )
    still_running = " (still running after 20 s: does it join its workers?)" if facts["still_running"] else ""
    assert facts["exitcode"] == 0, f"the supervisor ended with exit code {facts['exitcode']}{still_running}"
    assert all(worker["done"] for worker in workers), (
        "some workers were cut off before they finished their work: start them as ordinary processes and join every one"
    )


@pytest.mark.task(3)
def test_start_supervisor_returns_while_the_supervisor_runs(student):
    """start_supervisor returns the started supervisor at once, without waiting for it"""
    facts = supervisor_facts(student)
    if facts["caller_pid"] in {worker["parent_pid"] for worker in facts["workers"]}:
        pytest.fail(
            "start_supervisor ran supervise in the calling process, which waited for every worker: start a "
            "process of its own that runs supervise, and return it without waiting",
            pytrace=False,
        )
    held_call(student, facts, "start_supervisor", "the supervisor's workers", "the supervisor")
    assert facts["is_process"] and facts["started"], (
        f"start_supervisor returned {facts['returned_type']}, not the started Process"
    )
    assert facts["alive_at_return"], (
        "the supervisor start_supervisor returned had already ended, although its workers were still waiting: "
        "do not wait for it, the caller joins it"
    )
