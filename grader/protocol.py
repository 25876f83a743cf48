"""What crosses the sandbox boundary, and nothing else.

A hidden test never imports the graded code. It asks for a *scenario* to be
run against the graded module; the scenario runs in a throw-away sandbox
process and sends back one JSON document on a pipe of its own:

    trusted side (pytest worker)             sandbox
    ----------------------------             -------
    ZygoteConfig --- argv (JSON) ----------> zygote: imports once, then waits
    CallRequest  --- control socket -------> zygote forks one child per call:
                     (+ result pipe, stdout     identity, limits, import,
                      and stderr files)         scenario
    CallResult   <-- result pipe (JSON) ---- Reply: returned value or error
                 <-- stdout/stderr files --- (logs only, read capped)
    "ended"      <-- control socket -------- the child's exit code, sent once
                                             everything the call started is dead

Everything here is plain data: JSON in, JSON out, size-capped, tracebacks as
text. Nothing that comes back is ever unpickled or executed. This module uses
the standard library only, because the sandbox imports it too.
"""

from __future__ import annotations

import json
import signal
from dataclasses import asdict, dataclass, field
from typing import Any

PROTOCOL_VERSION = 1

# The sandbox may send at most this many bytes of reply; more is an error.
MAX_REPLY_BYTES = 1 << 20
# Captured stdout/stderr, tracebacks and messages are cut to these lengths.
MAX_OUTPUT_CHARS = 2000
MAX_TRACEBACK_CHARS = 4000
MAX_MESSAGE_CHARS = 500

# Written by the runner on the result pipe the moment the graded module is
# imported, before the reply: lets the trusted side bound the import alone.
IMPORTED = b"imported\n"

# Outcomes of one sandboxed call, as the trusted side sees it.
RETURNED = "returned"  # the scenario returned a JSON value
RAISED = "raised"  # the graded code (or its import) raised an exception
TIMEOUT = "timeout"  # the call did not finish before its deadline
CRASHED = "crashed"  # the process died without a reply (os._exit, signal, ...)
INVALID = "invalid"  # a reply came, but it is not a valid reply
# A RETURNED value {GAVE_UP: the call's facts, "function": name}: the scenario stopped waiting for a graded
# call that was stuck (grader.sandboxed.scenarios.kit.StuckCall); the hidden test fails it as a timeout.
GAVE_UP = "kata_gave_up"


def cut(text: str, limit: int) -> str:
    """Shorten text to limit characters, saying visibly that it was cut."""
    if len(text) <= limit:
        return text
    notice = f"\n... [cut: {len(text) - limit} more characters]"
    return text[:limit] + notice


@dataclass(frozen=True)
class Limits:
    """Resource limits applied to the sandbox before any graded code runs."""

    address_space_mib: int = 1024
    open_files: int = 256
    file_size_mib: int = 16
    cpu_seconds: int = 60
    processes: int = 0  # 0: the runner picks "what this user has now + a margin"
    # Memory of the call's whole process tree (the zygote's watchdog): address_space_mib caps one process,
    # and a call may start up to `processes` of them.
    tree_memory_mib: int = 1024


def _document(text: str) -> dict[str, Any]:
    """A JSON object of this protocol's version; ValueError for anything else."""
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("version") != PROTOCOL_VERSION:
        version = data.get("version") if isinstance(data, dict) else None
        raise ValueError(f"protocol version {version!r} is not {PROTOCOL_VERSION}")
    return data


@dataclass(frozen=True)
class ZygoteConfig:
    """How the sandbox's resident process runs its calls; fixed for its lifetime."""

    control_fd: int  # one end of a SOCK_SEQPACKET socket pair: requests in, "ended" out
    uid: int | None = None  # each call's child switches to this uid before any graded code runs
    wipe: list[str] = field(default_factory=list)  # folders emptied after every call (the sandbox's own tmpfs)
    die_with_parent: bool = True  # PR_SET_PDEATHSIG: the zygote dies with the worker that started it
    version: int = PROTOCOL_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ZygoteConfig:
        return cls(**_document(text))


