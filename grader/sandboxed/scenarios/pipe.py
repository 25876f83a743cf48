"""Scenarios for exercise 5 (pipe), run inside the sandbox.

Each scenario takes the graded module first, drives it, and returns plain
facts (JSON data) for the hidden test to judge. What child processes run is a
module-level function here or in the graded module, so that every start
method finds it by name. Every blocking call has a timeout: the scenario
itself never calls recv() without poll(timeout) first, and a graded call is
made with the kit's call_with_deadline, so that a hang is a fact.

Evidence used, and why:
- In order and intact: every message carries a payload (text, nested data,
  falsy values, a block larger than a pipe holds) that the scenario compares,
  type and value, with what it sent; only the verdicts travel back as JSON.
  The first request to serve takes longest to handle, so answers sent as
  they are ready come back out of order every time.
- Another process: the answers and messages carry the pid of the process
  that made them.
- One-way: the writer reports whether its end of the pipe is readable; the
  writing end of Pipe(duplex=False) is not.
- serve closes conn: the child that runs serve reports conn.closed once serve
  has returned, while the process still runs (its end would close anyway
  when it ends).
- "Returns at once": start_server is given DEADLINE seconds; a start_server
  still running then is waiting for its server, which waits for requests
  that only the returned end can send. The scenario ends the processes it
  started and looks again: one that returns now was waiting for its server.
- "Close your copy of the child's end": once the server has ended and been
  joined, the caller's end must read EOF at once; a copy left open in the
  caller's process keeps it silent.
- Timeouts: the grader's responder answers after 0.6 s (timeout 1.0: must be
  returned) and after 1.6 s (timeout 1.0: TimeoutError, raised before the
  answer was even sent); an answer after 0.3 s with a timeout of 20 s must be
  returned long before the timeout.
- The end of the stream: the writer pauses PAUSE seconds in the middle, so a
  reader that stops when nothing came for a moment stops early every time;
  a writer that has closed its end stays (held by the scenario) until the
  graded function has had GRACE seconds to return, so one that does not join
  returns while it still runs, and one that joins is released.
- A child that runs graded code closes its inherited copy of the caller's
  end first (a forked child gets a copy of every open end), so that closing
  the caller's end really closes the pipe.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import signal
import threading
import time
import warnings
from multiprocessing.connection import Connection
from types import ModuleType
from typing import Any

from grader.sandboxed.scenarios.kit import (
    AFTER_RELEASE,
    GRACE,
    HUNG,
    RETURNED,
    Called,
    call_with_deadline,
    drain,
    error_fact,
    plain,
)
from grader.sandboxed.scenarios.queues import StartRecorder, same

# Forking from the thread that runs the graded code is safe here (nothing else holds a lock
# the child needs); Python 3.12+ warns about it anyway.
warnings.filterwarnings("ignore", message=r".*multi-threaded.*fork", category=DeprecationWarning)

WAIT = 20.0  # seconds any wait here may last for something a correct solution delivers
DEADLINE = 8.0  # seconds a graded function is given before it counts as stuck (a correct one takes about 1)
STOP_WAIT = 5.0  # seconds a process is given to end once it was told to
EOF_WAIT = 1.0  # seconds the caller's end is given to read EOF once the other side has ended
SLOW_FIRST = 0.5  # seconds the handler takes for the first request to serve
PAUSE = 2.0  # seconds a writer pauses in the middle of its messages
BIG = 256 * 1024  # bytes in the large message: more than a pipe holds at once
IN_TIME, TOO_LATE, ASK_TIMEOUT = 0.6, 1.6, 1.0  # the answer's delay, in time and too late, for one timeout


def payload(seq: int) -> Any:
    """The message number seq: text, nested data or a large block, always the same for the same seq."""
    kinds = [
        f"message {seq}: ünïcödé ✓",
        {"seq": seq, "nested": [seq, (seq, "tuple"), {"set": {seq, seq + 1}}]},
        bytes([seq % 256]) * (BIG if seq % 5 == 4 else 17),
    ]
    return kinds[seq % 3] if seq % 5 != 4 else kinds[2]


def shown(value: Any) -> str:
    """A short readable form of a message, for a test's words."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _call_facts(call: Called) -> dict[str, Any]:
    call.value, value = None, call.value  # each scenario summarises what a call returned
    facts = call.facts()
    call.value = value
    return facts


# --- what runs in child processes ----------------------------------------------------------------------------------


