"""Hidden tests for exercise 3 (pool_methods). Scenarios: grader/sandboxed/scenarios/pool_methods.py.

The scenarios hand every graded function a pool whose workers wait on gates
that the scenario opens in a chosen order, so each method's contract (order,
laziness, returning at once, where exceptions and callbacks end up) is seen
structurally, never by speed. The contract each test holds a solution to:
grader/hidden/contracts/03_pool_methods.toml.
"""

from typing import Any

import pytest

from grader.plugin import cannot_be_pickled

EXERCISE = "pool_methods"

# Generous per-call deadlines: a wrong solution makes a worker wait out its
# gate (a few seconds) once or twice; a correct one returns in about a second.
GATED_CALL = 60
MP_TIMEOUT = "multiprocessing.context.TimeoutError"


def _error(error: dict[str, Any]) -> str:
    where = f" ({error['where']})" if error.get("where") else ""
    return f"{error['type']}: {error['message']}{where}"


def _items(values: Any) -> Any:
    """The item numbers of a list of task results, or the values themselves when they are not task results."""
    if not isinstance(values, list):
        return values
    return [value.get("item") if isinstance(value, dict) else value for value in values]


def _shown(value: Any) -> str:
    """A value a callback got, in words: an exception by its type and message."""
    if isinstance(value, dict) and set(value) == {"exception"}:
        return f"the exception {_error(value['exception'])}"
    return repr(value)


def _is_worker_error(error: dict[str, Any]) -> bool:
    return error["type"] == "ValueError" and "item 2 is bad" in error["message"]


def _fail_if_cut_short(facts: dict[str, Any], function: str, expected: int) -> None:
    """Fail when iterating over what function returned did not give every result, or gave more."""
    stopped = facts["stopped"]
    got = len(facts["values"])
    if stopped is None:
        return
    if stopped["kind"] == "value":
        pytest.fail(
            f"the iterator that {function} returned handed out more than {expected} results for {expected} items",
            pytrace=False,
        )
    if stopped["kind"] == "raised":
        pytest.fail(
            f"iterating over what {function} returned raised {_error(stopped['error'])} "
            f"(after {got} of {expected} results): return the iterator that the pool method gives you",
            pytrace=False,
        )
    if stopped["kind"] == "end":
        pytest.fail(f"the iterator that {function} returned ended after {got} of {expected} results", pytrace=False)
    pytest.fail(
        f"the iterator that {function} returned gave no result for {stopped['seconds']:g} s "
        f"(after {got} of {expected} results), although the work had finished",
        pytrace=False,
    )


def _fail_unless_returned_at_once(student, facts: dict[str, Any], function: str, waits: str, method: str) -> None:
    """Fail when function did not return while the work could not finish (its gates closed), saying what it did."""
    if facts["outcome"] == "hung":
        after = facts["after_release"]
        if after["outcome"] == "hung":  # not even once the work could finish: a hang of its own
            student.returned(after, function)
        pytest.fail(
            f"{function} had not returned after {facts['hold']:g} s while the work could not finish yet, and returned "
            f"once it could: it waits for the work ({waits}). Return {method} at once",
            pytrace=False,
        )
    if facts["outcome"] == "raised":
        pytest.fail(f"{function} raised {_error(facts['error'])}", pytrace=False)


# --- task 1 ----------------------------------------------------------------------------------------------------------


@pytest.mark.task(1)
def test_apply_runs_in_a_worker_and_reraises(student):
    """run_one returns the result computed in a worker, and re-raises its exception"""
    facts = student.call("apply_in_a_worker", timeout=GATED_CALL)
    result = student.returned(facts["value"], "run_one")
    assert isinstance(result, dict) and result.get("sum") == 7, (
        f"run_one(pool, func, (3, 4)) returned {result!r}, not func(3, 4): "
        "return what pool.apply(func, args) gives back"
    )
    assert result.get("pid") != facts["caller_pid"], (
        "func ran in your own process: give it to pool.apply(func, args) instead of calling it yourself"
    )
    failure = facts["failure"]
    if failure["outcome"] == "returned":
        pytest.fail(
            f"run_one returned {failure['value']!r} although func raised ValueError in the worker: do not catch "
            "it, pool.apply re-raises the worker's exception in your process and it must reach the caller",
            pytrace=False,
        )
    if failure["outcome"] == "hung":
        student.returned(failure, "run_one")
    assert _is_worker_error(failure["error"]), (
        f"run_one raised {_error(failure['error'])} instead of the worker's ValueError('item 2 is bad ...'): "
        "let it through as it is"
    )


