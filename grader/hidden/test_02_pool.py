"""Hidden tests for exercise 2 (pool). Scenarios: grader/sandboxed/scenarios/pool.py."""

import pytest

EXERCISE = "pool"

# Long enough for a Manager and a pool to start on a loaded machine.
MEET_WAIT = 10.0  # seconds tasks that should run together wait for each other
SLOW_CALL = 45.0


def exact_sum_of_squares(n: int) -> int:
    return sum(i * i for i in range(n)) if n < 10_000 else (n - 1) * n * (2 * n - 1) // 6


def expected_pool_size(n_tasks: int, cpus: int | None) -> int:
    return max(1, min(n_tasks, cpus or 1))


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def looks_like_pickling(error) -> bool:
    text = f"{error.type} {error.message}".lower()
    return "pickl" in text or "<lambda>" in text or "<locals>" in text


def call_parallel_sums(student, scenario, *args, timeout=None):
    """Run a task 4 scenario; a function that cannot reach the workers gets a message of its own."""
    result = student.run(scenario, *args, timeout=timeout)
    if result.status == "raised" and result.error is not None and looks_like_pickling(result.error):
        pytest.fail(
            f"parallel_sum_of_squares sent the pool a function that a worker process cannot get "
            f"({result.error.type}: {result.error.message}). A lambda or a function defined inside another "
            "function cannot be sent to a worker: map the module-level sum_of_squares itself, "
            "pool.map(sum_of_squares, numbers)",
            pytrace=False,
        )
    if result.status != "returned":
        student.reject(result)
    return result.value


