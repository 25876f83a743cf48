"""Hidden tests for exercise 8 (synchronization). Scenarios: grader/sandboxed/scenarios/synchronization.py.

Every primitive is checked by what it lets through, measured by the scenario's
stand-ins: how many processes were inside at once, whether a lock was already
held, how many had arrived or been woken when a process went on. The stand-ins
wait for a wrong solution to show itself (a second process inside, someone past
a barrier), so every mistake fails every time instead of by luck.
"""

from typing import Any

import pytest

EXERCISE = "synchronization"

FILE = "synchronization.py"


def _fail_on_errors(facts: dict[str, Any]) -> None:
    """Fail with the first exception that graded code raised in one of the scenario's processes."""
    for error in facts.get("errors", []):
        where = f" ({error['where']})" if error["where"] else ""
        if error["type"] == "NotImplementedError":
            pytest.fail(
                f"{error['function'] or 'a function'}() is not written yet: it still raises NotImplementedError"
                f"{where}. Replace the TODO in {FILE} with your code.",
                pytrace=False,
            )
        pytest.fail(f"your code raised {error['type']} in a worker process: {error['message']}{where}", pytrace=False)


def _times(count: int) -> str:
    return {0: "no time", 1: "once", 2: "twice"}.get(count, f"{count} times")


@pytest.mark.task(1)
def test_lock_lets_one_process_in_at_a_time(student):
    """add_to_total keeps the read and the write to one process at a time"""
    facts = student.call("lock_one_at_a_time", timeout=30)
    _fail_on_errors(facts)
    assert facts["reported"] == facts["workers"], (
        f"only {facts['reported']} of {facts['workers']} worker processes finished add_to_total: "
        "does it wait for something that never comes?"
    )
    lost = facts["expected"] - facts["total"]
    assert facts["peak"] <= 1, (
        f"{facts['peak']} processes were between reading and writing the total at the same time, and the total "
        f"is {facts['total']} although {facts['expected']} was added. "
        "Take the lock you were given before reading total.value and release it only after writing it: "
        "a lock made inside the function is a new lock in every process and keeps nobody out"
    )
    assert facts["peak"] == 1, "add_to_total never read total.value: read it, add amount, write it back"
    assert lost == 0, f"the total is {facts['total']} but {facts['expected']} was added: an update was lost"


@pytest.mark.task(2)
def test_rlock_can_be_taken_again_by_its_holder(student):
    """make_account_lock gives an RLock, and pay_with_fee holds it around deposit and charge"""
    facts = student.call("rlock_taken_again", timeout=30)
    assert facts["first"], f"make_account_lock() returned a {facts['type']} that could not be acquired"
    assert facts["again"], (
        f"the process holding the {facts['type']} could not take it again (it waited {facts['again_seconds']} s): "
        "a plain Lock waits for itself forever when its holder acquires it again, and deposit() and charge() "
        "take account.lock while pay_with_fee holds it. Use multiprocessing.RLock(), which counts its holder's "
        "acquires"
    )
    assert not facts["other_took_it"], (
        "another process took the lock while this one held it: return a multiprocessing.RLock(), "
        "which keeps other processes out"
    )
    _fail_on_errors(facts)
    assert facts["reported"] == facts["workers"], (
        f"only {facts['reported']} of {facts['workers']} worker processes finished pay_with_fee"
    )
    assert facts["stuck"] == 0, f"{facts['stuck']} calls of deposit() or charge() could not get account.lock"
    assert facts["calls"] == 2 * facts["workers"], (
        f"deposit() and charge() were called {facts['calls']} times for {facts['workers']} payments: "
        "call each once per payment"
    )
    assert facts["has_semlock"], (
        f"make_account_lock() returned a {facts['type']}: return multiprocessing.RLock() itself, "
        "so that the grader can see who holds it"
    )
    assert facts["held_by_caller"] == facts["calls"], (
        f"pay_with_fee held account.lock during only {facts['held_by_caller']} of {facts['calls']} calls of "
        "deposit() and charge(): take account.lock once around both calls, so that no other process "
        "comes in between the deposit and the fee"
    )
    assert facts["balance"] == facts["expected"], (
        f"the balance is {facts['balance']}, expected {facts['expected']}: deposit amount and charge fee"
    )


@pytest.mark.task(3)
def test_semaphore_lets_exactly_k_in(student):
    """make_slots(k) and fetch_with_slot let exactly k processes in at once"""
    facts = student.call("semaphore_lets_k_in", 2, 4, 3, timeout=40)
    assert facts["probe_free"] == facts["probe_k"], (
        f"make_slots({facts['probe_k']}) could be acquired {_times(facts['probe_free'])} before it made a process "
        f"wait: it must let exactly {facts['probe_k']} in. Pass k on to multiprocessing.Semaphore(k)"
    )
    _fail_on_errors(facts)
    k = facts["k"]
    assert facts["reported"] == facts["workers"], (
        f"only {facts['reported']} of {facts['workers']} worker processes finished fetch_with_slot: "
        "is a slot taken and never given back? Use with slots: so it is always released"
    )
    assert facts["fetches"] == facts["workers"], (
        f"site.fetch() was called {facts['fetches']} times by {facts['workers']} processes: call it once each"
    )
    assert facts["peak"] <= k, (
        f"{facts['peak']} processes were fetching at the same time, but only {k} may: "
        "call site.fetch() inside with slots:, the semaphore you were given"
    )
    assert facts["peak"] == k, (
        f"only {facts['peak']} process fetched at a time, but {k} may: a semaphore of {k} "
        f"(not a Lock, not Semaphore(1)) lets {k} in together"
    )


