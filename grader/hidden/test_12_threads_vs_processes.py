"""Hidden tests for exercise 12 (threads_vs_processes). Scenarios: grader/sandboxed/scenarios/threads_vs_processes.py.

The machine is busy with other work while these run, so no test compares
speeds: they check where the work ran, how many tasks were inside at once
(counted, not timed), in which order the results came back, and what span
timed_run's seconds cover. The contract each test holds a solution to:
grader/hidden/contracts/12_threads_vs_processes.toml.
"""

from typing import Any

import pytest

EXERCISE = "threads_vs_processes"

CALL = 45  # seconds for one scenario
WAVE_ITEMS, WAVE_WORKERS = 7, 3  # many more items than workers
# os.cpu_count() as the scenario fakes it: more CPUs than max_workers shows a pool sized by the machine,
# fewer shows one capped by the machine; neither depends on the machine the grader runs on.
MANY_CPUS, FEW_CPUS = 16, 2
ORDER_ITEMS = 4
EDGE_WORKERS = 2
CPU_TASKS, CPU_BUSY = 2, 0.3
TIMED_ITEMS = 3
# Times a task must see another's counter move between two of its own steps less than 0.2 ms apart:
# only a process computing on another CPU at that moment can move it (one paused for the other on the
# same CPU is away a whole time slice, a millisecond or more). Two processes computing at once on a quiet
# machine see it hundreds of times a millisecond; on one loaded twenty times over they share the CPUs
# so rarely that a CI run saw 39 in the tasks' 8 s (with 200 asked for, a correct solution failed).
# Threads never get this far (their results name the caller's process), nor do tasks run in turn
# (they never meet).
MIN_SEEN = 5
# Clock readings in different places and processes: perf_counter, monotonic and time may differ by a hair.
CLOCK_SLACK = 0.02
OTHER_KINDS = ["gpu", "IO", "Cpu", "", None, " io", "thread"]
POOL = {"io": "ThreadPoolExecutor", "cpu": "ProcessPoolExecutor"}
FUNCTION = {"io": "run_io_bound", "cpu": "run_cpu_bound"}


def where(error: dict[str, Any]) -> str:
    return f" ({error['where']})" if error.get("where") else ""


def value_of(student, call: dict[str, Any], function: str, shown: str | None = None) -> Any:
    """The value of one call the scenario made; fail with what it raised (naming the call as shown) or the hang."""
    if call["outcome"] == "raised" and shown:
        error = call["error"]
        pytest.fail(f"{shown} raised {error['type']}: {error['message']}{where(error)}", pytrace=False)
    return student.returned(call, function)


def results_of(student, call: dict[str, Any], function: str, count: int, shown: str | None = None) -> list[dict]:
    """func's results for count items, each a dict with its item; fail with what was returned otherwise."""
    value = value_of(student, call, function, shown)
    shown = shown or function
    assert isinstance(value, list) and len(value) == count, (
        f"{shown} returned {value!r}, not a list of the {count} results of func"
    )
    assert all(isinstance(result, dict) and "item" in result for result in value), (
        f"{shown} returned {value!r}, not the results of func"
    )
    return value


def check_order(results: list[dict[str, Any]], shown: str) -> None:
    """The results must be in the order of the items, although the items finished last one first."""
    items = [result["item"] for result in results]
    count = len(results)
    assert sorted(items) == list(range(count)), (
        f"{shown} returned the results of the items {items}, not of each of the items 0 to {count - 1} once"
    )
    finished = [result["item"] for result in sorted(results, key=lambda result: result["end"])]
    as_finished = " (the order in which they finished)" if items == finished else ""
    assert items == list(range(count)), (
        f"{shown} returned the results of items that finish last one first in the order {items}{as_finished}, "
        "not in the order of the items: keep the order of items, with map or with the futures in the order "
        "you submitted them, not as_completed"
    )


# ---------------------------------------------------------------- task 1


@pytest.mark.task(1)
def test_choose_executor_matches_the_work(student):
    """choose_executor returns the class ThreadPoolExecutor for "io" and ProcessPoolExecutor for "cpu" """
    answers = {answer["kind"]: answer for answer in student.call("choose", ["io", "cpu"])}
    for kind, why in (
        ("io", "work that waits (network, files, sleep) lets go of the GIL while it waits"),
        ("cpu", "work that computes holds the GIL, so only processes compute at once"),
    ):
        answer = answers[kind]
        value_of(student, answer, "choose_executor", f"choose_executor({kind!r})")
        want = POOL[kind]
        assert answer["is_class"], (
            f"choose_executor({kind!r}) returned an object of type {answer['returned']}, not a class: "
            "return the class itself, not an executor made from it"
        )
        assert answer["is"] == want, f"choose_executor({kind!r}) returned {answer['returned']}, not {want}: {why}"


