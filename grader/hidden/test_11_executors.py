"""Hidden tests for exercise 11 (executors). Scenarios: grader/sandboxed/scenarios/executors.py.

The contract each test holds a solution to: grader/hidden/contracts/11_executors.toml.
Order, simultaneity and shutdown are made certain by the scenarios (items that
wait for each other's results, that meet, whose workers exit slowly), never
inferred from speed.
"""

from typing import Any

import pytest

EXERCISE = "executors"

CALL = 60  # seconds for one scenario: a pool or two, and a wrong solution's waits
BROKEN_POOL = "concurrent.futures.process.BrokenProcessPool"
MACHINE_CPUS = 16  # what os.cpu_count() says in the scenarios


def _error(call: dict[str, Any]) -> str:
    error = call["error"]
    return f"{error['type']}: {error['message']}"


def value_of(student, call: dict[str, Any], function: str) -> Any:
    """The list a graded call returned; the test fails with why when it raised, hung or returned something else."""
    error = call.get("error")
    if (
        call["outcome"] == "raised"
        and error is not None
        and error["type"] == "TypeError"
        and "unhashable" in error["message"]
    ):
        pytest.fail(
            f"{function} raised TypeError: {error['message']} ({error.get('where')}): the items can be anything, "
            "also dicts, which cannot be keys of a dict. Key your dict by future instead: {future: item}",
            pytrace=False,
        )
    value = student.returned(call, function)
    assert call["is_list"], (
        f"{function} returned a {call['type']} ({str(value)[:80]}), not a list: make a list of the results before "
        "you return"
    )
    return value


def results_of(student, facts: dict[str, Any], function: str) -> list[dict[str, Any]]:
    """func's results, checked to be the grader's task's results, computed in other processes."""
    value = value_of(student, facts["call"], function)
    assert len(value) == facts["count"], f"{function} returned {len(value)} results for {facts['count']} items"
    assert all(isinstance(result, dict) and "item" in result for result in value), (
        f"{function} returned {str(value)[:200]}, not what func returned for each item"
    )
    assert all(result["pid"] != facts["caller_pid"] for result in value), (
        f"func ran in your own process: {function} must send it to the executor's workers "
        "(executor.submit(func, item) or executor.map(func, items)), not call it itself"
    )
    return value


def check_met(results: list[dict[str, Any]], facts: dict[str, Any], function: str) -> None:
    pids = {result["pid"] for result in results}
    assert all(result["met"] for result in results), (
        f"with max_workers={facts['max_workers']}, {function}'s tasks did not run at the same time: each waited "
        f"in vain for the others (they ran in {len(pids)} worker process(es)). Submit every item before you ask "
        "for any result, and make the executor of max_workers workers"
    )


def check_size(facts: dict[str, Any], function: str) -> None:
    """Every executor the call made has at most max_workers workers (the machine says it has 16 CPUs)."""
    assert facts["executors"], f"{function} created no ProcessPoolExecutor: use one to run the tasks"
    limit = facts["max_workers"]
    too_big = [size for size in facts["sizes"] if not isinstance(size, int) or size > limit]
    machine = f" (this machine says it has {MACHINE_CPUS} CPUs)" if too_big and too_big[0] == MACHINE_CPUS else ""
    assert not too_big, (
        f"{function}(func, items, max_workers={limit}) made a ProcessPoolExecutor of {too_big[0]} workers{machine}: "
        "pass max_workers on, ProcessPoolExecutor(max_workers=max_workers)"
    )


def check_nothing_left(left: Any, function: str, how: str = "returned") -> None:
    assert not left, (
        f"{len(left)} worker process(es) were still running the moment {function} {how}: its executor was not "
        "shut down, or not waited for. Use it in a with block, which calls shutdown() and waits for the workers "
        "when the block ends, also when an exception leaves it (or call executor.shutdown() in a finally)"
    )


