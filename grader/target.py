"""Stage 2: what is graded, staged into a private copy.

The graded folder is never used in place: the grader copies each selected
exercise's Python files into its own work folder, so that nothing the graded
code does to its folder afterwards (or a conftest.py, pytest.ini or
sitecustomize.py lying in it) changes the run. A folder that cannot be graded
at all is refused with the reason (exit status 2); a single exercise that is
missing is graded as an error and the others are still graded.

Files are read with care, because a submission is whatever a student handed
in: a symbolic link is followed only when it stays inside the submission, a
file that is too large is judged by its size and never read, and a file that
is binary or not in its encoding is refused with the reason. A refused file
is replaced in the copy by a stand-in whose import raises an ImportError that
says why (its message starts with NOT_STAGED), so that every test that
imports it shows the reason instead of "No module named ...".
"""

from __future__ import annotations

import io
import os
import stat
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

from grader.manifest import Exercise, load_manifest

KINDS = ("exercises", "solutions", "submission")
# A file larger than this is not source code a student wrote; it is left out unread.
MAX_FILE_BYTES = 1 << 20
# The message of a stand-in's ImportError starts with this (the plugin shows the rest).
NOT_STAGED = "not staged: "
STAND_IN = '"""Written by the grader in place of a file it could not use."""\n\nraise ImportError({message!r})\n'
UTF_8 = ("utf-8", "utf-8-sig")
# What --solutions says where the kata has no solutions/: a handout (grader/handout.py) leaves them out.
NO_SOLUTIONS = (
    "this is a handout: it has no reference solutions "
    "(grade your own work with python -m grader check; your instructor grades with their own copy)"
)


class TargetError(Exception):
    """The target cannot be graded at all; the message says why and what to do."""


@dataclass(frozen=True)
class Target:
    kind: str  # one of KINDS
    path: Path  # the folder graded, resolved: for a submission, where its exercise folders were found
    note: str | None = None  # where they were found, when not at the top of the folder given


@dataclass(frozen=True)
class StagedTarget:
    target: Target
    root: Path  # the private copy: root/<folder>/<module>.py
    # Exercise id -> why it cannot be graded (its tests then score as errors).
    problems: dict[str, str] = field(default_factory=dict)


def project_root() -> Path:
    """The kata folder that holds exercises/: $KATA_ROOT, else the grader's own checkout, else the current folder."""
    chosen = os.environ.get("KATA_ROOT")
    if chosen:
        return Path(chosen).resolve()
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "exercises").is_dir():
        return checkout
    return Path.cwd()


def choose_target(kind: str, path: str | Path | None = None) -> Target:
    """Resolve what to grade; raise TargetError when it does not exist or is not a folder."""
    if kind not in KINDS:
        raise TargetError(f"unknown target kind {kind!r}")
    folder = Path(path) if path is not None else project_root() / kind
    shown = str(path) if path is not None else kind + "/"
    if not folder.exists():
        if kind == "solutions" and path is None:
            raise TargetError(NO_SOLUTIONS)
        raise TargetError(f"{shown} does not exist: give a folder laid out like exercises/")
    if not folder.is_dir():
        raise TargetError(f"{shown} is a file, not a folder: give a folder laid out like exercises/")
    if kind == "submission":
        located, note = locate_exercises(folder.resolve(), {exercise.folder for exercise in load_manifest().exercises})
        return Target(kind=kind, path=located, note=note)
    return Target(kind=kind, path=folder.resolve())


def locate_exercises(folder: Path, exercise_folders: set[str]) -> tuple[Path, str | None]:
    """Where in a submission the exercise folders are, and a note when it is not the top.

    Looked for where students and platforms put them: at the top, in exercises/
    (a clone of the kata's repository, a GitHub Classroom or Gradescope
    repository submission), and in the one folder that wraps them (a zip of a
    folder, a repository downloaded as a zip); otherwise the top, which then
    grades as missing exercises. Symbolic links are never followed here.
    """
    candidates = [(folder, None), (folder / "exercises", "found in exercises/")]
    inner = [path for path in _listing(folder) if path.is_dir() and not path.name.startswith(("_", "."))]
    if len(inner) == 1:
        wrapper = inner[0]
        candidates += [
            (wrapper, f"found in {wrapper.name}/"),
            (wrapper / "exercises", f"found in {wrapper.name}/exercises/"),
        ]
    for candidate, note in candidates:
        if candidate.is_dir() and not candidate.is_symlink() and _names(candidate) & exercise_folders:
            return candidate, note
    return folder, None


