"""Shared helpers: run the grader as a black box and check what it leaves behind."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import psutil
import pytest

from grader.manifest import load_manifest
from grader.scorecard import load_schema

ROOT = Path(__file__).resolve().parent.parent
# The isolation tiers the grader can use on this machine (see grader/isolation.py).
TIERS_HERE = (["namespaces"] if os.geteuid() == 0 and shutil.which("bwrap") else []) + (
    ["user", "process"] if os.geteuid() == 0 else ["process"]
)
FIXTURES = Path(__file__).resolve().parent / "fixtures"
GRADER_TIMEOUT = 600


@dataclass
class Graded:
    exit_code: int
    stdout: str
    stderr: str
    scorecard: dict[str, Any] | None

    def exercise(self, exercise_id: str) -> dict[str, Any]:
        assert self.scorecard is not None, self.stderr
        return next(e for e in self.scorecard["exercises"] if e["id"] == exercise_id)

    def task_points(self, exercise_id: str) -> dict[str, float]:
        return {str(t["number"]): t["score"] for t in self.exercise(exercise_id)["tasks"]}

    def tests(self, exercise_id: str) -> dict[str, dict[str, Any]]:
        return {t["id"].split("::")[-1]: t for t in self.exercise(exercise_id)["tests"]}


def hidden_tests_of_task(exercise_id: str, task: int) -> tuple[str, ...]:
    """The names of an exercise's hidden tests marked @pytest.mark.task(task), in file order."""
    tree = ast.parse(load_manifest().exercise(exercise_id).hidden_tests.read_text())
    found = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            for decorator in node.decorator_list:
                if ast.unparse(decorator) == f"pytest.mark.task({task})":
                    found.append(node.name)
    return tuple(found)


def start_last(state_dir: Path, exercise_ids: list[str]) -> None:
    """Make a grading whose state folder is state_dir start these exercises' tests after every other one.

    The grader starts the tests with no known duration first (durations.json):
    these get one of 0 s, so the other exercises' tests all start before them.
    """
    durations = {}
    for exercise_id in exercise_ids:
        hidden = load_manifest().exercise(exercise_id).hidden_tests
        for node in ast.parse(hidden.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                durations[f"{hidden.name}::{node.name}"] = 0.0
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "durations.json").write_text(json.dumps(durations))


def only_options(exercise_ids: list[str]) -> list[str]:
    """The grader's options that grade just these exercises."""
    return [option for exercise_id in exercise_ids for option in ("--only", exercise_id)]


def validate_scorecard(scorecard: dict[str, Any]) -> None:
    validator = jsonschema.Draft202012Validator(load_schema(), format_checker=jsonschema.FormatChecker())
    validator.validate(scorecard)


def grader_environment(home: Path) -> dict[str, str]:
    """What a user's shell would pass on, without anything of this test run.

    TMPDIR is inside the test's own folder, so every process of this grading
    run carries that path on its command line (see leftovers).
    """
    scratch = home / "tmp"
    scratch.mkdir(exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "TMPDIR": str(scratch),
        "KATA_STATE_DIR": str(home / "kata-state"),  # a student's progress file: never the checkout's own
    }


def installing_environment(home: Path) -> dict[str, str]:
    """grader_environment for a test that installs the kata with pip, as a user would in a folder of their own.

    The kata's own .kata/ (no KATA_STATE_DIR), and what a user's shell passes to pip: where packages come from.
    """
    env = grader_environment(home)
    env.pop("KATA_STATE_DIR")
    env.update({key: value for key, value in os.environ.items() if key.startswith("PIP_") or "proxy" in key.lower()})
    return env


def leftovers(marker: str) -> list[str]:
    """Living processes whose command line mentions marker (a test's own folder)."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        try:
            if process.info["status"] != psutil.STATUS_ZOMBIE and marker in " ".join(process.info["cmdline"] or []):
                found.append(f"{process.pid} {' '.join(process.info['cmdline'])[:120]}")
        except psutil.Error:
            pass
    return found


def run_grader(
    *args: str, tmp_path: Path, timeout: float = GRADER_TIMEOUT, env: dict[str, str] | None = None
) -> Graded:
    """python -m grader grade ARGS --json FILE, in a subprocess; the scorecard is schema-checked."""
    scorecard_path = tmp_path / "scorecard.json"
    scorecard_path.unlink(missing_ok=True)
    command = [sys.executable, "-m", "grader", "grade", "--json", str(scorecard_path), *args]
    completed = subprocess.run(
        command,
        cwd=ROOT,
        env={**grader_environment(tmp_path), **(env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    scorecard = json.loads(scorecard_path.read_text()) if scorecard_path.exists() else None
    if scorecard is not None:
        validate_scorecard(scorecard)
    return Graded(completed.returncode, completed.stdout, completed.stderr, scorecard)


@pytest.fixture
def grade(tmp_path: Path) -> Callable[..., Graded]:
    def grade(*args: str, timeout: float = GRADER_TIMEOUT, env: dict[str, str] | None = None) -> Graded:
        return run_grader(*args, tmp_path=tmp_path, timeout=timeout, env=env)

    return grade


@pytest.fixture
def make_submission(tmp_path: Path) -> Callable[..., Path]:
    """Build a submission folder: start from solutions/ or exercises/, then override files."""

    def make(base: str = "solutions", files: dict[str, str] | None = None, only: list[str] | None = None) -> Path:
        root = tmp_path / "submission"
        if root.exists():
            shutil.rmtree(root)
        root.mkdir()
        for exercise in load_manifest().exercises:
            if only is None or exercise.id in only:
                shutil.copytree(ROOT / base / exercise.folder, root / exercise.folder)
        for relative, source in (files or {}).items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source))
        return root

    return make


def unsolve(source: str, names: list[str]) -> str:
    """The source with the bodies of the named functions replaced by raise NotImplementedError."""
    lines = source.splitlines()
    for node in sorted(ast.parse(source).body, key=lambda n: n.lineno, reverse=True):
        if isinstance(node, ast.FunctionDef) and node.name in names:
            first = node.body[0]
            keep_doc = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
            start = (node.body[1].lineno if keep_doc and len(node.body) > 1 else first.lineno) - 1
            if keep_doc and len(node.body) == 1:
                start = first.end_lineno
            indent = " " * first.col_offset
            lines[start : node.end_lineno] = [f"{indent}raise NotImplementedError"]
    return "\n".join(lines) + "\n"


def living(pids: list[int], since: float) -> list[str]:
    """The processes among pids that still run (zombies are dead; a reused pid started after since)."""
    alive = []
    for pid in pids:
        try:
            process = psutil.Process(pid)
            if process.create_time() <= since + 1 and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{pid} {process.status()} {' '.join(process.cmdline())[:80]}")
        except psutil.Error:
            pass
    return alive


def recorded_pids(folder: Path) -> list[int]:
    """Pids that fixture code wrote into folder, one file per process."""
    return [int(path.read_text()) for path in folder.glob("pid-*") if path.read_text().strip().isdigit()]