def check_worker_error(student, call: dict[str, Any], function: str, item: int, what: str) -> None:
    """The call must have raised the worker's ValueError for item, as it was."""
    if call["outcome"] == "returned":
        pytest.fail(
            f"{function} returned {str(call['value'])[:120]} although func raised ValueError for item {item} in a "
            f"worker: do not catch it. {what} raises the worker's exception in your process, and it must reach "
            "your caller",
            pytrace=False,
        )
    if call["outcome"] == "hung":
        student.returned(call, function)
    error = call["error"]
    assert error["type"] == "ValueError" and f"item {item} is bad" in error["message"], (
        f"{function} raised {_error(call)} instead of the worker's ValueError('item {item} is bad ...'): "
        "let the worker's exception through as it is, with its type and message"
    )


# ---------------------------------------------------------------- task 1


@pytest.mark.task(1)
def test_run_all_returns_results_in_order_from_workers(student):
    """run_all returns func(item) for every item, in the order of items, although they finish last one first"""
    facts = student.call("in_reverse", "run_all", 3, timeout=CALL)
    results = results_of(student, facts, "run_all")
    check_met(results, facts, "run_all")
    order = [result["item"] for result in results]
    assert order == [0, 1, 2], (
        f"run_all returned the results of the items in the order {order}, while they finished in the order "
        "[2, 1, 0]: return them in the order of items. Keep the futures in a list in the order you submitted "
        "them and call result() on each; as_completed hands them out as they finish"
    )


@pytest.mark.task(1)
def test_run_all_submits_every_item_before_asking_for_a_result(student):
    """run_all submits every item before it asks for any result"""
    facts = student.call("in_pairs", "run_all", 6, 2, timeout=CALL)
    assert facts["executors"], "run_all created no ProcessPoolExecutor: use one to run the tasks"
    asked = facts["submitted_when_asked"]
    assert asked is None or asked >= facts["count"], (
        f"run_all asked for a result when only {asked} of its {facts['count']} items had been submitted: "
        "result() waits for that task before the next one is even submitted, so the workers take turns. "
        "Submit every item first (a list of futures, not a generator), then call result() on each"
    )
    results_of(student, facts, "run_all")


@pytest.mark.task(1)
def test_run_all_uses_max_workers_processes(student):
    """run_all runs the items in an executor of max_workers worker processes, also with more items than workers"""
    facts = student.call("in_pairs", "run_all", 6, 2, timeout=CALL)
    results = results_of(student, facts, "run_all")
    check_size(facts, "run_all")
    pids = {result["pid"] for result in results}
    assert len(pids) <= facts["max_workers"], (
        f"run_all(func, items, max_workers=2) ran its 6 items in {len(pids)} worker processes: make one executor "
        "of max_workers workers for all the items"
    )
    assert all(result["met"] for result in results), (
        "with max_workers=2, run_all's tasks did not run two at a time: pass max_workers on and submit every item "
        "before you ask for a result"
    )


@pytest.mark.task(1)
def test_run_all_lets_the_worker_exception_through(student):
    """an exception raised by func in a worker reaches run_all's caller as it is"""
    facts = student.call("over_plain_items", "run_all", [0, 1, 2, 3], 2, timeout=CALL)
    check_worker_error(student, facts["call"], "run_all", 2, "future.result()")


@pytest.mark.task(1)
def test_run_all_shuts_the_executor_down(student):
    """no worker process is left running once run_all has returned, or raised"""
    facts = student.call("shutting_down", "run_all", timeout=CALL)
    assert facts["executors"], "run_all created no ProcessPoolExecutor: use one to run the tasks"
    value_of(student, facts["returning"], "run_all")
    check_nothing_left(facts["returning"]["after"], "run_all")
    raising = facts["raising"]
    if raising["outcome"] == "raised":
        check_nothing_left(raising["after"], "run_all", "raised the worker's exception")


