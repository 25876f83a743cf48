"""Hidden tests for exercise 6 (shared_values). Scenarios: grader/sandboxed/scenarios/shared_values.py.

The contract each test holds a solution to: grader/hidden/contracts/06_shared_values.toml.
"""

import pytest

EXERCISE = "shared_values"

SCALE, SHIFT = 2.5, 0.1  # what the scenario's workers do to every number: x * SCALE + SHIFT
TYPECODE_HINTS = {
    "c_int": "typecode 'i' holds whole numbers only: use 'd' for floats",
    "c_long": "typecode 'l' holds whole numbers only: use 'd' for floats",
    "c_float": "typecode 'f' is a single-precision float that rounds away digits: use 'd' (a Python float)",
}
SMALL_COUNTERS = {  # ctypes type: (typecode, largest number it holds)
    "c_short": ("h", 32_767),
    "c_ushort": ("H", 65_535),
    "c_byte": ("b", 127),
    "c_ubyte": ("B", 255),
    "c_char": ("c", 255),
}
NOT_WAITED = (
    "the grader was still holding the child back, so it could not have finished. "
    "join() the process before you read the shared value"
)


def changed(number):
    return number * SCALE + SHIFT


def returned_value(student, facts, call):
    """What the graded function returned; fail in words when it raised or hung."""
    outcome = facts["call"]
    error = outcome["error"]
    if outcome["outcome"] == "raised" and error["type"] == "TypeError" and "float" in error["message"]:
        pytest.fail(
            f"{call} raised TypeError: {error['message']}: a float does not fit the typecode you chose. "
            "Typecode 'i' holds whole numbers only: use 'd' for floats",
            pytrace=False,
        )
    if outcome["outcome"] == "raised" and "inheritance" in error["message"]:
        pytest.fail(
            f"{call} raised {error['type']}: {error['message']}: a Value or an Array cannot be sent to a running "
            "process (a Pool's task, a Queue). Give it to multiprocessing.Process(target=..., args=(...)) when you "
            "create the process",
            pytrace=False,
        )
    return student.returned(outcome, call.partition("(")[0])


def the_report(facts, caller_pid, call, shared):
    """The one report of the worker; fail when it never ran, ran more than once, or ran in the caller."""
    reports = facts["reports"]
    if not reports:
        if not facts["started"]:
            pytest.fail(
                f"{call} never started a process: give the worker to multiprocessing.Process(target=worker, "
                f"args=({shared},)), start() the process and join() it",
                pytrace=False,
            )
        pytest.fail(f"{call} started a process, but the worker never ran in it", pytrace=False)
    assert len(reports) == 1, f"{call} ran the worker {len(reports)} times instead of once"
    report = reports[0]
    assert report["pid"] != caller_pid, (
        f"{call} ran the worker in your own process (called directly, or in a thread): give it to "
        f"multiprocessing.Process(target=worker, args=({shared},)) and start() it"
    )
    assert report["parent_pid"] == caller_pid, f"{call} ran the worker in a process that it did not start"
    return report


def judge_waited(facts, call, what="the child"):
    after = facts["call"]["after"]
    if after["held"] or after["unfinished"] or after["running"]:
        pytest.fail(f"{call} returned while {what} was still running: {NOT_WAITED}", pytrace=False)


def judge_numbers(call, got, want, facts, report, shared, kind):
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
        error = report["error"]
        pytest.fail(
            f"the worker could not change the {kind} you gave it ({error['type']}: {error['message']}): {detail}",
            pytrace=False,
        )
    if report["c_type"] in TYPECODE_HINTS:
        pytest.fail(f"{call} returned {got}, expected {want}: {TYPECODE_HINTS[report['c_type']]}", pytrace=False)
    after = facts["call"]["after"]
    if after["held"] or after["unfinished"]:
        pytest.fail(
            f"{call} returned {got}, what the {kind} held before the child changed it: it returned while the "
            f"child was still running, and {NOT_WAITED}",
            pytrace=False,
        )
    pytest.fail(f"{call} returned {got}, expected {want}", pytrace=False)


