"""Stage 1: the command line. The only module that prints or chooses an exit status.

    python -m grader check [ID]            grade one exercise (default: the first not done), in full
    python -m grader list                  every exercise with its state, the next one marked
    python -m grader hint ID [TASK]        the hints of an exercise, or of one task
    python -m grader reset ID [--yes]      put the stub back (your file is kept in .kata/backups/)
    python -m grader watch [ID]            check again whenever the exercise's file is saved
    python -m grader grade [--solutions | --submission DIR | --submissions DIR] [--only ID ...] ...
    python -m grader merge OUT1 OUT2 ... --out OUT
                                           put the OUTs of a class's shards (grade --shard K/N) together
    python -m grader handout OUT           write the students' handout (exercises, grader, README) to OUT
    python -m grader gradescope-bundle OUT.zip
                                           write Gradescope's autograder zip (setup.sh, run_autograder, the grader)

Every command that grades parses its arguments into ``grader.grading.Settings``,
calls ``grader.grading.grade`` and renders what comes back.

Exit status: ``grade`` 0 when grading completed, whatever the score; 1 when
the score (of any submission, with --submissions) is under --fail-under.
``check`` 0 when the exercise is done, 1 when it is not yet. Every command 2
when it could not run (the reason on one line).
Interrupted by SIGINT (Ctrl-C) or SIGTERM, a grading command stops
everything it started, writes the incomplete scorecard (``complete`` false)
and prints it, then ends itself with that same signal, as Python does after
Ctrl-C: a shell sees 130 or 143 (128 + the signal), and a script looping over
submissions stops too instead of taking a partial scorecard for a grade.
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

from rich.console import Console

from grader import __version__
from grader.export import FORMATS, export_text
from grader.grading import (
    DEFAULT_DEADLINE,
    GRADING_ERRORS,
    CannotGrade,
    Settings,
    grade,
    select_exercises,
    validate,
)
from grader.live import BatchView, LiveView, console_for, show
from grader.manifest import Exercise, ManifestError, load_manifest
from grader.names import DEFAULT_CALL_TIMEOUT, PROCESS, START_METHODS, TIERS
from grader.render import Place, render_check, render_text, score_line
from grader.run import StopRequest
from grader.scorecard import Scorecard, write_scorecard, write_text_atomically
from grader.state import DONE, DURATIONS_FILE, State, file_hash, load_state, state_folder, stub_source
from grader.target import project_root

EXIT_GRADED, EXIT_UNDER, EXIT_CANNOT_GRADE = 0, 1, 2
EXIT_DONE, EXIT_NOT_DONE = 0, 1

HELP_SOLUTIONS = "grade the reference solutions in solutions/"
HELP_SUBMISSION = "grade another folder laid out like exercises/ (a student's submission)"
HELP_SUBMISSIONS = (
    "grade every entry of DIR as one student's submission (a folder, a .zip file, or a clone of the kata with "
    "the exercises in exercises/), several at once (--jobs); anything else is listed as skipped, with why"
)
HELP_OUT = (
    "with --submissions: write OUT/scorecards/<name>.json per student, gradebook.csv, stats.json and report.html; "
    "a rerun skips every submission graded before by the same grader with the same options and content"
)
HELP_JOBS = (
    "with --submissions: submissions graded at once, each by a grader of its own with 4 test workers per CPU "
    "unless -n says otherwise (default: number of CPUs)"
)
# Test workers per CPU for each grader of a class: gradings wait (on hangs, deadlines, the scenarios' holds) far
# more than they compute. Measured on 2 CPUs, 20 mixed submissions at --jobs 4: 304 s with 2 workers per grader,
# 177 s with 8 (the slowest submission, every function blocked, sets the pace).
BATCH_WORKERS_PER_CPU = 4
HELP_SHARD = (
    "with --submissions --out: grade only the K-th of N shares of the class (in name order, every N-th from the "
    "K-th), for a CI matrix or a job array; python -m grader merge puts the N OUTs together"
)
HELP_MERGE = (
    "put the --out folders of a class's shards (grade --submissions --shard K/N) together: every scorecard, "
    "and the gradebook, statistics and page of the whole class, as one run would have written them"
)
HELP_FORCE = "with --submissions --out: grade every submission again, also those graded before unchanged"
HELP_FORMAT = (
    "what --json FILE holds (and, with --submissions --out, what OUT/<format>/ holds per student): the scorecard "
    "(default), Gradescope's results.json, Exercism's results.json (version 3; one exercise: add --only ID), "
    "JUnit XML, or the result GitHub Classroom's autograding reporter reads (one test per exercise)"
)
HELP_ONLY = "grade only this exercise (id or number; repeat the option for more)"
HELP_START_METHOD = (
    "the multiprocessing start method the code runs under; 'all' runs every test under fork, "
    "spawn and forkserver and a test earns its points only if it passes under all three (default: all)"
)
HELP_WORKERS = "parallel test workers (pytest-xdist); 0 runs the tests one by one (default: number of CPUs)"
HELP_JSON = "also write the scorecard as JSON to this file"
HELP_EXPLAIN = (
    "run each check under every start method even after it failed under one, and show each method's message "
    "(by default a check that failed is not run under the remaining methods: it cannot earn its points)"
)
HELP_FAIL_UNDER = "exit with status 1 when the score is under this percentage"
HELP_CALL_TIMEOUT = (
    "seconds one call into the graded code may take before it counts as a timeout "
    f"(default: {DEFAULT_CALL_TIMEOUT:g}); above the default, checks that need longer get their budget scaled up alike"
)
HELP_DEADLINE = (
    f"seconds the whole run may take; tests not finished by then score 0 as errors (default: {DEFAULT_DEADLINE:g})"
)
HELP_ISOLATION = (
    "how graded code is isolated: namespaces (bubblewrap, a user of its own, no network, no view of the "
    "grader's files; needs root), process (an ordinary child process) or auto, the strongest that works here"
)
PROCESS_WARNING = (
    "warning: graded code ran as ordinary child processes ({note}). That stops accidents (hangs, floods, "
    "leftover processes), not a determined cheater."
)
PROG = "python -m grader"
HELP_HANDOUT = (
    "write the students' handout to OUT, a new or empty folder: the exercises, the grader and a README "
    "(never the reference solutions or the project's own tests)"
)


HELP_BUNDLE = (
    "write the autograder zip of a Gradescope programming assignment to OUT.zip: setup.sh, run_autograder "
    "(grades the submission into results.json), the grader and the exercises' stubs, never the solutions"
)


def _grading_options(parser: argparse.ArgumentParser) -> None:
    """The options of every command that grades."""
    parser.add_argument("--start-method", choices=(*START_METHODS, "all"), default="all", help=HELP_START_METHOD)
    parser.add_argument("-n", "--workers", type=int, default=None, metavar="N", help=HELP_WORKERS)
    parser.add_argument("--call-timeout", type=float, default=DEFAULT_CALL_TIMEOUT, metavar="S", help=HELP_CALL_TIMEOUT)
    parser.add_argument("--isolation", choices=("auto", *TIERS), default="auto", help=HELP_ISOLATION)
    parser.add_argument("--explain", action="store_true", help=HELP_EXPLAIN)
    parser.add_argument("-v", "--verbose", action="store_true", help="also list the checks that passed")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Learn multiprocessing by doing: check your exercises.")
    parser.add_argument("--version", action="version", version=f"mp-kata grader {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = commands.add_parser("check", help="grade one exercise (default: the first not done) and show it in full")
    check.add_argument("exercise", nargs="?", metavar="ID", help="exercise id or number")
    _grading_options(check)
    check.add_argument("--json", metavar="FILE", help=HELP_JSON)

    commands.add_parser("list", help="every exercise with its state and points, the next one marked")

    hint = commands.add_parser("hint", help="the hints of an exercise's tasks, and where each task's work goes")
    hint.add_argument("exercise", metavar="ID", help="exercise id or number")
    hint.add_argument("task", nargs="?", type=int, metavar="TASK", help="one task's number")

    reset = commands.add_parser("reset", help="put an exercise's stub back (your file is kept in .kata/backups/)")
    reset.add_argument("exercise", metavar="ID", help="exercise id or number")
    reset.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    watch = commands.add_parser("watch", help="check the exercise again each time its file is saved (q quits)")
    watch.add_argument("exercise", nargs="?", metavar="ID", help="exercise id or number (default: the first not done)")
    _grading_options(watch)

    grade_parser = commands.add_parser("grade", help="run the hidden tests and print a scorecard")
    which = grade_parser.add_mutually_exclusive_group()
    which.add_argument("--solutions", action="store_true", help=HELP_SOLUTIONS)
    which.add_argument("--submission", metavar="DIR", help=HELP_SUBMISSION)
    which.add_argument("--submissions", metavar="DIR", help=HELP_SUBMISSIONS)
    grade_parser.add_argument("--only", metavar="ID", action="append", default=[], help=HELP_ONLY)
    _grading_options(grade_parser)
    grade_parser.add_argument("--json", metavar="FILE", help=HELP_JSON)
    grade_parser.add_argument("--format", choices=FORMATS, default="scorecard", help=HELP_FORMAT)
    grade_parser.add_argument("--out", metavar="OUT", help=HELP_OUT)
    grade_parser.add_argument("--jobs", type=int, default=None, metavar="J", help=HELP_JOBS)
    grade_parser.add_argument("--force", action="store_true", help=HELP_FORCE)
    grade_parser.add_argument("--shard", metavar="K/N", help=HELP_SHARD)
    grade_parser.add_argument("--fail-under", type=float, metavar="PERCENT", help=HELP_FAIL_UNDER)
    grade_parser.add_argument("--deadline", type=float, default=DEFAULT_DEADLINE, metavar="S", help=HELP_DEADLINE)
    grade_parser.add_argument("-q", "--quiet", action="store_true", help="print only the score line")

    handout = commands.add_parser("handout", help=HELP_HANDOUT)
    handout.add_argument("out", metavar="OUT", help="the folder to write (it must not exist, or be empty)")

    merge = commands.add_parser("merge", help=HELP_MERGE)
    merge.add_argument("shards", nargs="+", metavar="SHARD_OUT", help="the --out folder of each shard")
    merge.add_argument("--out", required=True, metavar="OUT", help="the folder to write the whole class's files in")
    merge.add_argument("--format", choices=FORMATS, default="scorecard", help="what OUT/<format>/ holds per student")

    bundle = commands.add_parser("gradescope-bundle", help=HELP_BUNDLE)
    bundle.add_argument("out", metavar="OUT.zip", help="the zip file to write (replaced when it exists)")
    return parser


def settings_from(args: argparse.Namespace, **override: object) -> Settings:
    """The grading settings a command's arguments ask for."""
    if getattr(args, "solutions", False):
        target, path = "solutions", None
    elif getattr(args, "submission", None):
        target, path = "submission", args.submission
    else:
        target, path = "exercises", None
    values = dict(
        target=target,
        path=path,
        only=tuple(getattr(args, "only", ()) or ()),
        start_method=args.start_method,
        workers=args.workers,
        call_timeout=args.call_timeout,
        deadline=getattr(args, "deadline", DEFAULT_DEADLINE),
        isolation=args.isolation,
        explain=args.explain,
        durations_file=state_folder(project_root()) / DURATIONS_FILE,
    )
    values.update(override)
    return Settings(**values)


