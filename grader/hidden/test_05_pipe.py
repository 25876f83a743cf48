"""Hidden tests for exercise 5 (pipe). Scenarios: grader/sandboxed/scenarios/pipe.py.

The contract each test holds a solution to: grader/hidden/contracts/05_pipe.toml.

Every message carries a payload that the scenario compares, type and value,
with what was sent, and every answer the pid of the process that made it. A
graded function that should return but does not is reported by the scenario
with what it saw around it, so that a hang reads as the mistake behind it.
"""

from typing import Any

import pytest

EXERCISE = "pipe"

# Per-call budget: a stuck graded call costs a scenario DEADLINE (8 s) and a little more; a correct one 1 to 5 s.
CALL = 40


def _fail_on_child_errors(student, facts: dict[str, Any], function: str) -> None:
    for error in facts["errors"]:
        if error["type"] == "EOFError":
            where = f" ({error['where']})" if error.get("where") else ""
            pytest.fail(
                f"{function}() raised EOFError when the caller closed its end of the pipe{where}: that is how recv() "
                "says the other side is gone. Catch EOFError and return, as you do at the sentinel",
                pytrace=False,
            )
    student.fail_on_child_errors(facts["errors"])


def _check_answers(
    answers: list[dict[str, Any]], requests: list[str], caller_pid: int, falsy: list[bool] | None = None
) -> None:
    total = len(requests)
    for number, answer in enumerate(answers, start=1):
        request = answer["request"]
        if answer["kind"] == "eof" and falsy and falsy[number - 1]:
            pytest.fail(
                f"the responder closed the pipe instead of answering request {number} of {total}, {request}, before "
                f"the sentinel None came. {request} is falsy, but it is a request: stop only when `request is None`, "
                "not when `not request`",
                pytrace=False,
            )
        assert answer["kind"] != "silent", (
            f"request {number} of {total} ({request}) got no answer within a few seconds: send handle(request) back "
            "for every request"
        )
        assert answer["kind"] != "eof", (
            f"the responder closed the pipe before answering request {number} of {total} ({request})"
        )
        assert answer["kind"] != "send-failed", (
            f"request {number} could not be sent: the responder had already closed its end of the pipe"
        )
        assert answer["kind"] == "answer", (
            f"request {number} ({request}) was answered with {answer['repr']}, not with what handle(request) "
            "returned: send that back, as it is"
        )
        assert answer["intact"], (
            f"the answer to request {number} of {total} ({request}) was the answer to {answer['echo']}: answer each "
            "request in turn, in the order they come (the handler takes longest over the first one)"
        )
        assert answer["pid"] != caller_pid, "the requests were answered in the calling process, not in another one"
    assert len(answers) == total, f"only {len(answers)} of {total} requests were answered"


# --- task 1 ----------------------------------------------------------------------------------------------------------


@pytest.mark.task(1)
def test_serve_answers_every_request_in_order_then_stops(student):
    """serve answers each request (0, "" and [] too) with handle(request), in order, and returns at None"""
    facts = student.call("serve_in_order", timeout=CALL)
    _fail_on_child_errors(student, facts, "serve")
    _check_answers(facts["answers"], facts["requests"], facts["caller_pid"], facts["falsy"])
    after = facts["after_none"]
    assert "message" not in after, (
        f"serve sent {after.get('message')} back for the sentinel None: return at None without answering it"
    )
    assert facts["ended"] and not after.get("silent"), (
        "serve did not return at the sentinel None: it went on waiting for requests. Return when the request is None"
    )
    assert facts["exitcode"] == 0, f"the responder process ended with exit code {facts['exitcode']} instead of 0"
    assert facts["closed"] == [True], (
        "serve returned at the sentinel without closing conn: call conn.close() before returning "
        "(`with conn:` or try/finally closes it on every way out)"
    )


@pytest.mark.task(1)
def test_serve_ends_cleanly_when_the_caller_closes(student):
    """serve returns without an error, and closes conn, when the caller closes its end (EOFError)"""
    facts = student.call("serve_until_closed", timeout=CALL)
    _fail_on_child_errors(student, facts, "serve")
    _check_answers(facts["answers"], ["'one'", "2"], facts["caller_pid"])
    assert facts["ended"], (
        "serve did not end after the caller closed its end of the pipe: recv() raises EOFError then; "
        "catch it and return"
    )
    assert facts["exitcode"] == 0, f"the responder process ended with exit code {facts['exitcode']} instead of 0"
    assert facts["closed"] == [True], (
        "serve returned, when the caller had closed its end, without closing conn: call conn.close() before "
        "returning (`with conn:` or try/finally closes it on every way out)"
    )


