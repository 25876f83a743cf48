"""Hidden tests for exercise 7 (manager). Scenarios: grader/sandboxed/scenarios/manager.py."""

import pytest

EXERCISE = "manager"

KEYS = ["north", "east", "south"]
PLAIN_COPY = (
    "copy it while the manager still runs, inside the with block: dict(results) and list(log) "
    "(a proxy only forwards to the manager, and the manager stops when the with block ends)"
)


def collected(student, *, read=True):
    """collect's facts; with read, fail unless it returned a readable pair."""
    facts = student.call("collect_in_children", KEYS, timeout=30)
    if not read:
        return facts
    assert "returned" not in facts, (
        f"collect returned a {facts['returned_type']}, not the pair (results, log): return dict(...), list(...)"
    )
    for name in ("results", "log"):
        if "unreadable" in facts[name]:
            pytest.fail(
                f"collect returned {name} as a {facts[name]['type']}, a proxy of a manager that has shut down, "
                f"so it can no longer be read ({facts[name]['unreadable']}): {PLAIN_COPY}",
                pytrace=False,
            )
    return facts


def judge_managers_gone(facts, call):
    assert facts["managers_started"] or facts["managers_running"], (
        f"{call} never started a manager: use `with multiprocessing.Manager() as manager:`"
    )
    assert not facts["managers_running"], (
        f"the manager process was still running after {call} returned ({', '.join(facts['managers_running'])}): "
        "open it with `with multiprocessing.Manager() as manager:` so that it shuts down when the block ends, "
        "and do not keep it (or a proxy from it) in a global"
    )
    assert not facts["others_running"], (
        f"processes were still running after {call} returned ({', '.join(facts['others_running'])}): join them all"
    )


# ---------------------------------------------------------------- task 1


@pytest.mark.task(1)
def test_every_childs_contribution_is_there(student):
    """collect returns what every child wrote to the managed dict and list"""
    facts = collected(student)
    reports = facts["reports"]
    assert reports, "collect never ran the worker: start one Process(target=worker, args=(key, results, log)) per key"
    pids = [report["pid"] for report in reports]
    assert facts["caller_pid"] not in pids, (
        "collect called the worker in your own process: give it to multiprocessing.Process(target=worker, ...)"
    )
    assert sorted(report["key"] for report in reports) == sorted(KEYS) and len(set(pids)) == len(KEYS), (
        f"collect ran the worker for keys {sorted(r['key'] for r in reports)} in {len(set(pids))} process(es): "
        f"expected one process for each of {KEYS}"
    )
    errors = [report["error"] for report in reports if "error" in report]
    assert not errors, f"the worker could not write to what it was given: {errors[0]}"
    results, log = facts["results"]["value"], facts["log"]["value"]
    want = {report["key"]: report["pid"] for report in reports}
    if results == {} and log == [] and any(report["given"] == ["dict", "list"] for report in reports):
        pytest.fail(
            "collect returned an empty dict and list although every child wrote to them: the children got plain "
            "copies, so their writes stayed in the children. Use manager.dict() and manager.list()",
            pytrace=False,
        )
    assert results == want, f"collect returned results {results}, but the children wrote {want}"
    assert isinstance(log, list) and sorted(log, key=str) == sorted(KEYS), (
        f"collect returned log {log}, but each child appended its key: expected {KEYS} in any order"
    )


@pytest.mark.task(1)
def test_collect_returns_plain_copies(student):
    """collect returns a plain dict and a plain list, not proxies"""
    facts = collected(student)
    kinds = (facts["results"]["type"], facts["log"]["type"])
    assert kinds == ("dict", "list"), (
        f"collect returned a {kinds[0]} and a {kinds[1]}, not a dict and a list: {PLAIN_COPY}"
    )


@pytest.mark.task(1)
def test_manager_is_gone_after_collect(student):
    """collect's manager process has ended by the time collect returns"""
    facts = collected(student, read=False)  # a proxy of a manager that is gone passes here, and fails elsewhere
    judge_managers_gone(facts, "collect")