def result_list(facts, what):
    """The results of a call as a list, or fail saying what came back instead."""
    results = facts["results"] if "results" in facts else facts["result"]
    assert facts["type"] == "list" and isinstance(results, list), (
        f"{what} returned a {facts['type']} ({str(results)[:80]}), not a list: return the list that pool.map gives you"
    )
    return results


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
        if isinstance(got, float):
            pytest.fail(
                f"sum_of_squares({n}) returned {got!r}, a float, expected exactly {want}: a float keeps only about "
                "16 digits. Use whole numbers only (// instead of /, or add up i * i)"
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
    assert facts["kind"] != "raised", (
        f"sum_of_squares could not be run by a pool worker ({facts.get('error')}). A worker process finds the "
        "function by its name in pool.py: define it with def at the top level of the module, not as a lambda "
        "or inside another function"
    )
    assert facts["kind"] != "silent", (
        "a pool worker never answered for sum_of_squares: define it with def at the top level of pool.py, so that "
        "a worker process can find it by name"
    )
    want = [exact_sum_of_squares(n) for n in numbers]
    got = facts["values"]
    assert got == want, f"in pool workers, sum_of_squares over {numbers} gave {got}, expected {want}"


# ---------------------------------------------------------------- task 2


def judge_pool_size(call: str, got, n_tasks: int, cpus: int) -> None:
    """Fail with the mistake named when got is not the pool size for n_tasks tasks on cpus CPUs."""
    want = expected_pool_size(n_tasks, cpus)
    if got == want:
        return
    if n_tasks == 0:
        pytest.fail(f"{call} returned {got!r}: a pool needs at least one worker, so never return less than 1")
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
    cases = [[10, 4], [3, 8], [4, 4], [100, 2], [1, 16], [1, 1], [0, 4], [0, 1]]
    answers = student.call("choose_with_cpus", cases)
    for (n_tasks, cpus), answer in zip(cases, answers, strict=True):
        call = f"choose_pool_size({n_tasks}, cpus={cpus})"
        assert "raised" not in answer, f"{call} raised {answer.get('raised')}"
        judge_pool_size(call, answer["value"], n_tasks, cpus)


@pytest.mark.task(2)
def test_choose_pool_size_asks_os_cpu_count(student):
    """choose_pool_size with cpus=None asks os.cpu_count(), and uses 1 when the count is unknown"""
    task_counts = [1, 2, 3, 5, 8, 64, 1000]
    facts = student.call("choose_without_cpus", task_counts, [7, 1, None])
    machines = [{"cpu_count": facts["cpu_count"], "answers": facts["answers"]}, *facts["pretend"]]
    for machine in machines:
        cpu_count = machine["cpu_count"]
        where = f"when os.cpu_count() returns {cpu_count}"
        for entry in machine["answers"]:
            n_tasks = entry["n_tasks"]
            want = expected_pool_size(n_tasks, cpu_count)
            for call, answer in ((f"choose_pool_size({n_tasks})", entry["default"]),
                                 (f"choose_pool_size({n_tasks}, None)", entry["none"])):  # fmt: skip
                if cpu_count is None:
                    assert "raised" not in answer, (
                        f"{where} (the count is unknown), {call} raised {answer['raised']}: "
                        "treat an unknown count as 1 CPU (os.cpu_count() or 1)"
                    )
                    assert answer["value"] == want, (
                        f"{where} (the count is unknown), {call} returned {answer['value']!r}: "
                        "treat an unknown count as 1 CPU, so the answer is 1"
                    )
                    continue
                assert "raised" not in answer, f"{where}, {call} raised {answer['raised']}"
                got = answer["value"]
                if got != want and got == n_tasks:
                    judge_pool_size(f"{where}, {call}", got, n_tasks, cpu_count)
                assert got == want, (
                    f"{where}, {call} returned {got!r}, expected {want}. When cpus is None, call os.cpu_count() "
                    "each time choose_pool_size runs (not once at import, and not a number of your own)"
                )


# ---------------------------------------------------------------- task 3


@pytest.mark.task(3)
def test_results_come_back_in_input_order(student):
    """parallel_map returns the results in the order of the items, even when later items finish first"""
    count = 4
    facts = student.call("map_finishing_backwards", count, MEET_WAIT, timeout=SLOW_CALL)
    results = result_list(facts, "parallel_map")
    indexes = [r.get("index") if isinstance(r, dict) else r for r in results]
    want = list(range(count))
    if indexes != want and sorted(map(str, indexes)) == sorted(map(str, want)) and indexes == facts["finish_order"]:
        pytest.fail(
            f"parallel_map returned the results in the order the tasks finished ({indexes}), not in the order of "
            f"the items ({want}): return pool.map(func, items), which keeps the input order"
        )
    assert indexes == want, f"parallel_map returned results for items {indexes}, expected {want} in that order"


def worker_pids(facts):
    """The pids the tasks ran in, after checking they ran in worker processes."""
    results = result_list(facts, "parallel_map")
    assert len(results) == 3 and all(isinstance(r, dict) for r in results), (
        f"parallel_map returned {str(results)[:120]}: expected func's result for each of the 3 items"
    )
    pids = [r["pid"] for r in results]
    assert facts["caller_pid"] not in pids, (
        "the tasks ran in your own process, one after another: create a multiprocessing.Pool(processes) and "
        "let pool.map(func, items) send them to its worker processes"
    )
    return pids


@pytest.mark.task(3)
def test_tasks_run_in_several_workers_at_once(student):
    """parallel_map runs the tasks in several worker processes at the same time"""
    facts = student.call("map_at_barrier", 3, 3, MEET_WAIT, 1, timeout=SLOW_CALL)
    pids = worker_pids(facts)
    met = [r["met"] for r in result_list(facts, "parallel_map")]
    assert all(met), (
        f"with processes=3, the 3 tasks never ran at the same time (they ran in {len(set(pids))} worker "
        "process(es)): pass processes on, multiprocessing.Pool(processes), instead of letting the pool choose "
        "its size from the CPU count"
    )
    assert len(set(pids)) == 3, f"the 3 tasks that ran at the same time reported only {len(set(pids))} pids"


@pytest.mark.task(3)
def test_pool_has_the_workers_asked_for(student):
    """parallel_map starts exactly as many workers as processes asks for, not more"""
    facts = student.call("map_recording_pools", 2, 6, 4)
    pools = facts["pools"]
    assert pools, (
        "parallel_map made no multiprocessing.Pool: create one, `with multiprocessing.Pool(processes) as pool:`"
    )
    sizes = [pool["workers"] for pool in pools]
    assert sizes == [2], (
        f"with processes=2 on a 4-CPU machine, parallel_map made pools of {sizes} workers: create it with "
        "multiprocessing.Pool(processes), not one worker per item or per CPU"
    )
    assert all(pool["of_processes"] for pool in pools), "the pool's workers are threads, not processes"
    pids = facts["worker_pids"]
    assert pids and facts["caller_pid"] not in pids, "the items were not worked out in the pool's worker processes"


@pytest.mark.task(3)
def test_no_worker_left_after_parallel_map(student):
    """parallel_map closes its pool: no worker process is left once it returns"""
    count = 6
    facts = student.call("map_then_look_around", 2, count, timeout=30)
    results = result_list(facts, "parallel_map")
    squares = [r.get("square") if isinstance(r, dict) else r for r in results]
    want = [x * x for x in range(count)]
    # The order has a test of its own: here only the values count.
    assert sorted(squares, key=str) == sorted(want, key=str), (
        f"parallel_map(square, {list(range(count))}) returned {squares}, expected {want}"
    )
    assert not facts["unclosed_pools"], (
        "parallel_map never closed its pool: Python had to clean it up for you and warned "
        f"({facts['unclosed_pools'][0]}). Open it in a with block, `with multiprocessing.Pool(processes) as pool:`, "
        "which closes the pool and stops its workers when the block ends"
    )
    left = len(facts["left_running"]) or len(facts["workers_still_running"])
    assert not left, (
        f"{left} worker process(es) were still running after parallel_map returned: the pool was never closed. "
        "Open it in a with block, `with multiprocessing.Pool(processes) as pool:`, and return from inside it "
        "(or call close() then join()); do not keep a pool in a global variable"
    )


# ---------------------------------------------------------------- task 4


@pytest.mark.task(4)
def test_parallel_sum_of_squares_values(student):
    """parallel_sum_of_squares returns sum_of_squares of each number, in order"""
    inputs = [[3, 0, 10, 1000, 1], [20_000, 5, 123, 7, 77, 4, 9, 1], [42]]
    for facts in call_parallel_sums(student, "parallel_sums", inputs, timeout=30):
        numbers = facts["numbers"]
        got = result_list(facts, f"parallel_sum_of_squares({numbers})")
        assert got == facts["one_by_one"], (
            f"parallel_sum_of_squares({numbers}) returned {got}, but sum_of_squares gives {facts['one_by_one']} "
            "for these numbers, in this order: map sum_of_squares over numbers with pool.map"
        )


@pytest.mark.task(4)
def test_pool_sized_by_choose_pool_size_and_closed(student):
    """parallel_sum_of_squares uses a pool of choose_pool_size(len(numbers)) workers and closes it"""
    cpus = 3  # the scenario makes os.cpu_count() say so, whatever this machine has
    for facts in call_parallel_sums(student, "parallel_sums_watched", [1, 2, 5], cpus, timeout=30):
        length, want = facts["length"], facts["choose_pool_size"]
        call = f"parallel_sum_of_squares on {length} number(s), on a machine with {cpus} CPUs,"
        pools = facts["pools"]
        assert pools, f"{call} did not create a multiprocessing.Pool: use one (parallel_map does) to map sum_of_squares"
        for pool in pools:
            assert pool["of_processes"], (
                f"{call} used a {pool['kind']}, whose workers are threads of your own process: use "
                "multiprocessing.Pool, whose workers are processes"
            )
            assert pool["workers"] == want, (
                f"{call} used a pool of {pool['workers']} worker(s), but choose_pool_size({length}) is {want}: "
                "create the pool with choose_pool_size(len(numbers)) workers"
            )
        got = facts["result_length"]
        assert got == length, f"{call} returned {got} results for {length} numbers"
        assert not facts["unclosed_pools"], (
            f"{call} never closed its pool, and Python warned ({facts['unclosed_pools'][0]}): use it in a with block "
            "(or through parallel_map)"
        )
        assert not facts["left_running"], (
            f"{len(facts['left_running'])} worker process(es) were still running after {call} returned: "
            "close the pool, for example by using it in a with block (or through parallel_map)"
        )
