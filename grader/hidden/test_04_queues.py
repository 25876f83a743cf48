"""Hidden tests for exercise 4 (queues). Scenarios: grader/sandboxed/scenarios/queues.py.

The contract each test holds a solution to: grader/hidden/contracts/04_queues.toml.

Every item carries an identity, and whatever handles it records the item with
its pid, so each test accounts for every item: missing, duplicated, or
handled in the caller's own process. A graded function that should return but
does not is reported by the scenario with what the processes around it were
doing, so that a hang reads as the mistake behind it.
"""

from collections import Counter
from typing import Any

import pytest

EXERCISE = "queues"

# Per-call budget: a stuck graded call costs a scenario DEADLINE (8 s) and a little more; a correct one 1 to 4 s.
CALL = 40

RAN_IN_CALLER = (
    "some items were handled in the calling process: start the consumers as processes running consume, "
    "do not call consume yourself"
)


def _accounting(ids: list[Any], expected: list[Any]) -> str:
    """'' when ids holds every expected item exactly as often as expected does; otherwise what is wrong, in words."""
    got, want = Counter(map(repr, ids)), Counter(map(repr, expected))
    missing, extra = want - got, got - want
    problems = []
    if missing:
        problems.append(
            f"{sum(missing.values())} of the {len(expected)} items never came back (for example "
            f"{', '.join(sorted(missing)[:5])})"
        )
    twice = sorted(key for key in extra if key in want)
    if twice:
        problems.append(f"some items came back more often than they were given (for example {', '.join(twice[:5])})")
    unknown = sorted(key for key in extra if key not in want)
    if unknown:
        problems.append(f"results that are no item's came back: {', '.join(unknown[:5])}")
    return "; ".join(problems)


def _falsy_stop(handled: list[Any], given: list[Any]) -> Any:
    """The falsy item a consumer stopped at, when what it handled is exactly the items before it; else None."""
    k = len(handled)
    if k < len(given) and not given[k] and list(map(repr, handled)) == list(map(repr, given[:k])):
        return given[k]
    return None


def _odd(events: list[dict[str, Any]]) -> list[Any]:
    return [event["odd"] for event in events if "odd" in event]


# --- task 1 ----------------------------------------------------------------------------------------------------------


@pytest.mark.task(1)
def test_consumer_handles_every_item_once_and_stops_at_the_sentinel(student):
    """consume handles every item once (0, "" and [] too) in its process, and returns at the sentinel"""
    facts = student.call("consume_until_sentinel", timeout=CALL)
    student.fail_on_child_errors(facts["errors"])
    events, round_one, round_two = facts["events"], facts["round_one"], facts["round_two"]
    odd = _odd(events)
    assert not odd, (
        f"consume put {odd[0]!r} on results, which is not what handle(item) returned: put handle(item) itself, "
        "nothing more and nothing less"
    )
    markers = [index for index, event in enumerate(events) if "returned" in event]
    first = [event["id"] for event in (events[: markers[0]] if markers else events) if "id" in event]
    if markers:
        falsy = _falsy_stop(first, round_one)
        if falsy is not None:
            pytest.fail(
                f"consume returned after handling {len(first)} items, at the item {falsy!r}, before the sentinel None "
                f"came ({round_one!r} were given, then None). {falsy!r} is falsy, but it is an item: stop only "
                "when `item is None`, not when `not item`",
                pytrace=False,
            )
    handled = [event["id"] for event in events if "id" in event]
    if "after-the-sentinel" in handled:
        pytest.fail(
            "consume went on after the sentinels and handled the item put behind them: return as soon as you take None",
            pytrace=False,
        )
    assert markers, (
        f"consume did not return when it took the sentinel None (it handled {len(handled)} items, then went on "
        "waiting): leave the loop and return when the item is None"
    )
    problem = _accounting(first, round_one)
    assert not problem, (
        f"consume was given {len(round_one)} items and then None: {problem}. Put handle(item) on results once "
        "per item, and return at the sentinel, not before"
    )
    assert all(event.get("pid") == facts["consumer_pid"] for event in events if "id" in event), (
        "the items were not handled in the consumer process: call handle(item) inside consume"
    )
    second = [
        event["id"] for event in events[markers[0] + 1 : markers[1] if len(markers) > 1 else None] if "id" in event
    ]
    assert len(markers) > 1, (
        f"a second call of consume in the same process, given {round_two!r} and then None, did not return "
        f"(it handled {second!r})"
    )
    problem = _accounting(second, round_two)
    assert not problem, (
        f"a second call of consume in the same process was given {round_two!r} and then None: {problem}. "
        "Keep nothing from one call to the next"
    )
    assert facts["ended"], "the consumer process did not end after consume had returned twice"
    assert facts["exitcode"] == 0, f"the consumer process ended with exit code {facts['exitcode']} instead of 0"
    assert facts["left_on_queue"] == "after-the-sentinel", (
        f"consume took more from the queue than the items and the sentinel: the item behind the sentinels was "
        f"{'gone' if facts['left_on_queue'] == 'nothing' else facts['left_on_queue']!r}. Stop at the sentinel"
    )


