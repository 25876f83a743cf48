"""The students' handout: the folder an instructor gives to a class.

    python -m grader handout OUT

What goes in is an allow-list; nothing else does, so a file added to the
project later reaches students only when it is named here:

    README.md             written here, for students: set up, the loop, the exercises
    pyproject.toml        written here from the project's: the same name, version and
                          dependencies; no extras, no tool settings
    .gitignore            written here: the virtual environment, caches, the progress folder
    .github/workflows/classroom.yml
                          GitHub Classroom's autograding workflow (grader/templates/
                          classroom-workflow.yml): grades each push, reports the points
    exercises/NN_name/    README.md and the stub of each exercise in the manifest
    grader/               the grader package as the project's pyproject.toml declares it:
                          the .py files of each listed package and the listed package data
                          (the same files ``pip install .`` would install)

What never goes in: the reference solutions (``solutions/``); the project's own
tests and fixtures (``tests/``: its fixture submissions and their
``expected.json`` are answers); ``benchmarks/``, ``noxfile.py``, ``.ci/`` and
``docs/``; the contract tables (``grader/hidden/contracts/``, which are not
package data and serve the project's tests); caches (``__pycache__``,
``.kata``, ``.venv``, ``.nox``, ``*.egg-info``) and git metadata.

The hidden tests ship as source. The student's loop (``check``, ``watch``)
runs them on the student's own machine, so they have to be there; they hold
checks, not answers (each asks a scenario what the code did and judges the
facts). The instructor's grade comes from the instructor's own copy of the
grader (``grade --submission``), so a student who edits the tests in a
handout changes only their own feedback, never their grade.

A handout has no ``solutions/``: ``grade --solutions`` there ends with exit
status 2 and says that this is a handout.

The handout is written into a temporary folder beside OUT and renamed into
place at the end, so that a build that fails leaves no half-made handout.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import string
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from grader import __version__
from grader.manifest import Manifest, ManifestError, parse_manifest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

# The checkout this grader belongs to: the handout is made of its files.
CHECKOUT = Path(__file__).resolve().parent.parent
# The top-level entries of every handout, and nothing else.
TOP_LEVEL = ("README.md", "pyproject.toml", ".gitignore", ".github", "exercises", "grader")
# Where GitHub Classroom's workflow goes in the handout, and where it comes from in the checkout.
CLASSROOM_WORKFLOW = ".github/workflows/classroom.yml"
CLASSROOM_WORKFLOW_SOURCE = "grader/templates/classroom-workflow.yml"
# The [project] keys the handout's pyproject.toml keeps; optional-dependencies (dev, test) stay out.
PROJECT_KEYS = ("name", "version", "description", "readme", "requires-python", "dynamic", "dependencies", "scripts")
# The [tool] tables it keeps: how to build the package; pytest's and ruff's settings are the project's.
TOOL_KEYS = ("setuptools",)
GITIGNORE = ".venv/\n__pycache__/\n*.egg-info/\n.kata/\nkata-results.json\n"
PYPROJECT_HEADER = (
    "# Written by `python -m grader handout` from the kata's own pyproject.toml:\n"
    "# the grader and what it needs to run, nothing of the project's development.\n\n"
)

# The students' README. $exercises is the table of the manifest's exercises.
README_TEMPLATE = string.Template(
    """\
# mp-kata: learn multiprocessing by doing

A kata for Python's `multiprocessing` and `concurrent.futures`. Each exercise
in `exercises/` is a small module with `TODO`s and a `README.md` that explains
one concept. You fill in the `TODO`s and run the grader, which tells you which
checks fail, why, and gives a hint. The checks look at what really happened:
that your work ran in other processes, at the same time, that every process
was joined, that an exception in a worker reached the caller.

You need Python 3.10 or newer on Linux (the grader's sandbox uses Linux
process features). On Debian or Ubuntu, `python3 -m venv` needs the
`python3-venv` package.

## Set up (once)

In this folder:

```sh
python3 -m venv .venv
.venv/bin/pip install -e .
```