@pytest.mark.task(1)
def test_run_all_takes_any_iterable_and_keeps_nothing_between_calls(student):
    """run_all takes a generator or an empty list, and a second call is like the first"""
    calls = student.call("run_all_any_iterable", timeout=CALL)
    for name, said, hint in (
        ("generator", "run_all(times_ten, a generator of [1, 0, 3], 2)",
         "items can be any iterable: a generator has no len() and can be gone through only once"),
        ("empty", "run_all(times_ten, [], 2)", "no items means no results: []"),
        ("again", "a second run_all(times_ten, [1, 0, 3], 2) in the same process",
         "make a new executor in each call: one kept from an earlier call was shut down at its end"),
    ):  # fmt: skip
        call = calls[name]
        if call["outcome"] == "raised":
            error = call["error"]
            where = f" ({error['where']})" if error.get("where") else ""
            pytest.fail(f"{said} raised {_error(call)}{where}: {hint}", pytrace=False)
    # These tasks end in no particular order: the order of the results is the order test's to judge.
    expected = sorted(map(repr, [10, 0, 30]))
    from_generator = value_of(student, calls["generator"], "run_all")
    assert sorted(map(repr, from_generator)) == expected, (
        f"run_all(times_ten, a generator of [1, 0, 3], 2) returned {from_generator}, not [10, 0, 30]: items can be "
        "any iterable, and a generator can be gone through only once"
    )
    empty = value_of(student, calls["empty"], "run_all")
    assert empty == [], f"run_all(times_ten, [], 2) returned {empty}, not []"
    again = value_of(student, calls["again"], "run_all")
    assert sorted(map(repr, again)) == expected, (
        f"a second run_all(times_ten, [1, 0, 3], 2) in the same process returned {again}, not [10, 0, 30]: "
        "make a new executor in each call, and keep nothing from one call to the next"
    )


# ---------------------------------------------------------------- task 2


@pytest.mark.task(2)
def test_results_come_in_completion_order(student):
    """results_as_completed hands back (item, result) pairs in the order the tasks finish"""
    facts = student.call("taken_in_reverse", "results_as_completed", 3, timeout=CALL)
    pairs = value_of(student, facts["call"], "results_as_completed")
    assert len(pairs) == 3 and all(isinstance(pair, list) and len(pair) == 2 for pair in pairs), (
        f"results_as_completed returned {str(pairs)[:200]}, not a list of 3 (item, result) pairs"
    )
    results = [pair[1] for pair in pairs]
    assert all(isinstance(result, dict) and "item" in result for result in results), (
        f"the second half of each pair must be func's result; got {str(results)[:200]}"
    )
    assert all(result["pid"] != facts["caller_pid"] for result in results), (
        "func ran in your own process: results_as_completed must submit it to the executor"
    )
    check_met(results, facts, "results_as_completed")
    check_size(facts, "results_as_completed")
    order = [result["item"] for result in results]
    assert order == [2, 1, 0], (
        f"the tasks finished in the order [2, 1, 0], but results_as_completed handed them back in the order "
        f"{order}. Waiting for the futures in the order you submitted them waits for each in turn: loop over "
        "concurrent.futures.as_completed(futures) instead"
    )
    items = [pair[0].get("item") if isinstance(pair[0], dict) else pair[0] for pair in pairs]
    assert items == order, (
        f"the pairs put the items {items} beside the results of the items {order}: pair each result with the "
        "item it was computed for, for example with a dict {future: item}"
    )
    check_nothing_left(facts["call"]["after"], "results_as_completed")


