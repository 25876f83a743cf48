"""Exercise 5: pipe.

Read README.md in this folder first. Replace each TODO with your code, then
run the grader:  python -m grader grade --only pipe
"""

from __future__ import annotations

import multiprocessing  # noqa: F401 - you will need it
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any


def serve(conn: Connection, handle: Callable[[Any], Any]) -> None:
    """Answer every request that comes on conn with handle(request), in order.

    Stop at the request None, or when the other side has closed its end
    (recv() raises EOFError then). Close conn before returning.
    """
    # TODO (task 1): loop over conn.recv(); stop at None or EOFError; otherwise send handle(request) back.
    raise NotImplementedError("serve: task 1 of exercise 5")


def start_server(handle: Callable[[Any], Any]) -> tuple[Connection, multiprocessing.Process]:
    """Start serve(the child's end, handle) in a new process over a two-way pipe.

    Return (your end, the started process) at once. The caller stops the
    server by sending None.
    """
    # TODO (task 2): multiprocessing.Pipe(); a Process with target=serve and the child's end; start it;
    # close your copy of the child's end; return your end and the process.
    raise NotImplementedError("start_server: task 2 of exercise 5")


def ask(conn: Connection, request: Any, timeout: float) -> Any:
    """Send request on conn and return the answer as soon as it comes.

    Wait at most timeout seconds: raise TimeoutError when no answer has come by then.
    """
    # TODO (task 3): conn.send, then conn.poll(timeout) before conn.recv().
    raise NotImplementedError("ask: task 3 of exercise 5")


def read_until_closed(conn: Connection) -> list[Any]:
    """Receive every message on conn until the writing side has closed; return them in order."""
    # TODO (task 4): recv() in a loop; EOFError is the end of the stream, not an error.
    raise NotImplementedError("read_until_closed: task 4 of exercise 5")


def stream_from_child(write: Callable[..., None], args: tuple = ()) -> list[Any]:
    """Run write(writing end, *args) in a child process over a one-way pipe; return what it sent, in order.

    The child closes its end when it is done (or simply ends). args may be
    left out: write then gets the writing end alone. The child has ended when
    stream_from_child returns.
    """
    # TODO (task 4): Pipe(duplex=False); start the child with the writing end; close your copy of the
    # writing end; read_until_closed on the reading end; join the child.
    raise NotImplementedError("stream_from_child: task 4 of exercise 5")
