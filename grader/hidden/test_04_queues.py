"""Hidden tests for exercise 4 (queues). Scenarios: grader/sandboxed/scenarios/queues.py.

Every item carries an id, and whatever handles it records the id with its
pid, so each test accounts for every item: missing, duplicated, or handled
in the caller's own process. A graded function that should return but does
not is reported by the scenario after a deadline, together with what the
processes around it were doing, so that a hang reads as the mistake behind
it.
"""

from collections import Counter
from typing import Any

import pytest

EXERCISE = "queues"

# Per-call budgets: a scenario gives a stuck call DEADLINE (8 s) and a correct one takes a second or two.
CALL = 30


def _fail_if_child_raised(facts: dict[str, Any], function: str) -> None:
    """Fail with the error that the graded function raised in a child process, if any."""
    for error in facts.get("errors", []):
        if error["type"] == "NotImplementedError":
            pytest.fail(
                f"{function}() is not written yet: it still raises NotImplementedError in the child process. "
                "Replace the TODO in queues.py with your code.",
                pytrace=False,
            )
        pytest.fail(f"{function}() raised {error['type']}: {error['message']} in the child process", pytrace=False)


def _fail_if_raised(facts: dict[str, Any], function: str) -> None:
    if "raised" in facts:
        error = facts["raised"]
        pytest.fail(f"{function}() raised {error['type']}: {error['message']}", pytrace=False)


def _accounting(ids: list[Any], expected: list[Any]) -> str:
    """'' when ids holds every expected id exactly once; otherwise what is wrong, in words."""
    counts = Counter(map(repr, ids))
    missing = [item for item in expected if counts[repr(item)] == 0]
    duplicated = [item for item in expected if counts[repr(item)] > 1]
    unknown = sorted(set(counts) - {repr(item) for item in expected})
    problems = []
    if missing:
        problems.append(f"{len(missing)} of {len(expected)} items never came back (for example {missing[:5]})")
    if duplicated:
        problems.append(f"{len(duplicated)} items came back more than once (for example {duplicated[:5]})")
    if unknown:
        problems.append(f"results that are no item's came back: {unknown[:5]}")
    return "; ".join(problems)


# --- task 1 ----------------------------------------------------------------------------------------------------------


@pytest.mark.task(1)
def test_consumer_handles_every_item_once_and_stops_at_the_sentinel(student):
    """consume handles every item once, in a child process, and stops at the sentinel"""
    facts = student.call("consume_until_sentinel", 20)
    _fail_if_child_raised(facts, "consume")
    handled = facts["handled"]
    ids = [result.get("id") if isinstance(result, dict) else result for result in handled]
    if "after-the-sentinel" in ids:
        pytest.fail(
            "consume went on after the sentinel and handled the item behind it: stop (return) as soon as you get None",
            pytrace=False,
        )
    problem = _accounting(ids, list(range(20)))
    assert not problem, (
        f"consume was given 20 items and the sentinel: {problem}. Put handle(item) on results once per item"
    )
    assert all(result.get("pid") == facts["consumer_pid"] for result in handled), (
        "the items were not handled in the consumer process: call handle(item) inside consume"
    )
    assert facts["ended"], (
        "consume did not end after taking the sentinel None: it waited for more. Leave the loop when the item is None"
    )
    assert facts["exitcode"] == 0, f"the consumer process ended with exit code {facts['exitcode']} instead of 0"
    assert facts["left_on_queue"] == "after-the-sentinel", (
        "consume took more from the queue than the items and the sentinel: stop at the sentinel"
    )


@pytest.mark.task(1)
def test_consumer_waits_for_items_that_come_late(student):
    """consume waits for the next item while the queue is empty, and stops only at the sentinel"""
    facts = student.call("consume_late_items", 5)
    _fail_if_child_raised(facts, "consume")
    assert not facts["ended_early"], (
        "consume stopped as soon as the queue was empty for a moment, before the sentinel came: an empty queue "
        "does not mean the producer is done. Wait with tasks.get() and stop only at None, not at empty() or Empty"
    )
    ids = [result.get("id") if isinstance(result, dict) else result for result in facts["handled"]]
    problem = _accounting(ids, list(range(5)))
    assert not problem, f"consume was given 5 items, the last 4 after a pause: {problem}"
    assert facts["ended"], "consume did not end after taking the sentinel None"


