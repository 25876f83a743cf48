"""Sessions for developers and CI: nox -s tests | grade | verify | lint | benchmark | flakiness | mutants."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import nox

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
nox.options.sessions = ["lint", "tests", "verify"]
# uv makes and fills each session's environment in seconds (pip took about 20 s a session);
# without uv, the standard library's venv and pip do the same.
nox.options.default_venv_backend = "uv|venv"
# Run the suite on every supported Python that is installed, skip the others.
nox.options.error_on_missing_interpreters = False


def _runs(version: str) -> bool:
    interpreter = shutil.which(f"python{version}")
    return interpreter is not None and subprocess.run([interpreter, "-c", ""], capture_output=True).returncode == 0


# The tests marked heavy grade whole submissions by the hundred (fixtures,
# attacks, bad input, faults): run them once, on the newest Python here, the
# longest part of a CI run; so does verify, which grades every
# reference solution under every start method. Every other Python runs the
# grader's unit tests and the sandbox's, and grades its share of the reference
# solutions under forkserver (each solution on one older Python).
NEWEST = next((version for version in reversed(PYTHONS) if _runs(version)), PYTHONS[-1])


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The project's own test suite (pytest, in parallel); heavy tests on the newest Python only."""
    session.install("-e", ".[test]")
    heavy = session.python == NEWEST
    # On the newest Python, verify grades every solution under every start method: not twice here.
    selection = ["-k", "not test_solutions_score_full_marks_under_forkserver"] if heavy else ["-m", "not heavy"]
    selection = [] if session.posargs else selection
    env = {}
    if not heavy and not session.posargs:
        # Each older Python grades its own share of the solutions under forkserver (see tests/test_grading.py).
        older = [version for version in PYTHONS if version != NEWEST]
        env["KATA_SOLUTIONS_SHARE"] = f"{older.index(session.python)}/{len(older)}"
    # Most tests wait on grader subprocesses (and on the deadlines of mistaken
    # fixtures) rather than compute, now that a sandboxed call is a fork of a
    # zygote: many more workers than cores shorten the run (measured on 2 cores:
    # the heavy tests took 878 s at -n 8 with half the CPU idle, 677 s at -n 16).
    # The heavy session runs at 4 per core all the same: at 8 per core, with each
    # fixture graded by 3 workers of its own, checks of correct code under spawn ran
    # out of their budgets (the machine, not the code, was too slow), and a grade
    # must not change with the load.
    cpus = os.cpu_count() or 1
    workers = str(min(16, 4 * cpus) if heavy else min(32, 8 * cpus))
    session.run("python", "-m", "pytest", "-n", workers, *selection, *session.posargs, env=env)


@nox.session
def grade(session: nox.Session) -> None:
    """Grade the student's exercises/ (arguments go to python -m grader grade)."""
    session.install("-e", ".")
    session.run("python", "-m", "grader", "grade", *session.posargs)


def _grade_to_json(session: nox.Session, name: str, *options: str) -> dict:
    scorecard = Path(session.create_tmp()) / f"{name}.json"
    # Grading waits more than it computes: several test workers per core. (At 12 per core
    # on 2 cores, 24 gradings at once, two checks of the solutions under spawn ran out of
    # their 10 to 12 s once, and at 6 per core one did: the machine, not the code, was
    # too slow.)
    workers = str(min(16, 4 * (os.cpu_count() or 1)))
    command = ["python", "-m", "grader", "grade", "--start-method", "all", "-n", workers, "-q"]
    session.run(*command, "--json", str(scorecard), *options)
    return json.loads(scorecard.read_text())


@nox.session(python=NEWEST)
def verify(session: nox.Session) -> None:
    """The solutions score 100%, the untouched stubs 0% (each check pointing to its TODO), under every start method."""
    session.install("-e", ".")
    solutions = _grade_to_json(session, "solutions", "--solutions", *session.posargs)
    stubs = _grade_to_json(session, "stubs", *session.posargs)
    problems = []
    if solutions["percent"] != 100 or not solutions["complete"]:
        # Each with its outcome and message: a check that failed the reference once must say why in CI's log.
        lost = [
            f"{t['id']} ({t['outcome']}: {(t['message'] or '')[:300]})"
            for e in solutions["exercises"]
            for t in e["tests"]
            if t["outcome"] != "passed"
        ]
        problems.append(f"the solutions scored {solutions['percent']}%, not 100%: {lost}")
    if stubs["score"] != 0 or not stubs["complete"]:
        won = [t["id"] for e in stubs["exercises"] for t in e["tests"] if t["outcome"] == "passed"]
        problems.append(f"the untouched stubs scored {stubs['score']}, not 0: {won}")
    problems += _stub_message_problems(stubs)
    if problems:
        session.error("; ".join(problems))
    session.log(f"solutions {solutions['percent']}%, stubs {stubs['percent']}%, under {solutions['start_methods']}")


# Words of the hidden tests' own source: a stub's message that holds one has leaked them.
HIDDEN_SOURCE_MARKERS = ("def test_", "student.call", "assert ", "facts[")


def _stub_message_problems(stubs: dict) -> list[str]:
    """Every check of an untouched stub fails, points to the TODO, has a hint and shows no hidden test source."""
    problems = []
    for exercise in stubs["exercises"]:
        for test in exercise["tests"]:
            message = test["message"] or ""
            if test["outcome"] != "failed":
                problems.append(f"{test['id']} on the stub: {test['outcome']}, not failed ({message[:200]})")
            elif "TODO" not in message and "NotImplementedError" not in message:
                problems.append(f"{test['id']} on the stub does not point to the TODO: {message[:200]}")
            if not test["hint"]:
                problems.append(f"{test['id']} on the stub has no hint")
            leaked = [marker for marker in HIDDEN_SOURCE_MARKERS if marker in message]
            if leaked:
                problems.append(f"{test['id']}: hidden test source in the message ({leaked}): {message[:200]}")
    return problems


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting; mypy: the grader's types."""
    session.install("ruff", "mypy", "-e", ".")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy", "grader")


@nox.session(python=NEWEST)
def benchmark(session: nox.Session) -> None:
    """What the sandbox's boundary costs, side by side: a table, and benchmark.json (arguments go to the script)."""
    session.install("-e", ".")
    session.run("python", "benchmarks/boundary.py", "--json", "benchmark.json", *session.posargs)


@nox.session
def flakiness(session: nox.Session) -> None:
    """Grade the solutions many times under load: every run must score the same (arguments go to the script)."""
    session.install("-e", ".")
    session.run("python", "benchmarks/flakiness.py", *session.posargs)


@nox.session
def mutants(session: nox.Session) -> None:
    """Grade every classic mistake made in each reference solution: each must lose points (arguments go on)."""
    session.install("-e", ".")
    session.run("python", "-m", "tests.mutants", *session.posargs)