@pytest.mark.task(2)
def test_a_failed_item_comes_back_with_its_exception(student):
    """results_as_completed pairs a failed item with its exception, and still hands back every other item"""
    facts = student.call("failure_arrives_first", timeout=CALL)
    call = facts["call"]
    if call["outcome"] == "raised" and "item 2 is bad" in call["error"]["message"]:
        pytest.fail(
            f"results_as_completed raised {_error(call)}, so the results of the other items were lost: ask "
            "future.exception() first, and put the exception in the pair instead of calling result()",
            pytrace=False,
        )
    pairs = value_of(student, call, "results_as_completed")
    shown = str(pairs)[:300]
    assert all(isinstance(pair, list) and len(pair) == 2 for pair in pairs), (
        f"results_as_completed returned {shown}, not a list of (item, result) pairs"
    )
    items = facts["items"]  # item 2 fails at once; every other item ends only after that failure
    assert sorted(map(repr, (pair[0] for pair in pairs))) == sorted(map(repr, items)), (
        f"results_as_completed over a generator of {items!r} (2 fails, the others end after it) returned pairs "
        f"for the items {[pair[0] for pair in pairs]!r}: every item comes back once, also an item equal to "
        "another, also after a failure. Pair each future with its item in a dict {future: item}"
    )
    failed = pairs[0]
    assert failed[0] == 2, (
        f"item 2 failed first and every other item ended after it, but the first pair is {failed!r}: hand the "
        "pairs back in the order the tasks finish, failed ones included"
    )
    error = failed[1]
    assert isinstance(error, dict) and "exception" in error, (
        f"item 2, for which func raised ValueError, came back as {failed!r}: pair it with the exception object "
        "itself, future.exception(), not a text or None"
    )
    assert error["exception"]["type"] == "ValueError" and "item 2 is bad" in error["exception"]["message"], (
        f"item 2 came back with {error['exception']['type']}: {error['exception']['message']}, not the worker's "
        "ValueError('item 2 is bad ...')"
    )
    expected = {3: 30, 0: 0, "": ""}
    wrong = [pair for pair in pairs[1:] if pair[0] not in expected or pair[1] != expected[pair[0]]]
    assert not wrong, (
        f"results_as_completed paired {wrong!r}; func(3) is 30, func(0) is 0 and func('') is '': pair each item "
        "with its own result, also when the result is 0 or empty"
    )
    check_nothing_left(call["after"], "results_as_completed")


# ---------------------------------------------------------------- task 3


@pytest.mark.task(3)
def test_map_keeps_the_input_order(student):
    """map_in_order returns the results in the order of the items, although they finish last one first"""
    facts = student.call("in_reverse", "map_in_order", 3, timeout=CALL)
    results = results_of(student, facts, "map_in_order")
    check_met(results, facts, "map_in_order")
    check_size(facts, "map_in_order")
    order = [result["item"] for result in results]
    assert order == [0, 1, 2], (
        f"map_in_order returned the results of the items in the order {order}, not the input order [0, 1, 2] "
        "(they finished in the order [2, 1, 0]): executor.map(func, items) keeps the input order, as_completed "
        "does not"
    )
    check_nothing_left(facts["call"]["after"], "map_in_order")


@pytest.mark.task(3)
def test_map_lets_the_worker_exception_through(student):
    """an exception raised by func in a worker reaches map_in_order's caller as it is"""
    facts = student.call("over_plain_items", "map_in_order", [0, 1, 2, 3], 2, timeout=CALL)
    check_worker_error(student, facts["call"], "map_in_order", 2, "Reading the results of executor.map")
    check_nothing_left(facts["call"]["after"], "map_in_order", "raised the worker's exception")


# ---------------------------------------------------------------- task 4


@pytest.mark.task(4)
def test_stop_at_first_failure_returns_every_result_in_order(student):
    """when every task works, stop_at_first_failure returns the results in the order of items"""
    facts = student.call("in_reverse", "stop_at_first_failure", 3, timeout=CALL)
    results = results_of(student, facts, "stop_at_first_failure")
    check_met(results, facts, "stop_at_first_failure")
    check_size(facts, "stop_at_first_failure")
    order = [result["item"] for result in results]
    assert order == [0, 1, 2], (
        f"when every task works, stop_at_first_failure must return the results in the order of items, [0, 1, 2]; "
        f"it returned them in the order {order}, the order they finished in"
    )
    check_nothing_left(facts["call"]["after"], "stop_at_first_failure")