def _listing(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except OSError:
        return []


def _names(folder: Path) -> set[str]:
    return {path.name for path in _listing(folder)}


def stage(target: Target, exercises: list[Exercise], destination: Path) -> StagedTarget:
    """Copy the selected exercises' top-level .py files into destination."""
    problems: dict[str, str] = {}
    root = target.path
    none_there = not any(os.path.lexists(root / exercise.folder) for exercise in load_manifest().exercises)
    for exercise in exercises:
        copy = destination / exercise.folder
        copy.mkdir(parents=True, exist_ok=True)
        problem = _stage_exercise(root, exercise, copy)
        if problem is None:
            continue
        if none_there:
            problem += " (the folder has none of the exercise folders: is it laid out like exercises/?)"
        problems[exercise.id] = problem
        _write_stand_in(copy / exercise.file_name, problem)
    return StagedTarget(target=target, root=destination, problems=problems)


def _stage_exercise(root: Path, exercise: Exercise, copy: Path) -> str | None:
    """Copy one exercise's .py files; return why its module cannot be graded, if it cannot."""
    source = root / exercise.folder
    problem = _link_problem(source, root, f"the folder {exercise.folder}/")
    if problem:
        return problem
    if not source.exists():
        return f"the folder {exercise.folder}/ is missing"
    if not source.is_dir():
        return f"{exercise.folder} is a file, not a folder: put {exercise.file_name} in a folder {exercise.folder}/"
    module_problem = None
    for item in sorted(source.iterdir()):
        # Top-level .py files only: no packages, no caches, no folders named like a module.
        if item.suffix != ".py" or (item.is_dir() and not item.is_symlink()):
            continue
        shown = f"{exercise.folder}/{item.name}"
        data, problem = _read_source(item, root, shown)
        if problem:
            _write_stand_in(copy / item.name, problem)
            if item.name == exercise.file_name:
                module_problem = problem
            continue
        (copy / item.name).write_bytes(data)
    if module_problem is None and not (copy / exercise.file_name).is_file():
        module_problem = f"{exercise.folder}/{exercise.file_name} is missing"
    return module_problem


def _read_source(path: Path, root: Path, shown: str) -> tuple[bytes, str | None]:
    """A source file's bytes, or why it cannot be graded. Reads at most MAX_FILE_BYTES + 1 bytes."""
    problem = _link_problem(path, root, shown)
    if problem:
        return b"", problem
    try:
        # Non-blocking, so that a FIFO named like a module cannot stall the grader.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        return b"", f"{shown} cannot be read ({exc.strerror})"
    with os.fdopen(fd, "rb") as stream:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return b"", f"{shown} is not a regular file"
        if info.st_size > MAX_FILE_BYTES:
            return b"", _too_large(shown, info.st_size)
        data = stream.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:  # it grew after the size check
        return b"", _too_large(shown, len(data))
    return data, _text_problem(data, shown)


def _link_problem(path: Path, root: Path, shown: str) -> str | None:
    """Why a symbolic link is not followed: it leads out of the submission, or nowhere. None otherwise."""
    if not path.is_symlink():
        return None
    try:
        link = _printable(os.readlink(path))
    except OSError:
        link = "?"
    real = Path(os.path.realpath(path))  # never raises, even for a loop
    if not real.is_relative_to(root):
        return (
            f"{shown} is a symbolic link to {link}, outside the submission: the grader does not follow it; "
            "put the file itself in the submission"
        )
    if not real.exists():
        return f"{shown} is a symbolic link to {link}, which does not exist"
    return None


def _text_problem(data: bytes, shown: str) -> str | None:
    """Why these bytes are not Python source text, or None (syntax is left to Python's own import)."""
    nul = data.find(b"\0")
    if nul >= 0:
        return f"{shown} is not Python source: it holds binary data (a NUL byte at offset {nul})"
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError:  # undecodable first lines, or a bad coding line: judged as UTF-8 below
        encoding = "utf-8"
    try:
        data.decode(encoding)
    except LookupError:  # an unknown encoding: Python's import error names it
        return None
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        byte = f"0x{data[exc.start]:02x}"
        if encoding in UTF_8:
            return (
                f"{shown} is not UTF-8 text (line {line} holds the byte {byte}): "
                "save it as UTF-8, the encoding Python reads source files in"
            )
        return (
            f"{shown} is not {encoding} text as its coding line says (line {line} holds the byte {byte}): "
            "save it as UTF-8 and remove the coding line"
        )
    return None


def _too_large(shown: str, size: int) -> str:
    return f"{shown} is too large ({size / (1 << 20):.1f} MiB; a source file may have at most 1 MiB): it was not read"


def _printable(text: str, limit: int = 120) -> str:
    """A path from the file system as text that JSON and a terminal can show."""
    clean = os.fsencode(text).decode("utf-8", errors="replace")
    return clean if len(clean) <= limit else clean[:limit] + "..."


def _write_stand_in(path: Path, problem: str) -> None:
    path.write_text(STAND_IN.format(message=NOT_STAGED + problem), encoding="utf-8")