@pytest.mark.task(1)
def test_choose_executor_refuses_any_other_kind(student):
    """choose_executor raises ValueError for any kind but "io" and "cpu" """
    for answer in student.call("choose", OTHER_KINDS):
        kind = answer["kind"]
        if answer["outcome"] == "hung":
            student.returned(answer, "choose_executor")
        error = answer["error"]
        if error is None:
            pytest.fail(
                f"choose_executor({kind!r}) returned {answer['returned']} instead of raising ValueError: "
                "only exactly 'io' and 'cpu' are kinds of work; say that any other is a mistake of the caller",
                pytrace=False,
            )
        assert error["type"] == "ValueError", (
            f"choose_executor({kind!r}) raised {error['type']}: {error['message']}{where(error)}, not ValueError: "
            "check the kind yourself and raise ValueError for any other"
        )


# ---------------------------------------------------------------- tasks 2 and 3: how many at once


def check_bound(student, kind: str) -> dict[str, Any]:
    """Fail unless exactly max_workers tasks were inside at once; the scenario's facts otherwise."""
    facts = student.call("at_once", kind, WAVE_ITEMS, WAVE_WORKERS, FEW_CPUS, timeout=CALL)
    function, doing = FUNCTION[kind], ("waiting" if kind == "io" else "computing")
    results = results_of(student, facts["call"], function, WAVE_ITEMS)
    peak = max(result["peak"] for result in results)
    given = f"with max_workers={WAVE_WORKERS} and {WAVE_ITEMS} items"
    assert peak <= WAVE_WORKERS, (
        f"{given}, {peak} tasks were {doing} at the same moment (on a machine that seemed to have "
        f"{facts['cpus']} CPUs): never more than max_workers at once. Give the pool max_workers=max_workers, "
        "not a worker per item, nor a size from the machine (os.cpu_count(), or the executor's default)"
    )
    assert peak == WAVE_WORKERS, (
        f"{given}, at most {peak} {'task was' if peak == 1 else 'tasks were'} {doing} at the same moment (on a "
        f"machine that seemed to have {facts['cpus']} CPUs): {WAVE_WORKERS} should be. Give the pool "
        f"max_workers=max_workers, whatever the machine has, and hand every item to the {POOL[kind]} before you "
        "wait for any result (map, or submit them all)"
    )
    return facts


@pytest.mark.task(2)
def test_io_work_runs_in_threads_of_the_caller(student):
    """run_io_bound runs the waiting tasks in threads of the caller's own process"""
    facts = student.call("at_once", "io", WAVE_ITEMS, WAVE_WORKERS, MANY_CPUS, timeout=CALL)
    call = facts["call"]
    results = results_of(student, call, "run_io_bound", WAVE_ITEMS)
    pids = {result["pid"] for result in results}
    assert pids == {facts["caller_pid"]}, (
        f"the waiting tasks ran in {len(pids - {facts['caller_pid']})} other process(es). For work that waits, "
        "threads of your own process wait together just as well, and starting processes costs time and memory "
        "for nothing: use a ThreadPoolExecutor"
    )
    threads = {result["thread"] for result in results}
    assert threads != {call["thread"]}, (
        "every task ran in the thread that called run_io_bound, one after another: "
        "give them to a ThreadPoolExecutor(max_workers=max_workers)"
    )


@pytest.mark.task(2)
def test_io_bound_keeps_max_workers_waiting_at_once(student):
    """run_io_bound keeps exactly max_workers tasks waiting at the same time, never more"""
    check_bound(student, kind="io")


@pytest.mark.task(3)
def test_cpu_work_runs_in_worker_processes(student):
    """run_cpu_bound computes in max_workers worker processes, not in the caller's process"""
    facts = student.call("at_once", "cpu", WAVE_ITEMS, WAVE_WORKERS, MANY_CPUS, timeout=CALL)
    results = results_of(student, facts["call"], "run_cpu_bound", WAVE_ITEMS)
    pids = {result["pid"] for result in results}
    assert facts["caller_pid"] not in pids, (
        "the computing ran in your own process (threads, or a plain loop): threads take turns holding the GIL, "
        "so only one computes at any moment. Use a ProcessPoolExecutor: each worker process has its own GIL"
    )
    started = facts["processes_started"]
    assert len(pids) <= WAVE_WORKERS and started <= WAVE_WORKERS, (
        f"with max_workers={WAVE_WORKERS}, run_cpu_bound started {started} processes and ran the {WAVE_ITEMS} "
        f"items in {len(pids)} of them (on a machine that seemed to have {facts['cpus']} CPUs): the pool must have "
        "max_workers processes. Give it max_workers=max_workers, not a size from the machine, and make one pool "
        "for all the items"
    )


