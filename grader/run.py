"""Stage 3: run the hidden tests with pytest, in a child process the grader owns.

pytest runs with the grader's configuration only: its own ini file (so no
pytest.ini, tox.ini or pyproject.toml elsewhere is read), plugin autoloading
off and the needed plugins named explicitly, a scrubbed environment (no
PYTHONPATH into the graded folder, no PYTEST_ADDOPTS), and the grader's
private work folder as the current folder. pytest never imports graded code:
the hidden tests reach it through the sandbox.

pytest's exit status is never the verdict. The stage returns where the raw
report and the collected test list are; ``collect`` holds the report against
that list, so a test that never reported is an error, not a pass.

Stopping. A run ends when pytest ends, at the deadline, or when the grader
gets SIGINT or SIGTERM (``StopRequest``). A stopped run first sends SIGINT to
pytest's process group, as Ctrl-C in a terminal would: the workers end their
sandboxed calls and pytest writes the report of the tests that finished (a
test it stopped half-way appears with its first stages only, which ``collect``
must take for unfinished). A loaded machine may not leave it time to write
the report: the progress lines grader.plugin appended as each test ended hold
the same results, and ``collect`` takes them for the tests the report lacks.
After ``STOP_GRACE`` seconds (at once on a second signal) the group is killed,
and every descendant of the grader, which is a child subreaper, is swept:
the workers, the sandboxes and whatever the graded code started. While pytest
runs, a process re-parented to the grader (the sandbox of a worker that died)
is killed at once rather than at the end.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import psutil

from grader.manifest import HIDDEN_TESTS_DIR, Exercise
from grader.names import DEFAULT_CALL_TIMEOUT
from grader.sweep import become_subreaper, sweep_descendants

PYTEST_INI = HIDDEN_TESTS_DIR / "pytest.ini"
PLUGINS = ("xdist.plugin", "pytest_metadata.plugin", "pytest_jsonreport.plugin", "pytest_timeout", "grader.plugin")
# A hidden test whose sandboxed calls are all bounded never gets near this;
# it only stops a test that is stuck in the trusted side itself.
BACKSTOP = 120.0  # seconds, at the default --call-timeout: three times the longest scenario's budget
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
STOP_GRACE = 5.0  # seconds a stopped pytest gets to write the report of what finished
KILL_WAIT = 10.0  # seconds to wait for pytest to die after SIGKILL
POLL = 0.1  # seconds between looks at pytest, the clock and the stop request
DEADLINE = "deadline"


@dataclass(frozen=True)
class RunSettings:
    start_methods: tuple[str, ...]
    workers: int  # pytest-xdist workers; 0 runs in the pytest process itself
    call_timeout: float
    deadline: float  # seconds the whole pytest run may take
    isolation: str  # the sandbox tier every call uses (grader.names.TIERS, applied by grader.isolation)
    every_method: bool = False  # run a test under every start method even after it failed under one
    durations: Path | None = None  # seconds per test from earlier runs (grader.plugin's run_order)


@dataclass(frozen=True)
class RunOutput:
    report: Path  # pytest-json-report's file (absent if pytest died or was stopped before writing it)
    collected: Path  # folder of collected-*.json files written by grader.plugin
    log: Path  # pytest's terminal output
    progress: Path  # grader.plugin's line per ended test, with its result (grader.collect.read_finished)
    exit_code: int | None  # pytest's exit status; None when the run was stopped
    stopped: str | None = None  # why the run was cut short: DEADLINE or a signal's name ("SIGINT"); None if not


class StopRequest:
    """While installed, SIGINT and SIGTERM only ask the run to stop; the run then ends its processes itself.

    Python's default would raise KeyboardInterrupt anywhere (SIGINT) or end the
    grader at once and leave its pytest running (SIGTERM). A context manager:
    the previous handlers come back on exit.
    """

    def __init__(self) -> None:
        self.signals: list[int] = []
        # What signal.signal() returned: a function, SIG_DFL or SIG_IGN, or None (a handler set outside Python).
        self._previous: dict[int, Callable[[int, FrameType | None], object] | int | signal.Handlers | None] = {}

    def __enter__(self) -> StopRequest:
        for number in STOP_SIGNALS:
            self._previous[number] = signal.signal(number, self._record)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()

    def _record(self, number: int, frame: FrameType | None) -> None:
        self.signals.append(number)

    @property
    def first_signal(self) -> int | None:
        """The first stop signal received, if any."""
        return self.signals[0] if self.signals else None

    @property
    def name(self) -> str | None:
        return signal.Signals(self.signals[0]).name if self.signals else None


def pytest_command(exercises: list[Exercise], submission: Path, workdir: Path, settings: RunSettings) -> list[str]:
    backstop = BACKSTOP * max(1.0, settings.call_timeout / DEFAULT_CALL_TIMEOUT)  # grows like call_budget
    command = [sys.executable, "-m", "pytest", "-c", str(PYTEST_INI), "--rootdir", str(HIDDEN_TESTS_DIR)]
    for plugin in PLUGINS:
        command += ["-p", plugin]
    command += [
        "-p", "no:cacheprovider",
        "-q",
        "--json-report",
        f"--json-report-file={workdir / 'report.json'}",
        "--json-report-omit", "collectors", "log", "streams", "keywords", "warnings",
        f"--timeout={backstop:g}",
        "--timeout-method=signal",
        f"--kata-submission={submission}",
        f"--kata-start-methods={','.join(settings.start_methods)}",
        f"--kata-call-timeout={settings.call_timeout:g}",
        f"--kata-collected={workdir / 'collected'}",
        f"--kata-workdir={workdir / 'sandbox'}",
        f"--kata-isolation={settings.isolation}",
        f"--kata-progress={workdir / 'progress.jsonl'}",
        *(["--kata-every-method"] if settings.every_method else []),
        *([f"--kata-durations={settings.durations}"] if settings.durations else []),
    ]  # fmt: skip
    if settings.workers > 0:
        # grader.plugin chooses the scheduler: the start methods of one test run in turn on one worker.
        command += ["-n", str(settings.workers), "--dist", "load"]
    command += [str(exercise.hidden_tests) for exercise in exercises]
    return command


def clean_environment(workdir: Path) -> dict[str, str]:
    """Only what pytest needs; the grader's own package first on the path.

    pytest may write byte code (it never imports graded code): the plugin and
    the hidden tests, whose assertions it rewrites, are then compiled once,
    not in every run: 0.3 of the 0.8 CPU-s a pytest took to start here.
    """
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HOME": str(workdir),
        "TMPDIR": str(workdir),
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    }
    return env


ProgressListener = Callable[[dict], None]


class ProgressReader:
    """The lines grader.plugin appends as tests end, each handed on once, as soon as it is whole."""

    def __init__(self, path: Path, listener: ProgressListener | None) -> None:
        self.path = path
        self.listener = listener
        self._offset = 0

    def poll(self) -> None:
        if self.listener is None:
            return
        try:
            with open(self.path, "rb") as stream:
                stream.seek(self._offset)
                data = stream.read()
        except FileNotFoundError:
            return
        whole = data[: data.rfind(b"\n") + 1]  # a line still being written waits for the next poll
        self._offset += len(whole)
        for line in whole.splitlines():
            try:
                self.listener(json.loads(line))
            except ValueError:
                continue


def run_hidden_tests(
    exercises: list[Exercise],
    submission: Path,
    workdir: Path,
    settings: RunSettings,
    stop: StopRequest | None = None,
    on_progress: ProgressListener | None = None,
) -> RunOutput:
    """Run pytest to completion, the deadline or a stop request; leave no process behind.

    stop: the caller's installed StopRequest; without one, one is installed for the run.
    on_progress: called in this process with each line grader.plugin writes as a test ends.
    """
    with contextlib.nullcontext(stop) if stop is not None else StopRequest() as installed:
        return _run(
            exercises, submission, workdir, settings, installed, ProgressReader(workdir / "progress.jsonl", on_progress)
        )


def _run(
    exercises: list[Exercise],
    submission: Path,
    workdir: Path,
    settings: RunSettings,
    stop: StopRequest,
    progress: ProgressReader,
) -> RunOutput:
    (workdir / "sandbox").mkdir(parents=True, exist_ok=True)
    (workdir / "collected").mkdir(parents=True, exist_ok=True)
    log = workdir / "pytest.log"
    output = RunOutput(
        report=workdir / "report.json", collected=workdir / "collected", log=log, progress=progress.path, exit_code=None
    )
    if stop.signals or settings.deadline <= 0:  # stopped before any test ran
        return dataclasses.replace(output, stopped=stop.name or DEADLINE)
    command = pytest_command(exercises, submission, workdir, settings)
    # Sandboxes run in sessions of their own, outside pytest's process group:
    # if pytest or a worker dies mid-call, they are re-parented here and swept.
    become_subreaper()
    with open(log, "wb") as stream:
        child = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=stream,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            env=clean_environment(workdir),
            start_new_session=True,
        )
        stopped: str | None = None
        try:
            stopped = _wait(child, time.monotonic() + settings.deadline, stop, progress)
            if stopped is not None:
                _interrupt(child, stop)
        finally:
            _kill_group(child)
            sweep_descendants()
    exit_code = child.returncode if stopped is None else None
    return dataclasses.replace(output, exit_code=exit_code, stopped=stopped)


def _wait(child: subprocess.Popen, deadline: float, stop: StopRequest, progress: ProgressReader) -> str | None:
    """Wait for pytest to end; return why it was stopped instead (DEADLINE, a signal's name) or None."""
    while child.poll() is None:
        if stop.signals:
            return stop.name
        if time.monotonic() >= deadline:
            return DEADLINE
        _end_orphans(child)
        progress.poll()
        time.sleep(POLL)  # a signal handler runs during the sleep; the loop sees it at most POLL later
    progress.poll()
    return None


def _end_orphans(child: subprocess.Popen) -> None:
    """Kill and reap the processes re-parented to the grader while pytest runs.

    The grader's one child is pytest; anything else is an orphan whose pytest
    worker died (killed by the graded code, or crashed) in the middle of a
    call: nobody will read its result, so it must not run until the end.
    """
    for pid in _child_pids() - {child.pid}:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                os.waitpid(pid, os.WNOHANG)
            else:
                os.kill(pid, signal.SIGKILL)
        except (psutil.Error, OSError):
            pass


def _child_pids() -> set[int]:
    """This process's children: from /proc/self/task/*/children (microseconds), else a scan of every process."""
    pids: set[int] = set()
    try:
        for task in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{task}/children") as listing:
                pids.update(int(pid) for pid in listing.read().split())
    except (OSError, ValueError):
        try:
            return {process.pid for process in psutil.Process().children()}
        except psutil.Error:
            return set()
    return pids


def _interrupt(child: subprocess.Popen, stop: StopRequest) -> None:
    """Ctrl-C for pytest's group: the report of the tests that finished, within STOP_GRACE (less on a 2nd signal)."""
    already = len(stop.signals)
    _signal_group(child, signal.SIGINT)
    grace_ends = time.monotonic() + STOP_GRACE
    while child.poll() is None and time.monotonic() < grace_ends and len(stop.signals) == already:
        time.sleep(POLL)


def _signal_group(child: subprocess.Popen, number: int) -> None:
    try:
        os.killpg(child.pid, number)
    except (ProcessLookupError, PermissionError):
        pass


def _kill_group(child: subprocess.Popen) -> None:
    """SIGKILL what is left of pytest's process group (workers outlive a pytest that ended) and reap pytest."""
    _signal_group(child, signal.SIGKILL)
    try:
        child.wait(timeout=KILL_WAIT)
    except subprocess.TimeoutExpired:
        pass
