"""The manifest against the files it names, and the manifest checks themselves."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from grader.manifest import ManifestError, load_manifest, parse_manifest

from .conftest import ROOT

MANIFEST = load_manifest()
EXERCISES = {exercise.id: exercise for exercise in MANIFEST.exercises}


def public_functions(path) -> dict[str, str]:
    """Top-level public function names and their argument lists."""
    tree = ast.parse(path.read_text())
    return {
        node.name: ast.unparse(node.args)
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_")
    }


def hidden_tasks(path) -> set[int]:
    tasks = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "pytest.mark.task":
            tasks.add(node.args[0].value)
    return tasks


@pytest.mark.parametrize("exercise_id", list(EXERCISES))
def test_every_exercise_has_its_files(exercise_id):
    exercise = EXERCISES[exercise_id]
    for path in (
        ROOT / "exercises" / exercise.folder / exercise.file_name,
        ROOT / "exercises" / exercise.folder / "README.md",
        ROOT / "solutions" / exercise.folder / exercise.file_name,
        exercise.hidden_tests,
        ROOT / "grader" / "sandboxed" / "scenarios" / f"{exercise.id}.py",
    ):
        assert path.is_file(), f"{exercise_id}: {path.relative_to(ROOT)} is missing"


@pytest.mark.parametrize("exercise_id", list(EXERCISES))
def test_stub_and_solution_share_one_api_and_the_stub_marks_every_task(exercise_id):
    exercise = EXERCISES[exercise_id]
    stub = ROOT / "exercises" / exercise.folder / exercise.file_name
    solution = ROOT / "solutions" / exercise.folder / exercise.file_name
    assert public_functions(stub) == public_functions(solution)
    text = stub.read_text()
    for task in exercise.tasks:
        assert f"TODO (task {task.number})" in text, f"{stub.name} has no 'TODO (task {task.number})'"
    assert "NotImplementedError" in text


@pytest.mark.parametrize("exercise_id", list(EXERCISES))
def test_every_task_has_hidden_tests_and_instructions(exercise_id):
    exercise = EXERCISES[exercise_id]
    assert hidden_tasks(exercise.hidden_tests) == {task.number for task in exercise.tasks}
    readme = (ROOT / "exercises" / exercise.folder / "README.md").read_text().lower()
    for task in exercise.tasks:
        assert task.title.lower() in readme, f"README.md of {exercise_id} does not describe task {task.number}"
    assert f"--only {exercise.id}" in readme


@pytest.mark.parametrize("base", ["exercises", "solutions"])
def test_stubs_and_solutions_import_cleanly(base):
    for exercise in MANIFEST.exercises:
        folder = ROOT / base / exercise.folder
        completed = subprocess.run(
            [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(folder)!r}); import {exercise.module}"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert completed.returncode == 0, completed.stderr


def test_solutions_mirror_exercises_path_for_path():
    def python_files(base: str) -> set[str]:
        return {str(p.relative_to(ROOT / base)) for p in (ROOT / base).rglob("*.py") if "__pycache__" not in p.parts}

    assert python_files("exercises") == python_files("solutions")


GOOD = {
    "format": 1,
    "exercise": [
        {
            "id": "demo",
            "title": "Demo",
            "folder": "01_demo",
            "module": "demo",
            "task": [{"number": 1, "title": "One", "points": 1, "hint": "Do it."}],
        }
    ],
}


def variant(**changes) -> dict:
    data = {"format": 1, "exercise": [dict(GOOD["exercise"][0])]}
    data["exercise"][0]["task"] = [dict(GOOD["exercise"][0]["task"][0])]
    for key, value in changes.items():
        if key.startswith("task_"):
            data["exercise"][0]["task"][0][key[5:]] = value
        elif key == "format":
            data["format"] = value
        else:
            data["exercise"][0][key] = value
    return data


def test_a_small_manifest_parses():
    manifest = parse_manifest(GOOD)
    assert manifest.ids == ["demo"] and manifest.exercise("demo").max_points == 1


@pytest.mark.parametrize(
    ("data", "complaint"),
    [
        (variant(format=2), "'format' must be 1"),
        (variant(task_hint=""), "'hint' must be a non-empty str"),
        (variant(task_number=2), "numbered 1, 2, 3"),
        (variant(task_points=0), "'points' must be positive"),
        (variant(module="queue"), "shadow the standard library"),
        (variant(id="not an id"), "identifiers"),
        (variant(task=[]), "at least one"),
        ({"format": 1, "exercise": [GOOD["exercise"][0], GOOD["exercise"][0]]}, "used twice"),
    ],
)
def test_a_bad_manifest_names_the_problem(data, complaint):
    with pytest.raises(ManifestError, match=complaint):
        parse_manifest(data)


def test_a_manifest_that_is_not_toml_is_a_manifest_error(tmp_path):
    broken = tmp_path / "curriculum.toml"
    broken.write_text('format = 1\n[[exercise]]\nid = "a"\nid = "b"\n')
    with pytest.raises(ManifestError, match=r"curriculum\.toml: Cannot overwrite a value"):
        load_manifest(broken)
    with pytest.raises(ManifestError, match=r"missing\.toml"):
        load_manifest(tmp_path / "missing.toml")


def scenario_names_used(path) -> set[str]:
    """Every scenario a hidden test module asks for.

    student.call("name", ...) and student.run("name", ...); and a helper given
    the student and a scenario name, helper(student, "name", ...), which then
    passes the name on.
    """
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in ("call", "run") and ast.unparse(func.value) == "student":
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                names.add(first.value)
            else:
                assert isinstance(first, ast.Name), f"{path.name}:{node.lineno}: name the scenario by a string"
        elif len(node.args) > 1 and ast.unparse(node.args[0]) == "student":
            second = node.args[1]
            if isinstance(second, ast.Constant) and isinstance(second.value, str):
                names.add(second.value)
    return names


@pytest.mark.parametrize("exercise_id", list(EXERCISES))
def test_every_scenario_a_hidden_test_names_exists(exercise_id):
    exercise = EXERCISES[exercise_id]
    scenarios = ROOT / "grader" / "sandboxed" / "scenarios" / f"{exercise.id}.py"
    defined = {node.name for node in ast.parse(scenarios.read_text()).body if isinstance(node, ast.FunctionDef)}
    used = scenario_names_used(exercise.hidden_tests)
    assert used, f"{exercise_id}: the hidden tests name no scenario"
    missing = used - defined
    assert not missing, f"{exercise.hidden_tests.name} names scenarios that {scenarios.name} does not define: {missing}"
