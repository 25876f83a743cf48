"""Hidden tests for exercise 8 (synchronization). Scenarios: grader/sandboxed/scenarios/synchronization.py.

The contract each test holds a solution to: grader/hidden/contracts/08_synchronization.toml.

Every primitive is checked by what it lets through, noted by the scenario's
stand-ins: whether a process held the lock when it read or wrote, whether it
let go in between, how many processes were inside at once, how many had
arrived or been woken when a process went on. The stand-ins open the windows a
mistake needs on purpose, so that every mistake fails every time.
"""

from typing import Any

import pytest

EXERCISE = "synchronization"

FILE = "synchronization.py"


def _times(count: int) -> str:
    return {0: "no time", 1: "once", 2: "twice"}.get(count, f"{count} times")


def _called(student, call: dict[str, Any], function: str) -> Any:
    """The repr of what a call returned; a hang or an exception fails the test in words."""
    student.returned(call, function)
    return call["value"]


def _start_failed(error: dict[str, Any] | None, what: str) -> None:
    if error is not None:
        pytest.fail(
            f"{what} could not be given to a new process ({error['type']}: {error['message']}): "
            "a threading lock or semaphore works only inside one process; use the one from multiprocessing",
            pytrace=False,
        )


# --- task 1 ---------------------------------------------------------------------------------------------------------


@pytest.mark.task(1)
def test_add_to_total_reads_and_writes_while_holding_the_lock(student):
    """add_to_total reads, adds and writes back in one hold of the lock it was given"""
    facts = student.call("lock_one_at_a_time", timeout=40)
    _start_failed(facts["start_error"], "the lock")
    student.fail_on_child_errors(facts["errors"])
    assert facts["reported"] == facts["workers"], (
        f"only {facts['reported']} of {facts['workers']} worker processes finished their two calls of add_to_total "
        "within 20 s: does it keep the lock (a release missing) or wait for something that never comes?"
    )
    assert facts["reads"] > 0, "add_to_total never read total.value: read it, add amount, write the sum back"
    assert facts["unheld_reads"] == 0, (
        f"add_to_total read total.value {_times(facts['unheld_reads'])} while its process did not hold the lock it "
        "was given: another process can then read the same total, and one addition is lost. Take that lock "
        "before the read (a lock made in the function or at import is another lock, and keeps nobody out)"
    )
    assert facts["unheld_writes"] == 0, (
        f"add_to_total wrote total.value {_times(facts['unheld_writes'])} while its process did not hold the lock "
        "it was given: keep the write inside the same with lock: block as the read"
    )
    assert facts["released_between"] == 0, (
        f"add_to_total let go of the lock between reading total.value and writing it back "
        f"({_times(facts['released_between'])}): another process can read the same total in between, and one "
        "addition is lost. Read, add and write inside one with lock: block"
    )
    assert facts["total"] == facts["expected"], (
        f"after {facts['calls']} calls the total is {facts['total']}, but the amounts add up to {facts['expected']}: "
        "add amount to total.value, once per call"
    )


# --- task 2 ---------------------------------------------------------------------------------------------------------


@pytest.mark.task(2)
def test_account_lock_can_be_taken_again_by_its_holder_only(student):
    """make_account_lock gives a new lock that its holder can take again and other processes cannot"""
    facts = student.call("account_lock_is_reentrant", timeout=30)
    kind = facts["type"]
    first = facts["first"]
    assert first == "True", f"make_account_lock() returned a {kind} whose acquire() gave {first}, not True"
    again = facts["again"]
    assert again == "True", (
        f"the process holding the {kind} from make_account_lock() could not take it again (it waited "
        f"{facts['again_seconds']} s): a Lock waits for itself forever when its holder acquires it again, "
        "and deposit() and charge() take account.lock while pay_with_fee holds it. Return a multiprocessing.RLock(), "
        "which counts its holder's acquires"
    )
    _start_failed(facts["start_error"], f"the {kind} from make_account_lock()")
    probe = facts["probe"]
    assert probe is not None, "the process that tried the lock from outside never reported back"
    if "raised" in probe:
        error = probe["raised"]
        pytest.fail(
            f"another process could not use the {kind} from make_account_lock(): {error['type']}: {error['message']}",
            pytrace=False,
        )
    assert not probe["took_held"], (
        f"another process took the {kind} from make_account_lock() while this process held it: the lock must "
        "keep other processes out (a threading lock does not; multiprocessing.RLock() does)"
    )
    assert not facts["same_object"] and probe["took_other"], (
        "two calls of make_account_lock() gave "
        + ("the same lock" if facts["same_object"] else "locks that are one: holding the first kept out the second")
        + ": return a new lock on every call, so that every account has its own"
    )
    assert facts["released"] == 2 and "release_error" not in facts, (
        f"the lock could not be released as often as it was taken: {facts.get('release_error')}"
    )


