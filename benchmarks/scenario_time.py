"""Benchmark only: where a scenario's time goes, recorded inside one in-process call.

``benchmarks/inprocess.py`` calls ``record`` in each call's child, before the
runner imports the graded module, when ``KATA_SCENARIO_TIMES`` names a
folder. The child then writes one JSON file there as it replies:

- ``total_s``: from the graded import to the reply;
- ``sleep_s``: fixed sleeps of the scenario itself (``time.sleep`` called
  from a scenario module in the call's main thread);
- ``window_s``: ``wait_until`` polls of the scenario's main thread that ran
  to their end without the condition holding: windows that prove a negative
  ("nobody passed yet") or a budget a mistake used up;
- ``until_s``: ``wait_until`` polls whose condition came true (waiting on the
  graded code's processes, not a deliberate wait);
- ``starts``: processes started (``Process.start``) in the call's process,
  and ``start_s``, the time spent inside those calls;
- ``sites``: the deliberate waits by the scenario line that asked for them.

Under fork, the processes the graded code starts inherit the wrapped sleep:
each fixed sleep of scenario code in them (a worker told to work or pause a
while) is appended to ``<call pid>.children`` in the folder, as a line
"site TAB seconds". Those run beside the call's own thread and beside each
other, so they say where the pauses are, not how much of the wall time they
take. (Spawned and forkserver children start from a fresh interpreter,
without the wrapper.)

Wrappers, not sampling: each is the exact time of one call. The grader
never loads this module.
"""

from __future__ import annotations

import json
import multiprocessing.process
import os
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from grader.sandboxed import runner
from grader.sandboxed.scenarios import kit

SCENARIOS = os.path.dirname(kit.__file__)
FOLDER_VARIABLE = "KATA_SCENARIO_TIMES"


def record(folder: str, module: str, start_method: str, scenario: str) -> None:
    """Wrap the scenario's waits and process starts in this (the call's) process; write the figures at the reply."""
    call_pid = os.getpid()
    main = threading.main_thread()
    figures: dict[str, Any] = {"module": module, "start_method": start_method, "scenario": scenario}
    totals: dict[str, float] = defaultdict(float)
    sites: dict[str, float] = defaultdict(float)
    inside = threading.local()  # a sleep inside wait_until is the poll's, counted once as the poll
    started = time.monotonic()

    def in_scenario(frame: Any) -> str | None:
        filename = frame.f_code.co_filename
        if os.path.dirname(filename) != SCENARIOS:
            return None
        return f"{os.path.basename(filename)}:{frame.f_lineno} in {frame.f_code.co_name}"

    def ours() -> bool:
        return os.getpid() == call_pid and threading.current_thread() is main

    original_sleep = time.sleep

    def sleep(seconds: float) -> None:
        in_call = os.getpid() == call_pid
        if in_call and (threading.current_thread() is not main or getattr(inside, "poll", False)):
            return original_sleep(seconds)
        site = in_scenario(sys._getframe(1))
        began = time.monotonic()
        try:
            return original_sleep(seconds)
        finally:
            if site is not None:
                spent = time.monotonic() - began
                if in_call:
                    totals["sleep_s"] += spent
                    sites[f"sleep {site}"] += spent
                else:  # a process the call started: its own file, appended to line by line
                    descriptor = os.open(Path(folder, f"{call_pid}.children"), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
                    try:
                        os.write(descriptor, f"{site}\t{spent:.6f}\n".encode())
                    finally:
                        os.close(descriptor)

    original_wait_until = kit.wait_until

    def wait_until(condition: Any, seconds: float, step: float = 0.02) -> bool:
        if not ours() or getattr(inside, "poll", False):
            return original_wait_until(condition, seconds, step)
        site = in_scenario(sys._getframe(1)) or "elsewhere"
        inside.poll = True
        began = time.monotonic()
        held = False
        try:
            held = original_wait_until(condition, seconds, step)
            return held
        finally:
            inside.poll = False
            spent = time.monotonic() - began
            if held:
                totals["until_s"] += spent
            else:
                totals["window_s"] += spent
                sites[f"window {site}"] += spent

    original_start = multiprocessing.process.BaseProcess.start

    def start(self: multiprocessing.process.BaseProcess) -> None:
        if os.getpid() != call_pid:
            return original_start(self)
        began = time.monotonic()
        try:
            return original_start(self)
        finally:
            totals["start_s"] += time.monotonic() - began
            totals["starts"] += 1

    original_reply = runner._write_reply

    def write_reply(fd: int, reply: Any) -> None:
        if os.getpid() == call_pid:
            figures.update(totals, total_s=time.monotonic() - started, sites=dict(sites))
            Path(folder, f"{call_pid}.json").write_text(json.dumps(figures))
        original_reply(fd, reply)

    time.sleep = sleep
    # Scenario modules imported wait_until by name: replace it there too.
    for name, loaded in list(sys.modules.items()):
        if name.startswith("grader.sandboxed.scenarios") and getattr(loaded, "wait_until", None) is original_wait_until:
            loaded.wait_until = wait_until  # type: ignore[attr-defined]
    multiprocessing.process.BaseProcess.start = start  # type: ignore[method-assign]
    runner._write_reply = write_reply  # type: ignore[assignment]