The `-e` matters: the grader finds `exercises/` beside itself, in this folder.

## The loop

```sh
.venv/bin/python -m grader list       # every exercise: not started, in progress or done; the next one marked
.venv/bin/python -m grader check      # grade the current exercise (the first not done) and show it in full
.venv/bin/python -m grader watch      # the same, again each time you save the file (q or Ctrl-C quits)
.venv/bin/python -m grader hint 2     # the hints of exercise 2, and the line of each task's TODO
.venv/bin/python -m grader reset 2    # put exercise 2's stub back (asks first; your file goes to .kata/backups/)
```

`kata` is the same command (`.venv/bin/kata check 3`). Open the exercise's
`README.md`, replace a `TODO`, save, and read what `check` says: each task
with `ok` or `FAIL`, for each failed check what it saw and why, what your code
printed, the task's hint and the line to look at. Once the exercise is done,
`check` names the next one; `watch` stays on its exercise until you press `n`.

`check 3` checks exercise 3 (a number or a name from the list below).
`--start-method fork` is quicker while you work, and says that its score is
provisional: a check counts only when it passes under each of the start
methods fork, spawn and forkserver (the default). `--explain` shows what each
start method saw. `python -m grader --help` lists every command and option.

Your progress is kept in `.kata/state.json`: the last full grade of each
exercise and a hash of your file then. An exercise is done while its last
grade was full marks and the file has not changed since.

## Putting a stub back

`reset` takes the stub from git (the files as they were in your last commit).
To be able to use it, make this folder a git repository before you start:

```sh
git init -q && git add -A && git commit -q -m "the handout"
```

## The exercises

Do them in order: each builds on the ones before.

| # | exercise | folder |
| --- | --- | --- |
$exercises

## On GitHub Classroom

If your class runs on GitHub Classroom, `.github/workflows/classroom.yml`
grades each push of your repository: every exercise under every start
method, as `python -m grader grade` does here. The points go to Classroom
(one test per exercise), and the log of the workflow's "Grade" step shows
each check that failed, why, and a hint. Leave the file as it is.

## What is in this folder

- `exercises/`: your work, one folder per exercise.
- `.github/workflows/classroom.yml`: the grading on GitHub Classroom (above).
- `grader/`: the grader. Its hidden tests (`grader/hidden/`) and the scenarios
  they run (`grader/sandboxed/`) are here as source, because `check` runs them
  on your machine. They hold checks, not answers.
- There are no reference solutions here: `grade --solutions` says so.

Your grade does not come from this folder: your instructor grades the
`exercises/` folder you hand in with their own copy of the grader. Editing
the tests here changes only the feedback you get, not your grade.
"""
)


class HandoutError(Exception):
    """The handout cannot be made; the message says why and what to do."""


@dataclass(frozen=True)
class HandoutSummary:
    folder: Path  # the handout, resolved
    files: tuple[str, ...]  # every file written, relative to folder, in POSIX form, sorted

    @property
    def count(self) -> int:
        return len(self.files)


def build_handout(out: Path, root: Path = CHECKOUT) -> HandoutSummary:
    """Write the students' handout of the kata at root into out, a new or empty folder.

    Raises HandoutError when out exists and is not an empty folder, or when
    root is not a checkout of the kata (no pyproject.toml, manifest, or a file
    the manifest or the pyproject names is missing).
    """
    out = Path(os.path.abspath(out))
    if out.is_symlink() or out.exists():
        out = out.resolve()
        if not out.is_dir():
            raise HandoutError(f"{out} exists and is not a folder: give a new folder or an empty one")
        if any(out.iterdir()):
            raise HandoutError(f"{out} is not empty: give a new folder or an empty one")
    root = Path(root).resolve()
    pyproject = _read_pyproject(root)
    manifest = _read_manifest(root)
    chosen = [*_exercise_files(root, manifest), *_grader_files(root, pyproject)]
    written = {
        "README.md": render_readme(manifest).encode(),
        "pyproject.toml": render_pyproject(pyproject).encode(),
        ".gitignore": GITIGNORE.encode(),
        CLASSROOM_WORKFLOW: _read_bytes(root, CLASSROOM_WORKFLOW_SOURCE),
    }
    building = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        # Built beside out and renamed into place: a build that fails leaves nothing behind.
        building = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".building", dir=out.parent))
        _set_default_mode(building)
        for relative in chosen:
            destination = building / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / relative, destination)
        for name, data in written.items():
            (building / name).parent.mkdir(parents=True, exist_ok=True)
            (building / name).write_bytes(data)
        os.replace(building, out)  # an empty folder is replaced too
    except OSError as problem:
        if building is not None:
            shutil.rmtree(building, ignore_errors=True)
        raise HandoutError(f"writing {out} failed: {problem}")
    files = sorted({*(str(path) for path in chosen), *written})
    return HandoutSummary(folder=out, files=tuple(files))


def _read_bytes(root: Path, relative: str) -> bytes:
    _regular_file(root, relative, "the handout")
    return (root / relative).read_bytes()


def _set_default_mode(folder: Path) -> None:
    """mkdtemp makes a folder only its owner can read; a handout is for sharing: the umask's usual mode."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)