@pytest.mark.task(2)
def test_pay_with_fee_holds_the_lock_from_deposit_to_charge(student):
    """pay_with_fee deposits then charges, holding account.lock from before the deposit to after the fee"""
    facts = student.call("pay_holds_the_lock_throughout", timeout=40)
    _start_failed(facts["start_error"], "the account")
    student.fail_on_child_errors(facts["errors"])
    payments = facts["payments"]
    assert facts["reported"] == facts["workers"], (
        f"only {facts['reported']} of {facts['workers']} processes finished their two payments within 20 s: "
        "does pay_with_fee keep account.lock (a release missing) or wait for something that never comes?"
    )
    assert facts["deposits"] == payments and facts["charges"] == payments, (
        f"for {payments} payments, deposit() was called {_times(facts['deposits'])} and charge() "
        f"{_times(facts['charges'])}: call each once per payment"
    )
    assert facts["charge_first"] == 0, (
        f"charge() came before its deposit() {_times(facts['charge_first'])}: call account.deposit(amount), "
        "then account.charge(fee)"
    )
    assert (facts["deposited"], facts["charged"]) == (facts["expected_deposited"], facts["expected_charged"]), (
        f"deposit() was given {facts['deposited']} in all and charge() {facts['charged']}, but the payments came to "
        f"{facts['expected_deposited']} and their fees to {facts['expected_charged']}: call "
        "account.deposit(amount) and account.charge(fee)"
    )
    unheld = facts["unheld_deposits"] + facts["unheld_charges"]
    assert unheld == 0, (
        f"pay_with_fee did not hold account.lock during {unheld} of {2 * payments} calls of deposit() and charge(): "
        "take account.lock once, around both calls, so that no other process comes in between"
        + (" (another process did take it between a deposit and its fee)" if facts["rival_got_in"] else "")
    )
    assert facts["gaps"] == 0, (
        f"pay_with_fee let go of account.lock between deposit() and charge() in {facts['gaps']} of {payments} "
        "payments"
        + (", and another process took it right then" if facts["rival_got_in"] else "")
        + ": hold it once around both calls, in one with account.lock: block, not once around each"
    )
    assert facts["stuck"] == 0, f"{facts['stuck']} calls of deposit() or charge() could not get account.lock"


@pytest.mark.task(2)
def test_pay_with_fee_lets_go_of_the_lock_when_a_call_raises(student):
    """When deposit or charge raises, pay_with_fee passes the error on and account.lock is free again"""
    facts = student.call("pay_lets_go_when_a_call_fails", timeout=30)
    for run in facts["runs"]:
        call = run["call"]
        failing = run["failing"]
        if call["outcome"] == "hung":
            student.returned(call, "pay_with_fee")
        error = call["error"]
        assert call["outcome"] == "raised", (
            f"account.{failing}() raised ValueError, but pay_with_fee returned {call['value']}: let the exception "
            "go on to the caller, do not catch it"
        )
        assert error["type"] == "ValueError", (
            f"account.{failing}() raised ValueError, but the caller of pay_with_fee got {error['type']}: "
            f"{error['message']}. Let the exception go on as it is"
        )
        assert run["depth_after"] == 0, (
            f"after account.{failing}() raised, pay_with_fee still held account.lock: every other payment now "
            "waits for ever. Use with account.lock: (or release it in a finally:), so that it is released "
            "also when an exception flies"
        )
    after = facts["after"]
    student.returned(after, "pay_with_fee")
    assert facts["after_change"] == 9, (
        f"a payment of 10 with a fee of 1, after one that failed, changed the balance by {facts['after_change']}, "
        "not by 9"
    )


# --- task 3 ---------------------------------------------------------------------------------------------------------