# --- task 2 ----------------------------------------------------------------------------------------------------------


def _process_all_facts(student, count: int, consumers: int) -> dict[str, Any]:
    facts = student.call("process_all_rendezvous", count, consumers, timeout=CALL)
    _fail_if_raised(facts, "process_all")
    return facts


def _fail_if_stuck(facts: dict[str, Any], consumers: int) -> None:
    if facts["returned"]:
        return
    alive = facts["alive_now"]
    if alive:
        pytest.fail(
            f"process_all did not return within {facts['deadline']:g} s, and {alive} of its {consumers} consumer "
            "processes were still running, waiting on an empty queue. Each consumer stops at the first sentinel it "
            "takes, so one None stops only one of them: put one None per consumer, then join them",
            pytrace=False,
        )
    pytest.fail(
        f"process_all did not return within {facts['deadline']:g} s: take exactly one result per item from the "
        "results queue, then join the consumers",
        pytrace=False,
    )


@pytest.mark.task(2)
def test_process_all_handles_every_item_exactly_once(student):
    """process_all returns one result for every item: none lost, none twice, none in the caller"""
    facts = _process_all_facts(student, 30, 3)
    _fail_if_stuck(facts, 3)
    results = facts["results"]
    assert isinstance(results, list), f"process_all returned a {facts['returned_type']}, not the list of results"
    ids = [result.get("id") if isinstance(result, dict) else result for result in results]
    problem = _accounting(ids, list(range(30)))
    assert not problem, (
        f"process_all was given 30 items: {problem}. Take exactly len(items) results from the results queue"
    )
    assert all(result.get("pid") != facts["caller_pid"] for result in results), (
        "some items were handled in the calling process: the consumers must run consume in processes you start, "
        "do not call consume yourself"
    )


@pytest.mark.task(2)
def test_every_consumer_takes_part_and_stops(student):
    """process_all starts the number of consumers asked, and every one of them stops"""
    facts = _process_all_facts(student, 12, 3)
    _fail_if_stuck(facts, 3)
    results = facts["results"]
    assert isinstance(results, list), f"process_all returned a {facts['returned_type']}, not the list of results"
    pids = {result.get("pid") for result in results if isinstance(result, dict)}
    assert facts["caller_pid"] not in pids, (
        "some items were handled in the calling process: the consumers must run consume in processes you start, "
        "do not call consume yourself"
    )
    assert len(pids) == 3, (
        f"the items were handled by {len(pids)} consumer processes, but 3 were asked for (each consumer held its "
        "first item until the others had one too): start one process per consumer, all before you wait for results"
    )
    assert facts["alive_after"] == 0, (
        f"{facts['alive_after']} consumer processes were still running when process_all returned: put one None per "
        "consumer so that every one of them stops, and join them all before returning"
    )


# --- task 3 ----------------------------------------------------------------------------------------------------------


def _fail_if_collect_stuck(facts: dict[str, Any], big: bool) -> None:
    if facts["returned"]:
        return
    if big and facts["stuck_with_data"]:
        pytest.fail(
            f"collect did not return within {facts['deadline']:g} s: a producer had put all its data (2 MB, more "
            "than a pipe holds) but could not end, because a process that put items on a queue ends only once "
            "they are read, and your code was waiting for it in join(). Take every item off the queue first "
            "(until one None per producer), then join the producers",
            pytrace=False,
        )
    pytest.fail(
        f"collect did not return within {facts['deadline']:g} s: read from the queue until you have one None per "
        "producer, then join the producers",
        pytrace=False,
    )


