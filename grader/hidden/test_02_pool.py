"""Hidden tests for exercise 2 (pool). Scenarios: grader/sandboxed/scenarios/pool.py.

The contract each test holds a solution to: grader/hidden/contracts/02_pool.toml.
"""

import pytest

from grader.plugin import cannot_be_pickled

EXERCISE = "pool"

# Long enough for a Manager and a pool to start on a loaded machine.
MEET_WAIT = 10.0  # seconds tasks that should run together wait for each other
SLOW_CALL = 60.0

NOT_CLOSED = (
    "Open it in a with block, `with multiprocessing.Pool(processes) as pool:`, and return from inside it: "
    "leaving the block stops the workers (or call close() and then join(), in a finally)"
)


def exact_sum_of_squares(n: int) -> int:
    return sum(i * i for i in range(n)) if n < 10_000 else (n - 1) * n * (2 * n - 1) // 6


def expected_pool_size(n_tasks: int, cpus: int | None) -> int:
    return max(1, min(n_tasks, cpus or 1))


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def fail_if_not_picklable(call) -> None:
    """A task 4 call that could not send its function to the workers gets a message of its own."""
    if call["outcome"] == "raised" and cannot_be_pickled(call["error"]):
        error = call["error"]
        if "parallel_sum_of_squares" not in error["message"]:
            pytest.fail(
                f"the function parallel_sum_of_squares sent to the pool cannot be found by a worker process "
                f"({error['type']}: {error['message']}): sum_of_squares must be a plain def at the top of pool.py "
                "(task 1), not a lambda given a name",
                pytrace=False,
            )
        pytest.fail(
            f"parallel_sum_of_squares sent the pool a function that a worker process cannot get "
            f"({error['type']}: {error['message']}). A lambda or a function defined inside another "
            "function cannot be sent to a worker: map the module-level sum_of_squares itself, "
            "pool.map(sum_of_squares, numbers)",
            pytrace=False,
        )


def call_parallel_sums(student, scenario, *args, timeout=None):
    """Run a task 4 scenario; a function that cannot reach the workers gets a message of its own."""
    result = student.run(scenario, *args, timeout=timeout)
    if result.status == "raised" and result.error is not None:
        fail_if_not_picklable(
            {"outcome": "raised", "error": {"type": result.error.type, "message": result.error.message}}
        )
    if result.status != "returned":
        student.reject(result)
    for facts in result.value:
        fail_if_not_picklable(facts["call"])
    return result.value


def result_list(student, facts, what, function="parallel_map"):
    """The value of a call made in the sandbox (its facts, or the facts of the call), as a list, or fail
    saying what came back instead."""
    if facts.get("pending_at_terminate"):
        pytest.fail(
            f"{what} stopped its pool while {facts['pending_at_terminate']} of its jobs had no result yet, so "
            "those results can never come: leaving a with block stops the workers. Get the results inside the "
            "block (return pool.map(func, items) from inside it)",
            pytrace=False,
        )
    call = facts.get("call", facts)
    value = student.returned(call, function)
    if not isinstance(value, list):
        pytest.fail(
            f"{what} returned {str(value)[:80]}, not a list: return the list that pool.map gives you", pytrace=False
        )
    return value


def judge_nothing_left(facts, call: str, ended: str = "returned") -> None:
    """Fail when worker processes the call started were still running, seen in the caller right after it ended."""
    left = facts["left_running"]
    if not left:
        return
    states = {pool["state"] for pool in facts["pools"]}
    running = f"{len(left)} of the {facts['started']} worker process(es) that {call} started were still running"
    if ended == "raised":
        pytest.fail(
            f"{running} after it raised func's exception: the pool is stopped only when nothing goes wrong. Use a "
            "with block, which stops the workers however the block is left (or close() and join() in a finally)",
            pytrace=False,
        )
    if "RUN" in states:
        pytest.fail(f"{running} the moment it returned: it never closed its pool. {NOT_CLOSED}", pytrace=False)
    if "CLOSE" in states:
        pytest.fail(
            f"{running} the moment it returned: it closed its pool but did not wait for the workers to end. "
            "close() only tells them to stop; join() after it waits until they have (a with block stops them too)",
            pytrace=False,
        )
    pytest.fail(
        f"{running} the moment it returned: stop the pool and wait for its workers before returning. {NOT_CLOSED}",
        pytrace=False,
    )


