"""Exercise 10: termination. Reference solution."""

from __future__ import annotations

import multiprocessing
import signal
import time
from typing import Any

WORK_STEP = 0.05  # seconds of one step of pretend work


def stop(process: multiprocessing.Process, force: bool = False) -> int | None:
    """Ask the process to stop (SIGTERM), or stop it at once (SIGKILL) when force; wait for it; return its exit code."""
    if force:
        process.kill()
    else:
        process.terminate()
    process.join()  # the exit code is known only once the process has ended
    return process.exitcode


def graceful_worker(ready: Any, cleaned_up: Any) -> None:
    """Work until SIGTERM arrives, then clean up (cleaned_up.value = 1) and end with exit code 0."""
    stopping = False

    def on_sigterm(signum: int, frame: Any) -> None:
        # Only note the request here: the loop below finishes its step and cleans up.
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_sigterm)
    ready.set()  # only now may anyone send SIGTERM: the handler is in place
    while not stopping:
        time.sleep(WORK_STEP)
    cleaned_up.value = 1


def shutdown(process: multiprocessing.Process, timeout: float) -> int | None:
    """Ask the process to stop, give it timeout seconds, then kill it; release it; return its exit code."""
    process.terminate()
    process.join(timeout)
    if process.is_alive():  # it ignored SIGTERM, or its cleanup takes too long
        process.kill()
        process.join()
    exitcode = process.exitcode
    process.close()
    return exitcode
