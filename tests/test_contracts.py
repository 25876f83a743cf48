"""Every exercise's contract table against its README, its stub, its hidden tests and its fixtures.

An exercise's contract (``grader/hidden/contracts/<folder>.toml``) lists every
sentence of the README's "Your tasks" section and of the stub's docstrings:

    [[sentence]]
    text = "..."                      # or a list: the same promise, phrased in the README and a docstring
    checks = ["test_..."]             # the hidden tests that fail when a solution breaks it
    broken_by = ["fixture-name"]      # fixture submissions that break it: each pins one of the checks as lost

    [[sentence]]
    text = "..."
    asks_nothing = "why"              # orientation or explanation: a solution cannot break it

These tests keep the table in step: every sentence of the README's tasks and
of the docstrings is in it (word for word, whitespace aside), every check is a
hidden test, every hidden test checks a sentence, and every promise has a
fixture that breaks it and loses a check's points for it.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from typing import Any

import pytest

from grader.manifest import Exercise, load_manifest

from .conftest import FIXTURES, ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

EXERCISES = {exercise.id: exercise for exercise in load_manifest().exercises}
CONTRACTS = ROOT / "grader" / "hidden" / "contracts"


def normalized(text: str) -> str:
    return " ".join(text.split())


def readme_tasks(exercise: Exercise) -> str:
    """The README's "Your tasks" section without headings, task titles, list markers or code blocks."""
    text = (ROOT / "exercises" / exercise.folder / "README.md").read_text()
    section = text.split("## Your tasks", 1)[1]
    section = re.split(r"^## ", section, maxsplit=1, flags=re.M)[0]
    section = re.sub(r"^```.*?^```", " ", section, flags=re.M | re.S)
    section = re.sub(r"^#+ .*$", " ", section, flags=re.M)
    section = re.sub(r"^\s*\d+\.\s+\*\*[^*]+\*\*\s*\(\d+ points?\)[.:]?", " ", section, flags=re.M)
    return normalized(section)


def stub_docstrings(exercise: Exercise) -> list[str]:
    """The docstring of every function and class in the stub (the module's own is orientation)."""
    tree = ast.parse((ROOT / "exercises" / exercise.folder / exercise.file_name).read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            doc = ast.get_docstring(node)
            if doc:
                found.append(normalized(doc))
    return found


def hidden_test_names(exercise: Exercise) -> set[str]:
    tree = ast.parse(exercise.hidden_tests.read_text())
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}


def load_contract(exercise: Exercise) -> list[dict[str, Any]]:
    path = CONTRACTS / f"{exercise.folder}.toml"
    assert path.is_file(), f"{exercise.id}: no contract table at {path.relative_to(ROOT)}"
    data = tomllib.loads(path.read_text())
    assert data.get("exercise") == exercise.id, f"{path.name}: exercise = {data.get('exercise')!r}, not {exercise.id!r}"
    return data.get("sentence", [])


def texts(sentence: dict[str, Any]) -> list[str]:
    text = sentence["text"]
    return [normalized(t) for t in ([text] if isinstance(text, str) else text)]


def fixture_expectation(name: str) -> dict[str, Any] | None:
    path = FIXTURES / "submissions" / name / "expected.json"
    return json.loads(path.read_text()) if path.is_file() else None


@pytest.mark.parametrize("exercise_id", list(EXERCISES))
def test_every_sentence_of_the_tasks_and_docstrings_is_in_the_contract(exercise_id):
    exercise = EXERCISES[exercise_id]
    sources = [readme_tasks(exercise), *stub_docstrings(exercise)]
    for sentence in load_contract(exercise):
        for text in texts(sentence):
            assert any(text in source for source in sources), (
                f"{exercise_id}: the contract quotes a sentence that is not in the README's tasks "
                f"nor in a docstring of the stub (reworded?): {text!r}"
            )
    # Longest first, so that a sentence is not half-removed by a shorter one it contains.
    quoted = sorted((t for s in load_contract(exercise) for t in texts(s)), key=len, reverse=True)
    for source in sources:
        rest = source
        for text in quoted:
            rest = rest.replace(text, " ")
        leftover = [part.strip() for part in re.split(r"\s{2,}", rest) if re.search(r"[A-Za-z0-9]", part)]
        assert not leftover, f"{exercise_id}: not in the contract table: {leftover}"


@pytest.mark.parametrize("exercise_id", list(EXERCISES))
def test_every_promise_has_a_check_and_every_check_a_promise(exercise_id):
    exercise = EXERCISES[exercise_id]
    tests = hidden_test_names(exercise)
    used: set[str] = set()
    for sentence in load_contract(exercise):
        label = texts(sentence)[0][:80]
        assert ("checks" in sentence) != ("asks_nothing" in sentence), (
            f"{exercise_id}: {label!r} needs either checks (a promise) or asks_nothing (why it is none)"
        )
        if "asks_nothing" in sentence:
            assert sentence["asks_nothing"].strip(), f"{exercise_id}: {label!r}: say why it asks nothing"
            continue
        assert sentence["checks"], f"{exercise_id}: {label!r} has no check"
        unknown = set(sentence["checks"]) - tests
        assert not unknown, f"{exercise_id}: {label!r} names checks that are not hidden tests: {sorted(unknown)}"
        used |= set(sentence["checks"])
    unchecked = tests - used
    assert not unchecked, f"{exercise_id}: hidden tests that check no sentence of the contract: {sorted(unchecked)}"


@pytest.mark.parametrize("exercise_id", list(EXERCISES))
def test_every_promise_is_broken_by_a_fixture_that_loses_a_check(exercise_id):
    exercise = EXERCISES[exercise_id]
    for sentence in load_contract(exercise):
        if "checks" not in sentence:
            continue
        label = texts(sentence)[0][:80]
        assert sentence.get("broken_by"), f"{exercise_id}: {label!r}: name a fixture submission that breaks it"
        for name in sentence["broken_by"]:
            expected = fixture_expectation(name)
            assert expected is not None, f"{exercise_id}: {label!r}: no fixture submission {name!r}"
            assert expected["exercise"] == exercise_id, f"{name} is a fixture of {expected['exercise']}"
            lost = set(expected.get("outcomes", {})) & set(sentence["checks"])
            assert lost, (
                f"{exercise_id}: {label!r}: fixture {name} pins none of {sentence['checks']} as lost "
                f"(it pins {sorted(expected.get('outcomes', {}))})"
            )