def judge_seen(call, report, want, kind, create):
    """The child must find want in the shared value the moment it starts."""
    if "seen" not in report:
        error = report["error"]
        pytest.fail(
            f"the worker got a {report['given']}, not a shared {kind} it could read "
            f"({error['type']}: {error['message']}): give it {create}",
            pytrace=False,
        )
    seen = report["seen"]
    if seen == want:
        return
    if report["c_type"] in TYPECODE_HINTS:
        pytest.fail(
            f"the child found {seen} in the shared {kind}, not {want}: {TYPECODE_HINTS[report['c_type']]}",
            pytrace=False,
        )
    pytest.fail(
        f"the child found {seen} in the shared {kind} when it started, not {want}: create it as {create}, before "
        "you start the child. What you set after start() comes too late: the child may already have read it",
        pytrace=False,
    )


# ---------------------------------------------------------------- task 1


def judge_number(call, got, start, facts, report):
    """run_with_shared_number returned changed(start), a plain float; else say why not."""
    kind = facts["call"]["type"]
    if kind not in ("float", "int"):
        pytest.fail(
            f"{call} returned {got}, a {kind}: return the number itself, value.value (a plain float)", pytrace=False
        )
    judge_numbers(call, got, changed(start), facts, report, "Value('d', start)", "number")
    assert kind == "float", (
        f"{call} returned {got!r}, a {kind}: the shared value is a float (even when start is a whole number): "
        "use typecode 'd' whatever start is, and return value.value"
    )


def number_call(student, start, index=0, starts=None):
    starts = starts or [start]
    facts = student.call("shared_number", starts, timeout=30)
    return facts["caller_pid"], facts["calls"][index]


@pytest.mark.task(1)
def test_number_changed_in_child_reaches_the_caller(student):
    """run_with_shared_number returns the float the child left in the shared Value, as a plain float"""
    start = 0.1
    call = f"run_with_shared_number(worker, {start})"
    caller, facts = number_call(student, start)
    got = returned_value(student, facts, call)
    report = the_report(facts, caller, call, "value")
    judge_number(call, got, start, facts, report)


@pytest.mark.task(1)
def test_number_worker_runs_in_a_child_and_is_waited_for(student):
    """run_with_shared_number runs the worker in a child process and waits for it"""
    call = "run_with_shared_number(worker, 1.5)"
    caller, facts = number_call(student, 1.5)
    returned_value(student, facts, call)
    the_report(facts, caller, call, "value")
    judge_waited(facts, call)


@pytest.mark.task(1)
def test_number_starts_at_start_when_the_child_starts(student):
    """the child finds start in the shared float the moment it starts"""
    start = 0.1
    call = f"run_with_shared_number(worker, {start})"
    caller, facts = number_call(student, start)
    returned_value(student, facts, call)
    report = the_report(facts, caller, call, "value")
    judge_seen(call, report, start, "float", "multiprocessing.Value('d', start)")


@pytest.mark.task(1)
def test_number_second_call_with_a_whole_number(student):
    """a second run_with_shared_number in the same process, given the whole number 2, works like the first"""
    starts = [-3.75, 2]
    facts = student.call("shared_number", starts, timeout=30)
    for start, one in zip(starts, facts["calls"], strict=True):
        call = f"run_with_shared_number(worker, {start})" + (" (a second call)" if start == starts[-1] else "")
        got = returned_value(student, one, call)
        report = the_report(one, facts["caller_pid"], call, "value")
        judge_number(call, got, start, one, report)
        judge_seen(call, report, float(start), "float", "multiprocessing.Value('d', start)")


# ---------------------------------------------------------------- task 2


def array_call(student, numbers):
    facts = student.call("shared_array", [numbers], timeout=30)
    return facts["caller_pid"], facts["calls"][0]


def judge_list(call, facts, got):
    kind = facts["call"]["type"]
    if kind != "list":
        pytest.fail(
            f"{call} returned a {kind} ({str(got)[:80]}): return a plain list copy of the array, list(array)",
            pytrace=False,
        )


def judge_floats(call, facts):
    items = [item for item in facts["call"].get("item_types", []) if item != "float"]
    assert not items, (
        f"{call} returned a list holding {', '.join(items)} items, not floats: return list(array) of a 'd' array"
    )


@pytest.mark.task(2)
def test_array_changed_in_child_reaches_the_caller(student):
    """run_with_shared_array returns the floats the child left in the shared Array, as a plain list"""
    numbers = [0.1, -1.25, 3.0, 1 / 3, 7.75]
    call = f"run_with_shared_array(worker, {numbers})"
    caller, facts = array_call(student, numbers)
    got = returned_value(student, facts, call)
    report = the_report(facts, caller, call, "array")
    judge_list(call, facts, got)
    judge_numbers(call, got, [changed(x) for x in numbers], facts, report, "Array('d', numbers)", "array")
    judge_floats(call, facts)