@pytest.mark.task(3)
def test_semaphore_lets_exactly_k_in(student):
    """make_slots(2) and fetch_with_slot let exactly two of four processes fetch at once"""
    facts = student.call("semaphore_lets_k_in", 2, 4, timeout=40)
    student.timeline(facts["timeline"], "the processes inside site.fetch()")
    k = facts["k"]
    _start_failed(facts["start_error"], f"the {facts['type']} from make_slots({k})")
    student.fail_on_child_errors(facts["errors"])
    assert facts["slots_wanted_by_one"] <= 1, (
        f"fetch_with_slot asked for slot number {facts['slots_wanted_by_one']} while it already held one: "
        "two processes that each hold one and wait for another never go on. Take one slot per fetch: with slots:"
    )
    assert facts["reported"] == facts["workers"], (
        f"only {facts['reported']} of {facts['workers']} worker processes finished fetch_with_slot within 20 s: "
        "is a slot taken and never given back? Use with slots: so it is always released"
    )
    assert facts["fetches"] == facts["workers"], (
        f"site.fetch() was called {_times(facts['fetches'])} by {facts['workers']} processes: call it once each"
    )
    assert facts["without_slot"] == 0, (
        f"site.fetch() was called {_times(facts['without_slot'])} by processes that held no slot of the semaphore "
        "they were given: call site.fetch() inside with slots:"
    )
    assert facts["peak"] <= k, (
        f"{facts['peak']} processes were fetching at the same time, each holding a slot of the {facts['type']} "
        f"from make_slots({k}), but only {k} may: that semaphore keeps no other process out (a threading "
        "semaphore counts only in its own process); return a multiprocessing.Semaphore(k)"
    )
    assert facts["peak"] == k, (
        f"only {facts['peak']} process fetched at a time, although {k} may and 4 were waiting for 5 s: "
        f"make_slots({k}) must let {k} in together (not a Lock, not Semaphore(1)), and fetch_with_slot must take "
        "one slot, no more"
    )


@pytest.mark.task(3)
def test_make_slots_lets_in_exactly_k_for_every_k(student):
    """make_slots(k) can be taken exactly k times for k = 1, 2, 3, and each call gives a new semaphore"""
    facts = student.call("slots_of_every_size", [1, 2, 3])
    for k, free in facts["free"].items():
        assert free == int(k), (
            f"make_slots({k}) could be acquired {_times(free)} before it made a process wait: it must let exactly "
            f"{k} in. Pass k on: multiprocessing.Semaphore(k)"
        )
    assert not facts["same_object"] and facts["second_free_meanwhile"] == 2, (
        "two calls of make_slots(2) gave "
        + ("the same semaphore" if facts["same_object"] else "semaphores that share their slots")
        + ": taking both slots of the first left "
        f"{facts['second_free_meanwhile']} free in the second. Return a new semaphore on every call"
    )


@pytest.mark.task(3)
def test_fetch_with_slot_gives_the_slot_back_when_fetch_raises(student):
    """When site.fetch() raises, fetch_with_slot passes the error on and gives its slot back"""
    facts = student.call("fetch_error_gives_the_slot_back", timeout=30)
    for call in facts["calls"]:
        if call["outcome"] == "hung":
            student.returned(call, "fetch_with_slot")
        assert call["outcome"] == "raised", (
            f"site.fetch() raised ConnectionError, but fetch_with_slot returned {call['value']}: let the exception "
            "go on to the caller, do not catch it"
        )
        error = call["error"]
        assert error["type"] == "ConnectionError", (
            f"site.fetch() raised ConnectionError, but the caller of fetch_with_slot got {error['type']}: "
            f"{error['message']}. Let the exception go on as it is"
        )
    assert facts["fetch_calls"] == len(facts["calls"]), (
        f"fetch_with_slot was called {_times(len(facts['calls']))} and called site.fetch() "
        f"{_times(facts['fetch_calls'])}: call it once per call"
    )
    lost = facts["k"] - facts["free_after_errors"]
    assert lost == 0, (
        f"after two fetches that raised, {lost} of the semaphore's {facts['k']} slots were never given back: "
        "fewer and fewer processes get in. Use with slots: (or release in a finally:), so that the slot comes "
        "back also when site.fetch() raises"
    )
    student.returned(facts["good"], "fetch_with_slot")
    assert facts["free_after_good"] == facts["k"], (
        f"after a fetch that went well, {facts['free_after_good']} of {facts['k']} slots were free: give the slot back"
    )


# --- task 4 ---------------------------------------------------------------------------------------------------------