# --- task 2 ----------------------------------------------------------------------------------------------------------


def _servers(student) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    facts = student.call("start_server_exchange", timeout=CALL)
    servers = facts["servers"]
    for index, server in enumerate(servers):
        which = "start_server" if index == 0 else "a second start_server in the same process"
        if server["outcome"] == "hung":
            after = server["after_stopping"]
            if server["started"] and after["outcome"] != "hung":
                pytest.fail(
                    f"{which} returned only once the server process it had started was ended (the grader ended it "
                    f"after {server['deadline']:g} s): it waits for its server (join()?), which waits for "
                    "requests that only the end you return can send. Start the process and return at once",
                    pytrace=False,
                )
            if not server["started"]:
                pytest.fail(
                    f"{which} did not return within {server['deadline']:g} s and had started no process: it must "
                    "not run serve itself, which waits for requests forever. Start a Process with target=serve "
                    "and return at once",
                    pytrace=False,
                )
            student.returned(after, "start_server")
        student.returned(server, "start_server")
        assert server["is_pair"], f"start_server returned {server['returned_repr']}, not a pair (connection, process)"
        assert server["is_connection"] and server["is_process"], (
            f"start_server returned {server['returned_repr']}: return (your end of the pipe, the Process), "
            "in that order"
        )
        assert server["is_started"], "the process that start_server returned was never started: call start() on it"
        assert server["alive_at_return"], (
            "the process that start_server returned had already ended when it returned: it should be waiting for "
            "requests"
        )
    return facts, servers


@pytest.mark.task(2)
def test_start_server_returns_at_once_with_a_running_server(student):
    """start_server returns your end and the started process at once; that process answers and stops at None"""
    facts, servers = _servers(student)
    assert len(servers) == 2, "a second start_server in the same process did not give a working server"
    for index, server in enumerate(servers):
        requests = [answer["request"] for answer in server["answers"]]
        _check_answers(server["answers"], requests, facts["caller_pid"])
        assert len(server["answers"]) >= 3, "the server did not answer every request"
        assert all(answer["pid"] == server["server_pid"] for answer in server["answers"]), (
            f"the answers on the end that {'a second ' if index else ''}start_server returned came from another "
            "process than the one it returned: give the other end of the same pipe to that process"
        )
        assert server["ended"], "the server did not end after the caller sent None: it should run serve"
        assert server["exitcode"] == 0, f"the server process ended with exit code {server['exitcode']} instead of 0"


@pytest.mark.task(2)
def test_start_server_closes_its_copy_of_the_childs_end(student):
    """once the server has ended, your end reads EOF: start_server closed its copy of the child's end"""
    _, servers = _servers(student)
    for server in servers:
        assert server.get("ended"), "the server did not end after the caller sent None"
        assert server["after_end"] == "eof", (
            "after the server process had ended, the end that start_server returned still did not read EOF: a copy "
            "of the child's end is still open in the calling process, so the pipe never closes. Close your copy of "
            "the child's end right after start(), and keep no reference to it"
        )


# --- task 3 ----------------------------------------------------------------------------------------------------------


@pytest.mark.task(3)
def test_ask_returns_the_answer_as_soon_as_it_comes(student):
    """ask returns an answer that comes within the timeout (None and 0 too), as soon as it comes"""
    facts = student.call("ask_in_time", timeout=CALL)
    for ask in facts["asks"]:
        described = f"ask({ask['request']}, timeout={ask['timeout']:g})"
        if ask["outcome"] == "hung":
            pytest.fail(
                f"{described} had not returned after {ask['deadline']:g} s, although the answer came after "
                f"{ask['delay']:g} s: return the answer as soon as poll(timeout) says it is there, do not wait out "
                "the timeout",
                pytrace=False,
            )
        if ask["outcome"] == "raised" and ask["error"]["type"] == "TimeoutError":
            answer = f", {ask['expected']}," if "expected" in ask else ""
            pytest.fail(
                f"{described} raised TimeoutError after {ask['seconds']:.1f} s, although the answer{answer} came "
                f"after {ask['delay']:g} s"
                + (
                    f": {ask['expected']} is an answer too. Whether an answer came is what poll(timeout) says, "
                    "not what the answer is"
                    if "expected" in ask
                    else ": poll(timeout) waits up to timeout seconds, pass the timeout on"
                ),
                pytrace=False,
            )
        student.returned(ask, "ask")
        assert ask["right"], (
            f"{described} returned {ask['returned_repr']}, not the answer "
            f"({ask.get('expected', 'what the responder sent back')}): return what recv() gives"
        )


