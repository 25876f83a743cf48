"""Hidden tests for exercise 12 (threads_vs_processes). Scenarios: grader/sandboxed/scenarios/threads_vs_processes.py.

The machine is busy with other work while these run, so no test compares
speeds: they check where the work ran and whether it overlapped in time.
"""

from typing import Any

import pytest

EXERCISE = "threads_vs_processes"

CALL = 45  # seconds for one scenario
IO_TASKS, IO_SLEEP = 8, 0.3
CPU_TASKS, CPU_BUSY = 2, 0.3
TIMED_TASKS = 2
# Two processes computing at once see each other's counter move hundreds of times a millisecond
# (the tasks go on until they have); threads holding the GIL in turn see it a few times at most,
# as one starts or ends, and tasks run one after another never do.
MIN_SEEN = 200
# Clock readings in different places of one process: perf_counter and monotonic may differ by a hair.
CLOCK_SLACK = 0.01


def _raised(outcome: dict[str, Any]) -> str:
    error = outcome["raised"]
    return f"{error['type']}: {error['message']}"


def _value(outcome: dict[str, Any], function: str) -> Any:
    if "silent" in outcome:
        pytest.fail(f"{function} had not returned after {outcome['silent']:g} s: it waits for something", pytrace=False)
    if "raised" in outcome:
        pytest.fail(f"{function} raised {_raised(outcome)}", pytrace=False)
    return outcome["value"]


def _results(outcome: dict[str, Any], function: str, count: int) -> list[dict[str, Any]]:
    value = _value(outcome, function)
    assert isinstance(value, list) and len(value) == count, f"{function} returned {value!r}, not {count} results"
    assert all(isinstance(result, dict) for result in value), f"{function} returned {value!r}, not func's results"
    items = [result.get("item") for result in value]
    assert items == list(range(count)), (
        f"{function} returned the results of the items in the order {items}, not in the order of the items"
    )
    return value


def _peak(results: list[dict[str, Any]]) -> int:
    """The most tasks that were waiting at the same moment."""
    events = sorted([(r["start"], 1) for r in results] + [(r["end"], -1) for r in results])
    peak = inside = 0
    for _, change in events:
        inside += change
        peak = max(peak, inside)
    return peak


# ---------------------------------------------------------------- task 1


@pytest.mark.task(1)
def test_choose_executor_matches_the_work(student):
    """choose_executor gives threads for I/O-bound work and processes for CPU-bound work"""
    answers = {answer["kind"]: answer for answer in student.call("choose", ["io", "cpu", "gpu"])}
    for kind, want, why in (
        ("io", "ThreadPoolExecutor", "work that waits (network, files, sleep) lets go of the GIL while it waits"),
        ("cpu", "ProcessPoolExecutor", "work that computes holds the GIL, so only processes compute at once"),
    ):
        answer = answers[kind]
        assert "raised" not in answer, f"choose_executor({kind!r}) raised {_raised(answer)}"
        assert answer["returned"] == want and answer["is_class"], (
            f"choose_executor({kind!r}) returned {answer['returned']}, not the class {want}: {why}. "
            "Return the class itself, not an executor made from it"
        )
    unknown = answers["gpu"]
    assert "raised" in unknown and unknown["raised"]["type"] == "ValueError", (
        f"choose_executor('gpu') gave {unknown.get('returned') or _raised(unknown)} instead of raising ValueError: "
        "a kind you do not know is a mistake of the caller, say so"
    )


# ---------------------------------------------------------------- task 2


@pytest.mark.task(2)
def test_io_work_runs_in_threads_of_the_caller(student):
    """run_io_bound runs the waiting tasks in threads of the caller's own process"""
    facts = student.call("io_bound", IO_TASKS, IO_SLEEP, IO_TASKS, timeout=CALL)
    outcome = facts["outcome"]
    results = _results(outcome, "run_io_bound", IO_TASKS)
    pids = {result["pid"] for result in results}
    assert pids == {facts["caller_pid"]}, (
        f"the waiting tasks ran in {len(pids - {facts['caller_pid']})} other process(es). That works, but for work "
        "that waits, threads of your own process wait together just as well, and starting processes costs time "
        "and memory for nothing: use a ThreadPoolExecutor"
    )
    threads = {result["thread"] for result in results}
    assert threads != {outcome["thread"]}, (
        "every task ran in the thread that called run_io_bound, one after another: "
        "give them to a ThreadPoolExecutor(max_workers=max_workers)"
    )


@pytest.mark.task(2)
def test_io_waits_overlap(student):
    """the waiting tasks wait at the same time, so they all finish in about the time of one"""
    facts = student.call("io_bound", IO_TASKS, IO_SLEEP, IO_TASKS, timeout=CALL)
    results = _results(facts["outcome"], "run_io_bound", IO_TASKS)
    peak = _peak(results)
    span = max(r["end"] for r in results) - min(r["start"] for r in results)
    assert peak >= IO_TASKS // 2, (
        f"{IO_TASKS} tasks that each wait {IO_SLEEP:g} s took {span:.2f} s, and at most {peak} of them were waiting "
        f"at the same moment, with max_workers={IO_TASKS}: submit them all to a ThreadPoolExecutor(max_workers) "
        "(or use its map) before you wait for any result"
    )
    assert span < IO_TASKS * IO_SLEEP / 2, (
        f"{IO_TASKS} tasks that each wait {IO_SLEEP:g} s took {span:.2f} s from the first start to the last end: "
        "they should wait together, in well under the sum of their waits"
    )