@pytest.mark.task(4)
def test_nobody_passes_the_event_before_it_is_set(student):
    """wait_for_go holds every waiter until the event is set, then lets them all pass with True"""
    facts = student.call("event_holds_until_set", 3, timeout=40)
    student.fail_on_child_errors(facts["errors"])
    reports = facts["reports"]
    waiters = facts["waiters"]
    early = [report for report in reports if report["early"]]
    assert not early, (
        f"a waiter came back from wait_for_go (with {', '.join(sorted({report['passed'] for report in early}))}) "
        f"while the event was not set yet, long before its timeout of {facts['timeout']:g} s: wait on the event "
        "itself, go.wait(timeout), instead of looking once or sleeping a while"
    )
    assert len(reports) == waiters, (
        f"{waiters - len(reports)} of {waiters} waiters were still in wait_for_go {facts['answer_wait']:g} s after "
        f"the event was set (their timeout was {facts['timeout']:g} s): wait on the event with go.wait(timeout), "
        "which returns as soon as it is set, instead of sleeping"
    )
    wrong = sorted({report["passed"] for report in reports if report["passed"] != "True"})
    assert not wrong, f"wait_for_go returned {', '.join(wrong)} after the event was set: return True then"


@pytest.mark.task(4)
def test_wait_for_go_gives_up_after_its_timeout(student):
    """wait_for_go returns False after its timeout when the event is never set, and at once for a timeout of 0"""
    facts = student.call("event_wait_times_out")
    call = facts["call"]
    timeout = facts["timeout"]
    if call["outcome"] == "hung":
        pytest.fail(
            f"wait_for_go(go, {timeout:g}) was still waiting {facts['past']:g} s after its timeout ran out, for an "
            "event that was never set: wait at most timeout seconds, go.wait(timeout)",
            pytrace=False,
        )
    value = _called(student, call, "wait_for_go")
    assert value == "False", (
        f"wait_for_go(go, {timeout:g}) returned {value} for an event that was never set: return what "
        "go.wait(timeout) says, False when the time ran out"
    )
    assert call["seconds"] >= timeout * 0.9, (
        f"wait_for_go(go, {timeout:g}) gave up after {call['seconds']} s, before its timeout ran out"
    )
    zero = _called(student, facts["zero"], "wait_for_go")
    assert zero == "False", f"wait_for_go(go, 0) returned {zero} for an event that was never set, not False"


@pytest.mark.task(4)
def test_wait_for_go_returns_at_once_when_the_event_is_set(student):
    """wait_for_go returns True at once when the event is already set, also with a timeout of 0"""
    facts = student.call("event_already_set")
    call = facts["call"]
    if call["outcome"] == "hung":
        pytest.fail(
            f"wait_for_go(go, {facts['timeout']:g}) had not returned after {call['deadline']:g} s although the event "
            "was set before the call: go.wait(timeout) returns True at once then",
            pytrace=False,
        )
    value = _called(student, call, "wait_for_go")
    assert value == "True", f"wait_for_go returned {value} for an event that was already set: return True"
    zero = _called(student, facts["zero"], "wait_for_go")
    assert zero == "True", (
        f"wait_for_go(go, 0) returned {zero} for an event that was already set: with no time to wait, the event "
        "was still set, so return True (go.wait(0) does)"
    )


# --- task 5 ---------------------------------------------------------------------------------------------------------


def _check_run(student, run: dict[str, Any]) -> None:
    """The barrier facts of one run_in_step: processes, one per index, nobody through before all arrived."""
    count = run["count"]
    call = run["call"]
    if call["outcome"] == "hung":
        student.returned(call, "run_in_step")
    if call["outcome"] == "raised":
        error = call["error"]
        where = f" ({error['where']})" if error.get("where") else ""
        pytest.fail(f"run_in_step({count}, ...) raised {error['type']}: {error['message']}{where}", pytrace=False)
    pids = run["pids"]
    if run["bad_index"] is not None:
        pytest.fail(
            f"first() was called with index {run['bad_index']}, but run_in_step({count}, ...) must use the indexes "
            f"0 to {count - 1}: for index in range(count)",
            pytrace=False,
        )
    assert any(pids), (
        f"run_in_step({count}, ...) never called first(): start count processes that run step_worker, and "
        "step_worker must call first(index) (an error in a worker process shows in the output below)"
    )
    assert run["caller_pid"] not in pids, "step_worker ran in the calling process: start a Process for each index"
    started = len(set(pids) - {0})
    assert started == count and 0 not in pids, (
        f"first() ran in {started} processes for run_in_step({count}, ...): start one process per index, "
        f"0 to {count - 1}"
    )
    arrived = run["arrived_when_passed"]
    early = [value for value in arrived if value is not None and value < count]
    assert not early, (
        f"a process started second() when only {min(early)} of {count} had finished first(): every process "
        f"must call barrier.wait() after first(index) and before second(index), on one barrier of exactly {count} "
        "parties, one per process"
    )
    stuck = sum(run["stopped"])
    parties = f"{count} part{'y' if count == 1 else 'ies'}"
    came = sum(run["arrived"])
    if came == count:
        why = f"although {'it' if count == 1 else f'all {count}'} had arrived (stopped 4 s later)"
    else:
        why = f"where only {came} of {count} arrived (stopped 15 s later)"
    assert stuck == 0, (
        f"{stuck} of {count} processes were still waiting at the barrier {why}: give all of them one and the "
        f"same barrier, of exactly {parties} (the caller does not wait at it), and start one process per index"
    )
    silent = arrived.count(None)
    assert silent == 0, (
        f"{silent} of {count} processes ended without calling second(): after the barrier, step_worker must call "
        "second(index) (an error in a worker process shows in the output below)"
    )