@pytest.mark.task(4)
def test_nobody_passes_the_event_before_it_is_set(student):
    """wait_for_go lets every waiter pass only once the event is set"""
    facts = student.call("event_holds_until_set", 3, timeout=40)
    _fail_on_errors(facts)
    reports = facts["reports"]
    early = [report for report in reports if not report["was_set"]]
    assert not early, (
        f"{len(early)} of {facts['waiters']} waiters passed wait_for_go while the event was not set yet: "
        "wait on the event itself, go.wait(timeout), instead of looking once or sleeping"
    )
    assert len(reports) == facts["waiters"], (
        f"only {len(reports)} of {facts['waiters']} waiters passed after the event was set"
    )
    wrong = sorted({report["passed"] for report in reports if report["passed"] != "True"})
    assert not wrong, f"wait_for_go returned {', '.join(wrong)} after the event was set: return True then"


@pytest.mark.task(4)
def test_wait_for_go_gives_up_after_its_timeout(student):
    """wait_for_go returns False after its timeout when the event is never set"""
    facts = student.call("event_wait_times_out", 0.5)
    _fail_on_errors(facts)
    report = facts["report"]
    assert report is not None, (
        f"wait_for_go(go, {facts['timeout']}) had not returned 3 s after its timeout: pass the timeout on to "
        "go.wait(timeout)"
    )
    assert report["passed"] == "False", (
        f"wait_for_go returned {report['passed']} for an event that was never set: return what go.wait(timeout) "
        "says, False when the time ran out"
    )
    assert report["seconds"] >= facts["timeout"] * 0.9, (
        f"wait_for_go gave up after {report['seconds']} s instead of waiting {facts['timeout']} s"
    )


@pytest.mark.task(5)
def test_nobody_passes_the_barrier_before_all_arrive(student):
    """run_in_step: nobody passes the barrier until every process has arrived"""
    facts = student.call("barrier_holds_until_all_arrive", 3, timeout=30)
    count = facts["count"]
    pids = facts["pids"]
    assert any(pids), (
        "first() was never called: run_in_step must start count processes that run step_worker, "
        "and step_worker must call first(index) (an error in a worker process shows in the output below)"
    )
    assert facts["caller_pid"] not in pids, "step_worker ran in the calling process: start a Process for each one"
    assert len(set(pids)) == count and 0 not in pids, (
        f"first() ran in {len(set(pids) - {0})} processes instead of {count}: start one process per index"
    )
    arrived = facts["arrived_when_passed"]
    early = [value for value in arrived if value is not None and value < count]
    assert not early, (
        f"a process went past the barrier when only {min(early)} of {count} had arrived: every process must "
        f"call barrier.wait() after first(index), and the barrier needs exactly {count} parties, one per process"
    )
    stuck = arrived.count(None)
    assert stuck == 0, (
        f"{stuck} of {count} processes never got past the barrier (stopped after 4 s), or run_in_step returned "
        f"before they did: give the barrier exactly {count} parties, and join every process"
    )
    assert facts["left_running"] == 0, "processes were still running after run_in_step returned: join them all"


@pytest.mark.task(6)
def test_condition_wakes_every_waiter_when_enough(student):
    """wait_for_items waits for enough items, and add_items wakes every waiter"""
    facts = student.call("condition_wakes_waiters", 3, 2, timeout=40)
    _fail_on_errors(facts)
    waiters = facts["waiters"]
    assert facts["checked_before"] == waiters, (
        f"only {facts['checked_before']} of {waiters} waiters looked at box.value before waiting: "
        "check the predicate under the condition, condition.wait_for(predicate, timeout)"
    )
    assert facts["passed_early"] == 0, (
        f"{facts['passed_early']} waiters returned when there was 1 item of the {facts['wanted']} they wanted: "
        "a wake-up is no promise, check box.value again after every wake-up (condition.wait_for does)"
    )
    assert facts["woken"] == waiters, (
        f"only {facts['woken']} of {waiters} waiters woke up when the items they wanted arrived: notify() wakes "
        "one waiter, notify_all() wakes them all"
    )
    wrong = sorted({report["returned"] for report in facts["reports"] if report.get("returned") != "True"})
    assert not wrong, f"wait_for_items returned {', '.join(wrong)} although the items were there: return True then"


@pytest.mark.task(6)
def test_condition_waiter_checks_before_it_waits(student):
    """wait_for_items returns at once when the items are there, and False after its timeout"""
    facts = student.call("condition_checks_first")
    assert facts["ready_seconds"] < facts["late_timeout"] / 2 and facts["ready"] == "True", (
        f"wait_for_items waited {facts['ready_seconds']} s and returned {facts['ready']}, although the items "
        "were already there: nobody would ever notify it. Check the predicate before waiting, "
        "condition.wait_for(predicate, timeout) does"
    )
    assert facts["missing"] == "False", (
        f"wait_for_items returned {facts['missing']} when the items never came: return False when the time ran out"
    )
    assert facts["missing_seconds"] >= 0.27, (
        f"wait_for_items gave up after {facts['missing_seconds']} s instead of waiting its 0.3 s"
    )