@pytest.mark.task(3)
def test_ask_raises_timeout_error_after_timeout_seconds(student):
    """ask raises TimeoutError when no answer has come after timeout seconds, also when one comes later"""
    facts = student.call("ask_without_an_answer", timeout=CALL)
    nobody, late = facts["nobody"], facts["late"]
    assert nobody["outcome"] != "hung", (
        f"ask waited {nobody['deadline']:g} s for an answer that never came, although the timeout was "
        f"{nobody['timeout']:g} s: recv() waits forever. Ask conn.poll(timeout) first: it returns False when "
        "nothing came in time"
    )
    assert nobody["request_arrived"], "ask never sent the request: conn.send(request) first"
    assert nobody["outcome"] == "raised", (
        "ask returned when no answer came: raise TimeoutError instead, so that the caller cannot take it for an answer"
    )
    assert nobody["error"]["type"] == "TimeoutError", (
        f"ask raised {nobody['error']['type']} when no answer came: raise TimeoutError (the built-in one)"
    )
    assert nobody["seconds"] < nobody["timeout"] + 3, (
        f"ask gave up only after {nobody['seconds']:.1f} s instead of {nobody['timeout']:g} s"
    )
    described = f"with timeout={late['timeout']:g}, ask"
    assert late["outcome"] != "returned", (
        f"{described} returned the answer that came only after {late['delay']:g} s: wait at most timeout seconds "
        "in all, then raise TimeoutError"
    )
    assert late["outcome"] != "hung", f"{described} had not returned after {late['deadline']:g} s"
    if late["error"]["type"] != "TimeoutError":
        student.returned(late, "ask")
    assert late["ended_before_the_answer"], (
        f"{described} raised TimeoutError only after {late['seconds']:.1f} s, when the answer had already come "
        f"(after {late['delay']:g} s): wait at most timeout seconds in all"
    )


# --- task 4 ----------------------------------------------------------------------------------------------------------


@pytest.mark.task(4)
def test_read_until_closed_reads_to_the_end(student):
    """read_until_closed waits through pauses and returns every message (None and 0 too), in order, at EOF"""
    facts = student.call("read_until_writer_closes", timeout=CALL)
    for number, case in enumerate(facts["cases"]):
        label = "a writer that sends nothing and closes" if number else f"{case['count']} messages sent slowly"
        if case["outcome"] == "hung":
            pytest.fail(
                f"read_until_closed did not return within {case['deadline']:g} s after the writer ({label}) had "
                "closed its end: recv() raises EOFError then; catch it and return the messages",
                pytrace=False,
            )
        if case["outcome"] == "raised" and case["error"]["type"] == "EOFError":
            pytest.fail(
                "read_until_closed let EOFError out: it is how recv() says that the writer has closed, the normal "
                "end of the stream. Catch it and return the messages you received",
                pytrace=False,
            )
        student.returned(case, "read_until_closed")
        assert "length" in case, f"read_until_closed returned {case['returned_repr']}, not the list of messages"
        wrong = case["first_wrong"]
        assert wrong is None, (
            f"message {wrong['index']} came back as {wrong['got']}, but {wrong['sent']} was sent: "
            "return the messages as recv() gives them, in order"
        )
        if case["length"] < case["count"] and case["returned_before_close"]:
            following = case["sent"][case["length"]]
            if following in ("None", "0", "''", "[]", "False"):
                pytest.fail(
                    f"read_until_closed returned {case['length']} of {case['count']} messages, before the writer had "
                    f"closed its end; the next message was {following}. That is a message like any other: only "
                    "EOFError ends the stream",
                    pytrace=False,
                )
            pytest.fail(
                f"read_until_closed returned {case['length']} of {case['count']} messages, before the writer had "
                f"closed its end (the writer paused {case['pause']:g} s in between): nothing to read for a moment "
                "does not mean the end. Keep calling recv(), which waits, until it raises EOFError",
                pytrace=False,
            )
        assert case["length"] == case["count"], (
            f"read_until_closed returned {case['length']} messages, but the writer ({label}) sent {case['count']}"
        )