@pytest.mark.task(1)
def test_consumer_waits_for_items_that_come_late(student):
    """consume waits for the next item while the queue is empty, and stops only at the sentinel"""
    facts = student.call("consume_late_items", timeout=CALL)
    student.fail_on_child_errors(facts["errors"])
    odd = _odd(facts["events"])
    assert not odd, (
        f"consume put {odd[0]!r} on results, which is not what handle(item) returned: put handle(item) itself, "
        "nothing more and nothing less"
    )
    handled = [event["id"] for event in facts["events"] if "id" in event]
    if facts["ended_early"]:
        pytest.fail(
            f"the consumer process ended (exit code {facts['exitcode']}) while the queue was empty for a while: "
            f"after its first item nothing came for {facts['late']:g} s, and it did not wait for the items and the "
            "sentinel that came then. An empty queue does not mean that the producer is done: wait with "
            "tasks.get() (without a timeout) and stop only at None, not at empty() or queue.Empty",
            pytrace=False,
        )
    expected = ["first", "late-1", "late-2", "late-3"]
    problem = _accounting(handled, expected)
    assert not problem, f"consume was given 4 items, the last 3 after a pause: {problem}"
    assert facts["ended"], "consume did not return after taking the sentinel None"
    assert facts["exitcode"] == 0, f"the consumer process ended with exit code {facts['exitcode']} instead of 0"


# --- task 2 ----------------------------------------------------------------------------------------------------------


def _process_all_returned(student, call: dict[str, Any]) -> None:
    """Fail with what the processes were doing when process_all did not return; pass a call that returned."""
    if call["outcome"] != "hung":
        student.returned(call, "process_all")
        return
    deadline, started, count = call["deadline"], call["started"], call["count"]
    still = call["still_in_consume"]
    if call["arrived"] >= count and still > 0:
        pytest.fail(
            f"process_all did not return within {deadline:g} s: every result had come back, but {still} of its "
            f"{started} consumer processes {'was' if still == 1 else 'were'} still in consume, waiting on an empty "
            "queue. Each consumer stops at the first None it takes, so one None stops only one of them: put one None "
            "per consumer",
            pytrace=False,
        )
    if call["left_consume"] and call["arrived"] < count and call["running_now"]:
        pytest.fail(
            f"process_all did not return within {deadline:g} s: its consumers had left consume, but could not end, "
            f"because the results they had put were not read (process_all had taken {call['arrived']} of {count}; "
            "a pipe holds only 64 KiB, and these results are larger). A process that put items on a queue ends "
            "only once they are read: take one result per item first, then join the consumers",
            pytrace=False,
        )
    if started and call["running_now"] and not call["at_rendezvous"] and not call["arrived"]:
        pytest.fail(
            f"process_all did not return within {deadline:g} s: its {started} consumer processes were running, "
            "but none of them ever took an item. Give each consumer the queue you put the items on, as an argument "
            "of Process (under spawn and forkserver a child does not share your module's objects)",
            pytrace=False,
        )
    student.returned(call, "process_all")


def _results(call: dict[str, Any]) -> list[dict[str, Any]]:
    results = call["results"]
    assert isinstance(results, list), f"process_all returned a {call['returned_type']}, not the list of results"
    odd = _odd(results)
    assert not odd, f"process_all returned {odd[0]!r} among the results: return what handle returned, as it is"
    return results


@pytest.mark.task(2)
def test_process_all_returns_one_result_per_item(student):
    """process_all returns one result per item, for a generator with repeats, a second call and no items"""
    facts = student.call("process_all_every_item", timeout=CALL)
    labels = [
        "a generator of 23 items (3 and 7 among them twice)",
        "a second call in the same process, with 10 items",
        "a third call, with no items",
    ]
    for call, label in zip(facts["calls"], labels, strict=False):
        items = call["numbers"]
        _process_all_returned(student, call)
        results = _results(call)
        assert all(result["pid"] != facts["caller_pid"] for result in results), RAN_IN_CALLER
        ids = [result["id"] for result in results]
        if call["generator"] and items and not ids:
            pytest.fail(
                f"process_all returned no results for {label}: a generator can be gone through only once. If you go "
                "through items twice (to put them, then to count the results), make a list of them first",
                pytrace=False,
            )
        problem = _accounting(ids, items)
        assert not problem, f"process_all was given {label}: {problem}. Take exactly one result per item"