@pytest.mark.task(5)
def test_nobody_passes_the_barrier_before_all_arrive(student):
    """run_in_step(3): nobody starts second() before every process has finished first()"""
    runs = student.call("barrier_runs", [3], False, timeout=40)
    _check_run(student, runs[0])


@pytest.mark.task(5)
def test_run_in_step_returns_when_every_process_has_ended(student):
    """run_in_step returns only once every process it started has ended"""
    runs = student.call("barrier_runs", [3], True, timeout=40)
    run = runs[0]
    call = run["call"]
    if call["outcome"] == "returned":
        running = call["after"]["running"]
        assert running == 0, (
            f"run_in_step returned while {running} of its {run['count']} processes were still running: "
            "join() every process before returning (joining only the last one, or with a timeout, is not enough)"
        )
    _check_run(student, run)
    assert run["left_running"] == 0, "processes of run_in_step were still running long after it returned"


@pytest.mark.task(5)
def test_run_in_step_with_one_and_two_processes(student):
    """run_in_step(1), then run_in_step(2) twice in one process: one new barrier per call"""
    runs = student.call("barrier_runs", [1, 2, 2], False, timeout=60)
    for number, run in enumerate(runs):
        if number == 2 and run["call"]["outcome"] != "returned":
            pytest.fail(
                f"run_in_step(2, ...) went well once, then a second call in the same process "
                f"{'hung' if run['call']['outcome'] == 'hung' else 'raised'}: make a new barrier in every call, "
                "keep nothing between calls",
                pytrace=False,
            )
        _check_run(student, run)


# --- task 6 ---------------------------------------------------------------------------------------------------------


@pytest.mark.task(6)
def test_condition_wakes_every_waiter_when_enough(student):
    """add_items adds and wakes every waiter under the condition; wait_for_items goes on only with enough"""
    facts = student.call("condition_wakes_waiters", 3, 2, timeout=40)
    student.fail_on_child_errors(facts["errors"])
    waiters = facts["waiters"]
    wanted = facts["wanted"]
    if "first_add" not in facts:
        pytest.fail("a waiter came back before any item was added", pytrace=False)
    for name, count in (("first_add", wanted - 1), ("second_add", 1)):
        call = facts[name]
        if call["outcome"] == "raised" and call["error"]["type"] == "AssertionError":
            pytest.fail(
                f"add_items(condition, box, {count}) raised AssertionError ({call['error']['message']}): "
                "notify_all() may only be called while holding the condition, with condition:",
                pytrace=False,
            )
        student.returned(call, "add_items")
    assert facts["unheld_writes"] == 0, (
        f"add_items changed box.value {_times(facts['unheld_writes'])} without holding the condition: two adders "
        "can then lose an addition, and a waiter can look in the middle of it. Change box.value inside "
        "with condition:, together with notify_all()"
    )
    assert facts["box"] == wanted, (
        f"after add_items(..., {wanted - 1}) and add_items(..., 1), box.value is {facts['box']}, not {wanted}: "
        "add count to box.value"
    )
    assert facts["checked_before"] == waiters, (
        f"only {facts['checked_before']} of {waiters} waiters looked at box.value before they went to sleep: check "
        "the predicate first, under the condition (condition.wait_for(predicate, timeout) does)"
    )
    early = facts["passed_early"]
    items = facts["items_after_first"]
    assert not early, (
        f"a waiter came back from wait_for_items (with {', '.join(sorted({report['returned'] for report in early}))})"
        f" when it was woken with {items} item{'' if items == 1 else 's'} of the {wanted} it wanted in the box, long "
        "before its timeout: a wake-up is no promise, check box.value again after every wake-up "
        "(condition.wait_for does)"
    )
    assert facts["woken"] == waiters, (
        f"only {facts['woken']} of {waiters} waiters came back when the items they wanted were there: "
        "notify() wakes one waiter, notify_all() wakes them all"
    )
    wrong = sorted({report["returned"] for report in facts["reports"] if report.get("returned") != "True"})
    assert not wrong, f"wait_for_items returned {', '.join(wrong)} although the items were there: return True then"