@pytest.mark.task(2)
def test_array_worker_runs_in_a_child_and_is_waited_for(student):
    """run_with_shared_array runs the worker in a child process and waits for it"""
    call = "run_with_shared_array(worker, [1.0, 2.0])"
    caller, facts = array_call(student, [1.0, 2.0])
    returned_value(student, facts, call)
    the_report(facts, caller, call, "array")
    judge_waited(facts, call)


@pytest.mark.task(2)
def test_array_starts_with_the_numbers_when_the_child_starts(student):
    """the child finds every number, in order, as a float, in the shared array the moment it starts"""
    numbers = [0.1, -1.25, 3.0, 1 / 3, 7.75]
    call = f"run_with_shared_array(worker, {numbers})"
    caller, facts = array_call(student, numbers)
    returned_value(student, facts, call)
    report = the_report(facts, caller, call, "array")
    judge_seen(call, report, numbers, "array", "multiprocessing.Array('d', numbers)")


@pytest.mark.task(2)
def test_array_second_call_empty_then_whole_numbers(student):
    """run_with_shared_array with [] and then, in the same process, with the whole numbers [1, 2, 3]"""
    lists = [[], [1, 2, 3]]
    facts = student.call("shared_array", lists, timeout=30)
    for numbers, one in zip(lists, facts["calls"], strict=True):
        call = f"run_with_shared_array(worker, {numbers})" + (" (a second call)" if numbers else "")
        got = returned_value(student, one, call)
        report = the_report(one, facts["caller_pid"], call, "array")
        judge_list(call, one, got)
        judge_numbers(call, got, [changed(x) for x in numbers], one, report, "Array('d', numbers)", "array")
        judge_floats(call, one)
        judge_seen(call, report, [float(x) for x in numbers], "array", "multiprocessing.Array('d', numbers)")


# ---------------------------------------------------------------- task 3


@pytest.mark.task(3)
def test_no_update_is_lost_when_processes_race(student):
    """add_many in 4 processes at once loses no update, even when they all read the counter together"""
    parties, times = 4, 2_500
    facts = student.call("race_add_many", parties, times, timeout=40)
    student.fail_on_child_errors([report["error"] for report in facts["reports"] if "error" in report])
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
def test_add_many_adds_exactly_times_under_the_counters_own_lock(student):
    """add_many adds exactly times (0 too), call after call, under counter.get_lock()"""
    start, steps = 7, [0, 5, 3]
    facts = student.call("add_many_here", start, steps)
    if facts["call"] is not None:
        student.returned(facts["call"], "add_many")
    before = start
    for times, count in zip(steps, facts["counts"], strict=True):
        assert count == before + times, (
            f"add_many(counter, {times}) took a counter from {before} to {count}, not {before + times}: "
            f"add 1 to counter.value, {times} times" + (" (with times=0, add nothing)" if times == 0 else "")
        )
        before = count
    assert facts["lock_uses"] >= 1, (
        "add_many never took the counter's own lock: use `with counter.get_lock():`. A lock of your own is "
        "not the one the other processes take (under spawn each process would even make its own)"
    )


# ---------------------------------------------------------------- task 4


def judge_adders(call, one):
    """Fail when the adder could not use the counter it was given."""
    for report in one["reports"]:
        if "error" not in report:
            continue
        if report["given"] in ("int", "float"):
            pytest.fail(
                f"the adder got a plain {report['given']} as the counter ({report['error']['message']}): a number is "
                "copied into each child, so what they add stays there. Use multiprocessing.Value('i', 0)",
                pytrace=False,
            )
        pytest.fail(
            f"the adder could not take the counter's lock ({report['error']['type']}: {report['error']['message']}): "
            f"{call} gave it a {report['given']}. A Value made with lock=False, or a RawValue, has no get_lock(): "
            "use multiprocessing.Value('i', 0)",
            pytrace=False,
        )


def judge_processes(call, one, caller_pid):
    """Exactly one process per adder call, started by the caller."""
    reports = one["reports"]
    pids = [report["pid"] for report in reports]
    assert caller_pid not in pids, (
        f"{call} called the adder in your own process: give it to multiprocessing.Process(target=adder, ...)"
    )
    processes = one["processes"]
    assert len(reports) == processes and len(set(pids)) == processes, (
        f"{call} ran the adder {len(reports)} time(s) in {len(set(pids))} process(es), not once in each of "
        f"{processes} processes"
    )
    assert all(report["parent_pid"] == caller_pid for report in reports), (
        f"{call} ran the adder in processes that it did not start"
    )


