"""The students' handout (grader/handout.py): what goes in, what never does, and that it works as its README says.

The handout is built once per module (it takes a fraction of a second) and
only read; a test that changes one works on its own copy.
"""

from __future__ import annotations

import ast
import base64
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from grader.cli import build_parser, main
from grader.handout import HandoutError, build_handout, render_pyproject
from grader.manifest import load_manifest

from .conftest import ROOT, installing_environment

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

# Every handout's top level, and nothing else (written out here, not imported: the test is the second opinion).
EXPECTED_TOP_LEVEL = {"README.md", "pyproject.toml", ".gitignore", ".github", "exercises", "grader"}
WORKFLOW = ".github/workflows/classroom.yml"
# Never in a handout, at any depth.
NEVER = {"solutions", "tests", "fixtures", "benchmarks", "docs", "contracts", ".ci", ".git", "__pycache__", ".kata"}
# A solution's line shorter than this is too common to tell a leak (`finished += 1`, `return total`).
MIN_LINE = 12
# The kata's own teaching material and grader sources: a solution's line that is also in one of them
# is public by design (a README shows `tasks.task_done()`, a scenario starts its processes with
# `process.start()` too), so the leak search holds only the lines that are the solution's own.
PUBLIC_SOURCES = ("exercises", "grader")