def judge_in_workers(facts, what: str) -> None:
    """Fail when the work was done in the caller's own process (a loop, or a pool of threads)."""
    if facts["started"] == 0 or facts["caller_pid"] in facts.get("worker_pids", []):
        pytest.fail(
            f"{what} started no worker process: the items were worked out in your own process (a loop, or a pool "
            "of threads). Create a multiprocessing.Pool(processes) and let pool.map(func, items) send them to its "
            "worker processes",
            pytrace=False,
        )


# ---------------------------------------------------------------- task 1


@pytest.mark.task(1)
def test_sum_of_squares_values(student):
    """sum_of_squares adds up i * i for 0 <= i < n, exactly, also for 0 and a large n"""
    numbers = [0, 1, 2, 3, 4, 10, 100, 1234, 1_000_003]
    answers = student.call("sum_of_squares_here", numbers, timeout=30)
    for n, got in zip(numbers, answers, strict=True):
        want = exact_sum_of_squares(n)
        if got == want and not is_int(got):
            pytest.fail(f"sum_of_squares({n}) returned {got!r}, a {type(got).__name__}: return an int")
        if n == 0:
            assert got == 0, f"sum_of_squares(0) returned {got!r}: there is nothing to add up, so it is 0"
        if got == exact_sum_of_squares(n + 1) and got != want:
            pytest.fail(
                f"sum_of_squares({n}) returned {got!r}, expected {want}: you added n * n too. "
                "Stop before n, as range(n) does"
            )
        if isinstance(got, float) or (is_int(got) and got != want and abs(got - want) < want * 1e-12):
            pytest.fail(
                f"sum_of_squares({n}) returned {got!r}, expected exactly {want}: the result went through a float, "
                "which keeps only about 16 digits. Use whole numbers only (// instead of /, or add up i * i)"
            )
        assert is_int(got) and got == want, (
            f"sum_of_squares({n}) returned {got!r}, expected {want}: add up i * i for every i from 0 up to, "
            "but not including, n"
        )


@pytest.mark.task(1)
def test_sum_of_squares_runs_in_a_worker(student):
    """sum_of_squares can be sent to a pool's worker processes"""
    numbers = [5, 0, 300, 10]
    facts = student.call("sum_of_squares_in_workers", numbers, timeout=30)
    if facts["kind"] == "raised":
        error = facts["error"]
        pytest.fail(
            f"sum_of_squares could not be run by a pool worker ({error['type']}: {error['message']}). A worker "
            "process finds the function by its name in pool.py: define it with def at the top level of the module, "
            "not as a lambda or inside another function",
            pytrace=False,
        )
    assert facts["kind"] != "silent", (
        "a pool worker never answered for sum_of_squares: define it with def at the top level of pool.py, so that "
        "a worker process can find it by name"
    )
    want = [exact_sum_of_squares(n) for n in numbers]
    got = facts["values"]
    assert got == want, f"in pool workers, sum_of_squares over {numbers} gave {got}, expected {want}"


# ---------------------------------------------------------------- task 2


def answer_of(answer, call: str, where: str = "") -> int:
    """The value choose_pool_size returned, or fail saying what it did instead."""
    if answer["outcome"] == "hung":
        pytest.fail(f"{where}{call} had not returned after a few seconds", pytrace=False)
    if answer["outcome"] == "raised":
        error = answer["error"]
        at = f" ({error['where']})" if error.get("where") else ""
        pytest.fail(f"{where}{call} raised {error['type']}: {error['message']}{at}", pytrace=False)
    return answer["value"]