@pytest.mark.task(3)
def test_collect_takes_every_item_from_every_producer(student):
    """collect reads until one sentinel per producer and returns every item exactly once"""
    producers, count = 3, 5
    facts = student.call("collect_staggered", producers, count, timeout=CALL)
    _fail_if_raised(facts, "collect")
    _fail_if_collect_stuck(facts, big=False)
    items = facts["items"]
    assert isinstance(items, list), f"collect returned a {facts['returned_type']}, not the list of items"
    ids = [(item.get("producer"), item.get("seq")) for item in items]
    expected = [(producer, seq) for producer in range(producers) for seq in range(count)]
    problem = _accounting(ids, expected)
    if problem and ids and all(producer == 0 for producer, _ in ids):
        pytest.fail(
            f"collect returned only the items of the first producer to finish: it stopped at the first None. "
            f"Every producer ends its items with its own None: count them, and stop once you have {producers}",
            pytrace=False,
        )
    assert not problem, f"{producers} producers put {count} items each: {problem}"
    assert all(item.get("pid") != facts["caller_pid"] for item in items), (
        "produce ran in the calling process: start one Process per source with target=produce, "
        "do not call produce yourself"
    )
    assert len({item.get("pid") for item in items}) == producers, "the producers did not run in a process each"


@pytest.mark.task(3)
def test_collect_drains_before_joining(student):
    """collect takes several MB off the queue before it joins the producers, and the data arrive intact"""
    producers, chunks, size = 2, 4, 512 * 1024
    facts = student.call("collect_big", producers, chunks, size, timeout=CALL)
    _fail_if_raised(facts, "collect")
    _fail_if_collect_stuck(facts, big=True)
    items = facts["items"]
    assert isinstance(items, list), f"collect returned a {facts['returned_type']}, not the list of items"
    ids = [(item.get("producer"), item.get("seq")) for item in items]
    problem = _accounting(ids, [(producer, seq) for producer in range(producers) for seq in range(chunks)])
    assert not problem, f"{producers} producers put {chunks} chunks of 512 KiB each: {problem}"
    assert all(item.get("intact") for item in items), "some chunks came back changed: return the items as they came"
    assert all(item.get("pid") != facts["caller_pid"] for item in items), (
        "produce ran in the calling process: start one Process per source with target=produce"
    )
    assert facts["alive_now"] == 0, "some producers were still running after collect returned: join them all"


# --- task 4 ----------------------------------------------------------------------------------------------------------


@pytest.mark.task(4)
def test_queue_join_waits_until_every_item_is_marked_done(student):
    """with work() as the workers, tasks.join() returns once every item is handled, not before"""
    facts = student.call("join_after_work", 3, 2, 0.4, timeout=CALL)
    _fail_if_child_raised(facts, "work")
    count = facts["count"]
    if not facts["returned"]:
        handled = facts["handled_by_deadline"]
        if handled == count:
            pytest.fail(
                f"tasks.join() never returned, although all {count} items had been handled: it waits until "
                "task_done() was called once for every item put. Call tasks.task_done() after each item you get()",
                pytrace=False,
            )
        pytest.fail(
            f"tasks.join() did not return within {facts['deadline']:g} s, and only {handled} of {count} items were "
            "handled: take items with tasks.get() until the sentinel None and handle each one",
            pytrace=False,
        )
    assert facts["handled_at_join"] == count, (
        f"tasks.join() returned when only {facts['handled_at_join']} of {count} items had been handled: "
        "task_done() tells join that an item is finished, so call it after handle(item), not before"
    )
    assert facts["counts"] == [1] * count, (
        f"the items were handled these many times each: {facts['counts']}: handle every item exactly once"
    )
    assert facts["caller_pid"] not in facts["pids"], "items were handled in the calling process"
    assert facts["exitcodes"] == [0] * len(facts["exitcodes"]), (
        f"after one None each, the workers ended with exit codes {facts['exitcodes']} instead of 0 "
        "(None means still running): return from work() at the sentinel, and mark the sentinel done too"
    )


@pytest.mark.task(4)
def test_handle_all_returns_when_every_item_is_done(student):
    """handle_all puts every item and returns only once the workers have marked every item done"""
    facts = student.call("handle_all_waits", 3, 2, 0.4, timeout=CALL)
    _fail_if_raised(facts, "handle_all")
    count = facts["count"]
    assert facts["returned"], (
        f"handle_all did not return within {facts['deadline']:g} s although the workers marked every item done"
    )
    assert facts["counts_later"] == [1] * count, (
        f"the workers handled the items these many times each: {facts['counts_later']}: put every item exactly once"
    )
    assert facts["handled_at_return"] == count, (
        f"handle_all returned when only {facts['handled_at_return']} of {count} items had been handled. An empty "
        "queue only means the items were taken, not finished: wait with tasks.join(), which returns once "
        "task_done() was called for every item"
    )
