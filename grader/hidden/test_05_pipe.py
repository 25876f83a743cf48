"""Hidden tests for exercise 5 (pipe). Scenarios: grader/sandboxed/scenarios/pipe.py.

Every message carries a sequence number and a payload that the scenario
compares with what was sent, and every answer the pid of the process that
made it. A graded function that should return but does not is reported by
the scenario after a deadline, with what it saw around it, so that a hang
reads as the mistake behind it.
"""

from typing import Any

import pytest

EXERCISE = "pipe"

# Per-call budget: a scenario gives a stuck call DEADLINE (8 s) and a correct one takes about a second.
CALL = 30


def _fail_if_child_raised(facts: dict[str, Any], function: str) -> None:
    for error in facts.get("errors", []):
        if error["type"] == "NotImplementedError":
            pytest.fail(
                f"{function}() is not written yet: it still raises NotImplementedError in the child process. "
                "Replace the TODO in pipe.py with your code.",
                pytrace=False,
            )
        if error["type"] == "EOFError":
            pytest.fail(
                f"{function}() raised EOFError when the caller closed its end of the pipe: that is how recv() says "
                "the other side is gone. Catch EOFError and return, as you do at the sentinel",
                pytrace=False,
            )
        pytest.fail(f"{function}() raised {error['type']}: {error['message']} in the child process", pytrace=False)


def _fail_if_raised(facts: dict[str, Any], function: str) -> None:
    if "raised" in facts:
        error = facts["raised"]
        pytest.fail(f"{function}() raised {error['type']}: {error['message']}", pytrace=False)


def _check_answers(answers: list[dict[str, Any]], expected: int, caller_pid: int) -> None:
    for number, answer in enumerate(answers, start=1):
        assert answer["kind"] != "silent", f"request {number} of {expected} got no answer: send handle(request) back"
        assert answer["kind"] != "eof", f"the responder closed the pipe before answering request {number} of {expected}"
        assert answer["kind"] != "send-failed", (
            f"request {number} could not be sent: the responder had already closed its end of the pipe"
        )
        assert answer["kind"] == "answer", (
            f"request {number} was answered with {answer['repr']}, not with handle(request): send what handle returns"
        )
        assert answer["intact"], (
            f"the answer to request {number} of {expected} belongs to another request: answer each request in "
            "turn, in the order they come"
        )
        assert answer["pid"] != caller_pid, "the requests were answered in the calling process, not in another one"
    assert len(answers) == expected, f"only {len(answers)} of {expected} requests were answered"


# --- task 1 ----------------------------------------------------------------------------------------------------------


@pytest.mark.task(1)
def test_serve_answers_every_request_in_order_then_stops(student):
    """serve answers each request with handle(request), in order and intact, and stops at None"""
    facts = student.call("serve_in_order", 12)
    _fail_if_child_raised(facts, "serve")
    _check_answers(facts["answers"], facts["requests"], facts["caller_pid"])
    assert facts["ended"], (
        "serve did not end after the sentinel None: it went on waiting for requests. Return when the request is None"
    )
    assert facts["exitcode"] == 0, f"the responder process ended with exit code {facts['exitcode']} instead of 0"


@pytest.mark.task(1)
def test_serve_ends_cleanly_when_the_caller_closes(student):
    """serve returns without an error when the caller closes its end (EOFError)"""
    facts = student.call("serve_until_closed")
    _fail_if_child_raised(facts, "serve")
    _check_answers(facts["answers"], 2, caller_pid=-1)
    assert facts["ended"], (
        "serve did not end after the caller closed its end of the pipe: recv() raises EOFError then; "
        "catch it and return"
    )
    assert facts["exitcode"] == 0, f"the responder process ended with exit code {facts['exitcode']} instead of 0"


# --- task 2 ----------------------------------------------------------------------------------------------------------


@pytest.mark.task(2)
def test_start_server_answers_from_another_process(student):
    """start_server returns your end and the started process; the answers come from that process"""
    facts = student.call("start_server_exchange", 6, timeout=CALL)
    _fail_if_raised(facts, "start_server")
    assert facts["returned"], (
        f"start_server did not return within {facts['deadline']:g} s: it must not run serve itself, which waits "
        "for requests forever. Start a Process with target=serve and return at once"
    )
    assert facts["is_pair"], f"start_server returned {facts['returned_repr']}, not a pair (connection, process)"
    assert facts["is_connection"] and facts["is_process"], (
        f"start_server returned {facts['returned_repr']}: return (your end of the pipe, the Process), in that order"
    )
    assert facts["started"], "the process that start_server returned was never started: call start() on it"
    _check_answers(facts["answers"], 6, facts["caller_pid"])
    assert facts["ended"], "the responder did not end after the sentinel None"
    assert facts["exitcode"] == 0, f"the responder process ended with exit code {facts['exitcode']} instead of 0"


# --- task 3 ----------------------------------------------------------------------------------------------------------


