"""Scenarios for exercise 5 (pipe), run inside the sandbox.

Each scenario takes the graded module first, drives it, and returns plain
facts (JSON data) for the hidden test to judge. What child processes run is a
module-level function here or in the graded module, so that every start
method finds it by name. Every blocking call has a timeout: the scenario
itself never calls recv() without poll(timeout) first.

Evidence used, and why:
- In order and intact: every message carries a sequence number and a payload
  (text, nested data, a large bytes block) that the scenario compares with
  what it sent, in this process; only the verdicts travel back as JSON.
- Another process: the answers and messages carry the pid of the process
  that made them.
- One-way: the writer reports whether its end of the pipe is readable; the
  writing end of Pipe(duplex=False) is not.
- Hangs: a graded function that should return promptly is called in a
  daemon thread and waited for with join(DEADLINE). When it is still running
  by then, the scenario reports what it knows (the writer had sent
  everything and ended, nothing was ever answered), so the test can name the
  mistake: the parent's copy of the writing end left open, or recv() without
  poll(timeout).
- A child that runs graded code closes its inherited copy of the caller's
  end first (a forked child gets a copy of every open end), so that closing
  the caller's end really closes the pipe.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import threading
import time
import warnings
from multiprocessing.connection import Connection
from types import ModuleType
from typing import Any

from grader.sandboxed.scenarios.facts import drain, error_fact

# Forking from the thread that runs the graded code is safe here (nothing else holds a lock
# the child needs); Python 3.12+ warns about it anyway.
warnings.filterwarnings("ignore", message=r".*multi-threaded.*fork", category=DeprecationWarning)

WAIT = 20.0  # seconds any wait here may last for something a correct solution delivers
DEADLINE = 8.0  # seconds a graded function is given before it counts as stuck (a correct one takes about 1)
STOP_WAIT = 5.0  # seconds a process is given to end once it was told to
ANSWER_DELAY = 0.3  # seconds the grader's own responder takes to answer
BIG = 256 * 1024  # bytes in the large message: more than a pipe holds at once


def payload(seq: int) -> Any:
    """The message number seq: text, nested data or a large block, always the same for the same seq."""
    kinds = [
        f"message {seq}: ünïcödé ✓",
        {"seq": seq, "nested": [seq, (seq, "tuple"), {"set": {seq, seq + 1}}]},
        bytes([seq % 256]) * (BIG if seq % 5 == 4 else 17),
    ]
    return kinds[seq % 3] if seq % 5 != 4 else kinds[2]


# --- what runs in child processes ----------------------------------------------------------------------------------


def describe(request: Any) -> dict[str, Any]:
    """Handler for serve: the request back, with the pid of the process that answered."""
    return {"echo": request, "pid": os.getpid()}


def serve_in_child(module_name: str, conn: Connection, callers_end: Connection, errors: Any) -> None:
    """Child target: close the inherited copy of the caller's end, then run the graded serve()."""
    callers_end.close()
    try:
        importlib.import_module(module_name).serve(conn, describe)
    except BaseException as exc:  # the error is the fact to report
        errors.put(error_fact(exc))
        raise


def reference_serve(conn: Connection, callers_end: Connection, delay: float) -> None:
    """Child target: a correct responder that takes delay seconds per answer."""
    callers_end.close()
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request is None:
            return
        time.sleep(delay)
        conn.send(describe(request))


def write_messages(conn: Connection, count: int, sent_all: Any) -> None:
    """Writer for stream_from_child: count messages, each saying where it was written and on what kind of end."""
    for seq in range(count):
        conn.send(
            {"seq": seq, "pid": os.getpid(), "readable": conn.readable, "writable": conn.writable, "data": payload(seq)}
        )
    sent_all.set()
    conn.close()


# --- helpers -------------------------------------------------------------------------------------------------------