@pytest.mark.task(1)
def test_starmap_unpacks_pairs_in_order(student):
    """run_pairs unpacks each pair, runs them all at once and keeps their order"""
    facts = student.call("starmap_pairs", timeout=GATED_CALL)
    call = facts["call"]
    if call["outcome"] == "raised":
        error = call["error"]
        if cannot_be_pickled(error):
            pytest.fail(
                f"run_pairs sent the pool a function that a worker cannot get ({_error(error)}): a lambda or a "
                "function defined inside another cannot be sent to a worker. pool.starmap(func, pairs) unpacks "
                "each pair for you",
                pytrace=False,
            )
        if error["type"] == "TypeError" and "missing 1 required positional argument" in error["message"]:
            pytest.fail(
                f"func got each pair as one single argument ({_error(error)}): use pool.starmap(func, pairs), "
                "which unpacks each tuple into func's arguments; pool.map does not",
                pytrace=False,
            )
    results = student.returned(call, "run_pairs")
    assert isinstance(results, list) and len(results) == 3, (
        f"run_pairs returned {results!r} for 3 pairs, not a list of 3 results"
    )
    assert all(isinstance(result, dict) for result in results), f"run_pairs returned {results!r}, not func's results"
    assert all(result.get("pid") != facts["caller_pid"] for result in results), (
        "func ran in your own process: give it to pool.starmap instead of calling it yourself"
    )
    assert all(result.get("next_done_first") for result in results), (
        "the pairs ran one after another, not side by side: each one waited in vain for the next to finish. "
        "Give all the pairs to pool.starmap(func, pairs) at once"
    )
    assert [(result.get("item"), result.get("label")) for result in results] == [(0, "a"), (1, "b"), (2, "c")], (
        f"run_pairs returned the results of {_items(results)} for the pairs (0, 'a'), (1, 'b'), (2, 'c'), which "
        "finished last to first: return the results in the order of the pairs, as pool.starmap does"
    )


@pytest.mark.task(1)
def test_run_pairs_gives_the_docstring_example_equal_pairs_and_no_pairs(student):
    """run_pairs(pool, pow, [(2, 3), (3, 2)]) is [8, 9]; equal pairs each count; no pairs give []"""
    facts = student.call("starmap_example", timeout=GATED_CALL)
    for name, pairs, want in (
        ("example", [(2, 3), (3, 2)], [8, 9]),
        ("equal", [(2, 3), (3, 2), (2, 3), (0, 0)], [8, 9, 8, 1]),
        ("none", [], []),
    ):
        got = student.returned(facts[name], "run_pairs")
        assert got == want, f"run_pairs(pool, pow, {pairs}) returned {got!r}, not {want}"


# --- task 2 ----------------------------------------------------------------------------------------------------------