def judge_pool_size(call: str, got, n_tasks: int, cpus: int) -> None:
    """Fail with the mistake named when got is not the pool size for n_tasks tasks on cpus CPUs."""
    want = expected_pool_size(n_tasks, cpus)
    if got == want:
        return
    if got == 0 or (is_int(got) and got < 1):
        pytest.fail(f"{call} returned {got!r}: a pool needs at least one worker, so never return less than 1")
    if cpus == 0:
        pytest.fail(
            f"{call} returned {got!r}, expected {want}: cpus=0 was taken for cpus=None (this machine's count). "
            "Ask os.cpu_count() only when cpus is None (`if cpus is None`), not whenever it is falsy "
            "(`cpus or ...`); the answer is never less than 1",
            pytrace=False,
        )
    if got == n_tasks and n_tasks > cpus:
        pytest.fail(
            f"{call} returned {got!r}, one worker per task: with more workers than CPUs they only take "
            f"turns on the CPUs and cost more to start. Take the smaller of the two: {want}"
        )
    if got == cpus and n_tasks < cpus:
        pytest.fail(
            f"{call} returned {got!r}, one worker per CPU: with fewer tasks than CPUs the extra workers "
            f"sit idle. Take the smaller of the two: {want}"
        )
    pytest.fail(f"{call} returned {got!r}, expected {want}: the smaller of n_tasks and cpus, and at least 1")


@pytest.mark.task(2)
def test_choose_pool_size_with_known_cpus(student):
    """choose_pool_size takes the smaller of tasks and CPUs, and at least 1"""
    cases = [[10, 4], [3, 8], [4, 4], [100, 2], [1, 16], [1, 1], [0, 4], [0, 1], [5, 0], [0, 0]]
    machine = 8  # os.cpu_count() says so during the calls: cpus was given, so it must not matter
    answers = student.call("choose_with_cpus", cases, machine)
    for (n_tasks, cpus), answer in zip(cases, answers, strict=True):
        call = f"choose_pool_size({n_tasks}, cpus={cpus})"
        judge_pool_size(call, answer_of(answer, call), n_tasks, cpus)


@pytest.mark.task(2)
def test_choose_pool_size_asks_os_cpu_count(student):
    """choose_pool_size with cpus=None asks os.cpu_count(), and uses 1 when the count is unknown"""
    task_counts = [1, 2, 3, 5, 8, 64, 1000]
    facts = student.call("choose_without_cpus", task_counts, [7, 1, None])
    machines = [{"cpu_count": facts["cpu_count"], "answers": facts["answers"]}, *facts["pretend"]]
    for machine in machines:
        cpu_count = machine["cpu_count"]
        where = f"when os.cpu_count() returns {cpu_count}{' (the count is unknown)' if cpu_count is None else ''}, "
        for entry in machine["answers"]:
            n_tasks = entry["n_tasks"]
            want = expected_pool_size(n_tasks, cpu_count)
            for call, answer in ((f"choose_pool_size({n_tasks})", entry["default"]),
                                 (f"choose_pool_size({n_tasks}, None)", entry["none"])):  # fmt: skip
                if cpu_count is None:
                    if answer["outcome"] == "raised":
                        error = answer["error"]
                        pytest.fail(
                            f"{where}{call} raised {error['type']}: {error['message']}: "
                            "treat an unknown count as 1 CPU (os.cpu_count() or 1)",
                            pytrace=False,
                        )
                    got = answer_of(answer, call, where)
                    assert got == want, (
                        f"{where}{call} returned {got!r}: treat an unknown count as 1 CPU, so the answer is 1"
                    )
                    continue
                got = answer_of(answer, call, where)
                if got != want and got == n_tasks:
                    judge_pool_size(f"{where}{call}", got, n_tasks, cpu_count)
                assert got == want, (
                    f"{where}{call} returned {got!r}, expected {want}. When cpus is None, call os.cpu_count() "
                    "each time choose_pool_size runs (not once at import, and not a number of your own)"
                )


# ---------------------------------------------------------------- task 3


def _swaps(order: list, reference: list) -> int:
    """How many pairs of order are the other way round in reference (both hold the same items)."""
    rank = {item: place for place, item in enumerate(reference)}
    places = [rank[item] for item in order]
    return sum(1 for i, a in enumerate(places) for b in places[i + 1 :] if a > b)