def readable_text(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


def text_files(folder: Path) -> dict[str, str]:
    """Every file under folder (no __pycache__), relative path -> text."""
    return {
        path.relative_to(folder).as_posix(): readable_text(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def _not_code(tree: ast.Module) -> set[int]:
    """The line numbers of imports and docstrings (and any other bare string statement)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        is_string = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        if isinstance(node, (ast.Import, ast.ImportFrom)) or (is_string and isinstance(node.value.value, str)):
            lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return lines


def solution_lines(solution: Path, stub: Path) -> set[str]:
    """The solution's lines of code that its stub does not have, stripped.

    Left out: blank lines, comments, docstrings, imports, lines the stub has
    too (the signatures it shares), and lines shorter than MIN_LINE.
    """
    source = solution.read_text(encoding="utf-8")
    in_stub = {line.strip() for line in readable_text(stub).splitlines()} if stub.is_file() else set()
    skipped = _not_code(ast.parse(source))
    found = set()
    for number, line in enumerate(source.splitlines(), start=1):
        text = line.strip()
        if len(text) < MIN_LINE or text.startswith("#") or number in skipped or text in in_stub:
            continue
        found.add(text)
    return found


def telling_lines() -> dict[str, set[str]]:
    """Per solution file (relative to solutions/): its lines that no public source of the kata holds."""
    public = [text for folder in PUBLIC_SOURCES for text in text_files(ROOT / folder).values()]
    telling = {}
    for solution in sorted((ROOT / "solutions").rglob("*.py")):
        relative = solution.relative_to(ROOT / "solutions")
        own = solution_lines(solution, ROOT / "exercises" / relative)
        telling[relative.as_posix()] = {line for line in own if not any(line in text for text in public)}
    return telling


def leaks(folder: Path, telling: dict[str, set[str]]) -> list[tuple[str, str, str]]:
    """(solution, its line, the file of folder that holds it) for every telling line found in folder."""
    files = text_files(folder)
    return [
        (solution, line, name)
        for solution, lines in telling.items()
        for line in sorted(lines)
        for name, text in files.items()
        if line in text
    ]


@pytest.fixture(scope="module")
def handout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_handout(tmp_path_factory.mktemp("handout") / "handout").folder


@pytest.fixture(scope="module")
def telling() -> dict[str, set[str]]:
    return telling_lines()


def test_no_line_of_a_reference_solution_is_in_the_handout(handout: Path, telling: dict[str, set[str]]):
    assert leaks(handout, telling) == []


def test_the_search_finds_a_solution_planted_in_a_handout(handout: Path, telling: dict[str, set[str]], tmp_path: Path):
    """The search above is not vacuous: every solution has lines of its own, and a copied solution is found."""
    empty = sorted(solution for solution, lines in telling.items() if len(lines) < 3)
    assert not empty, f"solutions with fewer than 3 lines to search for: {empty}"
    planted = tmp_path / "planted"
    shutil.copytree(handout, planted)
    # The likeliest leak: a solution in place of its stub; and the whole solutions/ folder beside the grader.
    shutil.copy(ROOT / "solutions" / "01_processes" / "processes.py", planted / "exercises/01_processes/processes.py")
    shutil.copytree(ROOT / "solutions", planted / "grader" / "solutions", ignore=shutil.ignore_patterns("__pycache__"))
    found = leaks(planted, telling)
    assert {solution for solution, _, _ in found} == set(telling)
    in_place = {line for solution, line, name in found if name == "exercises/01_processes/processes.py"}
    assert in_place == telling["01_processes/processes.py"]


def test_the_top_level_is_exactly_the_allow_list(handout: Path):
    assert {entry.name for entry in handout.iterdir()} == EXPECTED_TOP_LEVEL
    for path in handout.rglob("*"):
        relative = path.relative_to(handout)
        assert not NEVER & set(relative.parts), f"{relative} is in the handout"
        assert not path.name.endswith((".pyc", ".egg-info")), f"{relative} is in the handout"


def test_the_exercises_are_the_manifests_readmes_and_untouched_stubs(handout: Path):
    exercises = load_manifest().exercises
    assert {path.name for path in (handout / "exercises").iterdir()} == {exercise.folder for exercise in exercises}
    for exercise in exercises:
        folder = handout / "exercises" / exercise.folder
        assert {path.name for path in folder.iterdir()} == {"README.md", exercise.file_name}
        for name in ("README.md", exercise.file_name):
            assert (folder / name).read_bytes() == (ROOT / "exercises" / exercise.folder / name).read_bytes()


def test_the_grader_is_what_pip_installs_and_the_hidden_tests_ship(handout: Path):
    grader = handout / "grader"
    for exercise in load_manifest().exercises:
        assert (grader / "hidden" / exercise.hidden_tests.name).read_bytes() == exercise.hidden_tests.read_bytes()
        assert (grader / "sandboxed" / "scenarios" / f"{exercise.id}.py").is_file()
    for data in ("curriculum.toml", "hidden/pytest.ini", "schema/scorecard.schema.json", "handout.py", "cli.py"):
        assert (grader / data).is_file(), data
    assert not (grader / "hidden" / "contracts").exists()  # the project's tests read them; pip leaves them out


def test_the_summary_lists_every_file_written(tmp_path: Path):
    summary = build_handout(tmp_path / "out")
    on_disk = sorted(p.relative_to(summary.folder).as_posix() for p in summary.folder.rglob("*") if p.is_file())
    assert list(summary.files) == on_disk
    assert summary.count == len(on_disk)
    assert summary.folder == (tmp_path / "out").resolve()


def test_a_file_new_to_the_project_stays_out_of_the_handout(tmp_path: Path):
    """Allow-listed: a file nobody named (at the top, beside a stub, in grader/ but not package data) stays out."""
    checkout = tmp_path / "checkout"
    no_caches = shutil.ignore_patterns("__pycache__")
    for folder in ("exercises", "grader", "solutions"):
        shutil.copytree(ROOT / folder, checkout / folder, ignore=no_caches)
    shutil.copy(ROOT / "pyproject.toml", checkout / "pyproject.toml")
    new_files = ["answers.md", "exercises/01_processes/answer.py", "grader/notes.txt", "grader/hidden/answers.toml"]
    for relative in new_files:
        (checkout / relative).write_text("the answer\n")
    summary = build_handout(tmp_path / "out", root=checkout)
    assert not set(new_files) & set(summary.files)
    assert {name.split("/")[0] for name in summary.files} == EXPECTED_TOP_LEVEL


def test_the_pyproject_keeps_the_name_and_dependencies_and_nothing_of_development(handout: Path):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    text = (handout / "pyproject.toml").read_text()
    written = tomllib.loads(text)
    for key in ("name", "dependencies", "requires-python", "scripts", "dynamic"):
        assert written["project"][key] == project["project"][key], key
    assert written["build-system"] == project["build-system"]
    assert written["tool"] == {"setuptools": project["tool"]["setuptools"]}
    assert "optional-dependencies" not in written["project"]
    assert "solutions" not in text and "nox" not in text and "ruff" not in text


def test_the_pyproject_writer_reads_back_what_toml_must_escape():
    awkward = 'quote " backslash \\ tab \t newline \n delete \x7f accent é emoji 🎉'
    document = {"project": {"name": awkward, "dependencies": ["a", awkward], "scripts": {"odd key": awkward}}}
    assert tomllib.loads(render_pyproject(document)) == document


def test_the_readme_names_every_exercise_and_why_the_tests_ship(handout: Path):
    readme = (handout / "README.md").read_text()
    for exercise in load_manifest().exercises:
        assert f"| {exercise.number} | {exercise.title} |" in readme
    assert "checks, not answers" in readme and "own copy of the grader" in readme


def test_an_out_folder_that_is_not_empty_is_refused(tmp_path: Path):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    with pytest.raises(HandoutError, match="is not empty"):
        build_handout(taken)
    assert [path.name for path in taken.iterdir()] == ["notes.txt"]
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    with pytest.raises(HandoutError, match="not a folder"):
        build_handout(a_file)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert build_handout(empty).folder == empty.resolve()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a-file", "empty", "taken"]  # no temporary left


def test_the_handout_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "class"
    assert main(["handout", str(out)]) == 0
    said = capsys.readouterr()
    assert str(out) in said.out and "files" in said.out, said.out
    assert (out / "README.md").is_file()
    assert main(["handout", str(out)]) == 2
    said = capsys.readouterr()
    assert said.err.startswith("cannot make the handout: ") and "is not empty" in said.err, said.err


def commands_under(readme: str, heading: str) -> list[str]:
    """The commands of the first fenced block after a README's heading, one a line, without their comments."""
    after = readme.split(f"\n{heading}\n", 1)[1]
    block = re.search(r"```[a-z]*\n(.*?)```", after, re.DOTALL)
    assert block is not None, f"no code block under {heading}"
    lines = [re.sub(r"\s+#.*$", "", line).strip() for line in block.group(1).splitlines()]
    return [line for line in lines if line]


def the_command(commands: list[str], ending: str) -> str:
    """The README's command line that ends with these words (its prefix is how the README runs the grader)."""
    found = [line for line in commands if line.endswith(ending)]
    assert len(found) == 1, f"no single command ending in {ending!r} in {commands}"
    return found[0]


@pytest.mark.heavy  # a virtual environment and a pip install: about 30 s
def test_a_fresh_handout_installs_and_runs_the_students_loop_as_its_readme_says(tmp_path: Path):
    folder = build_handout(tmp_path / "handout").folder
    readme = (folder / "README.md").read_text()
    env = installing_environment(tmp_path)

    def run(command: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            command,
            shell=True,
            cwd=folder,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
        )

    for command in commands_under(readme, "## Set up (once)"):
        done = run(command)
        assert done.returncode == 0, f"{command}: {done.stdout[-2000:]}{done.stderr[-2000:]}"

    loop = commands_under(readme, "## The loop")
    listed = run(the_command(loop, " list"))
    first = load_manifest().exercises[0]
    assert listed.returncode == 0, listed.stderr
    assert re.search(rf"^\s*1\.\s+-/{first.max_points}\s+not started\s+{re.escape(first.title)}", listed.stdout, re.M)

    hinted = run(the_command(loop, " hint 2"))
    assert hinted.returncode == 0 and "task 1:" in hinted.stdout, hinted.stdout + hinted.stderr

    check = the_command(loop, " check")
    checked = run(f"{check} {first.id} --start-method fork")  # the README allows both: `check 3`, `--start-method fork`
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert re.search(rf"^Score: 0/{first.max_points} \(0%\)", checked.stdout, re.M), checked.stdout
    assert first.title in checked.stdout and first.student_file in checked.stdout, checked.stdout
    assert "Traceback" not in checked.stderr, checked.stderr

    grader = check.removesuffix(" check")
    solutions = run(f"{grader} grade --solutions")
    assert solutions.returncode == 2, solutions.stdout + solutions.stderr
    assert "this is a handout: it has no reference solutions" in solutions.stderr, solutions.stderr
    assert "Traceback" not in solutions.stderr, solutions.stderr


# GitHub Classroom's workflow (grader/templates/classroom-workflow.yml, shipped as .github/workflows/classroom.yml)

REPORTER = "classroom-resources/autograding-grading-reporter@"


def workflow_steps(folder: Path) -> tuple[dict, list[dict]]:
    workflow = yaml.safe_load((folder / WORKFLOW).read_text())
    (job,) = workflow["jobs"].values()
    return workflow, job["steps"]


def step_named(steps: list[dict], words: str) -> dict:
    found = [step for step in steps if step.get("name") == words]
    assert len(found) == 1, f"no single step named {words!r}: {[step.get('name') for step in steps]}"
    return found[0]


def test_the_classroom_workflow_grades_each_push_and_hands_the_points_to_the_reporter(handout: Path):
    workflow, steps = workflow_steps(handout)
    assert "push" in workflow["on"], workflow["on"]
    (job,) = workflow["jobs"].values()
    # The reporter writes the points on the check run called "Autograding Tests": the job's name.
    assert job["name"] == "Autograding Tests" and workflow["permissions"]["checks"] == "write"
    grading = step_named(steps, "Grade")
    reporter = step_named(steps, "Report the points to Classroom")
    assert steps.index(grading) < steps.index(reporter)
    assert reporter["uses"].startswith(REPORTER) and reporter["if"] == "always()"
    runner = reporter["with"]["runners"]
    # The reporter reads each runner's result, base64-encoded, from <RUNNER>_RESULTS.
    assert reporter["env"] == {f"{runner.upper()}_RESULTS": f"${{{{ steps.{grading['id']}.outputs.result }}}}"}
    commands = [line.strip() for line in grading["run"].splitlines() if "python -m grader" in line]
    assert len(commands) == 1, grading["run"]
    words = shlex.split(commands[0].split("||")[0])
    assert words[:3] == ["python", "-m", "grader"]
    options = build_parser().parse_args(words[3:])  # every option the workflow uses is one the grader has
    assert (options.command, options.format, options.solutions, options.submission) == (
        "grade",
        "classroom",
        False,
        None,
    )
    assert options.only == [] and options.start_method == "all", "Classroom grades every exercise, every method"
    assert f"--json {options.json}" in grading["run"] and "GITHUB_OUTPUT" in grading["run"]
    install = step_named(steps, "Install the grader")
    assert "pip install" in install["run"] and "-e ." in install["run"]  # the grader finds exercises/ beside it


@pytest.mark.heavy  # a virtual environment, a pip install and a grading of every exercise: about 60 s
@pytest.mark.timeout(1200)  # beside the other heavy tests on 2 cores the same work took over 300 s
def test_the_classroom_workflows_steps_grade_a_push_and_report_its_points(tmp_path: Path):
    """The workflow's own install and grade steps, run as a runner runs them, on a handout with one exercise done."""
    folder = build_handout(tmp_path / "repository").folder
    first = load_manifest().exercises[0]
    shutil.copy(ROOT / "solutions" / first.folder / first.file_name, folder / first.student_file)
    env = installing_environment(tmp_path)
    # What actions/setup-python leaves behind: a `python` first on the PATH, pip in it.
    venv = tmp_path / "python"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"
    outputs = tmp_path / "github_output"
    outputs.touch()
    env["GITHUB_OUTPUT"] = str(outputs)
    _, steps = workflow_steps(folder)
    for name in ("Install the grader", "Grade"):
        step = step_named(steps, name)
        assert step["shell"] == "bash"
        script = tmp_path / f"{name}.sh"
        script.write_text(step["run"])
        # How a runner runs a step whose shell is bash.
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=folder,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=1100,
        )
        assert done.returncode == 0, f"{name}: {done.stdout[-3000:]}{done.stderr[-3000:]}"
    assert first.title in done.stdout and "Traceback" not in done.stderr, done.stdout + done.stderr
    (line,) = outputs.read_text().splitlines()
    key, _, value = line.partition("=")
    assert key == "result"
    result = json.loads(base64.b64decode(value))
    manifest = load_manifest()
    assert result["version"] == 1 and result["status"] == "fail"
    assert result["max_score"] == sum(exercise.max_points for exercise in manifest.exercises)
    assert [test["name"] for test in result["tests"]] == [f"{e.number:02d} {e.title}" for e in manifest.exercises]
    done_test, *others = result["tests"]
    assert (done_test["status"], done_test["score"]) == ("pass", first.max_points), done_test
    assert all(test["score"] == 0 and test["status"] in ("fail", "error") for test in others), others
    for exercise, test in zip(manifest.exercises[1:], others, strict=True):
        assert f"python -m grader check {exercise.number}" in test["message"], test
