"""Hidden tests for exercise 6 (shared_values). Scenarios: grader/sandboxed/scenarios/shared_values.py."""

import pytest

EXERCISE = "shared_values"

SCALE, SHIFT = 2.5, 0.1  # what the scenario's workers do to every number: x * SCALE + SHIFT
TYPECODE_HINTS = {
    "c_int": "typecode 'i' holds whole numbers only: use 'd' for floats",
    "c_long": "typecode 'l' holds whole numbers only: use 'd' for floats",
    "c_float": "typecode 'f' is a single-precision float that rounds away digits: use 'd' (a Python float)",
}


def changed(number):
    return number * SCALE + SHIFT


def outcome_of(facts, call):
    """The value the graded function returned; fail with the reason when it raised."""
    outcome = facts["outcome"]
    if "raised" in outcome:
        message = outcome["raised"]
        if outcome["raised_type"] == "TypeError" and "float" in message:
            pytest.fail(
                f"{call} raised {message}: a float does not fit the typecode you chose. "
                "Typecode 'i' holds whole numbers only: use 'd' for floats",
                pytrace=False,
            )
        pytest.fail(f"{call} raised {message}", pytrace=False)
    return outcome


def the_report(facts, call, shared):
    """The one report of the worker; fail when it never ran or ran more than once."""
    reports = facts["reports"]
    assert reports, (
        f"{call} never ran the worker: give it to multiprocessing.Process(target=worker, args=({shared},)), "
        "start() the process and join() it"
    )
    assert len(reports) == 1, f"{call} ran the worker {len(reports)} times instead of once"
    return reports[0]


def judge_numbers(call, got, want, facts, report, shared, kind, before):
    """got must be want exactly; else say which mistake explains the difference."""
    if got == want:
        return
    if report["given"] in ("float", "int", "list", "tuple"):
        pytest.fail(
            f"{call} returned {got}, expected {want}: the worker got a plain {report['given']}, which is copied "
            f"into the child, so its change stays there. Give it a multiprocessing.{shared}",
            pytrace=False,
        )
    if "error" in report:
        detail = TYPECODE_HINTS.get(report["c_type"], f"give it a multiprocessing.{shared}")
        pytest.fail(f"the worker could not change the {kind} you gave it ({report['error']}): {detail}", pytrace=False)
    if report["c_type"] in TYPECODE_HINTS:
        pytest.fail(f"{call} returned {got}, expected {want}: {TYPECODE_HINTS[report['c_type']]}", pytrace=False)
    if got == before and report.get("changed") and report["pid"] != facts["caller_pid"]:
        pytest.fail(
            f"{call} returned {got}, what the {kind} held before the child changed it: join() the process, "
            "then read the shared value",
            pytrace=False,
        )
    pytest.fail(f"{call} returned {got}, expected {want}", pytrace=False)


def judge_process(facts, call, shared):
    """The worker ran in a child started by the caller, which had finished when the call returned."""
    report = the_report(facts, call, shared)
    assert report["pid"] != facts["caller_pid"], (
        f"{call} ran the worker in your own process: give it to multiprocessing.Process(target=worker, "
        f"args=({shared},)) and start() it, do not call it yourself"
    )
    assert report["parent_pid"] == facts["caller_pid"], "the worker ran in a process that the caller did not start"
    assert not facts["left_running"], (
        f"{call} returned while the child was still running ({', '.join(facts['left_running'])}): "
        "join() the process before you read the shared value"
    )


# ---------------------------------------------------------------- task 1


@pytest.mark.task(1)
def test_number_changed_in_child_reaches_the_caller(student):
    """run_with_shared_number returns the float the child left in the shared Value"""
    start = 0.3
    call = f"run_with_shared_number(worker, {start})"
    facts = student.call("shared_number", start)
    outcome = outcome_of(facts, call)
    report = the_report(facts, call, "value")
    got, want = outcome["value"], changed(start)
    if outcome["type"] not in ("float", "int"):
        pytest.fail(f"{call} returned {got}, a {outcome['type']}: return the number, value.value", pytrace=False)
    judge_numbers(call, got, want, facts, report, "Value('d', start)", "number", start)
    assert outcome["type"] == "float", f"{call} returned {got}, a {outcome['type']}: return value.value, a float"


@pytest.mark.task(1)
def test_number_worker_runs_in_a_child(student):
    """run_with_shared_number runs the worker in a child process and waits for it"""
    facts = student.call("shared_number", 1.5)
    outcome_of(facts, "run_with_shared_number(worker, 1.5)")
    judge_process(facts, "run_with_shared_number(worker, 1.5)", "value")


# ---------------------------------------------------------------- task 2


@pytest.mark.task(2)
def test_array_changed_in_child_reaches_the_caller(student):
    """run_with_shared_array returns the floats the child left in the shared Array, as a list"""
    numbers = [0.5, -1.25, 3.0, 0.3, 7.75]
    call = f"run_with_shared_array(worker, {numbers})"
    facts = student.call("shared_array", numbers)
    outcome = outcome_of(facts, call)
    report = the_report(facts, call, "array")
    got, want = outcome["value"], [changed(x) for x in numbers]
    if outcome["type"] != "list":
        pytest.fail(
            f"{call} returned a {outcome['type']} ({str(got)[:80]}): return a plain list copy, list(array)",
            pytrace=False,
        )
    if got == [changed(0.0)] * len(numbers):
        pytest.fail(
            f"{call} returned {got}: the array started as zeros, not as the numbers. Create it with "
            "multiprocessing.Array('d', numbers)",
            pytrace=False,
        )
    judge_numbers(call, got, want, facts, report, "Array('d', numbers)", "array", numbers)