@pytest.mark.task(3)
def test_results_come_back_in_input_order(student):
    """parallel_map returns the results in the order of the items, even when later items finish first"""
    count = 4
    facts = student.call("map_finishing_backwards", count, MEET_WAIT, timeout=SLOW_CALL)
    results = result_list(student, facts, "parallel_map")
    indexes = [r.get("index") if isinstance(r, dict) else r for r in results]
    want = list(range(count))
    finished = facts["finish_order"]
    permuted = indexes != want and all(type(i) is int for i in indexes) and sorted(indexes) == want
    # Results collected as they arrive come back in about the order the tasks finished: two results
    # that finish close together may swap on their way back, so compare how far each order is.
    if permuted and sorted(finished) == want and _swaps(indexes, finished) < _swaps(indexes, want):
        reversed_items = ", the items reversed" if finished == want[::-1] else ""
        pytest.fail(
            f"parallel_map returned the results in the order the tasks finished ({indexes}; the tasks "
            f"finished in the order {finished}{reversed_items}), not in the order of "
            f"the items ({want}): results collected as they finish, or turned round, come out so; "
            "return pool.map(func, items) as it is, which keeps the input order",
            pytrace=False,
        )
    assert indexes == want, (
        f"parallel_map returned results for items {indexes}, expected {want} in that order "
        f"(the items finished in the order {facts['finish_order']})"
    )


@pytest.mark.task(3)
def test_tasks_run_in_several_workers_at_once(student):
    """parallel_map runs the tasks in several worker processes at the same time"""
    facts = student.call("map_at_barrier", 3, 3, MEET_WAIT, 1, timeout=SLOW_CALL)
    results = result_list(student, facts, "parallel_map")
    assert len(results) == 3 and all(isinstance(r, dict) for r in results), (
        f"parallel_map returned {str(results)[:120]}: expected func's result for each of the 3 items"
    )
    pids = [r["pid"] for r in results]
    timed = [r for r in results if isinstance(r, dict) and all(isinstance(r.get(k), float) for k in ("began", "ended"))]
    since = facts["origin"]
    rows = [{"pid": r["pid"], "start": max(0.0, r["began"] - since), "end": r["ended"] - since} for r in timed]
    student.timeline(rows, "parallel_map's tasks, each by the pid of its worker")
    assert facts["caller_pid"] not in pids, (
        "the tasks ran in your own process (a loop, or a pool of threads), not in worker processes: create a "
        "multiprocessing.Pool(processes) and let pool.map(func, items) send them to its worker processes"
    )
    assert all(r["met"] for r in results), (
        f"with processes=3, the 3 tasks never ran at the same time on a machine that says it has 1 CPU (they ran "
        f"in {len(set(pids))} worker process(es)): pass processes on, multiprocessing.Pool(processes), and hand "
        "all the items to the pool at once, pool.map(func, items)"
    )
    assert len(set(pids)) == 3, f"the 3 tasks that ran at the same time reported only {len(set(pids))} pids"


@pytest.mark.task(3)
def test_pool_has_the_workers_asked_for(student):
    """parallel_map starts exactly as many workers as processes asks for, not one per CPU or per item"""
    facts = student.call("map_counting_workers", 2, 6, 4, timeout=SLOW_CALL)
    results = result_list(student, facts, "parallel_map")
    squares = [r.get("square") if isinstance(r, dict) else r for r in results]
    # The order has a test of its own: here only the values count.
    assert sorted(squares, key=str) == sorted((x * x for x in range(6)), key=str), (
        f"parallel_map(square, range(6)) returned {squares}"
    )
    judge_in_workers(facts, "parallel_map")
    peak = facts["peak"]
    assert peak == 2, (
        f"with processes=2, on a machine that says it has 4 CPUs, parallel_map had {peak} worker processes running "
        "at once for 6 items: create the pool with the number you were given, multiprocessing.Pool(processes), "
        "not one worker per item or per CPU"
    )


