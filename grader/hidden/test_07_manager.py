"""Hidden tests for exercise 7 (manager). Scenarios: grader/sandboxed/scenarios/manager.py.

The contract each test holds a solution to: grader/hidden/contracts/07_manager.toml.
"""

import pytest

from grader.names import STARTING_CALL_TIMEOUT

EXERCISE = "manager"

KEYS = ["north", "east", "south"]
MISSING = "<missing>"  # what the scenario's worker saw of an attribute the namespace did not have
PLAIN_COPY = (
    "copy it while the manager still runs, inside the with block: dict(results) and list(log) "
    "(a proxy only forwards to the manager, and the manager stops when the with block ends)"
)
GONE = ("BrokenPipeError", "EOFError", "FileNotFoundError", "ConnectionRefusedError", "ConnectionResetError")
IN_PLACE = (
    "shared[key] hands you a copy of the list, so .append() on it changes only the copy. Take the list, "
    "append to it, and store it back: shared[key] = items"
)


def returned(student, one, function):
    """What the graded function returned; fail in words when it raised or hung."""
    call = one["call"]
    error = call["error"]
    if call["outcome"] == "raised" and error["type"] in GONE:
        pytest.fail(
            f"{function}() raised {error['type']} ({error['message']}) at {error['where'] or 'the end'}: that is "
            f"what reading a proxy gives once its manager has shut down. {PLAIN_COPY}",
            pytrace=False,
        )
    if call["outcome"] == "raised" and error["type"] == "TypeError" and "len()" in error["message"]:
        pytest.fail(
            f"{function}() raised TypeError: {error['message']} ({error['where']}), given the keys as a generator: "
            "keys can be any iterable, which need not have a len() and can be gone through only once. "
            "Go through it once, making your processes (or a list of the keys) as you go",
            pytrace=False,
        )
    return student.returned(call, function)


def judge_children(one, caller_pid, function, want):
    """One process per item, started by the caller, each running the worker once."""
    reports = one["reports"]
    if want == 0:
        assert not reports, f"{function} ran the worker {len(reports)} time(s), although it was given no keys"
        return
    if not reports:
        pytest.fail(
            f"{function} never ran the worker: start one multiprocessing.Process(target=worker, args=(...)) "
            + ("per key" if function == "collect" else "for it"),
            pytrace=False,
        )
    pids = [report["pid"] for report in reports]
    assert caller_pid not in pids, (
        f"{function} ran the worker in your own process (called directly, or in a thread): give it to "
        "multiprocessing.Process(target=worker, ...) and start() it"
    )
    assert all(report["parent_pid"] == caller_pid for report in reports), (
        f"{function} ran the worker in processes that it did not start"
    )
    assert len(reports) == want and len(set(pids)) == want, (
        f"{function} ran the worker {len(reports)} time(s) in {len(set(pids))} process(es), not once in each of "
        f"{want} processes"
    )


def judge_managers_gone(one, function, *, required=True):
    """The manager the workers used, and every manager started in the call, has shut down.

    required: the call must have used a manager (a call with no keys need not start one).
    """
    managers = [m for m in one["managers"] if m["used"] or m["started_in_call"]]
    if not managers and required:
        pytest.fail(
            f"{function} never started a manager: use `with multiprocessing.Manager() as manager:` and give the "
            "workers the proxies it makes",
            pytrace=False,
        )
    for manager in managers:
        if not manager["running"]:
            continue
        if not manager["shut_down"]:
            pytest.fail(
                f"the manager that {function} used ({manager['class']}) was still running after {function} "
                "returned: it was never shut down. Open it with `with multiprocessing.Manager() as manager:` so that "
                "it shuts down when the block ends (do not keep it in a global, nor leave it to Python's clean-up)",
                pytrace=False,
            )
        pytest.fail(
            f"the manager that {function} used ({manager['class']}) was shut down, but its process was still "
            f"running seconds after {function} returned",
            pytrace=False,
        )


# ---------------------------------------------------------------- task 1


def collected(student, runs=None, hold=1.0, order="reverse"):
    facts = student.call("collect_in_children", runs or [[KEYS, "list"]], hold, order, timeout=40)
    return facts["caller_pid"], facts["calls"]