def _with_deadline(function: Any, *args: Any) -> dict[str, Any]:
    """Call function(*args) in a daemon thread and wait at most DEADLINE seconds for it.

    NotImplementedError goes on up, so that the student reads "not written yet".
    """
    outcome: dict[str, Any] = {}

    def call() -> None:
        begun = time.monotonic()
        try:
            outcome["value"] = function(*args)
        except BaseException as exc:  # the error is the fact to report
            outcome["error"] = exc
        outcome["ended_at"] = time.monotonic()
        outcome["seconds"] = outcome["ended_at"] - begun

    thread = threading.Thread(target=call, name="graded-call", daemon=True)
    thread.start()
    thread.join(DEADLINE)
    if thread.is_alive():
        return {"returned": False, "deadline": DEADLINE}
    error = outcome.get("error")
    if isinstance(error, NotImplementedError):
        raise error
    facts: dict[str, Any] = {
        "returned": error is None,
        "seconds": outcome["seconds"],
        "ended_at": outcome["ended_at"],
        "deadline": DEADLINE,
    }
    if error is not None:
        facts["raised"] = error_fact(error)
        facts["raised_timeout"] = isinstance(error, TimeoutError)
    return facts | {"value": outcome.get("value")}


def _receive(conn: Connection) -> dict[str, Any]:
    """One message, waiting at most WAIT seconds: {"message": ...}, {"silent": True} or {"eof": True}."""
    try:
        if not conn.poll(WAIT):
            return {"silent": True}
        return {"message": conn.recv()}
    except (EOFError, OSError):
        return {"eof": True}


def _check_answer(got: dict[str, Any], request: Any) -> dict[str, Any]:
    """What the test needs to know about one answer, as JSON."""
    if "message" not in got:
        return {"kind": "eof" if got.get("eof") else "silent"}
    answer = got["message"]
    if not isinstance(answer, dict) or "echo" not in answer:
        return {"kind": "odd", "repr": repr(answer)[:120]}
    return {"kind": "answer", "intact": answer["echo"] == request, "pid": answer.get("pid")}


def _send(conn: Connection, message: Any) -> bool:
    """Send, and say whether it worked: a responder that died has closed the pipe."""
    try:
        conn.send(message)
    except OSError:
        return False
    return True


def _stop(process: multiprocessing.process.BaseProcess) -> dict[str, Any]:
    process.join(STOP_WAIT)
    return {"ended": not process.is_alive(), "exitcode": process.exitcode}


# --- task 1: serve -------------------------------------------------------------------------------------------------


def _start_graded_server(module: ModuleType) -> tuple[Connection, multiprocessing.Process, Any]:
    mine, theirs = multiprocessing.Pipe()
    errors = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve_in_child, args=(module.__name__, theirs, mine, errors))
    server.start()
    theirs.close()
    return mine, server, errors