@pytest.mark.task(2)
def test_process_all_starts_exactly_the_consumers_asked(student):
    """process_all starts exactly `consumers` processes, whatever the number of CPUs, and all take part"""
    facts = student.call("process_all_consumer_count", timeout=CALL)
    for call in facts["calls"]:
        _process_all_returned(student, call)
        results = _results(call)
        consumers, started, cpus = call["consumers"], call["started"], call["cpus"]
        assert all(result["pid"] != facts["caller_pid"] for result in results), RAN_IN_CALLER
        assert started == consumers, (
            f"process_all started {started} process{'es' if started != 1 else ''} when asked for {consumers} "
            f"consumers (os.cpu_count() said {cpus}): start exactly `consumers` consumer processes, one per "
            "consumer asked for"
        )
        pids = {result["pid"] for result in results}
        assert len(pids) == consumers, (
            f"only {len(pids)} of the {consumers} consumer processes handled an item, although each consumer held "
            "its first item until the others had one too: start every consumer before you wait for results"
        )
        problem = _accounting([result["id"] for result in results], call["numbers"])
        assert not problem, f"process_all was given {call['count']} items: {problem}"


@pytest.mark.task(2)
def test_every_consumer_has_ended_when_process_all_returns(student):
    """process_all returns only once every consumer process has ended"""
    facts = student.call("process_all_waits", timeout=CALL)
    if facts["outcome"] == "returned" and facts["running_at_return"]:
        pytest.fail(
            f"process_all returned while {facts['running_at_return']} of its {facts['started']} consumer processes "
            "were still running: they had left consume after their sentinel, and the grader kept them from ending "
            "until process_all returned. join() every consumer before you return",
            pytrace=False,
        )
    _process_all_returned(student, facts)
    problem = _accounting([result["id"] for result in _results(facts)], list(range(9)))
    assert not problem, f"process_all was given 9 items: {problem}"
    assert facts["running_at_return"] == 0, (
        f"{facts['running_at_return']} consumer processes were still running when process_all returned: "
        "join every one of them before returning"
    )


@pytest.mark.task(2)
def test_process_all_reads_results_before_joining(student):
    """process_all takes results larger than a pipe holds before it joins the consumers, and returns them intact"""
    facts = student.call("process_all_big", timeout=CALL)
    _process_all_returned(student, facts)
    results = _results(facts)
    problem = _accounting([result["id"] for result in results], list(range(12)))
    assert not problem, f"process_all was given 12 items whose results are {facts['size'] // 1024} KB each: {problem}"
    assert all(result["intact"] for result in results), "some results came back changed: return them as they came"


# --- task 3 ----------------------------------------------------------------------------------------------------------


def _collect_returned(student, facts: dict[str, Any]) -> list[dict[str, Any]]:
    student.returned(facts, "collect")
    items = facts["items"]
    assert isinstance(items, list), f"collect returned a {facts['returned_type']}, not the list of items"
    odd = _odd(items)
    assert not odd, f"collect returned {odd[0]!r} among the items: return the items the producers put, as they are"
    return items


@pytest.mark.task(3)
def test_collect_takes_every_item_from_every_producer(student):
    """collect reads until one sentinel per producer, also from producers that come late"""
    producers, count = 3, 5
    facts = student.call("collect_staggered", producers, count, timeout=CALL)
    items = _collect_returned(student, facts)
    ids = [(item.get("producer"), item.get("seq")) for item in items]
    expected = [(producer, seq) for producer in range(producers) for seq in range(count)]
    problem = _accounting(ids, expected)
    if problem and ids and all(producer == 0 for producer, _ in ids):
        pytest.fail(
            f"collect returned only the items of producer 0, whose None came first; the {producers - 1} other "
            f"producers put theirs {facts['late']:g} s later. It stopped reading at the first None, or when the queue "
            f"was empty for a moment: every producer ends its items with its own None, so read until you have "
            f"counted {producers}",
            pytrace=False,
        )
    assert not problem, f"{producers} producers put {count} items each: {problem}"
    assert all(item.get("pid") != facts["caller_pid"] for item in items), (
        "produce ran in the calling process: start one Process per source with target=produce, "
        "do not call produce yourself"
    )