@pytest.mark.task(6)
def test_condition_waiter_checks_before_it_waits(student):
    """wait_for_items returns True at once when the items are there, and False after its timeout when they never come"""
    facts = student.call("condition_checks_first")
    ready = facts["ready"]
    if ready["outcome"] == "hung":
        pytest.fail(
            f"wait_for_items had not returned after {ready['deadline']:g} s although the items were already there: "
            "nobody will ever notify it. Check the predicate before waiting (condition.wait_for does)",
            pytrace=False,
        )
    value = _called(student, ready, "wait_for_items")
    assert value == "True", f"wait_for_items returned {value} although the items were already there: return True"
    zero = facts["zero"]
    if zero["outcome"] == "hung":
        pytest.fail(
            f"wait_for_items(condition, box, 0, ...) on an empty box had not returned after {zero['deadline']:g} s: "
            "0 items are there already, so it should return True at once",
            pytrace=False,
        )
    value = _called(student, zero, "wait_for_items")
    assert value == "True", f"wait_for_items(condition, box, 0, ...) returned {value}: 0 items are always there"
    missing = facts["missing"]
    if missing["outcome"] == "hung":
        pytest.fail(
            f"wait_for_items(..., timeout=0.3) had not returned {missing['deadline']:g} s later, for items that never "
            "came: wait at most timeout seconds, condition.wait_for(predicate, timeout)",
            pytrace=False,
        )
    value = _called(student, missing, "wait_for_items")
    assert value == "False", (
        f"wait_for_items returned {value} when the items never came: return False when the time ran out"
    )
    assert missing["seconds"] >= 0.27, (
        f"wait_for_items gave up after {missing['seconds']} s instead of waiting its 0.3 s"
    )


@pytest.mark.task(6)
def test_wait_for_items_gives_up_after_its_timeout_however_often_woken(student):
    """wait_for_items woken again and again without enough items still returns False after its timeout"""
    facts = student.call("condition_gives_up_in_time", timeout=30)
    student.fail_on_child_errors(facts["errors"])
    timeout = facts["timeout"]
    if facts["still_waiting"]:
        pytest.fail(
            f"wait_for_items(..., timeout={timeout:g}) was still waiting after {facts['wake_for']:g} s, woken every "
            f"{facts['wake_every']:g} s without enough items ({facts['wakeups']} wake-ups): a wait that starts its "
            "full timeout again after every wake-up can go on for ever. Wait at most timeout seconds in all: "
            "compute the time left after each wake-up (condition.wait_for(predicate, timeout) does)",
            pytrace=False,
        )
    report = facts["reports"][0]
    assert report["returned"] == "False", (
        f"wait_for_items returned {report['returned']} with too few items in the box: return False when the time "
        "ran out"
    )
    assert report["seconds"] >= timeout * 0.9, (
        f"wait_for_items(..., timeout={timeout:g}) gave up after {report['seconds']} s, when it was woken without "
        "enough items: a wake-up is no promise, check again and wait on for the rest of the timeout"
    )


@pytest.mark.task(6)
def test_waiter_does_not_miss_items_that_come_right_after_its_look(student):
    """wait_for_items checks box.value and sleeps without letting go of the condition in between"""
    facts = student.call("condition_wakeup_not_lost", timeout=40)
    student.fail_on_child_errors(facts["errors"])
    if facts["still_waiting"]:
        looked = (
            "it looked at box.value without holding the condition, the items came and the condition was notified "
            "right after that look, before it slept"
            if facts["looked_without_lock"]
            else "the items came and the condition was notified"
        )
        pytest.fail(
            f"wait_for_items was still waiting {facts['answer_wait']:g} s after the items it wanted were there "
            f"(its timeout was {facts['timeout']:g} s): {looked}, and nobody wakes it any more. Take the condition "
            "first, then check and wait while holding it: with condition: condition.wait_for(predicate, timeout)",
            pytrace=False,
        )
    report = facts["reports"][0]
    assert report["returned"] == "True", (
        f"wait_for_items returned {report['returned']} although the items it wanted came: return True then"
    )