@pytest.mark.task(3)
def test_ask_waits_for_an_answer_that_comes_in_time(student):
    """ask sends the request and waits, up to the timeout, for an answer that takes a moment"""
    facts = student.call("ask_a_slow_responder", timeout=CALL)
    if facts.get("raised_timeout"):
        pytest.fail(
            f"ask raised TimeoutError after {facts['seconds']:.1f} s, although the timeout was 20 s and the answer "
            f"came after {facts['delay']:g} s: poll(timeout) waits up to timeout seconds, pass the timeout on",
            pytrace=False,
        )
    _fail_if_raised(facts, "ask")
    assert facts["returned"], f"ask did not return within {facts['deadline']:g} s, although an answer had come"
    answer = facts["answer"]
    assert answer["kind"] == "answer", f"ask returned {answer.get('repr')}, not the answer: return what recv() gives"
    assert answer["intact"], "ask returned an answer to another request"
    assert answer["pid"] != facts["caller_pid"], "the answer did not come from the responder process"


@pytest.mark.task(3)
def test_ask_gives_up_after_the_timeout(student):
    """ask raises TimeoutError when no answer comes within the timeout, instead of blocking"""
    timeout = 0.5
    facts = student.call("ask_nobody", timeout, timeout=CALL)
    assert facts["returned"] or "raised" in facts, (
        f"ask waited {facts['deadline']:g} s for an answer that never came, although the timeout was {timeout:g} s: "
        "recv() waits forever. Ask conn.poll(timeout) first: it returns False when nothing came in time"
    )
    assert facts["request_arrived"], "ask never sent the request: conn.send(request) first"
    assert "raised" in facts, (
        f"ask returned {facts['returned_repr']} when no answer came: raise TimeoutError instead, so that the caller "
        "cannot take it for an answer"
    )
    assert facts["raised_timeout"], (
        f"ask raised {facts['raised']['type']} when no answer came: raise TimeoutError (the built-in one)"
    )
    assert facts["seconds"] < timeout + 3, f"ask gave up only after {facts['seconds']:.1f} s instead of {timeout:g} s"


# --- task 4 ----------------------------------------------------------------------------------------------------------


@pytest.mark.task(4)
def test_read_until_closed_reads_to_the_end(student):
    """read_until_closed waits for messages and returns all of them, in order, once the writer closes"""
    facts = student.call("read_until_writer_closes", 10, 0.5, timeout=CALL)
    assert facts["returned"] or "raised" in facts, (
        f"read_until_closed did not return within {facts['deadline']:g} s after the writer had sent everything "
        "and closed its end: recv() raises EOFError then; catch it and return the messages"
    )
    if "raised" in facts and facts["raised"]["type"] == "EOFError":
        pytest.fail(
            "read_until_closed let EOFError out: it is how recv() says that the writer has closed, the normal end "
            "of the stream. Catch it and return the messages you received",
            pytrace=False,
        )
    _fail_if_raised(facts, "read_until_closed")
    assert not facts["returned_before_any"], (
        "read_until_closed returned before the first message was even sent: nothing to read yet does not mean "
        "the end. Keep calling recv(), which waits, until it raises EOFError"
    )
    assert "length" in facts, f"read_until_closed returned {facts['returned_repr']}, not the list of messages"
    assert facts["length"] == facts["count"], (
        f"read_until_closed returned {facts['length']} of the {facts['count']} messages sent"
    )
    assert all(facts["intact"]), "some messages came back changed or out of order: keep them as recv() gives them"


def _stream_facts(student) -> dict[str, Any]:
    facts = student.call("stream_one_way", 8, timeout=CALL)
    _fail_if_raised(facts, "stream_from_child")
    if not facts["returned"]:
        if facts["sent_all"] and not facts["writers_alive"]:
            pytest.fail(
                f"stream_from_child did not return within {facts['deadline']:g} s, although the writer had sent "
                "everything and ended. Your own process still holds its copy of the writing end, so the pipe is "
                "not closed and recv() waits for more: close the writing end in the parent right after start()",
                pytrace=False,
            )
        pytest.fail(
            f"stream_from_child did not return within {facts['deadline']:g} s: start the writer, read until "
            "EOFError, then join it",
            pytrace=False,
        )
    assert "messages" in facts, f"stream_from_child returned {facts['returned_repr']}, not the list of messages"
    return facts


@pytest.mark.task(4)
def test_stream_from_child_is_one_way_in_order_and_intact(student):
    """stream_from_child gives the writer the writing end of a one-way pipe and returns its messages in order"""
    facts = _stream_facts(student)
    messages = facts["messages"]
    assert [message.get("seq") for message in messages] == list(range(facts["count"])), (
        f"the writer sent messages 0 to {facts['count'] - 1} in order, stream_from_child returned "
        f"{[message.get('seq') for message in messages]}"
    )
    assert all(message.get("intact") for message in messages), "some messages came back changed"
    assert all(message.get("pid") != facts["caller_pid"] for message in messages), (
        "write ran in the calling process: start a Process with target=write"
    )
    assert not any(message.get("readable") for message in messages), (
        "the writer's end of the pipe can also read: the pipe is two-way. Make a one-way pipe with "
        "Pipe(duplex=False), which returns (reading end, writing end), and give the writer the second"
    )


@pytest.mark.task(4)
def test_reader_ends_when_the_writer_closes(student):
    """stream_from_child ends when the writer has closed: the parent closed its own copy of the writing end"""
    facts = _stream_facts(student)
    assert len(facts["messages"]) == facts["count"], (
        f"stream_from_child returned {len(facts['messages'])} of {facts['count']} messages: read until EOFError"
    )
    assert facts["writers_alive"] == 0, "the writer process was still running after stream_from_child returned"