@pytest.mark.task(3)
def test_collect_drains_before_joining(student):
    """collect takes several MB off the queue before it joins the producers, and the data arrive intact"""
    producers, chunks, size = 2, 4, 512 * 1024
    facts = student.call("collect_big", producers, chunks, size, timeout=CALL)
    if facts["outcome"] == "hung" and facts["stuck_with_data"]:
        pytest.fail(
            f"collect did not return within {facts['deadline']:g} s: {facts['stuck_with_data']} of the {producers} "
            "producers had put all their data (2 MB each, more than a pipe holds) but could not end, because a "
            "process that put "
            "items on a queue ends only once they are read, and nothing read them. Take every item off the queue "
            "first (until one None per producer), then join the producers",
            pytrace=False,
        )
    items = _collect_returned(student, facts)
    ids = [(item.get("producer"), item.get("seq")) for item in items]
    problem = _accounting(ids, [(producer, seq) for producer in range(producers) for seq in range(chunks)])
    assert not problem, f"{producers} producers put {chunks} chunks of 512 KiB each: {problem}"
    assert all(item.get("intact") for item in items), "some chunks came back changed: return the items as they came"
    assert all(item.get("pid") != facts["caller_pid"] for item in items), (
        "produce ran in the calling process: start one Process per source with target=produce"
    )


@pytest.mark.task(3)
def test_collect_runs_one_producer_per_source(student):
    """collect starts one producer process per source: a generator with two equal sources, a second call, none"""
    facts = student.call("collect_every_source", timeout=CALL)
    labels = [
        "a generator of 3 sources, two of them equal",
        "a second call in the same process, with 1 source",
        "a third call, with no sources",
    ]
    for call, label in zip(facts["calls"], labels, strict=False):
        items = _collect_returned(student, call)
        sources = call["sources"]
        assert all(item.get("pid") != facts["caller_pid"] for item in items), (
            "produce ran in the calling process: start one Process per source with target=produce"
        )
        assert call["started"] == len(sources), (
            f"collect started {call['started']} processes for {label}: start one producer process per source, "
            "also when two sources are equal"
        )
        ids = [(item.get("source"), item.get("seq")) for item in items]
        expected = [(tag, seq) for tag, count in sources for seq in range(count)]
        problem = _accounting(ids, expected)
        if items and call["falsy_expected"] and not call["falsy_items"]:
            pytest.fail(
                f"collect was given {label}, and each producer put 0 and '' among its items: none of those came "
                f"back{f' ({problem})' if problem else ''}. 0 and '' are items; only None is the sentinel: test "
                "`item is None`, not `not item`",
                pytrace=False,
            )
        assert not problem, f"collect was given {label}: {problem}"
        problem = _accounting(call["falsy_items"], call["falsy_expected"])
        assert not problem, f"each producer also put 0 and '' among its items; collect was given {label}: {problem}"
        pids = {item.get("pid") for item in items}
        assert len(pids) == len(sources), (
            f"the items of {len(sources)} sources came from {len(pids)} processes: run each source in its own process"
        )


@pytest.mark.task(3)
def test_every_producer_has_ended_when_collect_returns(student):
    """collect returns only once every producer process has ended"""
    facts = student.call("collect_waits", 2, 3, timeout=CALL)
    if facts["outcome"] == "returned" and facts["running_at_return"]:
        pytest.fail(
            f"collect returned while {facts['running_at_return']} of its {facts['started']} producer processes were "
            "still running: each had put its items and its None, and the grader kept it from ending until collect "
            "returned. join() every producer, after you have read everything",
            pytrace=False,
        )
    items = _collect_returned(student, facts)
    ids = [(item.get("producer"), item.get("seq")) for item in items]
    problem = _accounting(ids, [(producer, seq) for producer in range(2) for seq in range(3)])
    assert not problem, f"2 producers put 3 items each: {problem}"
    assert facts["running_at_return"] == 0, (
        f"{facts['running_at_return']} producer processes were still running when collect returned: join them all"
    )


# --- task 4 ----------------------------------------------------------------------------------------------------------


def _work_facts(student) -> dict[str, Any]:
    facts = student.call("work_accounting", 2, timeout=CALL)
    student.fail_on_child_errors(facts["errors"])
    for worker in facts["without_sentinel"]:
        last = worker["last_taken"]
        if last != "nothing" and not last and facts["ended"]:
            pytest.fail(
                f"a work() process ended after taking the item {last!r}, before any None: {last!r} is falsy, but it "
                "is an item. Stop only when `item is None`, not when `not item`",
                pytrace=False,
            )
    return facts


