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
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from grader.manifest import HIDDEN_TESTS_DIR, Exercise
from grader.sandbox import become_subreaper, sweep_descendants

PYTEST_INI = HIDDEN_TESTS_DIR / "pytest.ini"
PLUGINS = ("xdist.plugin", "pytest_metadata.plugin", "pytest_jsonreport.plugin", "pytest_timeout", "grader.plugin")
# A hidden test whose sandboxed calls are all bounded never gets near this;
# it only stops a test that is stuck in the trusted side itself.
BACKSTOP_FACTOR = 4
BACKSTOP_MINIMUM = 120.0


@dataclass(frozen=True)
class RunSettings:
    start_methods: tuple[str, ...]
    workers: int  # pytest-xdist workers; 0 runs in the pytest process itself
    call_timeout: float
    deadline: float  # seconds the whole pytest run may take
    isolation: str  # the sandbox tier every call uses (grader.sandbox.TIERS)


@dataclass(frozen=True)
class RunOutput:
    report: Path  # pytest-json-report's file (absent if pytest died or was stopped)
    collected: Path  # folder of collected-*.json files written by grader.plugin
    log: Path  # pytest's terminal output
    exit_code: int | None  # None: stopped at the deadline
    interrupted: bool


def pytest_command(exercises: list[Exercise], submission: Path, workdir: Path, settings: RunSettings) -> list[str]:
    backstop = max(BACKSTOP_MINIMUM, BACKSTOP_FACTOR * settings.call_timeout)
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
    ]  # fmt: skip
    if settings.workers > 0:
        command += ["-n", str(settings.workers), "--dist", "worksteal"]
    command += [str(exercise.hidden_tests) for exercise in exercises]
    return command


def clean_environment(workdir: Path) -> dict[str, str]:
    """Only what pytest needs; the grader's own package first on the path."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HOME": str(workdir),
        "TMPDIR": str(workdir),
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    }
    return env


def run_hidden_tests(exercises: list[Exercise], submission: Path, workdir: Path, settings: RunSettings) -> RunOutput:
    """Run pytest to completion, the deadline or an interrupt; leave no process behind."""
    (workdir / "sandbox").mkdir(parents=True, exist_ok=True)
    (workdir / "collected").mkdir(parents=True, exist_ok=True)
    log = workdir / "pytest.log"
    command = pytest_command(exercises, submission, workdir, settings)
    interrupted = False
    # Sandboxes run in sessions of their own, outside pytest's process group:
    # if pytest dies mid-call, they are re-parented here and swept below.
    become_subreaper()
    with open(log, "wb") as output:
        child = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            env=clean_environment(workdir),
            start_new_session=True,
        )
        try:
            exit_code: int | None = child.wait(timeout=settings.deadline)
        except subprocess.TimeoutExpired:
            exit_code = None
        except KeyboardInterrupt:
            exit_code, interrupted = None, True
        finally:
            _stop_group(child)
            sweep_descendants()
    return RunOutput(
        report=workdir / "report.json",
        collected=workdir / "collected",
        log=log,
        exit_code=exit_code,
        interrupted=interrupted,
    )


def _stop_group(child: subprocess.Popen) -> None:
    """SIGTERM the run's process group, give it a moment, then SIGKILL what is left."""
    for sig, grace in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(child.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            child.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
        if sig == signal.SIGTERM and child.returncode is not None:
            # pytest is gone; its workers and their sandboxes may not be.
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            return