def _read_pyproject(root: Path) -> dict[str, Any]:
    path = root / "pyproject.toml"
    try:
        with open(path, "rb") as stream:
            return tomllib.load(stream)
    except FileNotFoundError:
        raise HandoutError(f"{root} has no pyproject.toml: make the handout from a checkout of the kata")
    except (OSError, tomllib.TOMLDecodeError) as problem:
        raise HandoutError(f"{path} cannot be read: {problem}")


def _read_manifest(root: Path) -> Manifest:
    path = root / "grader" / "curriculum.toml"
    try:
        with open(path, "rb") as stream:
            return parse_manifest(tomllib.load(stream), source=str(path))
    except FileNotFoundError:
        raise HandoutError(f"{root} has no grader/curriculum.toml: make the handout from a checkout of the kata")
    except (OSError, tomllib.TOMLDecodeError, ManifestError) as problem:
        raise HandoutError(f"{path} cannot be read: {problem}")


def _exercise_files(root: Path, manifest: Manifest) -> list[PurePosixPath]:
    """Each exercise's README.md and stub, as the manifest names them."""
    files = []
    for exercise in manifest.exercises:
        for relative in (f"exercises/{exercise.folder}/README.md", exercise.student_file):
            files.append(_regular_file(root, relative, "the manifest (grader/curriculum.toml)"))
    return files


def _grader_files(root: Path, pyproject: dict[str, Any]) -> list[PurePosixPath]:
    """The files of the packages and the package data that pyproject.toml's [tool.setuptools] declares."""
    setuptools = pyproject.get("tool", {}).get("setuptools", {})
    packages = setuptools.get("packages")
    if not isinstance(packages, list) or not packages:
        raise HandoutError("pyproject.toml has no [tool.setuptools] packages list: the handout copies what it names")
    files: set[PurePosixPath] = set()
    for package in packages:
        folder = PurePosixPath(*package.split("."))
        if not (root / folder).is_dir():
            raise HandoutError(f"pyproject.toml names the package {package}, but {folder}/ is not a folder")
        # The package's own modules: top-level .py files only (subpackages are listed on their own).
        files.update(folder / path.name for path in (root / folder).glob("*.py") if path.is_file())
    for package, patterns in setuptools.get("package-data", {}).items():
        folder = PurePosixPath(*package.split("."))
        for pattern in patterns:
            found = [path for path in (root / folder).glob(pattern) if path.is_file()]
            if not found:
                raise HandoutError(f"pyproject.toml's package data {package}: {pattern!r} matches no file")
            files.update(PurePosixPath(path.relative_to(root).as_posix()) for path in found)
    for relative in files:
        _regular_file(root, str(relative), "pyproject.toml")
    return sorted(path for path in files if "__pycache__" not in path.parts)