def judge_contents(student, one, caller_pid, call="collect"):
    """results holds every key with the pid of its child, log every key; else say why."""
    returned(student, one, "collect")
    assert "results" in one, (
        f"{call} returned a {one['returned_type']}, not the pair (results, log): return dict(results), list(log)"
    )
    keys = one["keys"]
    judge_children(one, caller_pid, "collect", len(keys))
    for name in ("results", "log"):
        if "unreadable" in one[name]:
            error = one[name]["unreadable"]
            pytest.fail(
                f"{call} returned {name} as a {one[name]['type']}, a proxy of a manager that has shut down, so it "
                f"can no longer be read ({error['type']}: {error['message']}): {PLAIN_COPY}",
                pytrace=False,
            )
    results, log = one["results"]["value"], one["log"]["value"]
    want = {report["key"]: report["pid"] for report in one["reports"]}
    after = one["call"]["after"]
    if results != want and (after["held"] or after["unfinished"]):
        pytest.fail(
            f"{call} returned results {results}, but the children wrote {want}: it returned while "
            f"{max(after['held'], after['unfinished'])} of them had not finished (the grader held them back, the "
            "last started first). Join every process, then copy the results",
            pytrace=False,
        )
    plain = [report for report in one["reports"] if report["addresses"] == [None, None]]
    if results == {} and log == [] and plain:
        pytest.fail(
            f"{call} returned an empty dict and list although every child wrote to them: the children got a "
            f"{plain[0]['given'][0]} and a {plain[0]['given'][1]}, copied into each child, so their writes stayed "
            "there. Use manager.dict() and manager.list()",
            pytrace=False,
        )
    errors = [report["error"] for report in one["reports"] if "error" in report]
    if errors:
        pytest.fail(
            f"the worker could not write to what {call} gave it: {errors[0]['type']}: {errors[0]['message']}",
            pytrace=False,
        )
    assert results == want, f"{call} returned results {results}, but the children wrote {want}"
    assert isinstance(log, list) and sorted(log, key=str) == sorted(keys, key=str), (
        f"{call} returned log {log}, but each child appended its key: expected {keys} in any order"
    )


@pytest.mark.task(1)
def test_every_childs_contribution_is_there(student):
    """collect returns what every child wrote to the managed dict and list"""
    caller_pid, calls = collected(student)
    judge_contents(student, calls[0], caller_pid)


@pytest.mark.task(1)
def test_collect_returns_plain_copies(student):
    """collect returns a plain dict and a plain list, copied before the manager shut down"""
    _, calls = collected(student)
    one = calls[0]
    returned(student, one, "collect")
    assert "results" in one, (
        f"collect returned a {one['returned_type']}, not the pair (results, log): return dict(results), list(log)"
    )
    kinds = (one["results"]["type"], one["log"]["type"])
    assert kinds == ("dict", "list"), (
        f"collect returned a {kinds[0]} and a {kinds[1]}, not a dict and a list: {PLAIN_COPY}"
    )


@pytest.mark.task(1)
def test_manager_is_gone_after_collect(student):
    """collect's manager has shut down by the time collect returns"""
    _, calls = collected(student)
    one = calls[0]
    returned(student, one, "collect")
    judge_managers_gone(one, "collect")


@pytest.mark.task(1)
def test_collect_runs_the_processes_at_once(student):
    """collect starts one process per key, all running at the same time"""
    caller_pid, calls = collected(student)
    one = calls[0]
    returned(student, one, "collect")
    judge_children(one, caller_pid, "collect", len(KEYS))
    window = one["window"]
    assert window["met"] >= len(KEYS), (
        f"the {len(KEYS)} processes of collect were never all running at the same time (at most {window['met']} "
        "were, each waiting for the others)"
        + (
            ": you join a process before you start the next one. Start them all first, then join them all"
            if window["joined_early"]
            else ": start them all first, then join them all"
        )
    )


@pytest.mark.task(1)
def test_collect_waits_for_every_process(student):
    """collect returns only once every process has finished"""
    caller_pid, calls = collected(student)
    one = calls[0]
    returned(student, one, "collect")
    judge_children(one, caller_pid, "collect", len(KEYS))
    after = one["call"]["after"]
    waiting = max(after["held"], after["unfinished"], after["running"])
    assert not waiting, (
        f"collect returned while {waiting} of its {len(KEYS)} processes were still running (the grader held them "
        "back, the last started first): join every process, not only some of them, before you copy the results"
    )


@pytest.mark.task(1)
def test_collect_takes_a_generator_and_keeps_nothing_between_calls(student):
    """collect given a generator of keys, then [] and then one key, in the same process"""
    runs = [[KEYS, "generator"], [[], "list"], [["solo"], "list"]]
    caller_pid, calls = collected(student, runs, 0.0, "forward")
    for number, ((keys, kind), one) in enumerate(zip(runs, calls, strict=True)):
        call = f"collect(worker, {'a generator of ' if kind == 'generator' else ''}{keys})"
        if number:
            call += f" (call {number + 1} of {len(runs)})"
        judge_contents(student, one, caller_pid, call)
        judge_managers_gone(one, "collect", required=bool(keys))