@pytest.mark.task(2)
def test_array_worker_runs_in_a_child(student):
    """run_with_shared_array runs the worker in a child process and waits for it"""
    facts = student.call("shared_array", [1.0, 2.0])
    outcome_of(facts, "run_with_shared_array(worker, [1.0, 2.0])")
    judge_process(facts, "run_with_shared_array(worker, [1.0, 2.0])", "array")


# ---------------------------------------------------------------- task 3


@pytest.mark.task(3)
def test_no_update_is_lost_when_processes_race(student):
    """add_many in 4 processes at once loses no update, even when they all read the counter together"""
    parties, times = 4, 2_500
    facts = student.call("race_add_many", parties, times, timeout=40)
    errors = [report["error"] for report in facts["reports"] if "error" in report]
    assert not errors, f"add_many(counter, {times}) raised in a worker process: {errors[0]}"
    assert len(facts["reports"]) == parties, (
        f"only {len(facts['reports'])} of {parties} processes came back from add_many in time"
    )
    expected, count = facts["expected"], facts["count"]
    lost = expected - count
    if lost > 0 and facts["lock_uses"] == 0:
        pytest.fail(
            f"the counter lost {lost:,} of {expected:,} updates: add_many never takes the counter's lock, so "
            "two processes read the same number and both write it plus one. Hold counter.get_lock() around "
            "each whole counter.value += 1",
            pytrace=False,
        )
    if lost > 0:
        pytest.fail(
            f"the counter lost {lost:,} of {expected:,} updates: the read and the write are not under one lock. "
            "You take counter.get_lock(), but let it go between reading counter.value and writing it back: "
            "keep both inside the same `with counter.get_lock():`",
            pytrace=False,
        )
    assert count == expected, (
        f"{parties} processes each adding {times:,} left the counter at {count:,}, not {expected:,}"
    )


@pytest.mark.task(3)
def test_add_many_uses_the_counters_own_lock(student):
    """add_many adds exactly times, under counter.get_lock()"""
    facts = student.call("add_many_here", 5)
    outcome = facts["outcome"]
    assert "raised" not in outcome, f"add_many(counter, 5) raised {outcome.get('raised')}"
    assert facts["count"] == 5, f"add_many(counter, 5) took a counter from 0 to {facts['count']}, not 5"
    assert facts["lock_uses"] >= 1, (
        "add_many never took the counter's own lock: use `with counter.get_lock():`. A lock of your own is "
        "not the one the other processes take (under spawn each process would even make its own)"
    )


# ---------------------------------------------------------------- task 4


def count_facts(student, processes, times):
    call = f"count_in_parallel(adder, {processes}, {times})"
    facts = student.call("count_together", processes, times)
    return call, facts, outcome_of(facts, call)


@pytest.mark.task(4)
def test_count_in_parallel_counts_every_addition(student):
    """count_in_parallel returns the exact count that all the processes added to one shared Value"""
    processes, times = 4, 1_000
    call, facts, outcome = count_facts(student, processes, times)
    reports = facts["reports"]
    assert reports, f"{call} never ran the adder: start one Process(target=adder, args=(counter, times)) per process"
    for report in reports:
        if "error" not in report:
            continue
        if report["given"] in ("int", "float"):
            pytest.fail(
                f"the adder got a plain {report['given']} as the counter ({report['error']}): a number is copied "
                "into each child, so what they add stays there. Use multiprocessing.Value('i', 0)",
                pytrace=False,
            )
        pytest.fail(
            f"the adder could not take the counter's lock ({report['error']}): a Value made with lock=False, "
            "or a RawValue, has no get_lock(). Use multiprocessing.Value('i', 0)",
            pytrace=False,
        )
    want = processes * times
    got = outcome["value"]
    assert outcome["type"] == "int", (
        f"{call} returned {got!r}, a {outcome['type']}: a count is a whole number, "
        "multiprocessing.Value('i', 0), and you return its .value"
    )
    assert got == want, f"{call} returned {got}, but the {processes} processes added {want} in all"


@pytest.mark.task(4)
def test_count_in_parallel_runs_the_processes_at_once(student):
    """count_in_parallel starts one process per adder, all at the same time, and waits for them all"""
    processes, times = 3, 10
    call, facts, _ = count_facts(student, processes, times)
    reports = facts["reports"]
    pids = [report["pid"] for report in reports]
    assert facts["caller_pid"] not in pids, (
        f"{call} called the adder in your own process: give it to multiprocessing.Process(target=adder, ...)"
    )
    assert len(reports) == processes and len(set(pids)) == processes, (
        f"{call} ran the adder {len(reports)} time(s) in {len(set(pids))} process(es), not once in each of "
        f"{processes} processes"
    )
    assert all(report["together"] for report in reports), (
        f"the {processes} processes did not run at the same time: start every process first, then join every process"
    )
    assert not facts["left_running"], (
        f"{call} returned while processes were still running ({', '.join(facts['left_running'])}): join them all"
    )