def _regular_file(root: Path, relative: str, named_by: str) -> PurePosixPath:
    """relative, once it is known to be a regular file inside root (a link may not lead out of the checkout)."""
    path = root / relative
    if not path.is_file():
        raise HandoutError(f"{named_by} names {relative}, which is missing or not a file")
    if not path.resolve().is_relative_to(root):
        raise HandoutError(f"{relative} is a symbolic link out of {root}: the handout copies only the kata's files")
    return PurePosixPath(relative)


def render_readme(manifest: Manifest) -> str:
    """The students' README.md: README_TEMPLATE with the manifest's exercises."""
    rows = [
        f"| {exercise.number} | {exercise.title} | `exercises/{exercise.folder}/{exercise.file_name}` |"
        for exercise in manifest.exercises
    ]
    return README_TEMPLATE.substitute(exercises="\n".join(rows))


def handout_pyproject(pyproject: dict[str, Any]) -> dict[str, Any]:
    """The handout's pyproject.toml as data: the build system, the kept [project] keys and [tool] tables."""
    project = pyproject.get("project", {})
    document: dict[str, Any] = {}
    if "build-system" in pyproject:
        document["build-system"] = pyproject["build-system"]
    document["project"] = {key: project[key] for key in PROJECT_KEYS if key in project}
    tools = {key: pyproject["tool"][key] for key in TOOL_KEYS if key in pyproject.get("tool", {})}
    if tools:
        document["tool"] = tools
    return document


def render_pyproject(pyproject: dict[str, Any]) -> str:
    """handout_pyproject as TOML text; read back and compared, so that what is written is what was meant."""
    document = handout_pyproject(pyproject)
    text = PYPROJECT_HEADER + _toml_document(document)
    if tomllib.loads(text) != document:
        raise HandoutError("the handout's pyproject.toml did not read back as written (a value TOML cannot hold?)")
    return text


# A small TOML writer for what a pyproject.toml holds: tables, strings, numbers, booleans and lists of them.
# (The standard library reads TOML but does not write it; tomli-w would be a dependency for 30 lines.)
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _toml_document(document: dict[str, Any]) -> str:
    lines: list[str] = []
    for name, table in document.items():
        _toml_table([_toml_key(name)], table, lines)
    return "\n".join(lines).rstrip("\n") + "\n"


def _toml_table(path: list[str], table: dict[str, Any], lines: list[str]) -> None:
    values = {key: value for key, value in table.items() if not isinstance(value, dict)}
    tables = {key: value for key, value in table.items() if isinstance(value, dict)}
    if values or not tables:
        lines.append(f"[{'.'.join(path)}]")
        lines.extend(f"{_toml_key(key)} = {_toml_value(value)}" for key, value in values.items())
        lines.append("")
    for key, value in tables.items():
        _toml_table([*path, _toml_key(key)], value, lines)


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _toml_string(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list):
        inline = "[" + ", ".join(_toml_value(item) for item in value) + "]"
        if len(inline) <= 80:
            return inline
        return "[\n" + "".join(f"    {_toml_value(item)},\n" for item in value) + "]"
    raise HandoutError(f"pyproject.toml holds a {type(value).__name__} the handout cannot write: {value!r}")


def _toml_string(text: str) -> str:
    # JSON's string escapes are TOML's basic-string escapes; TOML also wants DEL escaped.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def describe(summary: HandoutSummary) -> str:
    """What the handout command prints: where, how many files, what is at its top."""
    tops: dict[str, int] = {}
    for file in summary.files:
        head, _, rest = file.partition("/")
        name = f"{head}/" if rest else head
        tops[name] = tops.get(name, 0) + 1
    parts = [f"{name} ({count} files)" if name.endswith("/") else name for name, count in sorted(tops.items())]
    return (
        f"Wrote the handout (mp-kata {__version__}) to {summary.folder}: {summary.count} files.\n"
        f"  {', '.join(parts)}\n"
        "Give the folder to your students; they start with its README.md. "
        "It holds no reference solutions and none of the project's own tests."
    )