@pytest.mark.task(3)
def test_cpu_bound_keeps_max_workers_computing_at_once(student):
    """run_cpu_bound keeps exactly max_workers tasks computing at the same time, never more"""
    check_bound(student, kind="cpu")


@pytest.mark.task(3)
def test_cpu_work_runs_in_parallel(student):
    """run_cpu_bound keeps several CPUs busy at the same moment"""
    facts = student.call("cpu_bound", CPU_TASKS, CPU_BUSY, MIN_SEEN, timeout=CALL)
    if facts["cpus"] < 2:
        pytest.skip(f"this machine lets the grader use {facts['cpus']} CPU: nothing can compute in parallel here")
    results = results_of(student, facts["call"], "run_cpu_bound", CPU_TASKS)
    in_caller = all(result["pid"] == facts["caller_pid"] for result in results)
    seen = sum(result.get("seen", 0) for result in results)
    co_running = sum(result.get("co_running", 0.0) for result in results)
    if in_caller:
        pytest.fail(
            f"the {CPU_TASKS} tasks computed in your own process and were never seen running at the same moment: "
            "threads take turns holding the GIL. Use a ProcessPoolExecutor",
            pytrace=False,
        )
    workers = {result["pid"] for result in results}
    assert len(workers) == CPU_TASKS, (
        f"with max_workers={CPU_TASKS}, the {CPU_TASKS} computing tasks ran one after another in {len(workers)} "
        "worker process: give the pool max_workers=max_workers processes, so that they compute at once"
    )
    assert all(result.get("met") for result in results) and seen >= MIN_SEEN, (
        f"the {CPU_TASKS} computing tasks were seen running at the same moment {seen} times "
        f"({co_running * 1000:.1f} ms in all) on a machine with {facts['cpus']} CPUs: they ran one after another. "
        "Submit them all to a ProcessPoolExecutor(max_workers) (or use its map) before you wait for any result"
    )


# ---------------------------------------------------------------- tasks 2 and 3: order, inputs, calls


def check_in_order(student, kind: str) -> None:
    facts = student.call("in_order", kind, ORDER_ITEMS, timeout=CALL)
    function = FUNCTION[kind]
    results = results_of(student, facts["call"], function, ORDER_ITEMS)
    check_order(results, function)


def check_any_iterable(student, kind: str) -> None:
    facts = student.call("any_iterable", kind, EDGE_WORKERS, timeout=CALL)
    function, values = FUNCTION[kind], facts["values"]
    for label, shown in (
        ("generator", f"{function}(func, a generator of the items {values!r}, {EDGE_WORKERS})"),
        ("empty", f"{function}(func, [], {EDGE_WORKERS})"),
        ("again", f"a second {function} of the items {values!r} in the same process"),
    ):
        entry = facts[label]
        value = value_of(student, entry["call"], function, shown)
        expected = [] if label == "empty" else values
        if label == "generator" and value == []:
            pytest.fail(
                f"{shown} returned []: items can be any iterable, and a generator can be gone through only once. "
                "Go through the items once (map does)",
                pytrace=False,
            )
        assert entry["calls"] == entry["count"], (
            f"{shown} called func {entry['calls']} times for {entry['count']} items: call it once for every item, "
            "equal items too"
        )
        # In which order they come is test_*_returns_results_in_the_order_of_items's question.
        same = isinstance(value, list) and sorted(map(repr, value)) == sorted(map(repr, expected))
        assert same, f"{shown} returned {value!r}, not func's results {expected!r}, one per item" + (
            " (0, '' and None are results too)" if isinstance(value, list) and len(value) < len(expected) else ""
        )


@pytest.mark.task(2)
def test_io_bound_returns_results_in_the_order_of_items(student):
    """run_io_bound returns the results in the order of the items, also when the last item finishes first"""
    check_in_order(student, kind="io")


@pytest.mark.task(2)
def test_io_bound_takes_any_iterable_and_keeps_nothing_between_calls(student):
    """run_io_bound takes a generator, equal and falsy items, an empty list, and runs twice alike"""
    check_any_iterable(student, kind="io")


@pytest.mark.task(3)
def test_cpu_bound_returns_results_in_the_order_of_items(student):
    """run_cpu_bound returns the results in the order of the items, also when the last item finishes first"""
    check_in_order(student, kind="cpu")


@pytest.mark.task(3)
def test_cpu_bound_takes_any_iterable_and_keeps_nothing_between_calls(student):
    """run_cpu_bound takes a generator, equal and falsy items, an empty list, and runs twice alike"""
    check_any_iterable(student, kind="cpu")