@pytest.mark.task(2)
def test_submit_returns_before_the_work_is_done(student):
    """submit returns the AsyncResult at once, while the work is still running; the callback comes later"""
    facts = student.call("submit_returns_at_once", timeout=GATED_CALL)
    _fail_unless_returned_at_once(
        student, facts, "submit", "get(), wait() or a callback called by hand", "the AsyncResult of pool.apply_async"
    )
    returned = facts["returned"]
    assert returned["is_async_result"], (
        f"submit returned a {returned['type']}, not the AsyncResult that pool.apply_async(...) gives you"
    )
    seen = facts["seen_at_return"]
    assert not seen["done_calls"] and not seen["error_calls"], (
        "a callback was called before submit returned, while the work could not have finished yet: "
        "let the pool call on_done or on_error when the work is over (callback=, error_callback=)"
    )
    result = facts["result"]
    if result["outcome"] != "returned":
        happened = f"raised {_error(result['error'])}" if result["outcome"] == "raised" else "never returned"
        pytest.fail(f"get() on the AsyncResult that submit returned {happened}", pytrace=False)
    value = result["value"]
    assert isinstance(value, dict) and value.get("item") == 0 and value.get("gate_open") is True, (
        f"the AsyncResult that submit returned gave {value!r}, not the result of func(*args)"
    )
    assert len(facts["done_calls"]) == 1 and not facts["error_calls"], (
        f"once the work was over, on_done was called {len(facts['done_calls'])} time(s) and on_error "
        f"{len(facts['error_calls'])} time(s), instead of on_done once: pass callback=on_done, error_callback=on_error"
    )


@pytest.mark.task(2)
def test_callback_gets_the_result_in_the_caller(student):
    """on_done is called once, with the result, in the caller's process"""
    facts = student.call("submit_calls_back", timeout=GATED_CALL)
    student.returned(facts["submit"], "submit")
    if facts["error_calls"]:
        call = facts["error_calls"][0]
        got = _error(call) if call["is_exception"] else repr(call.get("value"))
        pytest.fail(
            f"on_error was called with {got} for a task that works: pass callback=on_done and "
            "error_callback=on_error, and args as they are",
            pytrace=False,
        )
    calls = facts["done_calls"]
    assert calls, "on_done was never called: pass it to pool.apply_async as callback=on_done"
    assert len(calls) == 1, (
        f"on_done was called {len(calls)} times instead of once: let the pool call it, only the pool"
    )
    value = calls[0]["value"]
    assert isinstance(value, dict) and value.get("sum") == 7, (
        f"on_done got {value!r}, not the result of func(3, 4): "
        "pass it as callback=on_done, and the pool calls it with the result"
    )
    assert value.get("pid") != facts["caller_pid"], "func ran in your own process: give it to pool.apply_async"
    assert calls[0]["pid"] == facts["caller_pid"], "on_done was called in another process than the caller's"


@pytest.mark.task(2)
def test_error_callback_gets_the_exception_in_the_caller(student):
    """on_error gets the worker's exception, in the caller's process; on_done is not called"""
    facts = student.call("submit_reports_errors", timeout=GATED_CALL)
    submit = facts["submit"]
    if submit["outcome"] == "raised":
        pytest.fail(
            f"submit raised {_error(submit['error'])} itself, for a task that fails in the worker: it must return "
            "at once (no get() inside) and leave the exception to on_error",
            pytrace=False,
        )
    student.returned(submit, "submit")
    assert not facts["done_calls"], (
        f"on_done was called with {_shown(facts['done_calls'][0]['value'])} for a task that failed: "
        "pass callback=on_done and error_callback=on_error"
    )
    calls = facts["error_calls"]
    assert calls, (
        "on_error was never called although the task raised: pass it to pool.apply_async as error_callback=on_error"
    )
    assert len(calls) == 1, f"on_error was called {len(calls)} times instead of once"
    call = calls[0]
    assert call["is_exception"], f"on_error got {call.get('value')!r}, not the exception that the worker raised"
    assert _is_worker_error(call), (
        f"on_error got {call['type']}: {call['message']}, not the worker's ValueError('item 2 is bad ...')"
    )
    assert call["pid"] == facts["caller_pid"], "on_error was called in another process than the caller's"


# --- task 3 ----------------------------------------------------------------------------------------------------------