@pytest.mark.task(4)
def test_work_handles_every_item_once_then_marks_it_done(student):
    """work calls handle(item) for every item, then task_done() once for it, never before it is handled"""
    facts = _work_facts(student)
    items = facts["items"]
    assert facts["caller_pid"] not in facts["handled_in"], "items were handled in the calling process"
    problem = _accounting(facts["handled"], items)
    assert not problem, f"2 workers were given {len(items)} items and one None each: {problem}"
    early = facts["done_before_handled"]
    assert not early, (
        f"task_done() was called for {early[0]!r} before handle({early[0]!r}) had returned: task_done() tells "
        "tasks.join() that the item is finished, so call it after handle(item), not when you take the item"
    )
    assert facts["extra_done"] == 0, (
        f"task_done() was called {facts['extra_done']} more times than items were taken: call it exactly once "
        "for every item you get()"
    )
    never = facts["never_done"]
    assert not never, (
        f"{len(never)} items were taken but never marked done (for example {never[0]!r}): call tasks.task_done() "
        "once for every item you get(), after handling it"
    )


@pytest.mark.task(4)
def test_work_marks_the_sentinel_done_and_returns(student):
    """work returns at the sentinel None, after marking it done too: the queue has nothing unfinished left"""
    facts = _work_facts(student)
    workers = facts["workers"]
    assert facts["ended"], (
        f"the work() processes had not ended {facts['stop_wait']:g} s after one None each was put: return when the "
        "item is None"
    )
    assert not facts["without_sentinel"], (
        f"{len(facts['without_sentinel'])} work() process(es) ended before taking a None: return at the sentinel, "
        "not before"
    )
    assert facts["sentinels_taken"] == workers, (
        f"{workers} work() processes took {facts['sentinels_taken']} sentinels: each should stop at the first None"
    )
    assert facts["sentinels_done"] == facts["sentinels_taken"], (
        f"the work() processes took {facts['sentinels_taken']} sentinels but marked only {facts['sentinels_done']} "
        "of them done: tasks.join() counts the sentinel too, so call task_done() for it as well (a try/finally "
        "around the loop's body does it)"
    )
    assert facts["exitcodes"] == [0] * workers, (
        f"the work() processes ended with exit codes {facts['exitcodes']} instead of 0"
    )
    assert facts["unfinished"] == 0, (
        f"after the workers ended, the queue still counted {facts['unfinished']} unfinished items, so tasks.join() "
        "would never return: call task_done() exactly once for every item taken, the sentinel too"
    )


@pytest.mark.task(4)
def test_handle_all_returns_only_when_every_item_is_done(student):
    """handle_all puts every item and returns only once the workers have marked every item done"""
    facts = student.call("handle_all_waits", 2, timeout=CALL)
    count = facts["count"]
    if facts["outcome"] == "returned" and facts["returned_before_release"] and facts["handled_at_return"] < count:
        still = "was still being handled (the grader held it)" if facts["held_at_return"] else "had not been taken yet"
        pytest.fail(
            f"handle_all returned when only {facts['handled_at_return']} of {count} items had been handled (the last "
            f"item {still}). Put the items, then wait with tasks.join(): it returns once task_done() was called for "
            "every item put, while an empty queue only means that the items were taken",
            pytrace=False,
        )
    student.returned(facts, "handle_all")
    assert facts["handled_at_return"] == count, (
        f"handle_all returned when {facts['handled_at_return']} of {count} items had been handled"
    )
    assert facts["foreign_sentinels"] == 0, (
        "handle_all put a None on tasks: the workers, which the caller keeps running for more batches, take it "
        "for the sentinel. Put only the items"
    )


@pytest.mark.task(4)
def test_handle_all_takes_any_items_and_leaves_the_workers_running(student):
    """handle_all takes a generator with repeats, an empty list and a second batch, on the same running workers"""
    facts = student.call("handle_all_any_items", 2, timeout=CALL)
    values = facts["values"]
    labels = {
        "generator": "a generator of items (1 among them twice)",
        "empty": "an empty list of items, on the same workers",
        "list": "a third batch, on the same workers",
    }
    for call in facts["calls"]:
        label = labels[call["kind"]]
        student.returned(call, "handle_all")
        assert call["foreign_sentinels"] == 0, (
            f"after handle_all was given {label}, the workers found a None on tasks, which the caller had not put: "
            "handle_all put it. The workers stay running for more batches: put only the items"
        )
        assert call["after"] == call["expected"], (
            f"when handle_all returned, given {label}, the items handled so far were "
            f"{_counted(values, call['after'])} instead of {_counted(values, call['expected'])}: put every item "
            "once, then wait with tasks.join()"
        )


def _counted(values: list[Any], counts: list[int]) -> str:
    return "{" + ", ".join(f"{value!r}: {count}" for value, count in zip(values, counts, strict=True) if count) + "}"
