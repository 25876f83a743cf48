"""How long a sandboxed call may take, how long a hidden test as a whole, and how often a call is paid for."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.manifest import load_manifest
from grader.plugin import DEFAULT_CALL_TIMEOUT, IMPORT_FLOOR, OUTPUT_PROPERTY, GradedModule, call_budget, import_budget
from grader.protocol import RETURNED, TIMEOUT, CallResult
from grader.run import RunSettings, pytest_command


@pytest.mark.parametrize(
    ("declared", "call_timeout", "budget"),
    [
        (None, DEFAULT_CALL_TIMEOUT, DEFAULT_CALL_TIMEOUT),
        (None, 3.0, 3.0),
        (30.0, DEFAULT_CALL_TIMEOUT, 30.0),
        (30.0, 3.0, 30.0),  # a quick --call-timeout does not starve a scenario that needs longer
        (30.0, 4 * DEFAULT_CALL_TIMEOUT, 120.0),  # more time asked for: every budget grows alike
    ],
)
def test_a_long_scenario_keeps_its_budget_and_grows_with_call_timeout(declared, call_timeout, budget):
    assert call_budget(declared, call_timeout) == budget


@pytest.mark.parametrize(
    ("call_timeout", "budget"),
    [
        (DEFAULT_CALL_TIMEOUT, DEFAULT_CALL_TIMEOUT / 2),  # a hang at import is told after half a call's budget
        (40.0, 20.0),
        (4.0, IMPORT_FLOOR),  # never below the floor
        (2.0, 2.0),  # nor above the call's own budget
    ],
)
def test_the_import_gets_half_a_calls_budget_within_bounds(call_timeout, budget):
    assert import_budget(call_timeout) == budget


def test_the_backstop_outlasts_the_longest_budget(tmp_path):
    def backstop(call_timeout: float) -> float:
        settings = RunSettings(
            start_methods=("fork",), workers=1, call_timeout=call_timeout, deadline=60.0, isolation="process"
        )
        option = next(o for o in pytest_command([], tmp_path, tmp_path, settings) if o.startswith("--timeout="))
        return float(option.split("=")[1])

    for call_timeout in (1.0, DEFAULT_CALL_TIMEOUT, 120.0):
        assert backstop(call_timeout) > 2 * call_budget(40.0, call_timeout)  # two calls of the longest scenario


class CountingSandbox:
    """Stands in for the sandbox: counts the calls, and answers each scenario as told."""

    def __init__(self, answers: dict[str, CallResult]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, list, str]] = []

    def call(self, *, scenario: str, args: list, start_method: str, **request) -> CallResult:
        self.calls.append((scenario.rpartition(":")[2], args, start_method))
        return self.answers.get(scenario.rpartition(":")[2], CallResult(RETURNED, value={"call": len(self.calls)}))


def graded_module(sandbox, verdicts, start_method="fork", recorded=None):
    return GradedModule(
        exercise=load_manifest().exercise("manager"),
        submission=verdicts.parent if verdicts else Path("/nonexistent"),
        start_method=start_method,
        sandbox=sandbox,
        timeout=DEFAULT_CALL_TIMEOUT,
        record=lambda name, value: (recorded if recorded is not None else []).append((name, value)),
        verdicts=verdicts,
    )


@pytest.mark.parametrize("shared", ["through the work folder", "in one process"])
def test_a_scenario_asked_for_by_several_checks_runs_once_per_start_method_and_arguments(tmp_path, shared):
    verdicts = tmp_path / "sandbox" if shared == "through the work folder" else None
    if verdicts:
        verdicts.mkdir()
    hang = CallResult(TIMEOUT, stdout="printed before the hang\n", detail="did not return", stuck={"busy": True})
    sandbox = CountingSandbox({"hangs": hang})
    recorded: list = []
    # Each check gets a GradedModule of its own, as each test does (xdist workers share only the folder).
    checks = [graded_module(sandbox, verdicts, recorded=recorded) for _ in range(3)]
    first = [check.run("collect_in_children", [["a", "b"]], 1.0, timeout=40) for check in checks]
    assert [result.value for result in first] == [first[0].value] * 3
    assert first[0].value is not first[1].value  # each check gets a copy of its own to judge
    hung = [check.run("hangs") for check in checks]
    seen = [(result.status, result.stuck, result.stdout) for result in hung]
    assert seen == [(TIMEOUT, {"busy": True}, hang.stdout)] * 3
    assert recorded.count((OUTPUT_PROPERTY, "printed before the hang")) == 3  # every check shows what was printed
    checks[0].run("collect_in_children", [["a"]], 1.0, timeout=40)  # other arguments: another run
    checks[0].run("collect_in_children", [["a", "b"]], 1.0)  # another budget: another run
    graded_module(sandbox, verdicts, "spawn").run("collect_in_children", [["a", "b"]], 1.0, timeout=40)
    assert sandbox.calls == [
        ("imported", [], "fork"),  # the import, once per start method
        ("collect_in_children", [[["a", "b"]], 1.0], "fork"),
        ("hangs", [], "fork"),
        ("collect_in_children", [[["a"]], 1.0], "fork"),
        ("collect_in_children", [[["a", "b"]], 1.0], "fork"),
        ("imported", [], "spawn"),
        ("collect_in_children", [[["a", "b"]], 1.0], "spawn"),
    ]