@pytest.mark.task(3)
def test_gather_keeps_order_and_reraises(student):
    """gather returns the results in order, takes a generator, and re-raises a worker's exception"""
    facts = student.call("gather_in_order", timeout=GATED_CALL)
    results = student.returned(facts["ordered"], "gather")
    assert _items(results) == [0, 1, 2], (
        f"gather returned {_items(results)!r} for the items [0, 1, 2], which finished last to first: "
        "return the list that map_async(...).get(timeout) gives you, it keeps the input order"
    )
    generated = facts["generated"]
    if generated["outcome"] == "raised":
        pytest.fail(
            f"gather(pool, abs, items, timeout) raised {_error(generated['error'])} for items given as a "
            "generator: items can be any iterable; hand it to map_async as it is",
            pytrace=False,
        )
    got = student.returned(generated, "gather")
    assert got == [4, 0, 4, 7], f"gather(pool, abs, items, timeout) returned {got!r} for -4, 0, -4, 7, not [4, 0, 4, 7]"
    failing = facts["failing"]
    if failing["outcome"] == "returned":
        pytest.fail(
            f"gather returned {failing['value']!r} although func raised ValueError for item 2: do not catch it, "
            "get() re-raises the worker's exception in your process and it must reach the caller",
            pytrace=False,
        )
    if failing["outcome"] == "hung":
        student.returned(failing, "gather")
    assert _is_worker_error(failing["error"]), (
        f"gather raised {_error(failing['error'])} instead of the worker's ValueError('item 2 is bad ...'): "
        "let it through as it is"
    )


@pytest.mark.task(3)
def test_gather_gives_up_after_timeout(student):
    """gather raises multiprocessing.TimeoutError when the results are late"""
    timeout = 1.0
    facts = student.call("gather_times_out", timeout, timeout=GATED_CALL)
    call = facts["call"]
    if facts["outcome"] == "hung":
        if call["outcome"] == "hung":
            student.returned(call, "gather")
        pytest.fail(
            f"gather(..., timeout={timeout:g}) was still waiting after {facts['hold']:g} s for results that could "
            "not come, and ended only once they could: give the timeout to get(timeout) on the AsyncResult of "
            "pool.map_async(...), and let it raise",
            pytrace=False,
        )
    if call["outcome"] == "returned":
        pytest.fail(
            f"gather(..., timeout={timeout:g}) returned {_items(call['value'])!r} although no result could come in "
            "time: let the multiprocessing.TimeoutError of get(timeout) reach the caller instead",
            pytrace=False,
        )
    error = call["error"]
    assert error["type"] == MP_TIMEOUT, (
        f"gather raised {_error(error)} for late results, not the multiprocessing.TimeoutError "
        "that get(timeout) raises: let that one reach the caller as it is"
    )


@pytest.mark.task(3)
def test_gather_timeout_is_for_all_the_results(student):
    """gather waits at most timeout seconds for all the results together, not timeout seconds for each"""
    facts = student.call("gather_overall_timeout", timeout=GATED_CALL)
    call = facts["call"]
    timeout, first, second = facts["timeout"], facts["first_open"], facts["second_open"]
    if call["outcome"] == "returned" and _items(call["value"]) != [0, 1]:
        pytest.fail(
            f"with timeout={timeout:g}, the second result could come only at {second:g} s, but gather returned "
            f"{call['value']!r} after {call['seconds']:.1f} s instead of raising multiprocessing.TimeoutError: "
            "let the error of get(timeout) reach the caller",
            pytrace=False,
        )
    if call["outcome"] == "returned":
        pytest.fail(
            f"with timeout={timeout:g}, the first result could come at {first:g} s and the second only at {second:g} "
            f"s, but gather returned {_items(call['value'])!r} after {call['seconds']:.1f} s instead of raising: it "
            "waited longer than timeout in all (a timeout for each result, one started again after each, or none "
            "at all). Wait once for all of them: pool.map_async(...).get(timeout)",
            pytrace=False,
        )
    if call["outcome"] == "hung":
        student.returned(call, "gather")
    assert call["error"]["type"] == MP_TIMEOUT, (
        f"gather raised {_error(call['error'])} when the second result was late, not the "
        "multiprocessing.TimeoutError that get(timeout) raises"
    )


# --- task 4 ----------------------------------------------------------------------------------------------------------