@pytest.mark.task(3)
def test_processes_none_takes_one_worker_per_cpu(student):
    """parallel_map with processes left out or None starts one worker per CPU"""
    cpus = 3  # the scenario makes os.cpu_count() say so, whatever this machine has
    for pass_processes, call in ((False, "parallel_map(func, items)"), (True, "parallel_map(func, items, None)")):
        facts = student.call("map_counting_workers", None, 7, cpus, pass_processes, timeout=SLOW_CALL)
        results = result_list(student, facts, call)
        assert len(results) == 7, f"{call} returned {len(results)} results for 7 items"
        judge_in_workers(facts, call)
        peak = facts["peak"]
        assert peak == cpus, (
            f"on a machine that says it has {cpus} CPUs, {call} for 7 items had {peak} worker processes running at "
            f"once, not {cpus}: processes=None is the default, and multiprocessing.Pool(None) takes one worker per "
            "CPU. Pass processes on as it is"
        )


@pytest.mark.task(3)
def test_no_worker_left_after_parallel_map(student):
    """parallel_map closes its pool: no worker process is left once it returns"""
    count = 6
    facts = student.call("map_then_look_around", 2, count, timeout=SLOW_CALL)
    results = result_list(student, facts, "parallel_map")
    squares = [r.get("square") if isinstance(r, dict) else r for r in results]
    want = [x * x for x in range(count)]
    # The order has a test of its own: here only the values count.
    assert sorted(squares, key=str) == sorted(want, key=str), (
        f"parallel_map(square, {list(range(count))}) returned {squares}, expected {want}"
    )
    judge_nothing_left(facts, "parallel_map")
    still = facts["workers_still_running"]
    assert not still, (
        f"{len(still)} process(es) that worked out items were still running after parallel_map returned. {NOT_CLOSED}"
    )


@pytest.mark.task(3)
def test_an_exception_in_func_reaches_the_caller_and_leaves_nothing_running(student):
    """When func raises, parallel_map raises that exception and still leaves no worker running"""
    facts = student.call("map_that_raises", 2, timeout=SLOW_CALL)
    call = facts["call"]
    if call["outcome"] == "hung":
        result_list(student, facts, "parallel_map")  # says why it never returned
    if call["outcome"] == "returned":
        pytest.fail(
            f"parallel_map returned {str(call['value'])[:80]} although func raised ValueError for one item: "
            "do not catch it, let it reach the caller (pool.map raises it again in your process)",
            pytrace=False,
        )
    error = call["error"]
    assert error["type"] == "ValueError" and "item 2 is bad" in error["message"], (
        f"parallel_map raised {error['type']}: {error['message']}, not the ValueError('item 2 is bad ...') that "
        "func raised in the worker: let that exception through as it is"
    )
    judge_nothing_left(facts, "parallel_map", ended="raised")


def same_items(got, want) -> bool:
    """Whether two lists hold the same values, in any order (the order has a test of its own)."""
    return isinstance(got, list) and sorted(map(repr, got)) == sorted(map(repr, want))


