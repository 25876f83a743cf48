"""How long a sandboxed call may take, and how long a hidden test as a whole."""

from __future__ import annotations

import pytest

from grader.plugin import DEFAULT_CALL_TIMEOUT, IMPORT_FLOOR, call_budget, import_budget
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