def _judge_lazy_values(facts: dict[str, Any], function: str, count: int) -> None:
    _fail_if_cut_short(facts, function, count)
    values = facts["values"]
    want = [str(item) for item in range(count)]
    assert sorted(map(str, _items(values))) == want, f"{function} gave {values!r} for the items {list(range(count))}"


@pytest.mark.task(4)
def test_lazy_results_returns_at_once(student):
    """lazy_results returns an iterator before any result is ready"""
    facts = student.call("returns_before_the_work", "lazy_results", timeout=GATED_CALL)
    _fail_unless_returned_at_once(
        student, facts, "lazy_results", "list(), a loop over the results, or pool.map", "the iterator of pool.imap"
    )
    returned = facts["returned"]
    assert returned["is_iterator"], (
        f"lazy_results returned a {returned['type']}, not an iterator: return what pool.imap(...) gives you"
    )
    _judge_lazy_values(facts, "lazy_results", 3)


@pytest.mark.task(4)
def test_lazy_results_keeps_input_order(student):
    """lazy_results hands out the results in input order, even when they finish last to first"""
    facts = student.call("ordered_although_finished_last_to_first", timeout=GATED_CALL)
    student.returned(facts["call"], "lazy_results")
    _fail_if_cut_short(facts, "lazy_results", 4)
    items = _items(facts["values"])
    assert items == [0, 1, 2, 3], (
        f"lazy_results handed out the results in the order {items}, but the input order is [0, 1, 2, 3] "
        f"(they finished in the order {facts['finish_order']}): pool.imap keeps the input order, "
        "pool.imap_unordered does not"
    )


@pytest.mark.task(4)
def test_lazy_results_hands_out_each_result_once_ready(student):
    """lazy_results hands out a result as soon as it and those before it are ready, not after all of them"""
    facts = student.call("handed_out_when_ready", timeout=GATED_CALL)
    student.returned(facts["call"], "lazy_results")
    for step in facts["steps"]:
        released = step["released"]
        for message in step["got"]:
            if message["kind"] == "raised":
                pytest.fail(
                    f"iterating over what lazy_results returned (for items given as a generator) raised "
                    f"{_error(message['error'])}",
                    pytrace=False,
                )
            assert message["kind"] == "value", (
                f"items {released} had finished, but the iterator that lazy_results returned "
                + ("ended" if message["kind"] == "end" else f"gave nothing for {message.get('seconds', 0):g} s")
            )
        got = [_items([message["value"]])[0] for message in step["got"]]
        assert sorted(got, key=str) == sorted(released, key=str), (
            f"once items {released} had finished, lazy_results handed out {got}"
        )
        waited = [item for item, message in zip(got, step["got"], strict=True) if not message["value"].get("gate_open")]
        if waited and waited[0] != released[0]:
            pytest.fail(
                f"items {released} were allowed to finish in that order, but item {released[0]} could begin only "
                f"after item {waited[0]} had given up waiting ({facts['gate_wait']:g} s): one worker took several "
                "items at a time. Without chunksize, lazy_results must hand the items out one at a time: "
                "chunksize=1 is the default, pass it on as it is",
                pytrace=False,
            )
        assert not waited, f"item {waited[0]} came out only after it had given up waiting for its gate"
        if released == [1, 0] and any({2, 3} & set(message["finished"]) for message in step["got"]):
            pytest.fail(
                f"items 1 and 0 had finished while items 2 and 3 were not allowed to, but lazy_results handed out "
                f"nothing until every item was over (items 2 and 3 gave up waiting after {facts['gate_wait']:g} s): "
                "it collected all the results first. Return the iterator of pool.imap(...) itself (or yield from it)",
                pytrace=False,
            )
        assert got == sorted(released), (
            f"items {released} had finished, in that order, and lazy_results handed out {got}: it must hand them "
            "out in input order (pool.imap), not in the order they finish"
        )


def _worker_of(facts: dict[str, Any], function: str) -> dict[Any, Any]:
    _fail_if_cut_short(facts, function, 6)
    values = facts["values"]
    assert all(isinstance(value, dict) for value in values), f"{function} gave {values!r}, not func's results"
    return {value.get("item"): value.get("pid") for value in values}