# ---------------------------------------------------------------- task 2


def asked(student, question):
    facts = student.call("ask", question, timeout=30)
    reports = facts["reports"]
    assert reports, "ask_in_child never ran the worker: start a Process(target=worker, args=(namespace,))"
    assert len(reports) == 1, f"ask_in_child ran the worker {len(reports)} times instead of once"
    report = reports[0]
    assert report["pid"] != facts["caller_pid"], (
        "ask_in_child called the worker in your own process: give it to multiprocessing.Process(target=worker, ...)"
    )
    assert "error" not in report, (
        f"the worker could not read namespace.question ({report['error']}): set namespace.question = question "
        "before you start the child"
    )
    return facts, report


@pytest.mark.task(2)
def test_answer_comes_back_from_the_child(student):
    """ask_in_child returns the answer the child set on the managed Namespace"""
    question = "how many cores?"
    facts, report = asked(student, question)
    answer = facts["answer"]
    want = {"question": question, "answered_by": report["pid"]}
    if answer.get("value") is None and report["given"] != "NamespaceProxy":
        pytest.fail(
            f"ask_in_child returned None: the worker got a plain {report['given']}, which is copied into the "
            "child, so the answer it set stayed there. Use manager.Namespace()",
            pytrace=False,
        )
    assert "unreadable" not in answer, (
        f"ask_in_child returned a {answer['type']} of a manager that has shut down ({answer['unreadable']}): "
        "return namespace.answer, read inside the with block"
    )
    if answer.get("value") is None:
        pytest.fail(
            "ask_in_child returned None: read namespace.answer after join(), once the child has set it",
            pytrace=False,
        )
    assert answer["value"] == want, f"ask_in_child returned {answer['value']}, but the child answered {want}"


@pytest.mark.task(2)
def test_namespace_question_reaches_the_child_and_the_manager_ends(student):
    """the child sees namespace.question, and ask_in_child's manager has ended when it returns"""
    question = "is the manager still there?"
    facts, report = asked(student, question)
    assert report["question"] == question, (
        f"the child read namespace.question == {report['question']!r}, not {question!r}"
    )
    judge_managers_gone(facts, "ask_in_child")


# ---------------------------------------------------------------- task 3


IN_PLACE = (
    "shared[key] hands you a copy of the list, so .append() on it changes only the copy. Take the list, "
    "append to it, and store it back: shared[key] = items"
)


@pytest.mark.task(3)
def test_appends_are_written_back(student):
    """append_to changes reach the manager, for a key that has a list and for a new key"""
    start = {"seen": [1]}
    steps = [["seen", 2], ["new", "a"], ["seen", 3], ["new", "b"]]
    facts = student.call("append_here", steps, start)
    got = facts["shared"]
    want = {"seen": [1, 2, 3], "new": ["a", "b"]}
    if got in ({"seen": [1]}, {"seen": [1], "new": []}):
        pytest.fail(f"after four append_to calls the managed dict holds {got}, not {want}: {IN_PLACE}", pytrace=False)
    assert got == want, f"after append_to calls {steps} on {start}, the managed dict holds {got}, not {want}"


@pytest.mark.task(3)
def test_appends_from_children_are_written_back(student):
    """append_to called in several child processes at once: every value reaches the manager, in order"""
    values = {"red": [1, 2, 3, 4], "green": [10, 20, 30], "blue": ["x", "y"]}
    start = {"red": [0]}
    facts = student.call("append_in_children", values, start, timeout=30)
    errors = [report["error"] for report in facts["reports"] if "error" in report]
    assert not errors, f"append_to raised in a child process: {errors[0]}"
    got = facts["shared"]
    want = {"red": [0, 1, 2, 3, 4], "green": [10, 20, 30], "blue": ["x", "y"]}
    if isinstance(got, dict) and all(got.get(key, []) == start.get(key, []) for key in values):
        pytest.fail(f"the children's appends never reached the manager (it holds {got}): {IN_PLACE}", pytrace=False)
    assert got == want, f"after the children's append_to calls the managed dict holds {got}, not {want}"
