"""Exercise 5: pipe. Reference solution."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any


def serve(conn: Connection, handle: Callable[[Any], Any]) -> None:
    """Answer every request on conn with handle(request); stop at None or when the other side closes."""
    try:
        while True:
            try:
                request = conn.recv()
            except EOFError:  # the other side closed its end: nobody is left to ask
                return
            if request is None:
                return
            conn.send(handle(request))
    finally:
        conn.close()


def start_server(handle: Callable[[Any], Any]) -> tuple[Connection, multiprocessing.Process]:
    """Start serve(child's end, handle) in a new process; return (your end, the process)."""
    mine, theirs = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve, args=(theirs, handle))
    server.start()
    theirs.close()  # the child has its own copy; this one would only keep the pipe open
    return mine, server


def ask(conn: Connection, request: Any, timeout: float) -> Any:
    """Send request and return the answer; raise TimeoutError when none comes within timeout seconds."""
    conn.send(request)
    if not conn.poll(timeout):
        raise TimeoutError(f"no answer to {request!r} within {timeout} s")
    return conn.recv()


def read_until_closed(conn: Connection) -> list[Any]:
    """Receive messages until the writing side has closed; return them in order."""
    messages = []
    while True:
        try:
            messages.append(conn.recv())
        except EOFError:
            return messages


def stream_from_child(write: Callable[..., None], args: tuple = ()) -> list[Any]:
    """Run write(writer's end, *args) in a child over a one-way pipe; return all it sent, in order."""
    reader, writer = multiprocessing.Pipe(duplex=False)
    child = multiprocessing.Process(target=write, args=(writer, *args))
    child.start()
    writer.close()  # else this process keeps the pipe open and the reader never sees EOF
    messages = read_until_closed(reader)
    reader.close()
    child.join()
    return messages
