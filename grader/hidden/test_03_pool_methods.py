"""Hidden tests for exercise 3 (pool_methods). Scenarios: grader/sandboxed/scenarios/pool_methods.py.

The scenarios hand every graded function a pool whose workers wait on gates
that the scenario opens in a chosen order, so each method's contract (order,
laziness, returning at once, where exceptions and callbacks end up) is seen
structurally, never by speed.
"""

from typing import Any

import pytest

EXERCISE = "pool_methods"

# Generous per-call deadlines: a wrong solution makes a worker wait out its
# gate (a few seconds) once or twice; a correct one returns in about a second.
GATED_CALL = 60


def _raised(outcome: dict[str, Any]) -> str:
    error = outcome["raised"]
    return f"{error['type']}: {error['message']}"


def _items(values: Any) -> Any:
    """The item numbers of a list of task results, or the values themselves when they are not task results."""
    if not isinstance(values, list):
        return values
    return [value.get("item") if isinstance(value, dict) else value for value in values]


def _fail_if_cut_short(facts: dict[str, Any], function: str, expected: int) -> None:
    """Fail when iterating over what function returned did not give every result."""
    stopped = facts["stopped"]
    got = len(facts["values"])
    if stopped is None:
        return
    if stopped["kind"] == "raised":
        error = stopped["error"]
        pytest.fail(
            f"iterating over what {function} returned raised {error['type']}: {error['message']} "
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


def _fail_if_not_lazy(facts: dict[str, Any], function: str, method: str) -> None:
    """Fail when function collected the results before returning, or returned no iterator."""
    returned = facts["returned"]
    assert not any(facts["finished_at_return"]), (
        f"{function} returned only after the work had finished (it took {facts['seconds']:.1f} s, while the "
        f"workers waited until they gave up after {facts['gate_wait']:g} s): it collected the results first. "
        f"Return the iterator of pool.{method}(...) itself: no list(), no loop over it, no pool.map"
    )
    assert returned["is_iterator"], (
        f"{function} returned a {returned['type']}, not an iterator: return what pool.{method}(...) gives you"
    )


# --- task 1 ----------------------------------------------------------------------------------------------------------


@pytest.mark.task(1)
def test_apply_runs_in_a_worker_and_reraises(student):
    """run_one returns the result computed in a worker, and re-raises its exception"""
    facts = student.call("apply_in_a_worker", timeout=30)
    value = facts["value"]
    assert "raised" not in value, f"run_one(pool, func, (3, 4)) raised {_raised(value)} for a function that works"
    result = value["returned"]
    assert isinstance(result, dict) and result.get("sum") == 7, (
        f"run_one(pool, func, (3, 4)) returned {result!r}, not func(3, 4): "
        "return what pool.apply(func, args) gives back"
    )
    assert result.get("pid") != facts["caller_pid"], (
        "func ran in your own process: give it to pool.apply(func, args) instead of calling it yourself"
    )
    failure = facts["failure"]
    assert "raised" in failure, (
        f"run_one returned {failure['returned']!r} although func raised ValueError in the worker: "
        "do not catch it, pool.apply re-raises the worker's exception in your process and it must reach the caller"
    )
    error = failure["raised"]
    assert error["type"] == "ValueError" and "item 2 is bad" in error["message"], (
        f"run_one raised {_raised(failure)} instead of the worker's ValueError('item 2 is bad ...'): let it through"
    )


@pytest.mark.task(1)
def test_starmap_unpacks_pairs_in_order(student):
    """run_pairs unpacks each pair, runs them all at once and keeps their order"""
    facts = student.call("starmap_pairs", timeout=GATED_CALL)
    outcome = facts["outcome"]
    if "raised" in outcome:
        if outcome["raised"]["type"] == "TypeError" and "missing 1 required positional argument" in _raised(outcome):
            pytest.fail(
                f"func got each pair as one single argument ({_raised(outcome)}): use pool.starmap(func, pairs), "
                "which unpacks each tuple into func's arguments; pool.map does not",
                pytrace=False,
            )
        pytest.fail(f"run_pairs raised {_raised(outcome)}", pytrace=False)
    results = outcome["returned"]
    assert isinstance(results, list) and len(results) == 3, (
        f"run_pairs returned {results!r} for 3 pairs, not a list of 3 results"
    )
    assert all(isinstance(result, dict) for result in results), f"run_pairs returned {results!r}, not func's results"
    assert [(result.get("item"), result.get("label")) for result in results] == [(0, "a"), (1, "b"), (2, "c")], (
        f"run_pairs returned the results of {_items(results)} for the pairs (0, 'a'), (1, 'b'), (2, 'c'), which "
        "finished last to first: return the results in the order of the pairs, as pool.starmap does"
    )
    assert all(result.get("pid") != facts["caller_pid"] for result in results), (
        "func ran in your own process: give it to pool.starmap instead of calling it yourself"
    )
    assert all(result.get("next_done_first") for result in results), (
        "the pairs ran one after another, not at the same time: each one waited in vain for the next to finish. "
        "Give all the pairs to pool.starmap(func, pairs) at once"
    )


# --- task 2 ----------------------------------------------------------------------------------------------------------


@pytest.mark.task(2)
def test_submit_returns_before_the_work_is_done(student):
    """submit returns the AsyncResult at once, while the work is still running"""
    facts = student.call("submit_returns_at_once", timeout=GATED_CALL)
    returned = facts["returned"]
    assert not facts["finished_at_return"], (
        f"submit returned only after the work had finished (it took {facts['seconds']:.1f} s): it waited for the "
        "result. Return the AsyncResult of pool.apply_async(...) straight away, without get() or wait()"
    )
    assert returned["is_async_result"], (
        f"submit returned a {returned['type']}, not the AsyncResult that pool.apply_async(...) gives you"
    )
    result = facts["result"]
    assert "returned" in result, f"get() on the AsyncResult that submit returned raised {_raised(result)}"
    value = result["returned"]
    assert isinstance(value, dict) and value.get("item") == 0 and value.get("gate_open") is True, (
        f"the AsyncResult that submit returned gave {value!r}, not the result of func(*args)"
    )


@pytest.mark.task(2)
def test_callback_gets_the_result_in_the_caller(student):
    """on_done is called once, with the result, in the caller's process"""
    facts = student.call("submit_calls_back", timeout=30)
    outcome = facts["submit"]
    assert "raised" not in outcome, f"submit raised {_raised(outcome)} for a function that works"
    assert not facts["error_calls"], (
        "on_error was called for a task that worked: pass callback=on_done and error_callback=on_error"
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
    facts = student.call("submit_reports_errors", timeout=30)
    outcome = facts["submit"]
    assert "raised" not in outcome, (
        f"submit raised {_raised(outcome)} itself, for a task that fails in the worker: it must return at once "
        "(no get() inside) and leave the exception to on_error"
    )
    assert not facts["done_calls"], (
        f"on_done was called with {facts['done_calls'][0]['value']!r} for a task that failed: "
        "pass callback=on_done and error_callback=on_error"
    )
    calls = facts["error_calls"]
    assert calls, (
        "on_error was never called although the task raised: pass it to pool.apply_async as error_callback=on_error"
    )
    assert len(calls) == 1, f"on_error was called {len(calls)} times instead of once"
    call = calls[0]
    assert call["is_exception"], f"on_error got {call.get('value')!r}, not the exception that the worker raised"
    assert call["type"] == "ValueError" and "item 2 is bad" in call["message"], (
        f"on_error got {call['type']}: {call['message']}, not the worker's ValueError('item 2 is bad ...')"
    )
    assert call["pid"] == facts["caller_pid"], "on_error was called in another process than the caller's"


# --- task 3 ----------------------------------------------------------------------------------------------------------


@pytest.mark.task(3)
def test_gather_keeps_order_and_reraises(student):
    """gather returns the results in order, and re-raises a worker's exception"""
    facts = student.call("gather_in_order", timeout=GATED_CALL)
    ordered = facts["ordered"]
    assert "raised" not in ordered, f"gather raised {_raised(ordered)} for a function that works"
    results = ordered["returned"]
    assert _items(results) == [0, 1, 2], (
        f"gather returned {_items(results)!r} for the items [0, 1, 2], which finished last to first: "
        "return the list that map_async(...).get(timeout) gives you, it keeps the input order"
    )
    failing = facts["failing"]
    assert "raised" in failing, (
        f"gather returned {failing['returned']!r} although func raised ValueError for item 2: do not catch it, "
        "get() re-raises the worker's exception in your process and it must reach the caller"
    )
    error = failing["raised"]
    assert error["type"] == "ValueError" and "item 2 is bad" in error["message"], (
        f"gather raised {_raised(failing)} instead of the worker's ValueError('item 2 is bad ...'): let it through"
    )


@pytest.mark.task(3)
def test_gather_gives_up_after_timeout(student):
    """gather raises multiprocessing.TimeoutError when the results are late"""
    timeout = 1.0
    facts = student.call("gather_times_out", timeout, timeout=GATED_CALL)
    outcome = facts["outcome"]
    assert "raised" in outcome, (
        f"gather waited {outcome['seconds']:.1f} s for results that were late, although timeout was {timeout:g} s, "
        f"and returned {_items(outcome['returned'])!r}: call get(timeout) on the AsyncResult of pool.map_async(...)"
    )
    error = outcome["raised"]
    assert error["is_multiprocessing_timeout"], (
        f"gather raised {_raised(outcome)} for late results, not the multiprocessing.TimeoutError "
        "that get(timeout) raises: let that one reach the caller"
    )
    assert not any(facts["finished_at_return"]), (
        f"gather gave up only after {outcome['seconds']:.1f} s, when the work had finished: "
        "let get(timeout) do the waiting, with the timeout you were given"
    )


# --- task 4 ----------------------------------------------------------------------------------------------------------


@pytest.mark.task(4)
def test_lazy_results_returns_at_once(student):
    """lazy_results returns an iterator before any result is ready"""
    facts = student.call("returns_before_the_work", "lazy_results", timeout=GATED_CALL)
    _fail_if_not_lazy(facts, "lazy_results", "imap")
    _fail_if_cut_short(facts, "lazy_results", 3)
    values = facts["values"]
    assert sorted(map(str, _items(values))) == ["0", "1", "2"], f"lazy_results gave {values!r} for the items [0, 1, 2]"


@pytest.mark.task(4)
def test_lazy_results_keeps_input_order(student):
    """lazy_results hands out the results in input order, even when they finish last to first"""
    facts = student.call("ordered_although_finished_last_to_first", timeout=GATED_CALL)
    _fail_if_cut_short(facts, "lazy_results", 4)
    items = _items(facts["values"])
    assert items == [0, 1, 2, 3], (
        f"lazy_results handed out the results in the order {items}, but the input order is [0, 1, 2, 3] "
        f"(they finished in the order {facts['finish_order']}): pool.imap keeps the input order, "
        "pool.imap_unordered does not"
    )


@pytest.mark.task(4)
def test_lazy_results_honours_chunksize(student):
    """lazy_results passes chunksize on: a worker takes that many items at a time"""
    facts = student.call("chunks_stay_together", timeout=GATED_CALL)
    _fail_if_cut_short(facts, "lazy_results", 6)
    values = facts["values"]
    assert all(isinstance(value, dict) for value in values), f"lazy_results gave {values!r}, not func's results"
    pid_of = {value.get("item"): value.get("pid") for value in values}
    size = facts["chunksize"]
    first = {pid_of.get(item) for item in range(size)}
    second = {pid_of.get(item) for item in range(size, 2 * size)}
    workers = [[pid_of.get(item) for item in range(start, start + size)] for start in (0, size)]
    assert len(first) == 1 and len(second) == 1 and first != second, (
        f"with chunksize={size} on 2 workers, items 0 to {size - 1} should run together in one worker and the next "
        f"{size} in the other, but they ran in these worker processes: {workers}. "
        "Pass chunksize on: pool.imap(func, items, chunksize)"
    )


# --- task 5 ----------------------------------------------------------------------------------------------------------


@pytest.mark.task(5)
def test_as_finished_yields_in_completion_order(student):
    """as_finished hands out each result as soon as it is ready, whatever its place"""
    release_order = [2, 0, 3, 1]
    facts = student.call("released_one_at_a_time", release_order, timeout=GATED_CALL)
    assert not any(facts["finished_at_return"]), (
        f"as_finished returned only after the work had finished (it took {facts['seconds']:.1f} s), so nothing "
        "could come out as soon as it was ready. Return the iterator of pool.imap_unordered(...) itself"
    )
    for step in facts["steps"]:
        released, got = step["released"], step["got"]
        if got["kind"] == "raised":
            error = got["error"]
            pytest.fail(
                f"iterating over what as_finished returned raised {error['type']}: {error['message']}", pytrace=False
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
                f"item {released} finished, as_finished handed out {item!r}{late}. pool.imap hands out the results "
                "in input order, waiting for each: use pool.imap_unordered, which hands out whichever is ready",
                pytrace=False,
            )
        assert value.get("gate_open"), f"item {released} came out only after it had given up waiting"


@pytest.mark.task(5)
def test_as_finished_returns_at_once(student):
    """as_finished returns an iterator before any result is ready"""
    facts = student.call("returns_before_the_work", "as_finished", timeout=GATED_CALL)
    _fail_if_not_lazy(facts, "as_finished", "imap_unordered")
    _fail_if_cut_short(facts, "as_finished", 3)
    values = facts["values"]
    assert sorted(map(str, _items(values))) == ["0", "1", "2"], f"as_finished gave {values!r} for the items [0, 1, 2]"