@pytest.mark.task(3)
def test_parallel_map_takes_any_iterable_and_keeps_nothing_between_calls(student):
    """parallel_map takes a generator, no items, falsy and equal items, big results, call after call"""
    facts = student.call("map_any_iterable", timeout=SLOW_CALL)
    generator = facts["generator"]
    if generator["call"]["outcome"] == "raised":
        error = generator["call"]["error"]
        pytest.fail(
            f"parallel_map(abs, items) raised {error['type']}: {error['message']} for items given as a generator: "
            "items can be any iterable, which has no len() and can be gone through only once. Hand it to "
            "pool.map as it is (or make a list of it once, first)",
            pytrace=False,
        )
    got = result_list(student, generator, "parallel_map(abs, items) for items from a generator")
    assert same_items(got, [3, 0, 3, 5]), (
        f"parallel_map(abs, items) returned {got} for the items -3, 0, -3, 5 given as a generator, "
        "not [3, 0, 3, 5]: an iterator can be gone through only once, so go through it once only"
    )
    judge_in_workers(generator, "parallel_map")
    judge_nothing_left(generator, "parallel_map")
    got = result_list(student, facts["empty"], "parallel_map(abs, [])")
    assert got == [], f"parallel_map(abs, []) returned {got}, not []"
    falsy = facts["falsy"]
    got = result_list(student, falsy, "a second parallel_map in the same process")
    want = ["0", "''", "None", "0", "''"]
    assert same_items(got, want), (
        f"parallel_map(repr, [0, '', None, 0, '']) returned {got}, not {want}: every item counts, "
        "also one that is falsy or equal to another"
    )
    started = falsy["started"]
    assert started, (
        "a later parallel_map in the same process, with processes=3, started no worker process, although the "
        "first call did: make a new pool in every call, keep nothing from an earlier one"
    )
    assert falsy["peak"] == 3, (
        f"a later parallel_map in the same process, with processes=3, had {falsy['peak']} worker processes running "
        "at once, not 3, "
        f"on a machine that says it has {facts['cpu_count']} CPUs: create each call's pool with the processes "
        "it was given, multiprocessing.Pool(processes)"
    )
    judge_nothing_left(falsy, "parallel_map")
    big = facts["big"]
    if big["call"]["outcome"] == "hung":
        pytest.fail(
            f"parallel_map had not returned {big['call']['deadline']:g} s after it was given 4 items whose results "
            "are 100 KB each, more than a pipe holds, although it returned for small results: a process that puts "
            "a big result on a queue ends only once the result has been read. Read the results before you join() "
            "the processes (pool.map does all of it for you)",
            pytrace=False,
        )
    lengths = result_list(student, big, "parallel_map with results of 100 KB each")
    assert same_items(lengths, [100_000] * 4), f"parallel_map returned results of {lengths} characters, not 4 of 100000"


# ---------------------------------------------------------------- task 4


@pytest.mark.task(4)
def test_parallel_sum_of_squares_values(student):
    """parallel_sum_of_squares returns sum_of_squares of each number, in order"""
    inputs = [[3, 0, 10, 1000, 1], [20_000, 5, 123, 7, 77, 4, 9, 1], [42], []]
    for facts in call_parallel_sums(student, "parallel_sums", inputs, timeout=SLOW_CALL):
        numbers = facts["numbers"]
        got = result_list(student, facts, f"parallel_sum_of_squares({numbers})", "parallel_sum_of_squares")
        if got != facts["one_by_one"] and same_items(got, facts["one_by_one"]):
            pytest.fail(
                f"parallel_sum_of_squares({numbers}) returned {got}: the right sums, but not in the order of the "
                f"numbers ({facts['one_by_one']}): map sum_of_squares over numbers with pool.map, "
                "which keeps the order",
                pytrace=False,
            )
        assert got == facts["one_by_one"], (
            f"parallel_sum_of_squares({numbers}) returned {got}, but sum_of_squares gives {facts['one_by_one']} "
            "for these numbers, in this order: map sum_of_squares over numbers with pool.map"
        )


@pytest.mark.task(4)
def test_pool_sized_by_choose_pool_size_and_closed(student):
    """parallel_sum_of_squares uses a pool of choose_pool_size(len(numbers)) workers and closes it"""
    cpus = 3  # the scenario makes os.cpu_count() say so, whatever this machine has
    for facts in call_parallel_sums(student, "parallel_sums_watched", [1, 2, 5], cpus, timeout=SLOW_CALL):
        length, want = facts["length"], facts["choose_pool_size"]
        call = f"parallel_sum_of_squares on {length} number(s), on a machine with {cpus} CPUs,"
        result_list(student, facts, call, "parallel_sum_of_squares")
        started = facts["started"]
        assert started, (
            f"{call} started no worker process: the numbers were worked out in your own process (a loop, or a pool "
            "of threads). Use a multiprocessing.Pool (parallel_map does) to map sum_of_squares"
        )
        assert facts["peak"] == want, (
            f"{call} had {facts['peak']} worker process(es) running at once, but choose_pool_size({length}) is "
            f"{want}: create the pool with choose_pool_size(len(numbers)) workers"
        )
        got = facts["result_length"]
        assert got == length, f"{call} returned {got} results for {length} numbers"
        judge_nothing_left(facts, "parallel_sum_of_squares")