def describe(request: Any) -> dict[str, Any]:
    """Handler: the request back, with the pid of the process that answered; {"slow": s} takes s seconds."""
    if isinstance(request, dict) and request.get("slow"):
        time.sleep(request["slow"])
    return {"echo": request, "pid": os.getpid()}


def serve_in_child(module_name: str, conn: Connection, callers_end: Connection, reports: Any) -> None:
    """Child target: close the inherited copy of the caller's end, run the graded serve(), report how it ended."""
    callers_end.close()
    try:
        importlib.import_module(module_name).serve(conn, describe)
    except BaseException as exc:  # the error is the fact to report
        reports.put({"error": {**error_fact(exc), "function": "serve"}})
        raise
    reports.put({"returned": True, "closed": conn.closed})


def scripted_responder(conn: Connection, callers_end: Connection, script: list[tuple], sent_at: Any) -> None:
    """Child target: for the i-th request, wait script[i][0] seconds, then answer (describe, or a given value)."""
    callers_end.close()
    for index, (delay, answer) in enumerate(script):
        try:
            request = conn.recv()
        except EOFError:
            return
        time.sleep(delay)
        sent_at[index] = time.monotonic()  # one clock for every process of this machine
        conn.send(describe(request) if answer == "describe" else answer[1])
    try:
        conn.recv()  # until the caller closes its end
    except EOFError:
        pass


def write_messages(conn: Connection, count: int, sent_all: Any) -> None:
    """Writer: count messages, each saying where it was written and on what kind of end.

    It first waits PAUSE, as a writer that starts slowly would (under spawn on a
    busy machine, a second or more): a reader that gives up at the first quiet
    moment then misses every message in every run, not only when the machine is slow.
    """
    time.sleep(PAUSE)
    for seq in range(count):
        conn.send(
            {"seq": seq, "pid": os.getpid(), "readable": conn.readable, "writable": conn.writable, "data": payload(seq)}
        )
    sent_all.set()
    conn.close()


def write_then_stay(conn: Connection, count: int, pause_at: int, sent_all: Any, release: Any) -> None:
    """Writer: count messages with a pause before message pause_at; close; then stay until released."""
    for seq in range(count):
        if seq == pause_at:
            time.sleep(PAUSE)
        conn.send({"seq": seq, "pid": os.getpid(), "data": payload(seq)})
    conn.close()
    sent_all.set()
    release.wait(WAIT)


FEW = ["a", 0, None]


def write_few(conn: Connection) -> None:
    """Writer that takes no arguments: the writing end alone."""
    for message in FEW:
        conn.send(message)
    conn.close()


# --- helpers -------------------------------------------------------------------------------------------------------


def _receive(conn: Connection, wait: float = WAIT) -> dict[str, Any]:
    """One message, waiting at most wait seconds: {"message": ...}, {"silent": True} or {"eof": True}."""
    try:
        if not conn.poll(wait):
            return {"silent": True}
        return {"message": conn.recv()}
    except (EOFError, OSError):
        return {"eof": True}


def _check_answer(got: dict[str, Any], request: Any) -> dict[str, Any]:
    """What the test needs to know about one answer, as JSON."""
    if "message" not in got:
        return {"kind": "eof" if got.get("eof") else "silent", "request": shown(request)}
    answer = got["message"]
    if not isinstance(answer, dict) or "echo" not in answer:
        return {"kind": "odd", "repr": shown(answer), "request": shown(request)}
    return {
        "kind": "answer",
        "intact": same(answer["echo"], request),
        "echo": shown(answer["echo"]),
        "request": shown(request),
        "pid": answer.get("pid"),
    }


def _send(conn: Connection, message: Any) -> bool:
    """Send, and say whether it worked: a responder that died has closed the pipe."""
    try:
        conn.send(message)
    except (OSError, ValueError):
        return False
    return True


def _stop(process: multiprocessing.process.BaseProcess) -> dict[str, Any]:
    process.join(STOP_WAIT)
    return {"ended": not process.is_alive(), "exitcode": process.exitcode}


def _reports(reports: Any) -> dict[str, Any]:
    found = drain(reports, first_wait=1.0)
    return {
        "errors": [report["error"] for report in found if "error" in report],
        "returned": any(report.get("returned") for report in found),
        "closed": [report["closed"] for report in found if "closed" in report],
    }


# --- task 1: serve -------------------------------------------------------------------------------------------------


def _start_graded_server(module: ModuleType) -> tuple[Connection, multiprocessing.Process, Any]:
    mine, theirs = multiprocessing.Pipe()
    reports: multiprocessing.queues.Queue[Any] = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve_in_child, args=(module.__name__, theirs, mine, reports))
    server.start()
    theirs.close()
    return mine, server, reports


