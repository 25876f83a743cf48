"""Hidden tests for exercise 11 (executors). Scenarios: grader/sandboxed/scenarios/executors.py.

Order and simultaneity are made certain by the scenarios (tasks meet before
they sleep durations 0.4 s apart), never inferred from speed.
"""

from typing import Any

import pytest

EXERCISE = "executors"

CALL = 45  # seconds for one scenario: a pool or two, and a wrong solution's waits
BROKEN_POOL = "concurrent.futures.process.BrokenProcessPool"
# The tasks meet, then sleep these seconds: they finish in the order 1, 2, 0, each 0.4 s after the one before.
SLEEPS = [0.8, 0.0, 0.4]
FINISH_ORDER = [1, 2, 0]


def _raised(outcome: dict[str, Any]) -> str:
    error = outcome["raised"]
    return f"{error['type']}: {error['message']}"


def _returned(outcome: dict[str, Any], function: str) -> Any:
    """The value a graded call returned; fail with the reason when it raised or never returned."""
    if "silent" in outcome:
        pytest.fail(f"{function} had not returned after {outcome['silent']:g} s: it waits for something", pytrace=False)
    if "raised" in outcome:
        pytest.fail(f"{function} raised {_raised(outcome)}", pytrace=False)
    value = outcome["returned"]
    if isinstance(value, dict) and "iterator_raised" in value:
        error = value["iterator_raised"]
        pytest.fail(f"reading what {function} returned raised {error['type']}: {error['message']}", pytrace=False)
    return value


def _result_list(outcome: dict[str, Any], function: str, count: int) -> list[dict[str, Any]]:
    value = _returned(outcome, function)
    assert isinstance(value, list) and len(value) == count, (
        f"{function} returned {value!r}, not a list of {count} results"
    )
    assert all(isinstance(result, dict) for result in value), f"{function} returned {value!r}, not func's results"
    return value


def _expect_worker_error(outcome: dict[str, Any], function: str, what: str) -> None:
    """The call must have raised the worker's ValueError for item 2, as it was."""
    if "silent" in outcome:
        pytest.fail(f"{function} had not returned after {outcome['silent']:g} s", pytrace=False)
    assert "raised" in outcome, (
        f"{function} returned {outcome['returned']!r} although func raised ValueError for item 2 in a worker: "
        f"do not catch it. {what} raises the worker's exception in your process, and it must reach your caller"
    )
    error = outcome["raised"]
    assert error["type"] == "ValueError" and "item 2 is bad" in error["message"], (
        f"{function} raised {_raised(outcome)} instead of the worker's ValueError('item 2 is bad ...'): "
        "let the worker's exception through as it is"
    )


# ---------------------------------------------------------------- task 1


@pytest.mark.task(1)
def test_run_all_returns_results_in_order_from_workers(student):
    """run_all returns func(item) for every item, in order, computed in worker processes"""
    facts = student.call("run_all_values", [3, 1, 2, 5], 2, timeout=CALL)
    results = _result_list(facts["outcome"], "run_all", 4)
    squares = [result.get("square") for result in results]
    assert squares == [9, 1, 4, 25], (
        f"run_all(square, [3, 1, 2, 5], 2) returned the squares {squares}, expected [9, 1, 4, 25]: "
        "keep the futures in a list in the order of items and call result() on each"
    )
    assert all(result.get("pid") != facts["caller_pid"] for result in results), (
        "func ran in your own process: give it to executor.submit(func, item) instead of calling it yourself"
    )


@pytest.mark.task(1)
def test_run_all_runs_the_tasks_at_the_same_time(student):
    """run_all submits every task before it waits for any result"""
    parties = 3
    facts = student.call("run_all_meeting", parties, timeout=CALL)
    results = _result_list(facts["outcome"], "run_all", parties)
    met = [result.get("met") for result in results]
    pids = {result.get("pid") for result in results}
    assert all(met), (
        f"with max_workers={parties}, the {parties} tasks never ran at the same time: each one waited "
        f"{facts['meet_wait']:g} s in vain for the others (they ran in {len(pids)} worker process(es)). "
        "Calling result() right after each submit() waits for that task before the next one is even submitted: "
        "submit every item first, then collect the results; and pass max_workers on"
    )
    assert facts["caller_pid"] not in pids, "func ran in your own process, not in the executor's workers"


@pytest.mark.task(1)
def test_run_all_lets_the_worker_exception_through(student):
    """an exception raised by func in a worker reaches run_all's caller, with its type and message"""
    facts = student.call("run_all_failing", timeout=CALL)
    _expect_worker_error(facts["outcome"], "run_all", "future.result()")


@pytest.mark.task(1)
def test_run_all_shuts_the_executor_down(student):
    """no worker process is left running once run_all has returned"""
    facts = student.call("run_all_then_look_around", [1, 2, 3], 2, timeout=CALL)
    _result_list(facts["outcome"], "run_all", 3)
    assert facts["executors"], "run_all created no ProcessPoolExecutor: use one to run the tasks"
    left = facts["left_running"]
    assert not left, (
        f"{len(left)} worker process(es) were still running after run_all returned: the executor was never shut "
        "down. Use it in a with block, `with ProcessPoolExecutor(max_workers) as executor:`, which waits for the "
        "work and stops the workers when the block ends (or call executor.shutdown())"
    )


