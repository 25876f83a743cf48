"""What a sandboxed call runs: the graded module and one scenario.

Runs in the child that the zygote (``grader.sandboxed.zygote``) forks for one
call, once the child has its own identity, descriptors and folder. In order,
before any graded code runs: apply the resource limits, choose the start
method, then import the graded module and call the scenario with it.
The outcome (a JSON value, or an exception as text) is written once to the
result pipe, then the process ends with ``os._exit`` so that no atexit handler
(multiprocessing joins its non-daemon children at exit) can keep it alive.
The sandbox's owner kills whatever the graded code left behind.

Standard library only: this package is copied next to the graded code.
"""

from __future__ import annotations

import faulthandler
import importlib
import multiprocessing
import os
import resource
import signal
import sys
import traceback
from typing import Any, NoReturn

from grader.protocol import (
    DUMP_SIGNAL,
    IMPORTED,
    MAX_MESSAGE_CHARS,
    MAX_REPLY_BYTES,
    MAX_TRACEBACK_CHARS,
    RAISED,
    RESULT_FD,
    RETURNED,
    CallRequest,
    ErrorInfo,
    Limits,
    Reply,
    cut,
)
from grader.sandboxed.scenarios.kit import StuckCall

MIB = 1 << 20


def _user_process_count() -> int:
    uid = os.getuid()
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    count += 1
            except OSError:
                pass
    return count


def apply_limits(limits: Limits) -> None:
    """Cap memory, files, output, CPU and process count for this process tree."""

    def cap(which: int, value: int) -> None:
        _, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value))

    cap(resource.RLIMIT_AS, limits.address_space_mib * MIB)
    cap(resource.RLIMIT_NOFILE, limits.open_files)
    cap(resource.RLIMIT_FSIZE, limits.file_size_mib * MIB)
    cap(resource.RLIMIT_CPU, limits.cpu_seconds)
    cap(resource.RLIMIT_CORE, 0)
    # RLIMIT_NPROC counts every process of this uid on the machine, so the cap
    # is relative to what the user runs already (root ignores it altogether).
    cap(resource.RLIMIT_NPROC, limits.processes or _user_process_count() + 256)
    # Over RLIMIT_FSIZE a write fails with EFBIG instead of killing the writer,
    # so a stdout flood is cut instead of crashing the call.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def _graded_frame(tb: Any, module_file: str | None) -> str | None:
    """The innermost traceback frame in the graded file, as "file.py:line in func"."""
    where = None
    target = os.path.realpath(module_file) if module_file else None
    for frame in traceback.extract_tb(tb):
        if target and os.path.realpath(frame.filename) == target:
            where = f"{os.path.basename(frame.filename)}:{frame.lineno} in {frame.name}"
    return where


def _describe(exc: BaseException, phase: str, module_file: str | None) -> ErrorInfo:
    kind = type(exc)
    name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    where = _graded_frame(exc.__traceback__, module_file)
    if where is None and isinstance(exc, SyntaxError) and exc.filename and exc.lineno:
        where = f"{os.path.basename(exc.filename)}:{exc.lineno}"
    try:
        message = str(exc)
    except Exception:  # a hostile __str__ must not hide the error itself
        message = "(the exception's message could not be read)"
    text = "".join(traceback.format_exception(kind, exc, exc.__traceback__))
    return ErrorInfo(
        type=name,
        message=cut(message, MAX_MESSAGE_CHARS),
        traceback=cut(text, MAX_TRACEBACK_CHARS),
        phase=phase,
        where=where,
    )


def _write_reply(fd: int, reply: Reply) -> None:
    try:
        data = reply.to_json().encode("utf-8")
    except (TypeError, ValueError) as exc:
        error = ErrorInfo(
            type="ReplyError",
            message=f"the scenario's result is not plain JSON data: {exc}",
            traceback="",
            phase="scenario",
        )
        data = Reply(status=RAISED, error=error).to_json().encode("utf-8")
    if len(data) > MAX_REPLY_BYTES:
        error = ErrorInfo(
            type="ReplyError",
            message=f"the result is too large ({len(data)} bytes; at most {MAX_REPLY_BYTES})",
            traceback="",
            phase="scenario",
        )
        data = Reply(status=RAISED, error=error).to_json().encode("utf-8")
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def run(request: CallRequest) -> NoReturn:
    """Import the graded module, run the scenario, write one reply on RESULT_FD, and end.

    Called in a call's child once it is on its own (identity, descriptors and
    folder set by the zygote). Ends with os._exit: no atexit handler
    (multiprocessing joins its non-daemon children at exit) may keep it alive.
    """
    apply_limits(request.limits)
    # At a deadline the worker asks for this process's stack (on its stderr) to say where the code was.
    faulthandler.register(DUMP_SIGNAL, file=2, all_threads=True, chain=False)
    # The graded folder gets no __pycache__ (spawned children inherit this as -B).
    sys.dont_write_bytecode = True
    multiprocessing.set_start_method(request.start_method, force=True)
    sys.path.insert(0, request.module_dir)
    module_file = os.path.join(request.module_dir, request.module + ".py")
    try:
        scenario_module, _, scenario_name = request.scenario.partition(":")
        scenario = getattr(importlib.import_module(scenario_module), scenario_name)
        try:
            module = importlib.import_module(request.module)
        except BaseException as exc:
            reply = Reply(status=RAISED, error=_describe(exc, "import", module_file))
        else:
            os.write(RESULT_FD, IMPORTED)
            try:
                value = scenario(module, *request.args)
            except StuckCall as stuck:  # the scenario stopped waiting for a graded call: data for the test
                reply = Reply(status=RETURNED, value=stuck.reply())
            except BaseException as exc:
                reply = Reply(status=RAISED, error=_describe(exc, "scenario", module_file))
            else:
                reply = Reply(status=RETURNED, value=value)
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        _write_reply(RESULT_FD, reply)
    finally:
        os._exit(0)