# ---------------------------------------------------------------- task 2


def asked(student, questions, hold=1.0):
    facts = student.call("ask", questions, hold, timeout=40)
    return facts["caller_pid"], facts["calls"]


def the_answer(student, one, caller_pid):
    """What ask_in_child returned, once it ran the worker once in a child."""
    value = returned(student, one, "ask_in_child")
    judge_children(one, caller_pid, "ask_in_child", 1)
    return value


@pytest.mark.task(2)
def test_answer_comes_back_from_the_child(student):
    """ask_in_child returns the answer the child set on the managed Namespace"""
    question = "how many cores?"
    caller_pid, calls = asked(student, [question])
    one = calls[0]
    the_answer(student, one, caller_pid)
    report = one["reports"][0]
    answer = one["answer"]
    want = report.get("answered")
    if report["address"] is None and answer.get("value") != want:
        pytest.fail(
            f"ask_in_child returned {answer.get('value')}: the worker got a plain {report['given']}, which is "
            "copied into the child, so the answer it set stayed there. Use manager.Namespace()",
            pytrace=False,
        )
    if "unreadable" in answer:
        pytest.fail(
            f"ask_in_child returned a {answer['type']} of a manager that has shut down "
            f"({answer['unreadable']['type']}): return namespace.answer, read inside the with block",
            pytrace=False,
        )
    assert not answer["proxy"], (
        f"ask_in_child returned a {answer['type']}, a proxy: return namespace.answer, the value the child set"
    )
    if answer["value"] is None and one["call"]["after"]["before_answer"]:
        pytest.fail(
            "ask_in_child returned None while the child had not answered yet (the grader held it back): "
            "join() the child, then read namespace.answer",
            pytrace=False,
        )
    if answer["value"] is None:
        pytest.fail(
            "ask_in_child returned None, the answer as it was before the child set it: read namespace.answer "
            "after join(), once the child has finished",
            pytrace=False,
        )
    assert answer["value"] == want, f"ask_in_child returned {answer['value']}, but the child answered {want}"


@pytest.mark.task(2)
def test_child_finds_the_question_and_no_answer_yet(student):
    """the child finds namespace.question = question and namespace.answer = None the moment it starts"""
    question = "is the answer there yet?"
    caller_pid, calls = asked(student, [question])
    one = calls[0]
    the_answer(student, one, caller_pid)
    report = one["reports"][0]
    seen = report["seen"]
    assert seen["question"] != MISSING, (
        "the child found no namespace.question when it started: set namespace.question = question before you "
        "start the child (what you set after start() comes too late: the child may already have read it)"
    )
    assert seen["question"] == question, f"the child found namespace.question == {seen['question']!r}, not {question!r}"
    assert seen["answer"] != MISSING, (
        "the child found no namespace.answer when it started: set namespace.answer = None before you start the child"
    )
    assert seen["answer"] is None, (
        f"the child found namespace.answer == {seen['answer']!r} when it started, not None: "
        "set namespace.answer = None before you start the child"
    )


@pytest.mark.task(2)
def test_ask_in_child_waits_for_the_child(student):
    """ask_in_child returns only once the child has finished, not as soon as it answered"""
    caller_pid, calls = asked(student, ["are you done?"])
    one = calls[0]
    the_answer(student, one, caller_pid)
    after = one["call"]["after"]
    if after["before_answer"]:
        pytest.fail(
            "ask_in_child returned while the child had not even answered yet (the grader held it back): "
            "join() the child before you read namespace.answer",
            pytrace=False,
        )
    if after["after_answer"]:
        pytest.fail(
            "ask_in_child returned once the child had answered, but while the child was still running (the grader "
            "held it back after it answered): waiting for the answer is not waiting for the child. join() the child",
            pytrace=False,
        )
    assert not after["unfinished"] and not after["running"], (
        "ask_in_child returned while the child was still running: join() it before you read namespace.answer"
    )


@pytest.mark.task(2)
def test_manager_is_gone_after_ask_in_child(student):
    """ask_in_child's manager has shut down by the time ask_in_child returns"""
    caller_pid, calls = asked(student, ["is the manager still there?"])
    one = calls[0]
    the_answer(student, one, caller_pid)
    judge_managers_gone(one, "ask_in_child")


