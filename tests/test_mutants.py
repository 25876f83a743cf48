"""The mutation operators, and the mutant lists kept beside them, against the reference solutions."""

from __future__ import annotations

import ast

import pytest

from grader.manifest import load_manifest
from tests.mutants.__main__ import all_mutants, load_equivalent
from tests.mutants.operators import OPERATORS, mutants

EXERCISES = {exercise.id: exercise for exercise in load_manifest().exercises}

SAMPLE = """\
import multiprocessing


def run(target, items, timeout):
    processes = [multiprocessing.Process(target=target, args=(item,), daemon=True) for item in items]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout)
    with multiprocessing.Lock() as lock:
        if lock is None:
            raise ValueError("no lock")
    return [process.exitcode for process in processes]
"""


def test_every_operator_makes_valid_distinct_mutants_of_a_sample():
    found = mutants(SAMPLE)
    assert {m.operator for m in found} >= {
        "drop-call",
        "run-for-start",
        "join-after-start",
        "thread-for-process",
        "reverse-result",
        "multiply-timeout",
        "drop-keyword",
        "unwrap-with",
        "falsy-sentinel",
        "flip-bool",
        "drop-raise",
        "drop-timeout",
    }
    assert set(OPERATORS) >= {m.operator for m in found}
    assert len({m.id for m in found}) == len(found)
    for mutant in found:
        ast.parse(mutant.source)
        assert mutant.source != SAMPLE, mutant.id


def test_a_mutant_changes_one_place_only():
    joins = [m for m in mutants(SAMPLE) if m.operator == "join-after-start"]
    assert len(joins) == 1
    assert joins[0].source.count("process.join()") == 1
    assert "process.start()\n        process.join()" in joins[0].source
    unwrapped = next(m for m in mutants(SAMPLE) if m.operator == "unwrap-with")
    assert "lock = multiprocessing.Lock()\n    if True:\n        if lock is None:" in unwrapped.source


@pytest.mark.parametrize("exercise_id", list(EXERCISES))
def test_every_solution_has_mutants_and_the_lists_name_only_mutants_that_exist(exercise_id):
    found = {m.id for m in all_mutants(EXERCISES[exercise_id])}  # [[by_hand]] entries must apply exactly once
    assert found, f"{exercise_id}: no mutant of the reference solution"
    stale = set(load_equivalent().get(exercise_id, {})) - found
    assert not stale, f"tests/mutants/{exercise_id}.toml names equivalent mutants that no longer exist: {sorted(stale)}"
