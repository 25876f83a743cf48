"""Exercise 10: termination.

Read README.md in this folder first. Replace each TODO with your code, then
run the grader:  python -m grader grade --only termination
"""

from __future__ import annotations

import multiprocessing  # noqa: F401 - you will need it
import signal  # noqa: F401 - you will need it
import time  # noqa: F401 - you will need it
from typing import Any

WORK_STEP = 0.05  # seconds of one step of pretend work


def stop(process: multiprocessing.Process, force: bool = False) -> int | None:
    """Stop a running process, wait until it has ended, and return its exit code.

    force=False asks it to stop (SIGTERM); force=True stops it at once (SIGKILL).
    """
    # TODO (task 1): terminate() or kill() the process, wait for it, then
    # return its exitcode.
    raise NotImplementedError("stop: task 1 of exercise 10")


def graceful_worker(ready: Any, cleaned_up: Any) -> None:
    """A worker that cleans up before it ends when it gets SIGTERM.

    ready is a multiprocessing.Event: set it as soon as SIGTERM is handled, not
    before. Then work, a step of time.sleep(WORK_STEP) at a time, until SIGTERM
    arrives. Then clean up, which here means cleaned_up.value = 1 (cleaned_up is
    a multiprocessing.Value), and end with exit code 0.
    """
    # TODO (task 2): install a SIGTERM handler with signal.signal, set ready,
    # work until the handler has run, clean up, and end normally.
    raise NotImplementedError("graceful_worker: task 2 of exercise 10")


def shutdown(process: multiprocessing.Process, timeout: float) -> int | None:
    """Stop a running process politely if it lets you, by force if it does not.

    Ask it to stop (SIGTERM) and give it at most timeout seconds to end; if it
    is still alive then, kill it (SIGKILL). Return its exit code. Afterwards
    the Process object is released: the caller may not use it any more.
    """
    # TODO (task 3): terminate(), join(timeout), and if it is still alive,
    # kill() it and join it. Return its exitcode.
    # TODO (task 4): before returning, close() the process (after you have
    # read its exitcode: a closed Process object cannot tell you anything).
    raise NotImplementedError("shutdown: task 3 of exercise 10")