def serve_in_order(module: ModuleType, count: int) -> dict[str, Any]:
    """Send the small requests among the first count at once, then read the answers; then a large one; then None."""
    conn, server, errors = _start_graded_server(module)
    requests = [{"seq": seq, "data": payload(seq)} for seq in range(count) if seq % 5 != 4]
    sent = all([_send(conn, request) for request in requests])
    answers = [_check_answer(_receive(conn), request) for request in requests] if sent else []
    big = {"seq": count, "data": bytes(range(256)) * (BIG // 256)}
    if sent and _send(conn, big):
        answers.append(_check_answer(_receive(conn), big))
    _send(conn, None)
    stopped = _stop(server)
    return {
        "caller_pid": os.getpid(),
        "server_pid": server.pid,
        "requests": len(requests) + 1,
        "answers": answers,
        **stopped,
        "errors": drain(errors),
    }


def serve_until_closed(module: ModuleType) -> dict[str, Any]:
    """Two requests, then the caller closes its end without a sentinel."""
    conn, server, errors = _start_graded_server(module)
    answers = []
    for seq in range(2):
        if not _send(conn, seq):
            break
        answers.append(_check_answer(_receive(conn), seq))
    conn.close()
    stopped = _stop(server)
    return {"answers": answers, **stopped, "errors": drain(errors)}


# --- task 2: start_server ------------------------------------------------------------------------------------------


def start_server_exchange(module: ModuleType, count: int) -> dict[str, Any]:
    facts = _with_deadline(module.start_server, describe)
    returned = facts.pop("value", None)
    shape = {
        "returned_repr": repr(returned)[:120],
        "is_pair": isinstance(returned, tuple) and len(returned) == 2,
    }
    if not facts["returned"] or not shape["is_pair"]:
        return {**facts, **shape}
    conn, server = returned
    shape["is_connection"] = isinstance(conn, Connection)
    shape["is_process"] = isinstance(server, multiprocessing.process.BaseProcess)
    if not (shape["is_connection"] and shape["is_process"]):
        return {**facts, **shape}
    shape["started"] = server.pid is not None
    answers = []
    for seq in range(count):
        request = {"seq": seq, "data": payload(seq)}
        if not _send(conn, request):
            answers.append({"kind": "send-failed"})
            break
        answers.append(_check_answer(_receive(conn), request))
    _send(conn, None)
    stopped = _stop(server) if shape["started"] else {"ended": None, "exitcode": None}
    return {**facts, **shape, "caller_pid": os.getpid(), "server_pid": server.pid, "answers": answers, **stopped}


# --- task 3: ask ---------------------------------------------------------------------------------------------------


def ask_a_slow_responder(module: ModuleType) -> dict[str, Any]:
    """The grader's responder answers after ANSWER_DELAY; ask(..., timeout=WAIT) must wait for it."""
    mine, theirs = multiprocessing.Pipe()
    responder = multiprocessing.Process(target=reference_serve, args=(theirs, mine, ANSWER_DELAY))
    responder.start()
    theirs.close()
    request = {"question": "which pid?", "data": payload(1)}
    facts = _with_deadline(module.ask, mine, request, WAIT)
    value = facts.pop("value", None)
    answer = _check_answer({"message": value}, request) if facts["returned"] else None
    _send(mine, None)
    _stop(responder)
    return {**facts, "answer": answer, "caller_pid": os.getpid(), "delay": ANSWER_DELAY}


def ask_nobody(module: ModuleType, timeout: float) -> dict[str, Any]:
    """Nobody answers on the other end: ask must give up after about timeout seconds."""
    mine, theirs = multiprocessing.Pipe()
    facts = _with_deadline(module.ask, mine, "anyone there?", timeout)
    value = facts.pop("value", None)
    arrived = theirs.poll(1.0) and theirs.recv() == "anyone there?"
    return {**facts, "returned_repr": repr(value)[:120], "request_arrived": arrived}


# --- task 4: one-way pipe ------------------------------------------------------------------------------------------


def write_later(writer: Connection, messages: list[Any], pause: float, first_sent_at: list[float]) -> None:
    """Thread: after a pause, send the messages, then close the writing end."""
    time.sleep(pause)
    first_sent_at.append(time.monotonic())
    for message in messages:
        writer.send(message)
    writer.close()


def read_until_writer_closes(module: ModuleType, count: int, pause: float) -> dict[str, Any]:
    """The scenario writes (after a pause) and closes; the graded read_until_closed reads meanwhile."""
    reader, writer = multiprocessing.Pipe(duplex=False)
    sent = [payload(seq) for seq in range(count)]
    first_sent_at: list[float] = []
    threading.Thread(target=write_later, args=(writer, sent, pause, first_sent_at), daemon=True).start()
    facts = _with_deadline(module.read_until_closed, reader)
    value = facts.pop("value", None)
    facts["count"] = count
    # When it returned, not how long it ran: on a loaded machine the graded call may start after the writing did.
    facts["returned_before_any"] = facts["returned"] and (not first_sent_at or facts["ended_at"] < first_sent_at[0])
    if isinstance(value, list):
        facts["length"] = len(value)
        facts["intact"] = [received == expected for received, expected in zip(value, sent, strict=False)]
    else:
        facts["returned_repr"] = repr(value)[:120]
    return facts


def stream_one_way(module: ModuleType, count: int) -> dict[str, Any]:
    sent_all = multiprocessing.Event()
    facts = _with_deadline(module.stream_from_child, write_messages, (count, sent_all))
    value = facts.pop("value", None)
    facts.update(caller_pid=os.getpid(), count=count, sent_all=sent_all.is_set())
    facts["writers_alive"] = sum(child.is_alive() for child in multiprocessing.active_children())
    if not isinstance(value, list):
        return {**facts, "returned_repr": repr(value)[:120]}
    messages = []
    for seq, message in enumerate(value):
        if not isinstance(message, dict):
            messages.append({"odd": repr(message)[:80]})
            continue
        entry = {key: message.get(key) for key in ("seq", "pid", "readable", "writable")}
        entry["intact"] = message.get("data") == payload(message.get("seq", seq))
        messages.append(entry)
    return {**facts, "messages": messages}