def _cannot(problem: Exception | str, doing: str = "grade") -> int:
    print(f"cannot {doing}: {problem}", file=sys.stderr)
    return EXIT_CANNOT_GRADE


def _exercises() -> list[Exercise]:
    return list(load_manifest().exercises)


def _one_exercise(name: str) -> Exercise:
    return select_exercises([name])[0]


def _state(root: Path) -> State:
    state = load_state(root, _exercises())
    for warning in state.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return state


def places_of(root: Path, exercise: Exercise) -> dict[int, Place]:
    """task number -> where its work goes: the line of its ``TODO (task N)`` and the function around it."""
    path = root / exercise.student_file
    shown = exercise.student_file
    places = {task.number: Place(shown, None, None) for task in exercise.tasks}
    try:
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
    except (OSError, ValueError, SyntaxError):
        return places
    functions = [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    for number, line in enumerate(source.splitlines(), start=1):
        for task in exercise.tasks:
            if f"TODO (task {task.number})" in line and places[task.number].line is None:
                around = [f for f in functions if f.lineno <= number <= (f.end_lineno or f.lineno)]
                function = max(around, key=lambda f: f.lineno).name if around else None
                places[task.number] = Place(shown, number, function)
    return places


def _next_title(exercises: list[Exercise], state: State, after: Exercise) -> str:
    open_ones = [exercise for exercise in exercises if exercise.id != after.id and state.status(exercise) != DONE]
    following = [exercise for exercise in open_ones if exercise.number > after.number]
    upcoming = following[0] if following else open_ones[0] if open_ones else None
    return "" if upcoming is None else f"{upcoming.number}. {upcoming.title} (python -m grader check {upcoming.number})"


def _check_once(args: argparse.Namespace, exercise: Exercise, console: Console, stop: StopRequest) -> Scorecard:
    root = project_root()
    settings = settings_from(args, target="exercises", path=None, only=(exercise.id,))
    with LiveView(console) as view:
        scorecard = grade(validate(settings), view, stop)
    state = _state(root)
    state.record(scorecard, _exercises())
    width = min(console.width, 120)
    rendered = render_check(scorecard, places_of(root, exercise), _next_title(_exercises(), state, exercise), width)
    show(console, rendered)
    return scorecard


def _current_exercise(name: str | None) -> Exercise | None:
    if name is not None:
        return _one_exercise(name)
    return _state(project_root()).first_not_done(_exercises())


def cmd_check(args: argparse.Namespace) -> int:
    console = console_for()
    try:
        exercise = _current_exercise(args.exercise)
        if exercise is None:
            console.print("Every exercise is done. Well done! (python -m grader list shows them)")
            return EXIT_DONE
        with StopRequest() as stop:
            scorecard = _check_once(args, exercise, console, stop)
            if args.json:
                write_scorecard(scorecard, Path(args.json))
    except GRADING_ERRORS as problem:
        return _cannot(problem, "check")
    warn_about_isolation(scorecard)
    if stop.first_signal is not None:
        return end_by_signal(stop.first_signal)
    return EXIT_DONE if scorecard.exercises[0].status == "passed" else EXIT_NOT_DONE


def render_list(exercises: list[Exercise], state: State, width: int = 100) -> str:
    done = [exercise for exercise in exercises if state.status(exercise) == DONE]
    upcoming = state.first_not_done(exercises)
    earned = sum(state.entries[e.id].score for e in exercises if e.id in state.entries)
    possible = sum(exercise.max_points for exercise in exercises)
    filled = round(20 * len(done) / len(exercises))
    lines = [
        f"Progress: [{'#' * filled}{'-' * (20 - filled)}] {len(done)}/{len(exercises)} exercises done, "
        f"{earned:g}/{possible} points",
        "",
    ]
    for exercise in exercises:
        status = state.status(exercise)
        entry = state.entries.get(exercise.id)
        score = f"{entry.score:g}/{exercise.max_points}" if entry else f"-/{exercise.max_points}"
        changed = "  (changed since its last check)" if state.changed_since_graded(exercise) else ""
        marker = "   <- next" if upcoming is not None and exercise.id == upcoming.id else ""
        lines.append(f"{exercise.number:>2}. {score:>6}  {status:<11}  {exercise.title}{marker}{changed}")
    lines.append("")
    if upcoming is None:
        lines.append("Every exercise is done.")
    else:
        lines.append(f"Next: python -m grader check {upcoming.number}   (or: python -m grader watch)")
    return "\n".join(lines)


def cmd_list(args: argparse.Namespace) -> int:
    try:
        exercises = _exercises()
        state = _state(project_root())
    except ManifestError as problem:
        return _cannot(problem, "list")
    show(console_for(), render_list(exercises, state))
    return EXIT_GRADED


def cmd_hint(args: argparse.Namespace) -> int:
    try:
        exercise = _one_exercise(args.exercise)
        tasks = [exercise.task(args.task)] if args.task is not None else list(exercise.tasks)
    except KeyError:
        known = ", ".join(str(task.number) for task in exercise.tasks)
        return _cannot(f"exercise {exercise.number} has no task {args.task} (its tasks: {known})", "hint")
    except GRADING_ERRORS as problem:
        return _cannot(problem, "hint")
    places = places_of(project_root(), exercise)
    lines = [f"{exercise.number}. {exercise.title}   (read exercises/{exercise.folder}/README.md)", ""]
    for task in tasks:
        place = places[task.number]
        at = f"{place.file}:{place.line}" + (f", in {place.function}()" if place.function else "")
        lines.append(f"task {task.number}: {task.title} ({task.points} points)")
        lines.append(f"  hint: {task.hint}")
        lines.append(f"  look at: {at if place.line else place.file}")
        lines.append("")
    print("\n".join(lines).rstrip())
    return EXIT_GRADED


def cmd_reset(args: argparse.Namespace, answer: Callable[[str], object] = input) -> int:
    root = project_root()
    try:
        exercise = _one_exercise(args.exercise)
    except GRADING_ERRORS as problem:
        return _cannot(problem, "reset")
    relative = exercise.student_file
    path = root / relative
    stub = stub_source(root, exercise)
    if stub is None:
        return _cannot(f"no stub to restore {relative} from: this folder is not a git checkout of the kata", "reset")
    if path.exists() and path.read_bytes() == stub:
        print(f"{relative} is already the stub: nothing to reset.")
        return EXIT_GRADED
    if not args.yes:
        try:
            reply = answer(f"Reset {relative} to the stub? Your file is kept in .kata/backups/. [y/N] ")
        except EOFError:
            reply = ""
        if str(reply).strip().lower() not in ("y", "yes"):
            print("Not reset.")
            return EXIT_NOT_DONE
    backups = state_folder(root) / "backups"
    backups.mkdir(parents=True, exist_ok=True)
    if path.exists():
        backup = backups / f"{exercise.folder}-{exercise.module}-{datetime.now():%Y%m%d-%H%M%S-%f}.py"
        shutil.copy2(path, backup)
        shown = backup.relative_to(root) if backup.is_relative_to(root) else backup
        print(f"Your file is kept as {shown}.")
    path.write_bytes(stub)
    _state(root).forget(exercise)
    print(f"{relative} is the stub again.")
    return EXIT_GRADED


class Keys:
    """q (quit) and n (next exercise) from a terminal, read in a thread without waiting for Enter."""

    def __init__(self) -> None:
        self.pressed: list[str] = []
        self._restore = None
        if not sys.stdin.isatty():
            return
        import termios
        import tty

        fd = sys.stdin.fileno()
        saved = termios.tcgetattr(fd)
        tty.setcbreak(fd)
        self._restore = lambda: termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            key = sys.stdin.read(1)
            if not key:
                return
            self.pressed.append(key.lower())
            if key.lower() == "q":
                os.kill(os.getpid(), signal.SIGINT)  # stops a grading under way, as Ctrl-C would
                return

    def quit(self) -> bool:
        return "q" in self.pressed

    def take_next(self) -> bool:
        if "n" in self.pressed:
            self.pressed = [key for key in self.pressed if key != "n"]
            return True
        return False

    def close(self) -> None:
        if self._restore is not None:
            self._restore()


def cmd_watch(args: argparse.Namespace) -> int:
    from watchfiles import watch

    console = console_for()
    try:
        exercise = _current_exercise(args.exercise)
    except GRADING_ERRORS as problem:
        return _cannot(problem, "watch")
    if exercise is None:
        console.print("Every exercise is done. Well done!")
        return EXIT_DONE
    root = project_root()
    keys = Keys()
    try:
        with StopRequest() as stop:
            while True:
                path = root / exercise.student_file
                checked = file_hash(path)  # taken first: a save during the check or before the watch starts counts
                scorecard = _check_once(args, exercise, console, stop)
                if keys.quit() or stop.signals:
                    break
                done = scorecard.exercises[0].status == "passed"
                console.print(
                    f"\nWatching {path.relative_to(root)}: save it to check again. "
                    + ("n: next exercise, " if done else "")
                    + "q or Ctrl-C: quit."
                )
                for changes in watch(path.parent, rust_timeout=200, yield_on_timeout=True, debounce=300):
                    if keys.quit() or stop.signals:
                        break
                    if done and keys.take_next():
                        following = _state(root).first_not_done(_exercises())
                        if following is not None:
                            exercise = following
                        break
                    if any(Path(changed).name == path.name for _, changed in changes) or file_hash(path) != checked:
                        break
                if keys.quit() or stop.signals:
                    break
    except GRADING_ERRORS as problem:
        return _cannot(problem, "watch")
    finally:
        keys.close()
    console.print("Stopped watching.")
    if stop.first_signal is not None and not keys.quit():
        return end_by_signal(stop.first_signal)
    return EXIT_GRADED


def cmd_grade(args: argparse.Namespace) -> int:
    if args.submissions or args.out or args.jobs is not None or args.force or args.shard:
        return grade_many(args)
    if args.format == "exercism" and len(args.only) != 1:
        return _cannot(CannotGrade("--format exercism describes one exercise: add --only ID"))
    console = console_for()
    own = not args.solutions and not args.submission
    with StopRequest() as stop:  # until the scorecard is out: a signal only cuts the run short
        try:
            plan = validate(settings_from(args))
            if args.quiet:
                scorecard = grade(plan, None, stop)
            else:
                with LiveView(console, show_tasks=not own) as view:
                    scorecard = grade(plan, view, stop)
        except GRADING_ERRORS as problem:
            return _cannot(problem)
        if args.json:
            write_export(scorecard, Path(args.json), args.format)
        focus = None
        if own:
            state = _state(project_root())
            state.record(scorecard, _exercises())
            if not args.verbose:
                upcoming = next((e for e in scorecard.exercises if e.status != "passed"), None)
                focus = upcoming.id if upcoming is not None else None
        warn_about_isolation(scorecard)
        if args.quiet:
            print(score_line(scorecard))
        else:
            width = min(console.width, 120)
            show(console, render_text(scorecard, verbose=args.verbose, width=width, focus=focus, titled=False))
    if stop.first_signal is not None:
        return end_by_signal(stop.first_signal)
    return EXIT_UNDER if is_under(scorecard, args.fail_under) else EXIT_GRADED


def cmd_handout(args: argparse.Namespace) -> int:
    from grader import handout  # only these two commands need it

    return _write_out(lambda: handout.describe(handout.build_handout(Path(args.out))), handout.HandoutError, "handout")


def cmd_gradescope_bundle(args: argparse.Namespace) -> int:
    from grader import bundle

    return _write_out(
        lambda: bundle.describe(bundle.build_gradescope_bundle(Path(args.out))), bundle.BundleError, "Gradescope bundle"
    )


def _write_out(build: Callable[[], str], refusal: type[Exception], what: str) -> int:
    """Build what a command writes (a handout, a bundle) and say what was written, or why it was not."""
    try:
        said = build()
    except refusal as problem:
        return _cannot(problem, f"make the {what}")
    print(said)
    return EXIT_GRADED


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    commands = {
        "check": cmd_check,
        "list": cmd_list,
        "hint": cmd_hint,
        "reset": cmd_reset,
        "watch": cmd_watch,
        "grade": cmd_grade,
        "handout": cmd_handout,
        "gradescope-bundle": cmd_gradescope_bundle,
        "merge": cmd_merge,
    }
    return commands[args.command](args)


def warn_about_isolation(scorecard: Scorecard) -> None:
    if scorecard.isolation["tier"] == PROCESS:
        print(PROCESS_WARNING.format(note=scorecard.isolation["note"]), file=sys.stderr, flush=True)


def is_under(scorecard: Scorecard, fail_under: float | None) -> bool:
    return fail_under is not None and scorecard.percent < fail_under


def write_export(scorecard: Scorecard, path: Path, form: str) -> None:
    """Write the scorecard, or its export to another platform's format, to path (atomically)."""
    if form == "scorecard":
        write_scorecard(scorecard, path)
        return
    write_text_atomically(path, export_text(scorecard.to_dict(), form))


def grade_many(args: argparse.Namespace) -> int:
    """--submissions: every submission of a class, side by side, a line each, and the class's files in --out."""
    from grader.batch import (
        BatchError,
        Options,
        find_submissions,
        grade_batch,
        parse_shard,
        shard_of,
        write_class_files,
    )

    try:
        if not args.submissions:
            raise CannotGrade("--out, --jobs and --force go with --submissions (for one submission, use --json FILE)")
        if args.json:
            raise CannotGrade("--submissions writes one scorecard per submission: use --out OUT, not --json")
        if args.force and not args.out:
            raise CannotGrade("--force regrades what an earlier run wrote in --out: give --out OUT")
        if args.shard and not args.out:
            raise CannotGrade("--shard writes the shard's files for merge to put together: give --out OUT")
        if args.jobs is not None and args.jobs < 1:
            raise CannotGrade(f"--jobs {args.jobs}: give 1 or more")
        if args.format == "exercism" and len(args.only) != 1:
            raise CannotGrade("--format exercism describes one exercise: add --only ID")
        try:
            submissions, skipped = find_submissions(Path(args.submissions))
            everyone = [submission.name for submission in submissions]
            if args.shard:
                submissions = shard_of(submissions, *parse_shard(args.shard))
        except BatchError as problem:
            raise CannotGrade(str(problem))
        validate(settings_from(args, target="submission", path=args.submissions))  # bad settings stop it first
    except GRADING_ERRORS as problem:
        return _cannot(problem)
    jobs = args.jobs or os.cpu_count() or 1
    options = Options(
        only=tuple(args.only),
        start_method=args.start_method,
        workers=args.workers if args.workers is not None else BATCH_WORKERS_PER_CPU * (os.cpu_count() or 1),
        call_timeout=args.call_timeout,
        deadline=args.deadline,
        isolation=args.isolation,
        explain=args.explain,
    )
    console = console_for()
    for entry in skipped:
        console.print(f"{entry.name}: skipped ({entry.why})", markup=False)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="kata-class-"))
    started = time.monotonic()
    with StopRequest() as stop, BatchView(console, len(submissions)) as view:
        outcomes = grade_batch(submissions, out, options, jobs, args.force, view.progress, stop)
    graded = [(o.submission.name, o.card) for o in outcomes if o.card is not None]
    if args.out:
        about = {"class": everyone, "shard": args.shard, "options": asdict(options)}
        written = write_class_files(out, graded, skipped, args.format, about)
        console.print(f"{len(outcomes)} of {len(submissions)} submissions in {time.monotonic() - started:.0f} s; "
                      f"wrote {', '.join(written)} in {out}", markup=False)  # fmt: skip
    else:
        shutil.rmtree(out, ignore_errors=True)
    if stop.first_signal is not None:
        return end_by_signal(stop.first_signal)
    # Under --fail-under, a submission its grader could not score counts as under it too.
    under = args.fail_under is not None and any(o.card is None or o.card["percent"] < args.fail_under for o in outcomes)
    return EXIT_UNDER if under else EXIT_GRADED


def cmd_merge(args: argparse.Namespace) -> int:
    """merge: the shards' OUTs become one, with the whole class's files."""
    from grader.batch import BatchError, merge_shards

    try:
        merged = merge_shards([Path(folder) for folder in args.shards], Path(args.out), args.format)
    except BatchError as problem:
        return _cannot(problem, "merge")
    for name in merged.not_graded:
        print(f"{name}: not graded (its grader wrote no scorecard in any shard; see that shard's logs/)")
    print(
        f"merged {merged.shards} shards: {len(merged.graded)} students graded, {len(merged.skipped)} entries skipped; "
        f"wrote {', '.join(merged.written)} in {merged.out}"
    )
    return EXIT_GRADED


def end_by_signal(number: int) -> int:
    """End this process with the signal that interrupted it, so that the caller sees an interruption.

    A shell then reports 128 + the signal (130 for SIGINT, 143 for SIGTERM) and
    stops a loop it runs, as it does for any program killed by Ctrl-C. Returns
    that status only if the signal did not end the process.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    signal.signal(number, signal.SIG_DFL)
    os.kill(os.getpid(), number)
    return 128 + number