def _stream_returned(student, facts: dict[str, Any]) -> list[dict[str, Any]]:
    """The messages stream_from_child returned; fail with what the writer was doing when it did not return."""
    if facts["outcome"] == "hung":
        if facts["sent_all"] and not facts["writers_running"]:
            pytest.fail(
                f"stream_from_child did not return within {facts['deadline']:g} s, although the writer had sent "
                "everything, closed its end and ended. Your own process still holds its copy of the writing end, "
                "so the pipe is not closed and recv() waits for more: close the writing end in the parent right "
                "after start()",
                pytrace=False,
            )
        if not facts["sent_all"] and facts["writers_running"]:
            pytest.fail(
                f"stream_from_child did not return within {facts['deadline']:g} s, and the writer had not been able "
                "to send everything: it was still running, in send() of a message larger than a pipe holds, which "
                "waits until somebody reads. Read everything (until EOFError) first, then join the writer",
                pytrace=False,
            )
    student.returned(facts, "stream_from_child")
    messages = facts["messages"]
    assert messages is not None, f"stream_from_child returned {facts['returned_repr']}, not the list of messages"
    odd = [message["odd"] for message in messages if "odd" in message]
    assert not odd, f"stream_from_child returned {odd[0]}, which the writer did not send"
    return messages


@pytest.mark.task(4)
def test_stream_from_child_is_one_way_in_order_and_intact(student):
    """stream_from_child gives a child the writing end of a one-way pipe and returns every message in order"""
    facts = student.call("stream_one_way", 8, timeout=CALL)
    messages = _stream_returned(student, facts)
    assert all(message.get("pid") != facts["caller_pid"] for message in messages), (
        "write ran in the calling process: start a Process with target=write"
    )
    assert [message.get("seq") for message in messages] == list(range(facts["count"])), (
        f"the writer sent messages 0 to {facts['count'] - 1} in order, stream_from_child returned "
        f"{[message.get('seq') for message in messages]}"
    )
    assert all(message.get("intact") for message in messages), "some messages came back changed"
    assert not any(message.get("readable") for message in messages), (
        "the writer's end of the pipe can also read: the pipe is two-way. Make a one-way pipe with "
        "Pipe(duplex=False), which returns (reading end, writing end), and give the writer the second"
    )
    again = facts["without_args"]
    if again["outcome"] == "raised" and again["error"]["type"] == "TypeError":
        pytest.fail(
            f"stream_from_child(write), with args left out, raised TypeError: {again['error']['message']}: args "
            "defaults to (), so that write gets the writing end alone",
            pytrace=False,
        )
    student.returned(again, "stream_from_child(write), with args left out,")
    assert again["right"], (
        f"stream_from_child(write), with args left out, returned {again['returned_repr']} for a writer that sent "
        f"{', '.join(again['sent'])}"
    )


@pytest.mark.task(4)
def test_stream_from_child_returns_once_the_writer_has_closed(student):
    """stream_from_child reads through a pause until the writer closes: the parent closed its copy of that end"""
    facts = student.call("stream_until_closed", 7, 5, timeout=CALL)
    messages = _stream_returned(student, facts)
    got = [message.get("seq") for message in messages]
    if got == list(range(len(got))) and len(got) < facts["count"]:
        pytest.fail(
            f"stream_from_child returned {len(got)} of the {facts['count']} messages: the writer paused "
            f"{facts['pause']:g} s after message {len(got) - 1}, then sent the rest and closed its end. Read until "
            "recv() raises EOFError: a pause does not mean the end",
            pytrace=False,
        )
    assert got == list(range(facts["count"])), (
        f"the writer sent messages 0 to {facts['count'] - 1} in order, stream_from_child returned {got}"
    )
    assert all(message.get("intact") for message in messages), "some messages came back changed"


@pytest.mark.task(4)
def test_stream_from_child_returns_only_once_the_child_has_ended(student):
    """stream_from_child joins the writer: when it returns, the child has ended"""
    facts = student.call("stream_until_closed", 7, 5, timeout=CALL)
    if facts["outcome"] == "returned" and facts["running_at_return"]:
        pytest.fail(
            "stream_from_child returned while the writer process was still running: the writer had closed its end "
            "and the grader kept it from ending until stream_from_child returned. join() the child before returning",
            pytrace=False,
        )
    _stream_returned(student, facts)
    assert facts["running_at_return"] == 0, "the writer process was still running when stream_from_child returned"