# ---------------------------------------------------------------- task 2


@pytest.mark.task(2)
def test_results_come_in_completion_order(student):
    """results_as_completed hands back (item, result) pairs in the order the tasks finish"""
    facts = student.call("completion_order", "results_as_completed", SLEEPS, timeout=CALL)
    pairs = _returned(facts["outcome"], "results_as_completed")
    assert isinstance(pairs, list) and len(pairs) == len(SLEEPS), (
        f"results_as_completed returned {pairs!r}, not a list of {len(SLEEPS)} (item, result) pairs"
    )
    assert all(isinstance(pair, list) and len(pair) == 2 for pair in pairs), (
        f"results_as_completed returned {pairs!r}: each entry must be a pair, (item, result)"
    )
    results = [pair[1] for pair in pairs]
    assert all(isinstance(result, dict) and "item" in result for result in results), (
        f"the second half of each pair must be func's result; got {results!r}"
    )
    order = [result["item"] for result in results]
    assert all(result.get("met") for result in results), "the tasks did not run at the same time: submit them all first"
    assert order == FINISH_ORDER, (
        f"the tasks slept {SLEEPS} s, so they finished in the order {FINISH_ORDER}, but results_as_completed "
        f"handed them back in the order {order}. Iterating over the futures in the order you submitted them "
        "waits for each in turn: loop over concurrent.futures.as_completed(futures) instead"
    )
    items = [pair[0].get("item") if isinstance(pair[0], dict) else pair[0] for pair in pairs]
    assert items == order, (
        f"the pairs put the items {items} beside the results of the items {order}: remember which item each "
        "future belongs to, for example in a dict {future: item}"
    )


@pytest.mark.task(2)
def test_a_failed_item_comes_back_with_its_exception(student):
    """results_as_completed pairs a failed item with its exception, and still hands back the others"""
    facts = student.call("as_completed_failing", timeout=CALL)
    outcome = facts["outcome"]
    if "raised" in outcome:
        pytest.fail(
            f"results_as_completed raised {_raised(outcome)}, so the results of the other items were lost: "
            "ask future.exception() first, and put the exception in the pair instead of calling result()",
            pytrace=False,
        )
    pairs = _returned(outcome, "results_as_completed")
    assert isinstance(pairs, list) and all(isinstance(pair, list) and len(pair) == 2 for pair in pairs), (
        f"results_as_completed returned {pairs!r}, not a list of (item, result) pairs"
    )
    by_item = {pair[0]: pair[1] for pair in pairs if isinstance(pair[0], int)}
    assert sorted(by_item) == [0, 1, 2, 3], (
        f"results_as_completed returned pairs for the items {sorted(by_item)}, expected one for each of [0, 1, 2, 3]"
    )
    assert [by_item[item] for item in (0, 1, 3)] == [0, 10, 30], (
        f"the items 0, 1 and 3 came back with {[by_item[item] for item in (0, 1, 3)]}, expected [0, 10, 30]"
    )
    failed = by_item[2]
    assert isinstance(failed, dict) and "exception" in failed, (
        f"item 2, for which func raised ValueError, came back with {failed!r}: pair it with the exception "
        "itself, future.exception()"
    )
    error = failed["exception"]
    assert error["type"] == "ValueError" and "item 2 is bad" in error["message"], (
        f"item 2 came back with {error['type']}: {error['message']}, not the worker's ValueError('item 2 is bad ...')"
    )


# ---------------------------------------------------------------- task 3


@pytest.mark.task(3)
def test_map_keeps_the_input_order(student):
    """map_in_order returns the results in the order of the items, although they finish in another order"""
    facts = student.call("completion_order", "map_in_order", SLEEPS, timeout=CALL)
    results = _result_list(facts["outcome"], "map_in_order", len(SLEEPS))
    order = [result.get("item") for result in results]
    assert order == list(range(len(SLEEPS))), (
        f"map_in_order returned the results of the items in the order {order}, not the input order "
        f"{list(range(len(SLEEPS)))} (they finished in the order {FINISH_ORDER}): executor.map(func, items) "
        "keeps the input order, as_completed does not"
    )
    assert all(result.get("pid") != facts["caller_pid"] for result in results), (
        "func ran in your own process: Python's built-in map runs it here, executor.map sends it to the workers"
    )
    assert all(result.get("met") for result in results), (
        f"with max_workers={len(SLEEPS)}, the tasks did not run at the same time: pass max_workers on"
    )


@pytest.mark.task(3)
def test_map_lets_the_worker_exception_through(student):
    """an exception raised by func in a worker reaches map_in_order's caller"""
    facts = student.call("map_failing", timeout=CALL)
    _expect_worker_error(facts["outcome"], "map_in_order", "Reading the results of executor.map")


# ---------------------------------------------------------------- task 4