@pytest.mark.task(2)
def test_ask_in_child_twice_in_one_process(student):
    """ask_in_child called twice in the same process, the second time with the empty question"""
    questions = ["first question", ""]
    caller_pid, calls = asked(student, questions)
    for question, one in zip(questions, calls, strict=True):
        call = f"ask_in_child(worker, {question!r})" + (" (a second call)" if question == questions[-1] else "")
        the_answer(student, one, caller_pid)
        report = one["reports"][0]
        assert report["seen"]["question"] == question, (
            f"in {call} the child found namespace.question == {report['seen']['question']!r}, not {question!r}"
        )
        want = report.get("answered")
        got = one["answer"].get("value")
        assert got == want, f"{call} returned {got}, but the child answered {want}"
        judge_managers_gone(one, "ask_in_child")


# ---------------------------------------------------------------- task 3


def appended(student, start, steps):
    """The managed dict after each append_to step, in this process; fail in words when a step raised or hung."""
    facts = student.call("append_here", steps, start, timeout=STARTING_CALL_TIMEOUT)
    if facts["call"] is not None:
        key, value = facts["step"]
        call = facts["call"]
        if call["outcome"] == "raised":
            error = call["error"]
            where = f" ({error['where']})" if error.get("where") else ""
            pytest.fail(
                f"append_to(shared, {key!r}, {value!r}) raised {error['type']}: {error['message']}{where}",
                pytrace=False,
            )
        student.returned(call, "append_to")
    return facts["after"]


def is_part_of(items, whole):
    """Whether items is whole with some of its values left out (or all of it), order kept."""
    rest = iter(whole)
    return isinstance(items, list) and all(any(item == other for other in rest) for item in items)


def judge_steps(start, steps, after):
    state = {key: list(items) for key, items in start.items()}
    for (key, value), got in zip(steps, after, strict=True):
        before = dict(state)
        missing = key not in state
        state[key] = [*state.get(key, []), value]
        if got == state:
            continue
        call = f"append_to(shared, {key!r}, {value!r})"
        if got == before:
            pytest.fail(f"{call} on {before} changed nothing in the managed dict: {IN_PLACE}", pytrace=False)
        if missing and got.get(key) == []:
            pytest.fail(f"{call} on a key that shared did not have stored an empty list: {IN_PLACE}", pytrace=False)
        if missing and got.get(key) == [value, value]:
            pytest.fail(
                f"{call} on a key that shared did not have stored {got[key]}, not [{value!r}]: a new list starts "
                "empty, and then gets the value once",
                pytrace=False,
            )
        pytest.fail(f"after {call} on {before}, the managed dict holds {got}, not {state}", pytrace=False)


@pytest.mark.task(3)
def test_append_to_a_key_that_has_a_list(student):
    """append_to appends to the list already at shared[key], and the change reaches the manager"""
    start = {"seen": [1], "other": ["x"]}
    steps = [["seen", 2], ["seen", 0], ["seen", None], ["seen", [5, 6]], ["seen", ""]]
    judge_steps(start, steps, appended(student, start, steps))


@pytest.mark.task(3)
def test_append_to_a_missing_key_starts_a_new_list(student):
    """append_to on a key shared does not have stores a new list holding only value"""
    start = {"seen": [1]}
    steps = [["new", "a"], ["", 0], ["new", "b"], ["none", None]]
    judge_steps(start, steps, appended(student, start, steps))


@pytest.mark.task(3)
def test_appends_from_children_are_written_back(student):
    """append_to called in several child processes at once, each on its own key: every value reaches the manager"""
    values = {"red": [1, 2, 3, 4], "green": [10, 20, 30], "blue": ["x", "y"]}
    start = {"red": [0]}
    facts = student.call("append_in_children", values, start, timeout=40)
    student.fail_on_child_errors([report["error"] for report in facts["reports"] if "error" in report])
    assert len(facts["reports"]) == len(values), (
        f"only {len(facts['reports'])} of {len(values)} processes came back from append_to in time"
    )
    got = facts["shared"]
    want = {key: [*start.get(key, []), *items] for key, items in values.items()}
    if got == want:
        return
    if isinstance(got, dict) and all(got.get(key, []) == start.get(key, []) for key in values):
        pytest.fail(f"the children's appends never reached the manager (it holds {got}): {IN_PLACE}", pytrace=False)
    if isinstance(got, dict) and all(is_part_of(got.get(key, []), items) for key, items in want.items()):
        pytest.fail(
            f"after the children's append_to calls the managed dict holds {got}, not {want}: some values were lost "
            "although each process appended to its own key. A process that writes back more than its own key (a "
            "copy of the whole dict, with update()) puts back the other keys' old lists, over what the other "
            "processes wrote in the meantime. Store back only shared[key]",
            pytrace=False,
        )
    assert got == want, f"after the children's append_to calls the managed dict holds {got}, not {want}"