def judge_count(student, call, one, want, *, plain_int=True):
    """The count must be want (a plain int, with plain_int); else say which mistake explains the difference."""
    got = returned_value(student, one, call)
    judge_adders(call, one)
    kind = one["call"]["type"]
    if plain_int or kind not in ("float", "int"):
        assert kind == "int", (
            f"{call} returned {got!r}, a {kind}: a count is a whole number, multiprocessing.Value('i', 0), "
            "and you return its .value (a plain int)"
        )
    if got == want:
        return
    c_types = {report["c_type"] for report in one["reports"]}
    small = [SMALL_COUNTERS[c_type] for c_type in c_types if c_type in SMALL_COUNTERS]
    if small:
        typecode, largest = small[0]
        pytest.fail(
            f"{call} returned {got}, but the processes added {want:,} in all: a counter with typecode "
            f"'{typecode}' holds numbers up to {largest:,} only, and wraps around past it. Use 'i' (a C int)",
            pytrace=False,
        )
    after = one["call"]["after"]
    if after["held"] or after["unfinished"]:
        pytest.fail(
            f"{call} returned {got}, but the processes added {want:,} in all: it returned while "
            f"{max(after['held'], after['unfinished'])} of them had not finished (the grader held them back, the "
            "last started first). Join every process, then read the counter",
            pytrace=False,
        )
    if isinstance(got, int) and got > want:
        pytest.fail(
            f"{call} returned {got}, but its processes added {want:,} in all: the counter did not start at 0. "
            "Create a new multiprocessing.Value('i', 0) in every call",
            pytrace=False,
        )
    pytest.fail(f"{call} returned {got}, but the processes added {want:,} in all", pytrace=False)


@pytest.mark.task(4)
def test_count_in_parallel_counts_every_addition(student):
    """count_in_parallel(adder, 4, 10_000) returns 40000, as a plain int, as the README says"""
    processes, times = 4, 10_000
    call = f"count_in_parallel(adder, {processes}, {times:_})"
    facts = student.call("count_together", [[processes, times]], 0.0, "reverse", timeout=40)
    judge_count(student, call, facts["calls"][0], processes * times)


@pytest.mark.task(4)
def test_count_in_parallel_runs_the_processes_at_once(student):
    """count_in_parallel starts one process per adder, all running at the same time"""
    processes, times = 3, 10
    call = f"count_in_parallel(adder, {processes}, {times})"
    facts = student.call("count_together", [[processes, times]], 1.0, "reverse", timeout=40)
    one = facts["calls"][0]
    returned_value(student, one, call)
    judge_processes(call, one, facts["caller_pid"])
    window = one["window"]
    assert window["met"] >= processes, (
        f"the {processes} processes of {call} were never all running at the same time (at most {window['met']} "
        "were, each waiting for the others)"
        + (
            ": you join a process before you start the next one. Start them all first, then join them all"
            if window["joined_early"]
            else ": start them all first, then join them all"
        )
    )


@pytest.mark.task(4)
def test_count_in_parallel_waits_for_every_process(student):
    """count_in_parallel returns only once every process has finished"""
    processes, times = 3, 10
    call = f"count_in_parallel(adder, {processes}, {times})"
    facts = student.call("count_together", [[processes, times]], 1.0, "reverse", timeout=40)
    one = facts["calls"][0]
    returned_value(student, one, call)
    judge_processes(call, one, facts["caller_pid"])
    after = one["call"]["after"]
    waiting = max(after["held"], after["unfinished"], after["running"])
    assert not waiting, (
        f"{call} returned while {waiting} of its {processes} processes were still running (the grader held "
        "them back, the last started first): join every process, not only some of them, before you read the counter"
    )


@pytest.mark.task(4)
def test_count_in_parallel_starts_from_zero_every_call(student):
    """count_in_parallel called three times in one process: each call counts from 0 in its own processes"""
    runs = [[1, 0], [2, 5], [3, 7]]
    facts = student.call("count_together", runs, 0.0, "forward", timeout=40)
    for number, ((processes, times), one) in enumerate(zip(runs, facts["calls"], strict=True)):
        call = f"count_in_parallel(adder, {processes}, {times})" + (f" (call {number + 1} of 3)" if number else "")
        judge_processes(call, one, facts["caller_pid"])
        judge_count(student, call, one, processes * times, plain_int=False)