# ---------------------------------------------------------------- task 4


STAND_INS = {"threads": "a ThreadPoolExecutor", "processes": "a ProcessPoolExecutor"}


def timed_value(student, facts: dict[str, Any], kind: str) -> tuple[list[dict[str, Any]], float]:
    """timed_run's (results, seconds); fail with what it returned otherwise."""
    shown = f"timed_run with {STAND_INS[kind]} class"
    value = value_of(student, facts["call"], "timed_run", shown)
    assert isinstance(value, list) and len(value) == 2 and isinstance(value[0], list), (
        f"{shown} returned {value!r}, not a pair (results, seconds)"
    )
    results, seconds = value
    assert isinstance(seconds, (int, float)) and not isinstance(seconds, bool), (
        f"{shown} returned {seconds!r} as its seconds, not a number"
    )
    count = facts["count"]
    assert len(results) == count and all(isinstance(r, dict) and "end" in r for r in results), (
        f"{shown} returned {results!r} as its results, not func's results for the {count} items"
    )
    return results, seconds


@pytest.mark.task(4)
def test_timed_run_measures_from_creation_to_the_last_result(student):
    """timed_run reports the seconds from just before the executor is created until every result is in"""
    for kind in ("threads", "processes"):
        facts = student.call("timed", kind, TIMED_ITEMS, timeout=CALL)
        results, seconds = timed_value(student, facts, kind)
        shown = f"with {STAND_INS[kind]} class that takes {facts['create_cost']:g} s to create"
        last_end = max(result["end"] for result in results)
        if facts["created"]:
            begun, since = facts["created"][0], "its creation began"
        else:  # it never made the class it was given: test_timed_run_uses_the_executor_it_is_given says so
            begun, since = min(result["start"] for result in results), "the first item began"
        least = last_end - begun
        if seconds < least - CLOCK_SLACK:
            cost = facts["create_cost"]
            if facts["created"] and seconds >= least - cost - CLOCK_SLACK:
                why = (
                    "the clock started after the executor was created: read time.perf_counter() just before "
                    "executor_class(max_workers=max_workers), since starting the workers is part of the cost"
                )
            elif facts["created"] and seconds >= cost - CLOCK_SLACK:
                why = (
                    "the clock stopped before every result was in: read it again only once you have them all "
                    "(after list(executor.map(...)), or after the with block)"
                )
            else:
                why = (
                    "measure the wall-clock time with time.perf_counter(), from just before the executor is "
                    "created until every result is in: time.process_time() counts only the CPU time of your own "
                    "process, not the time spent waiting for workers"
                )
            pytest.fail(
                f"{shown}, the last result came {least:.2f} s after {since}, but timed_run reported "
                f"{seconds:.3f} s: {why}",
                pytrace=False,
            )
        took = facts["call"]["ended"] - facts["call"]["began"]
        assert seconds <= took + CLOCK_SLACK, (
            f"{shown}, timed_run reported {seconds:.3f} s, but the whole call took {took:.2f} s: "
            "report the seconds between two readings of time.perf_counter()"
        )


@pytest.mark.task(4)
def test_timed_run_uses_the_executor_it_is_given(student):
    """timed_run runs every item in executor_class(max_workers=max_workers), results in the order of items"""
    for kind, as_generator in (("threads", False), ("processes", True)):
        facts = student.call("timed", kind, TIMED_ITEMS, as_generator, timeout=CALL)
        results, _ = timed_value(student, facts, kind)
        shown = f"given {STAND_INS[kind]} class"
        created = facts["created"]
        assert len(created) == 1, (
            f"{shown}, timed_run created it {len(created)} times: make one executor from the class you are given, "
            "executor_class(max_workers=max_workers), and run every item in it"
        )
        assert facts["max_workers"] == [TIMED_ITEMS], (
            f"{shown}, timed_run created it with max_workers={facts['max_workers'][0]!r}, not {TIMED_ITEMS}: "
            "pass max_workers=max_workers"
        )
        assert facts["submitted"] == TIMED_ITEMS, (
            f"{shown}, timed_run handed {facts['submitted']} of the {TIMED_ITEMS} items to it: run every item in "
            "the executor you made (its map, or submit)"
        )
        in_caller = [result["pid"] == facts["caller_pid"] for result in results]
        assert all(in_caller) if kind == "threads" else not any(in_caller), (
            f"{shown}, timed_run ran the work {'elsewhere' if kind == 'threads' else 'in your own process'}: "
            "run it in the executor made from the class you were given"
        )
        check_order(results, f"timed_run ({shown})")