@pytest.mark.task(4)
def test_first_failure_cancels_the_waiting_work(student):
    """as soon as one task fails, stop_at_first_failure cancels the tasks not yet started and raises that failure"""
    facts = student.call("fail_fast", 10, 2, timeout=CALL)
    call = facts["call"]
    if call["outcome"] != "raised":
        check_worker_error(student, call, "stop_at_first_failure", 1, "future.exception()")
    started, later, workers = facts["started_later"], facts["later"], facts["max_workers"]
    assert facts["cancelled_in_time"], (
        f"item 1 failed at once while item 0 was still running, and {facts['give_up']:g} s later tasks were still "
        f"waiting to start; in the end {len(started)} of the {later} items after them ran. As soon as one task "
        "has failed, cancel() the futures that are not done: wait with concurrent.futures.wait(futures, "
        "return_when=FIRST_EXCEPTION) (or as_completed), not for each future in turn, and not for all of them"
    )
    if "item 0 is bad" in call["error"]["message"]:
        pytest.fail(
            "stop_at_first_failure raised item 0's ValueError, which came only after item 1 had failed (item 0 "
            "was still running then): raise the exception of the task that failed first, the one "
            "concurrent.futures.wait(..., return_when=FIRST_EXCEPTION) or as_completed handed you, not the "
            "first failure in the order of items",
            pytrace=False,
        )
    check_worker_error(student, call, "stop_at_first_failure", 1, "future.exception()")
    # The executor hands up to max_workers + 1 tasks to its workers ahead of time: those have started.
    assert len(started) <= workers + 3, (
        f"{len(started)} of the {later} items after the failed one still ran (max_workers={workers}): "
        "cancel() every future that is not done before you raise"
    )
    check_nothing_left(call["after"], "stop_at_first_failure", "raised")