SERVE_REQUESTS = [
    {"seq": 0, "slow": SLOW_FIRST},
    0,
    "",
    [],
    False,
    {"seq": 1, "data": payload(1)},
    "twice",
    "twice",
    payload(2),
    3,
]


def serve_in_order(module: ModuleType) -> dict[str, Any]:
    """Every request sent at once (the first takes longest to handle), then a large one, then None."""
    conn, server, reports = _start_graded_server(module)
    requests = SERVE_REQUESTS
    sent = [_send(conn, request) for request in requests]
    answers: list[dict[str, Any]] = []
    for request in requests:
        answers.append(_check_answer(_receive(conn, WAIT if not answers else STOP_WAIT), request))
        if answers[-1]["kind"] != "answer":
            break
    big = {"seq": "big", "data": bytes(range(256)) * (BIG // 256)}
    if len(answers) == len(requests) and answers[-1]["kind"] == "answer" and _send(conn, big):
        answers.append(_check_answer(_receive(conn, STOP_WAIT), big))
    _send(conn, None)
    after_none = _receive(conn, STOP_WAIT)
    if "message" in after_none:
        after_none = {"message": shown(after_none["message"])}
    return {
        "caller_pid": os.getpid(),
        "server_pid": server.pid,
        "requests": [shown(request) for request in requests] + [shown(big)],
        "falsy": [not request for request in requests] + [False],
        "all_sent": all(sent),
        "answers": answers,
        "after_none": after_none,
        **_stop(server),
        **_reports(reports),
    }


def serve_until_closed(module: ModuleType) -> dict[str, Any]:
    """Two requests, then the caller closes its end without a sentinel."""
    conn, server, reports = _start_graded_server(module)
    answers = []
    for request in ("one", 2):
        if not _send(conn, request):
            break
        answers.append(_check_answer(_receive(conn), request))
    conn.close()
    return {"caller_pid": os.getpid(), "answers": answers, **_stop(server), **_reports(reports)}


# --- task 2: start_server ------------------------------------------------------------------------------------------


def _started_server(module: ModuleType) -> dict[str, Any]:
    """One call of start_server, given DEADLINE seconds; a call still running then is unblocked and watched."""
    with StartRecorder() as starts:
        call = call_with_deadline(module.start_server, describe)
    facts = _call_facts(call)
    facts["started"] = len(starts.started)
    if call.outcome == HUNG:
        for pid in starts.pids():  # the server it waits for: end it, and see whether start_server then returns
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
        call = call.wait_longer(STOP_WAIT)
        facts["after_stopping"] = _call_facts(call)
        return facts
    returned = call.value
    facts["returned_repr"] = shown(returned)
    facts["is_pair"] = isinstance(returned, tuple) and len(returned) == 2
    if facts["is_pair"]:
        conn, server = returned
        facts["is_connection"] = isinstance(conn, Connection)
        facts["is_process"] = isinstance(server, multiprocessing.process.BaseProcess)
        if facts["is_connection"] and facts["is_process"]:
            facts["is_started"] = server.pid is not None
            facts["alive_at_return"] = server.is_alive()
            facts["live"] = (conn, server)
    return facts


def _exchange(conn: Connection, requests: list[Any]) -> list[dict[str, Any]]:
    answers = []
    for request in requests:
        if not _send(conn, request):
            answers.append({"kind": "send-failed", "request": shown(request)})
            break
        answers.append(_check_answer(_receive(conn, STOP_WAIT), request))
        if answers[-1]["kind"] != "answer":
            break
    return answers


def start_server_exchange(module: ModuleType) -> dict[str, Any]:
    """Two servers started one after the other in this process; each answers; each stops at None; then EOF."""
    servers = []
    for _ in range(2):
        facts = _started_server(module)
        servers.append(facts)
        if "live" not in facts:
            break
    usable = [facts for facts in servers if "live" in facts and facts["is_started"]]
    if len(usable) == len(servers) == 2:
        first, second = (facts["live"] for facts in usable)
        # Interleaved: a request to the second server before the first one's answer is read.
        _send(first[0], {"to": "first"})
        servers[1]["answers"] = _exchange(second[0], [{"to": "second"}, "two", 2])
        servers[0]["answers"] = [_check_answer(_receive(first[0], STOP_WAIT), {"to": "first"})]
        servers[0]["answers"] += _exchange(first[0], [[1], payload(1), payload(4)])
    for facts in usable:
        conn, server = facts.pop("live")
        facts["server_pid"] = server.pid
        facts["none_sent"] = _send(conn, None)
        facts.update(_stop(server))
        # The server has ended: its end is closed. Only a copy left in this process keeps the pipe open.
        got = _receive(conn, EOF_WAIT)
        while "message" in got:  # what the server sent before it ended (an answer to None, say) comes first
            got = _receive(conn, EOF_WAIT)
        facts["after_end"] = "eof" if got.get("eof") else "silent"
    for facts in servers:
        facts.pop("live", None)
    return {"caller_pid": os.getpid(), "servers": servers}


# --- task 3: ask ---------------------------------------------------------------------------------------------------


def _responder(script: list[tuple]) -> tuple[Connection, multiprocessing.Process, Any]:
    mine, theirs = multiprocessing.Pipe()
    sent_at = multiprocessing.Array("d", len(script))
    responder = multiprocessing.Process(target=scripted_responder, args=(theirs, mine, script, sent_at))
    responder.start()
    theirs.close()
    return mine, responder, sent_at


def _ask_facts(call: Called, request: Any, expected: Any, caller_pid: int) -> dict[str, Any]:
    facts = _call_facts(call)
    if call.outcome == RETURNED:
        value = call.value
        if expected == "describe":
            answer = _check_answer({"message": value}, request)
            facts["right"] = answer.get("intact", False) and answer.get("pid") not in (None, caller_pid)
        else:
            facts["right"] = same(value, expected[1])
        facts["returned_repr"] = shown(value)
    return facts


def ask_in_time(module: ModuleType) -> dict[str, Any]:
    """Answers that come in time: after 0.3 s (timeout 20 s), after 0.6 s (timeout 1 s), None and 0 (timeout 5 s)."""
    asks = [
        ({"question": "slow", "data": payload(0)}, 20.0, 0.3, "describe"),
        ({"question": "in time"}, ASK_TIMEOUT, IN_TIME, "describe"),
        ("what is None?", 5.0, 0.05, ("value", None)),
        ("how many?", 5.0, 0.05, ("value", 0)),
    ]
    conn, responder, _ = _responder([(delay, expected) for _, _, delay, expected in asks])
    results = []
    for request, timeout, delay, expected in asks:
        call = call_with_deadline(module.ask, conn, request, timeout)
        facts = _ask_facts(call, request, expected, os.getpid())
        facts.update(request=shown(request), timeout=timeout, delay=delay)
        if expected != "describe":
            facts["expected"] = shown(expected[1])
        results.append(facts)
        if call.outcome == HUNG:
            break
    conn.close()
    responder.join(STOP_WAIT)
    return {"caller_pid": os.getpid(), "asks": results}


def ask_without_an_answer(module: ModuleType) -> dict[str, Any]:
    """Nobody answers (timeout 0.5 s); then an answer that comes TOO_LATE s after a request with ASK_TIMEOUT."""
    mine, theirs = multiprocessing.Pipe()
    nobody = _call_facts(call_with_deadline(module.ask, mine, "anyone there?", 0.5))
    got = _receive(theirs, 1.0)
    nobody.update(timeout=0.5, request_arrived="message" in got and same(got["message"], "anyone there?"))
    conn, responder, sent_at = _responder([(TOO_LATE, "describe")])
    request = {"question": "too late"}
    call = call_with_deadline(module.ask, conn, request, ASK_TIMEOUT)
    late = _ask_facts(call, request, "describe", os.getpid())
    answered_at = sent_at[0]
    late.update(
        timeout=ASK_TIMEOUT,
        delay=TOO_LATE,
        ended_before_the_answer=call.ended_at is not None and (not answered_at or call.ended_at < answered_at),
    )
    conn.close()
    responder.join(STOP_WAIT)
    return {"nobody": nobody, "late": late}


# --- task 4: one-way pipe ------------------------------------------------------------------------------------------


def write_later(writer: Connection, messages: list[Any], pauses: dict[int, float], closed_at: list[float]) -> None:
    """Thread: send the messages, pausing before some; then close the writing end and note when."""
    for index, message in enumerate(messages):
        time.sleep(pauses.get(index, 0.0))
        writer.send(message)
    closed_at.append(time.monotonic())
    writer.close()


def _read_case(module: ModuleType, messages: list[Any], pauses: dict[int, float]) -> dict[str, Any]:
    reader, writer = multiprocessing.Pipe(duplex=False)
    closed_at: list[float] = []
    threading.Thread(target=write_later, args=(writer, messages, pauses, closed_at), daemon=True).start()
    call = call_with_deadline(module.read_until_closed, reader)
    facts = _call_facts(call)
    facts["count"] = len(messages)
    facts["sent"] = [shown(message) for message in messages]
    facts["pause"] = max(pauses.values(), default=0.0)
    # When it returned, not how long it ran: on a loaded machine the graded call may start after the writing did.
    facts["returned_before_close"] = (
        call.outcome == RETURNED
        and call.ended_at is not None  # always, for a call that returned
        and (not closed_at or call.ended_at < closed_at[0])
    )
    value = call.value
    if isinstance(value, list):
        facts["length"] = len(value)
        facts["intact"] = [same(got, sent) for got, sent in zip(value, messages, strict=False)]
        facts["first_wrong"] = next(
            (
                {"index": index, "got": shown(got), "sent": shown(sent)}
                for index, (got, sent) in enumerate(zip(value, messages, strict=False))
                if not same(got, sent)
            ),
            None,
        )
    else:
        facts["returned_repr"] = shown(value)
    return facts


def read_until_writer_closes(module: ModuleType) -> dict[str, Any]:
    """Messages (None, 0 and "" among them) that come slowly, with a long pause; then a writer that sends none."""
    messages = [payload(0), None, 0, payload(1), "", payload(4), [], payload(2), False, payload(3)]
    cases = [_read_case(module, messages, {0: 0.5, 5: PAUSE})]
    if cases[-1]["outcome"] != HUNG:
        cases.append(_read_case(module, [], {}))
    return {"cases": cases}


def _messages(value: Any) -> Any:
    if not isinstance(value, list):
        return None
    found = []
    for message in value:
        if not isinstance(message, dict) or "seq" not in message:
            found.append({"odd": shown(message)})
            continue
        entry = {key: plain(message.get(key)) for key in ("seq", "pid", "readable", "writable")}
        entry["intact"] = (
            same(message.get("data"), payload(message["seq"])) if isinstance(message["seq"], int) else False
        )
        found.append(entry)
    return found


def stream_one_way(module: ModuleType, count: int) -> dict[str, Any]:
    """stream_from_child with a writer of count messages (one larger than a pipe holds); then one without args."""
    sent_all = multiprocessing.Event()
    with StartRecorder() as starts:
        call = call_with_deadline(module.stream_from_child, write_messages, (count, sent_all))
    facts = _call_facts(call)
    facts.update(
        caller_pid=os.getpid(),
        count=count,
        sent_all=sent_all.is_set(),
        writers_running=starts.running(),
        messages=_messages(call.value),
        returned_repr=shown(call.value),
    )
    if call.outcome == RETURNED:
        again = call_with_deadline(module.stream_from_child, write_few)  # args left out
        facts["without_args"] = _call_facts(again)
        facts["without_args"].update(
            sent=[shown(message) for message in FEW],
            right=isinstance(again.value, list) and len(again.value) == len(FEW)
            and all(same(got, sent) for got, sent in zip(again.value, FEW, strict=False)),
            returned_repr=shown(again.value),
        )  # fmt: skip
    return facts


def stream_until_closed(module: ModuleType, count: int, pause_at: int) -> dict[str, Any]:
    """A writer that pauses PAUSE s midway, closes its end, then stays until stream_from_child has had GRACE."""
    sent_all, release = multiprocessing.Event(), multiprocessing.Event()
    with StartRecorder() as starts:
        call = call_with_deadline(
            module.stream_from_child,
            write_then_stay,
            (count, pause_at, sent_all, release),
            after=starts.running,
            hopeful=lambda: not sent_all.is_set(),
        )
        if call.outcome == HUNG and sent_all.is_set():
            call = call.wait_longer(GRACE)
        returned_while_held = call.outcome != HUNG
        writer_running_when_held = starts.running()
        release.set()
        stuck = call.outcome == HUNG
        if stuck:
            call = call.wait_longer(AFTER_RELEASE)
    facts = _call_facts(call)
    facts.update(
        caller_pid=os.getpid(),
        count=count,
        pause=PAUSE,
        sent_all=sent_all.is_set(),
        stuck_before_release=stuck,
        writer_running_when_held=writer_running_when_held,
        returned_while_held=returned_while_held,
        running_at_return=call.after,
        writers_running=starts.running(),
        started=len(starts.started),
        messages=_messages(call.value),
        returned_repr=shown(call.value),
    )
    return facts