# Messages on the control socket, one JSON object per datagram:
#   zygote -> worker  {"ready": pid}          once, after the imports
#   worker -> zygote  {"call": CallRequest}   with three descriptors: result pipe, stdout, stderr
#   worker -> zygote  {"stop": true}          the call's deadline passed: kill it
#   zygote -> worker  {"ended": exit_code}    the call's child exited (or was killed) and its
#                                             processes are gone; exit_code < 0 is a signal
#   worker -> zygote  {"dump": true}          the deadline passed: first, where is the call?
#   zygote -> worker  {"dumped": {...}}       its stack is on its stderr; busy or waiting (see zygote._dump)
CONTROL_MESSAGE_BYTES = 1 << 16
DUMP = b'{"dump": true}'
# The signal on which a call's process writes its stack (faulthandler) to its stderr: a real-time
# signal, which graded code has no reason to use.
DUMP_SIGNAL = signal.SIGRTMIN + 3
BUSY_LOOK = 0.3  # seconds the zygote watches a stuck call's CPU time
# CPU seconds that make a stuck call busy rather than waiting, in the zygote's look at its process and in
# the scenario kit's look at a hung call's thread: a blocked one uses none at all.
BUSY_CPU = 0.02
# In a call's child the result pipe is always this descriptor (0 to 2 are stdin, stdout, stderr).
RESULT_FD = 3


@dataclass(frozen=True)
class CallRequest:
    """One scenario to run against one graded module."""

    module: str  # the graded module's name, e.g. "processes"
    module_dir: str  # the folder that holds it (put first on sys.path)
    scenario: str  # "kata_scenarios.processes:start_worker_identity"
    args: list[Any]
    start_method: str  # fork, spawn or forkserver
    home: str  # the call's own writable folder: its current folder, HOME and TMPDIR
    limits: Limits = field(default_factory=Limits)
    version: int = PROTOCOL_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> CallRequest:
        data = _document(text)
        data["limits"] = Limits(**data["limits"])
        return cls(**data)


@dataclass(frozen=True)
class ErrorInfo:
    """An exception raised on the sandbox side, as text."""

    type: str  # qualified name, e.g. "NotImplementedError", "pickle.PicklingError"
    message: str
    traceback: str
    phase: str  # "import" (importing the graded module) or "scenario"
    # The innermost frame in the graded file, "processes.py:23 in start_worker".
    where: str | None = None


@dataclass(frozen=True)
class Reply:
    """What the sandbox runner writes on the result pipe."""

    status: str  # RETURNED or RAISED
    value: Any = None
    error: ErrorInfo | None = None
    version: int = PROTOCOL_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), allow_nan=False)

    @classmethod
    def from_json(cls, raw: bytes) -> Reply:
        """Parse a reply; raise ValueError for anything that is not one."""
        if len(raw) > MAX_REPLY_BYTES:
            raise ValueError(f"reply of {len(raw)} bytes is over the {MAX_REPLY_BYTES}-byte cap")
        data = json.loads(raw.decode("utf-8"))
        if not isinstance(data, dict) or data.get("version") != PROTOCOL_VERSION:
            raise ValueError("reply is not a protocol document")
        status = data.get("status")
        if status == RETURNED:
            return cls(status=RETURNED, value=data.get("value"))
        if status == RAISED and isinstance(data.get("error"), dict):
            err = data["error"]
            return cls(
                status=RAISED,
                error=ErrorInfo(
                    type=cut(str(err.get("type", "?")), 200),
                    message=cut(str(err.get("message", "")), MAX_MESSAGE_CHARS),
                    traceback=cut(str(err.get("traceback", "")), MAX_TRACEBACK_CHARS),
                    phase="import" if err.get("phase") == "import" else "scenario",
                    where=None if err.get("where") is None else cut(str(err["where"]), 200),
                ),
            )
        raise ValueError(f"reply has an unknown status {status!r}")


@dataclass(frozen=True)
class CallResult:
    """The outcome of one sandboxed call, built by the trusted side only."""

    status: str  # RETURNED, RAISED, TIMEOUT, CRASHED or INVALID
    value: Any = None
    error: ErrorInfo | None = None
    stdout: str = ""
    stderr: str = ""
    exit_code: int | None = None  # negative: killed by that signal
    duration: float = 0.0
    detail: str = ""  # why, for TIMEOUT, CRASHED and INVALID
    # For TIMEOUT: where the graded code was when the deadline passed ("where", "waiting_in", "busy").
    stuck: dict[str, Any] | None = None
    # The most memory the call's processes held together at one look of the watchdog, in MiB (None: not measured).
    memory_peak_mib: float | None = None
    # Sandboxes the call ran in: 2 when its first zygote failed during the call and a fresh one ran it again.
    attempts: int = 1