@pytest.mark.task(4)
@pytest.mark.parametrize("how", ["exit", "sigkill"])
def test_a_dead_worker_is_reported_as_a_broken_pool(student, how):
    """a worker that dies in the middle of a task is reported to the caller as BrokenProcessPool, not waited on"""
    facts = student.call("worker_dies", how, timeout=CALL)
    call = facts["call"]
    death = "called os._exit(3)" if how == "exit" else "was killed by SIGKILL"
    assert call["outcome"] != "hung", (
        f"a worker {death} in the middle of item 1, and stop_at_first_failure was still waiting "
        f"{call['deadline']:g} s later. A ProcessPoolExecutor notices a dead worker and fails every unfinished "
        "future with BrokenProcessPool; multiprocessing.Pool does not, and a get() without timeout waits forever"
    )
    assert call["outcome"] == "raised", (
        f"a worker {death} in the middle of item 1, and stop_at_first_failure returned {str(call['value'])[:120]}: "
        "the crash must reach the caller as the BrokenProcessPool that the future holds; do not hide it"
    )
    assert call["error"]["type"] == BROKEN_POOL, (
        f"a worker {death} in the middle of item 1, and stop_at_first_failure raised {_error(call)} instead "
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


def made(facts: dict[str, Any], call: str) -> None:
    assert facts["made"]["is_executor"], f"{call} returned a {facts['made']['type']}, not a ProcessPoolExecutor"


def ran(student, run: dict[str, Any], call: str) -> list[dict[str, Any]]:
    """The results of tasks the scenario ran on an executor from make_executor."""
    if run["outcome"] == "raised" and "after shutdown" in run["error"]["message"]:
        pytest.fail(
            f"the executor that {call} returned refused work ({_error(run)}): it was already shut down. Return it "
            "without a with block, which shuts it down when it ends: the caller shuts it down when done",
            pytrace=False,
        )
    if run["outcome"] == "raised" and run["error"]["type"] == BROKEN_POOL:
        pytest.fail(
            f"the tasks on the executor from {call} failed with {_error(run)}: its workers died before they could "
            "run them. Did the initializer fail in them? Give ProcessPoolExecutor initializer=initializer and "
            "initargs=initargs as they are: each worker calls initializer(*initargs)",
            pytrace=False,
        )
    return student.returned(run, f"a task on the executor from {call}")


@pytest.mark.task(5)
def test_make_executor_honours_the_context(student):
    """make_executor starts its workers with the multiprocessing context it is given"""
    method = OTHER_METHOD[student.start_method]
    call = f"make_executor(2, context=multiprocessing.get_context({method!r}))"
    facts = student.call("executor_with_context", method, timeout=CALL)
    made(facts, call)
    worker = ran(student, facts["workers"], call)[0]
    assert worker["parent"] == facts["caller_pid"], "the executor's worker was not started by the caller"
    seen = _method_of(worker, facts["caller_pid"])
    assert seen == method, (
        f"{call} made workers with {seen}, the default here, not {method}: pass the context on, "
        "ProcessPoolExecutor(max_workers, mp_context=context)"
    )


@pytest.mark.task(5)
def test_make_executor_runs_the_initializer_in_every_worker(student):
    """every worker calls initializer(*initargs) itself, once, before its first task"""
    call = "make_executor(2, initializer=setup, initargs=('kata', 7))"
    facts = student.call("executor_with_initializer", ["kata", 7], 4, timeout=CALL)
    made(facts, call)
    tasks = ran(student, facts["tasks"], call)
    found = [task["args"] for task in tasks]
    assert all(args == ["kata", 7] for args in found), (
        f"in the workers of {call}, the tasks found that setup had been called with "
        f"{[tuple(a) if isinstance(a, list) else a for a in found]}, not ('kata', 7) each time: pass "
        "initializer=initializer and initargs=initargs to ProcessPoolExecutor as they are"
    )
    assert all(task["installed_in"] == task["pid"] for task in tasks) and not facts["ran_in_caller"], (
        f"{call} called setup in your own process, not in the workers (they only inherited what it did): do not "
        "call it yourself, give it to ProcessPoolExecutor(initializer=..., initargs=...)"
    )
    assert all(task["calls"] == 1 for task in tasks), (
        f"setup ran {sorted({task['calls'] for task in tasks})} times in a worker, not once before its first task"
    )


@pytest.mark.task(5)
def test_make_executor_returns_a_new_unused_executor_of_max_workers(student):
    """make_executor returns a new executor of max_workers workers, unused and not shut down"""
    facts = student.call("executor_fresh", 2, timeout=CALL)
    call = "make_executor(2)"
    made({"made": facts["first"]}, call)
    first = facts["first"]
    assert not first["submitted"] and not first["workers_started"], (
        f"{call} gave its executor work before returning it ({first['submitted']} task(s) submitted, "
        f"{first['workers_started']} worker(s) started): return it unused; the caller gives it its work"
    )
    machine = (
        f" (this machine says it has {facts['machine_cpus']} CPUs)" if first["size"] == facts["machine_cpus"] else ""
    )
    assert first["size"] == 2, (
        f"{call} returned an executor of {first['size']} workers{machine}"
        ": pass max_workers on, ProcessPoolExecutor(max_workers=max_workers, ...)"
    )
    assert not facts["same_object"], (
        f"two calls of {call} returned the same executor: make a new ProcessPoolExecutor in each call, so that "
        "each caller can shut its own down"
    )
    pids = {task["pid"] for task in ran(student, facts["first_runs"], call)}
    assert len(pids) <= 2, f"the executor from {call} ran 4 tasks in {len(pids)} worker processes, not at most 2"
    ran(student, facts["second_runs"], "a second " + call)


@pytest.mark.task(5)
def test_make_executor_defaults(student):
    """make_executor(max_workers) alone: the default context, whichever it is, and no initializer"""
    call = "make_executor(2)"
    methods = [student.start_method, OTHER_METHOD[student.start_method]]
    facts = student.call("executor_defaults", methods, timeout=CALL)
    for run in facts["runs"]:
        made(run, call)
        worker = ran(student, run["workers"], call)[0]
        seen = _method_of(worker, facts["caller_pid"])
        assert seen == run["default_method"], (
            f"{call} made workers with {seen} while the default start method was {run['default_method']}: "
            "context=None means the default context, whichever it is, so pass it on as it is (mp_context=None)"
        )
        assert worker["args"] is None, f"{call} ran an initializer in its workers although none was given"