# ---------------------------------------------------------------- task 3


@pytest.mark.task(3)
def test_cpu_work_runs_in_worker_processes(student):
    """run_cpu_bound computes in worker processes, not in the caller's process"""
    facts = student.call("cpu_bound", CPU_TASKS, 0.05, 0, timeout=CALL)
    results = _results(facts["outcome"], "run_cpu_bound", CPU_TASKS)
    assert [result.get("square") for result in results] == [0, 1], "run_cpu_bound did not return func's results"
    assert all(result["pid"] != facts["caller_pid"] for result in results), (
        "the computing ran in your own process (threads, or a plain loop): threads take turns holding the GIL, "
        "so only one computes at any moment. Use a ProcessPoolExecutor: each worker process has its own GIL"
    )


@pytest.mark.task(3)
def test_cpu_work_runs_in_parallel(student):
    """run_cpu_bound keeps several CPUs busy at the same moment"""
    facts = student.call("cpu_bound", CPU_TASKS, CPU_BUSY, MIN_SEEN, timeout=CALL)
    if facts["cpus"] < 2:
        pytest.skip(f"this machine lets the grader use {facts['cpus']} CPU: nothing can compute in parallel here")
    results = _results(facts["outcome"], "run_cpu_bound", CPU_TASKS)
    in_caller = all(result["pid"] == facts["caller_pid"] for result in results)
    seen = sum(result.get("seen", 0) for result in results)
    co_running = sum(result.get("co_running", 0.0) for result in results)
    if in_caller:
        pytest.fail(
            f"the {CPU_TASKS} tasks computed in your own process and were never seen running at the same moment: "
            "threads take turns holding the GIL. Use a ProcessPoolExecutor",
            pytrace=False,
        )
    assert all(result.get("met") for result in results) and seen >= MIN_SEEN, (
        f"the {CPU_TASKS} computing tasks were seen running at the same moment {seen} times "
        f"({co_running * 1000:.1f} ms in all) on a machine with {facts['cpus']} CPUs: they ran one after another. "
        "Submit them all to a ProcessPoolExecutor(max_workers) (or use its map) before you wait for any result"
    )


# ---------------------------------------------------------------- task 4


def _timings(student) -> dict[str, Any]:
    return student.call("timed", TIMED_TASKS, IO_SLEEP, TIMED_TASKS, timeout=CALL)


@pytest.mark.task(4)
def test_timed_run_measures_the_wall_clock_time(student):
    """timed_run reports the seconds that passed while the work ran, from submit to the last result"""
    facts = _timings(student)
    for kind in ("threads", "processes"):
        outcome = facts[kind]
        value = _value(outcome, f"timed_run with the {kind}")
        assert isinstance(value, list) and len(value) == 2 and isinstance(value[0], list), (
            f"timed_run returned {value!r}, not a pair (results, seconds)"
        )
        results, seconds = value
        assert isinstance(seconds, (int, float)) and not isinstance(seconds, bool), (
            f"timed_run returned {seconds!r} as its seconds, not a number"
        )
        assert len(results) == TIMED_TASKS and all(isinstance(r, dict) and "start" in r for r in results), (
            f"timed_run returned {results!r} as its results, not func's results for the {TIMED_TASKS} items"
        )
        span = max(r["end"] for r in results) - min(r["start"] for r in results)
        assert seconds >= span - CLOCK_SLACK, (
            f"with the {kind}, the work took at least {span:.2f} s (from the first task's start to the last one's "
            f"end), but timed_run reported {seconds:.3f} s. Measure the wall-clock time, time.perf_counter() "
            "before the work and after the last result: time.process_time() counts only the CPU time of your own "
            "process, not the time spent waiting for workers"
        )
        assert seconds <= outcome["seconds"] + CLOCK_SLACK, (
            f"with the {kind}, timed_run reported {seconds:.2f} s, but the whole call took {outcome['seconds']:.2f} s"
        )


@pytest.mark.task(4)
def test_timed_run_uses_the_executor_it_is_given(student):
    """timed_run runs the work in the executor class it is given, with max_workers at once"""
    facts = _timings(student)
    for kind in ("threads", "processes"):
        value = _value(facts[kind], f"timed_run with the {kind}")
        assert isinstance(value, list) and len(value) == 2 and isinstance(value[0], list), (
            f"timed_run returned {value!r}, not a pair (results, seconds)"
        )
        results = value[0]
        assert [r.get("item") if isinstance(r, dict) else r for r in results] == list(range(TIMED_TASKS)), (
            f"timed_run returned {results!r} as its results, not func's results for the items 0 to "
            f"{TIMED_TASKS - 1}, in order"
        )
        in_caller = [r["pid"] == facts["caller_pid"] for r in results]
        given = "ThreadPoolExecutor" if kind == "threads" else "ProcessPoolExecutor"
        assert all(in_caller) if kind == "threads" else not any(in_caller), (
            f"given {given}, timed_run ran the work {'elsewhere' if kind == 'threads' else 'in your own process'}: "
            "make the executor from the class you were given, executor_class(max_workers=max_workers)"
        )
        assert _peak(results) >= 2, (
            f"given {given} and max_workers={TIMED_TASKS}, timed_run ran the {TIMED_TASKS} tasks one after another: "
            "submit them all (or use map) before you wait for any result"
        )
