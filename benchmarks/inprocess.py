"""Benchmark only: every sandboxed call run in a plain fork of the pytest worker, with no boundary.

benchmarks/boundary.py loads this plugin (``-p benchmarks.inprocess``) into
a pytest run of the hidden tests on the reference solutions, to measure what
the same scenarios cost without the sandbox: no zygote, no bubblewrap, no
switch of uid, no sweep by the sandbox's owner. The grader never loads it:
it would run graded code with the worker's own identity and descriptors.

Like the zygote, the worker imports what the scenarios need once; each call
is then a fork that runs ``grader.sandboxed.runner.run`` (the same runner,
limits, start method and scenario as in the sandbox) and writes its reply on
the result pipe, which is read and judged by the sandbox's own ``_result``.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import pkgutil
import select
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from benchmarks import scenario_time
from grader import sandbox
from grader.protocol import RESULT_FD, CallRequest, CallResult, Limits
from grader.sandboxed import runner, scenarios
from grader.sandboxed.zygote import PRELOAD
from grader.sweep import sweep_descendants

SETUP_FAILED = 70


def pytest_configure(config: pytest.Config) -> None:
    for name in PRELOAD:
        importlib.import_module(name)
    for found in pkgutil.iter_modules(scenarios.__path__, f"{scenarios.__name__}."):
        importlib.import_module(found.name)
    sandbox.Sandbox.call = call_in_process  # type: ignore[method-assign]


def call_in_process(
    self: sandbox.Sandbox,
    module: str,
    module_dir: Path | str,
    scenario: str,
    args: list[Any],
    start_method: str,
    timeout: float,
    import_timeout: float | None = None,
) -> CallResult:
    home = Path(tempfile.mkdtemp(prefix="kata-inprocess-", dir="/tmp"))
    try:
        return _call(home, module, str(module_dir), scenario, args, start_method, timeout)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _call(
    home: Path, module: str, module_dir: str, scenario: str, args: list[Any], start_method: str, timeout: float
) -> CallResult:
    request = CallRequest(module, module_dir, scenario, list(args), start_method, str(home), Limits())
    read_end, write_end = os.pipe()
    started = time.monotonic()
    with open(home / "stdout", "wb") as out, open(home / "stderr", "wb") as err:
        pid = os.fork()
        if pid == 0:
            try:
                os.setsid()
                os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
                os.dup2(out.fileno(), 1)
                os.dup2(err.fileno(), 2)
                os.dup2(write_end, RESULT_FD)
                os.set_inheritable(RESULT_FD, False)
                os.closerange(RESULT_FD + 1, 65536)
                # pytest's and xdist's stand-ins for the standard streams may sit on other descriptors (closed
                # above): the call's streams are descriptors 0, 1 and 2, as in the zygote's child.
                sys.stdin = open(0, closefd=False)  # noqa: SIM115
                sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
                sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
                os.environ["HOME"] = os.environ["TMPDIR"] = str(home)
                tempfile.tempdir = None
                os.chdir(home)
                multiprocessing.current_process().authkey = os.urandom(32)
                if times := os.environ.get(scenario_time.FOLDER_VARIABLE):
                    scenario_time.record(times, module, start_method, scenario)
                runner.run(request)
            finally:
                os._exit(SETUP_FAILED)
    os.close(write_end)
    chunks: list[bytes] = []
    finished = False
    exit_code = None
    pidfd = os.pidfd_open(pid)
    try:
        while (left := started + timeout - time.monotonic()) > 0:
            ready, _, _ = select.select([read_end, pidfd], [], [], left)
            if read_end in ready:
                data = os.read(read_end, 65536)
                if data:
                    chunks.append(data)
            if pidfd in ready:
                _, status = os.waitpid(pid, 0)
                exit_code = os.waitstatus_to_exitcode(status)
                finished = True
                break
        if not finished:
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            exit_code = os.waitstatus_to_exitcode(status)
        sweep_descendants()  # what the call left behind, as the zygote's sweep would
        os.set_blocking(read_end, False)
        while True:
            try:
                data = os.read(read_end, 65536)
            except BlockingIOError:
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(pidfd)
        os.close(read_end)
    errors, _ = sandbox.split_stack_dump(home / "stderr")
    common = {
        "stdout": (home / "stdout").read_text(errors="replace")[:10000],
        "stderr": errors,
        "exit_code": exit_code,
        "duration": time.monotonic() - started,
    }
    return sandbox._result(b"".join(chunks), finished, False, timeout, common)