@pytest.mark.task(4)
def test_first_failure_stops_the_waiting_work(student):
    """stop_at_first_failure raises the first failure and cancels the tasks that have not started"""
    later, sleep = 9, 0.3
    facts = student.call("fail_fast", later, sleep, timeout=CALL)
    working = _result_list(facts["working"], "stop_at_first_failure", 3)
    squares = [result.get("square") for result in working]
    assert squares == [0, 1, 4], (
        f"when every task works, stop_at_first_failure(square, [0, 1, 2], 2) must return [0, 1, 4], not {squares}"
    )
    failing = facts["failing"]
    if "silent" in failing:
        pytest.fail(f"stop_at_first_failure had not returned after {failing['silent']:g} s", pytrace=False)
    assert "raised" in failing, (
        f"stop_at_first_failure returned {failing['returned']!r} although item 0 raised ValueError: "
        "raise the failed future's exception"
    )
    error = failing["raised"]
    assert error["type"] == "ValueError" and "item 0 is bad" in error["message"], (
        f"stop_at_first_failure raised {_raised(failing)} instead of the worker's ValueError('item 0 is bad ...')"
    )
    started = facts["started"]
    assert len(started) <= later - 3, (
        f"item 0 failed at once, but {len(started)} of the {later} items after it still ran (one worker, "
        f"{sleep:g} s each). Wait with concurrent.futures.wait(futures, return_when=FIRST_EXCEPTION), then "
        "cancel() the futures that are not done before you raise"
    )


@pytest.mark.task(4)
@pytest.mark.parametrize("how", ["exit", "sigkill"])
def test_a_dead_worker_is_reported_as_a_broken_pool(student, how):
    """a worker that dies in the middle of a task is reported to the caller as BrokenProcessPool, not waited on"""
    facts = student.call("worker_dies", how, timeout=CALL)
    outcome = facts["outcome"]
    death = "called os._exit(3)" if how == "exit" else "was killed by SIGKILL"
    assert "silent" not in outcome, (
        f"a worker {death} in the middle of item 1, and stop_at_first_failure was still waiting "
        f"{outcome.get('silent', 0):g} s later. A ProcessPoolExecutor notices a dead worker and fails every "
        "future with BrokenProcessPool; multiprocessing.Pool does not, and a get() without timeout waits forever"
    )
    assert "raised" in outcome, (
        f"a worker {death} in the middle of item 1, and stop_at_first_failure returned {outcome['returned']!r}: "
        "the crash must reach the caller as the BrokenProcessPool that the future holds; do not hide it"
    )
    assert outcome["raised"]["type"] == BROKEN_POOL, (
        f"a worker {death} in the middle of item 1, and stop_at_first_failure raised {_raised(outcome)} instead "
        "of the BrokenProcessPool that the failed future holds: raise future.exception() as it is"
    )


# ---------------------------------------------------------------- task 5

# Under each start method the tests ask for another one, so that ignoring the context shows.
OTHER_METHOD = {"fork": "spawn", "spawn": "forkserver", "forkserver": "fork"}


def _method_of(worker: dict[str, Any], caller_pid: int) -> str:
    """How a worker was started, from what it saw (see the scenario's docstring)."""
    if worker.get("marker") is not None:
        return "fork"
    return "spawn" if worker.get("os_parent") == caller_pid else "forkserver"


@pytest.mark.task(5)
def test_make_executor_honours_the_context(student):
    """make_executor starts its workers with the multiprocessing context it is given"""
    method = OTHER_METHOD[student.start_method]
    facts = student.call("executor_with_context", method, timeout=CALL)
    assert facts["type"] == "ProcessPoolExecutor", (
        f"make_executor returned a {facts['type']}, not a ProcessPoolExecutor"
    )
    workers = _returned(facts["workers"], "a task on the executor from make_executor")
    worker = workers[0]
    assert worker.get("parent") == facts["caller_pid"], "the executor's worker was not started by the caller"
    seen = _method_of(worker, facts["caller_pid"])
    assert seen == method, (
        f"make_executor(2, multiprocessing.get_context({method!r})) made workers with {seen}, the default here, "
        f"not {method}: pass the context on, ProcessPoolExecutor(max_workers, mp_context=context)"
    )


@pytest.mark.task(5)
def test_make_executor_runs_the_initializer_in_every_worker(student):
    """every worker runs initializer(*initargs) itself, before its first task"""
    facts = student.call("executor_with_initializer", "kata", 4, timeout=CALL)
    assert facts["type"] == "ProcessPoolExecutor", (
        f"make_executor returned a {facts['type']}, not a ProcessPoolExecutor"
    )
    tasks = _returned(facts["tasks"], "a task on the executor from make_executor")
    labels = sorted({str(task.get("label")) for task in tasks})
    assert labels == ["kata"], (
        f"the tasks found {labels} where the initializer stores its argument, not 'kata': pass "
        "initializer=initializer and initargs=initargs to ProcessPoolExecutor, and it runs in each worker"
    )
    assert all(task.get("installed_in") == task.get("pid") for task in tasks), (
        "the initializer ran in your own process, not in the workers (they only inherited what it did): "
        "do not call it yourself, give it to ProcessPoolExecutor(initializer=..., initargs=...)"
    )