@pytest.mark.task(4)
def test_lazy_results_honours_chunksize(student):
    """lazy_results passes chunksize on: a worker takes that many items at a time"""
    facts = student.call("chunks_stay_together", timeout=GATED_CALL)
    student.returned(facts["call"], "lazy_results")
    pid_of = _worker_of(facts, "lazy_results")
    size = facts["chunksize"]
    first = {pid_of.get(item) for item in range(size)}
    second = {pid_of.get(item) for item in range(size, 2 * size)}
    workers = [[pid_of.get(item) for item in range(start, start + size)] for start in (0, size)]
    assert len(first) == 1 and len(second) == 1 and first != second, (
        f"with chunksize={size} on 2 workers, items 0 to {size - 1} should run together in one worker and the next "
        f"{size} in the other, but they ran in these worker processes: {workers}. "
        "Pass chunksize on: pool.imap(func, items, chunksize)"
    )


@pytest.mark.task(4)
def test_lazy_results_takes_one_item_at_a_time_by_default(student):
    """lazy_results without chunksize: a worker takes one item at a time (chunksize=1)"""
    facts = student.call("one_item_at_a_time_by_default", timeout=GATED_CALL)
    student.returned(facts["call"], "lazy_results")
    pid_of = _worker_of(facts, "lazy_results")
    assert pid_of.get(0) != pid_of.get(1), (
        "without chunksize, items 0 and 1 went to the same worker together, while item 0 kept that worker busy: "
        "a worker took more than one item at a time. chunksize=1 is the default: keep it in the def line and "
        "pass it on as it is"
    )


# --- task 5 ----------------------------------------------------------------------------------------------------------


@pytest.mark.task(5)
def test_as_finished_yields_in_completion_order(student):
    """as_finished hands out each result as soon as it is ready, whatever its place"""
    release_order = [2, 0, 3, 1]
    facts = student.call("released_one_at_a_time", release_order, timeout=GATED_CALL)
    _fail_unless_returned_at_once(
        student,
        facts,
        "as_finished",
        "list(), sorted() or a loop over the results",
        "the iterator of pool.imap_unordered",
    )
    for step in facts["steps"]:
        released, got = step["released"], step["got"]
        if got["kind"] == "raised":
            pytest.fail(
                f"iterating over what as_finished returned (for items given as a generator) raised "
                f"{_error(got['error'])}",
                pytrace=False,
            )
        assert got["kind"] != "end", f"the iterator that as_finished returned ended before item {released} came out"
        assert got["kind"] != "silent", (
            f"once item {released} was allowed to finish, the iterator that as_finished returned gave nothing "
            f"for {got['seconds']:g} s"
        )
        value = got["value"]
        item = value.get("item") if isinstance(value, dict) else value
        if item != released:
            late = " only when it gave up waiting" if isinstance(value, dict) and not value.get("gate_open") else ""
            pytest.fail(
                f"the items were allowed to finish one at a time, in the order {release_order}, but right after "
                f"item {released} finished, as_finished handed out {item!r}{late}: the result of item {released} "
                "waited behind another. pool.imap hands out the results in input order, and a chunk of several items "
                "comes out only when all of them are done: use pool.imap_unordered(func, items), which hands out "
                "whichever is ready, one item at a time",
                pytrace=False,
            )
        assert value.get("gate_open"), f"item {released} came out only after it had given up waiting"


@pytest.mark.task(5)
def test_as_finished_returns_at_once(student):
    """as_finished returns an iterator before any result is ready"""
    facts = student.call("returns_before_the_work", "as_finished", timeout=GATED_CALL)
    _fail_unless_returned_at_once(
        student,
        facts,
        "as_finished",
        "list(), sorted() or a loop over the results",
        "the iterator of pool.imap_unordered",
    )
    returned = facts["returned"]
    assert returned["is_iterator"], (
        f"as_finished returned a {returned['type']}, not an iterator: return what pool.imap_unordered(...) gives you"
    )
    _judge_lazy_values(facts, "as_finished", 3)
