"""Stage 1: the command line. The only module that prints or chooses an exit status.

    python -m grader grade [--solutions | --submission DIR] [--only ID ...]
                           [--start-method fork|spawn|forkserver|all]
                           [-n N] [--json FILE] [--fail-under PERCENT]
    python -m grader grade --submissions DIR [--json-dir OUT] [options as above]

The pipeline: manifest -> target -> run -> collect -> score -> scorecard -> render.
Exit status: 0 when grading completed, whatever the score; 1 when the score
(of any submission, with --submissions) is under --fail-under; 2 when it could
not grade (the reason on one line).
Interrupted by SIGINT (Ctrl-C) or SIGTERM, the grader stops everything it
started, writes the incomplete scorecard (``complete`` false) and prints it,
then ends itself with that same signal, as Python does after Ctrl-C: a shell
sees 130 or 143 (128 + the signal), and a script looping over submissions
stops too instead of taking a partial scorecard for a grade.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from grader import __version__
from grader.collect import collect, read_expected
from grader.manifest import Exercise, ManifestError, load_manifest
from grader.plugin import DEFAULT_CALL_TIMEOUT, START_METHODS
from grader.render import render_text
from grader.run import DEADLINE, RunSettings, StopRequest, run_hidden_tests
from grader.sandbox import PROCESS, TIERS, IsolationUnavailable, detect_isolation
from grader.score import score_exercise, total
from grader.scorecard import Scorecard, write_scorecard
from grader.target import StagedTarget, TargetError, choose_target, stage

EXIT_GRADED, EXIT_UNDER, EXIT_CANNOT_GRADE = 0, 1, 2
DEFAULT_DEADLINE = 1800.0

HELP_SOLUTIONS = "grade the reference solutions in solutions/"
HELP_SUBMISSION = "grade another folder laid out like exercises/ (a student's submission)"
HELP_SUBMISSIONS = (
    "grade every folder inside DIR as one submission (a class's work), one after another; "
    "with --json-dir, write one scorecard per submission"
)
HELP_JSON_DIR = "with --submissions: write each submission's scorecard to OUT/<folder name>.json"
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


class CannotGrade(Exception):
    """Grading could not start; the message is the one line the user sees."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m grader", description="Grade the multiprocessing kata.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    grade = commands.add_parser("grade", help="run the hidden tests and print a scorecard")
    which = grade.add_mutually_exclusive_group()
    which.add_argument("--solutions", action="store_true", help=HELP_SOLUTIONS)
    which.add_argument("--submission", metavar="DIR", help=HELP_SUBMISSION)
    which.add_argument("--submissions", metavar="DIR", help=HELP_SUBMISSIONS)
    grade.add_argument("--only", metavar="ID", action="append", default=[], help=HELP_ONLY)
    grade.add_argument("--start-method", choices=(*START_METHODS, "all"), default="all", help=HELP_START_METHOD)
    grade.add_argument("-n", "--workers", type=int, default=None, metavar="N", help=HELP_WORKERS)
    grade.add_argument("--json", metavar="FILE", help=HELP_JSON)
    grade.add_argument("--json-dir", metavar="OUT", help=HELP_JSON_DIR)
    grade.add_argument("--fail-under", type=float, metavar="PERCENT", help=HELP_FAIL_UNDER)
    grade.add_argument("--call-timeout", type=float, default=DEFAULT_CALL_TIMEOUT, metavar="S", help=HELP_CALL_TIMEOUT)
    grade.add_argument("--deadline", type=float, default=DEFAULT_DEADLINE, metavar="S", help=HELP_DEADLINE)
    grade.add_argument("--isolation", choices=("auto", *TIERS), default="auto", help=HELP_ISOLATION)
    grade.add_argument("--explain", action="store_true", help=HELP_EXPLAIN)
    grade.add_argument("-v", "--verbose", action="store_true", help="also list the checks that passed")
    grade.add_argument("-q", "--quiet", action="store_true", help="print only the score line")
    commands.add_parser("list", help="list the exercises and their tasks")
    return parser


def select_exercises(requested: list[str]) -> list[Exercise]:
    """The manifest's exercises, or those named by id or number, in manifest order."""
    exercises = list(load_manifest().exercises)
    if not requested:
        return exercises
    chosen = set()
    for name in requested:
        match = [e for number, e in enumerate(exercises, 1) if name in (e.id, str(number), f"{number:02d}", e.folder)]
        if not match:
            raise CannotGrade(f"--only {name}: no such exercise (known: {', '.join(e.id for e in exercises)})")
        chosen.add(match[0].id)
    return [e for e in exercises if e.id in chosen]


def submissions_in(folder: str) -> list[Path]:
    """The submission folders inside folder, by name; hidden folders are not submissions."""
    root = Path(folder)
    if not root.is_dir():
        raise CannotGrade(f"--submissions {folder}: {'not a folder' if root.exists() else 'does not exist'}")
    found = sorted(path for path in root.iterdir() if path.is_dir() and not path.name.startswith("."))
    if not found:
        raise CannotGrade(f"--submissions {folder}: no submission folders in it (one folder per student)")
    return found


def grade(args: argparse.Namespace, stop: StopRequest, submission: Path | None = None) -> Scorecard:
    """Run the whole pipeline and return the scorecard; raise CannotGrade before any test ran.

    stop: installed by the caller; a signal it records cuts the run short, and the
    scorecard says so (complete false, every test that did not finish an error).
    submission: the folder to grade, overriding what args name (for --submissions).
    """
    started_at = datetime.now(timezone.utc)
    clock = time.monotonic()
    exercises = select_exercises(args.only)
    if submission is not None:
        target = choose_target("submission", submission)
    elif args.solutions:
        target = choose_target("solutions")
    elif args.submission:
        target = choose_target("submission", args.submission)
    else:
        target = choose_target("exercises")
    if args.workers is not None and args.workers < 0:
        raise CannotGrade(f"--workers {args.workers}: must be 0 or more")
    for name, value in (("--call-timeout", args.call_timeout), ("--deadline", args.deadline)):
        if value <= 0:
            raise CannotGrade(f"{name} {value:g}: must be more than 0")
    methods = tuple(START_METHODS) if args.start_method == "all" else (args.start_method,)
    try:
        isolation = detect_isolation(args.isolation)
    except IsolationUnavailable as problem:
        raise CannotGrade(f"--isolation {args.isolation}: {problem}")
    settings = RunSettings(
        start_methods=methods,
        workers=(os.cpu_count() or 1) if args.workers is None else args.workers,
        call_timeout=args.call_timeout,
        deadline=max(0.0, args.deadline - (time.monotonic() - clock)),  # the probe above counts too
        isolation=isolation.tier,
        every_method=args.explain,
    )

    workdir = Path(tempfile.mkdtemp(prefix="kata-grade-"))
    try:
        staged: StagedTarget = stage(target, exercises, workdir / "submission")
        output = run_hidden_tests(exercises, staged.root, workdir, settings, stop)
        results, report_problem = collect(read_expected(output.collected), output.report)
        log_tail = output.log.read_text(errors="replace").strip().splitlines()[-3:] if report_problem else []
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    notices = [f"{exercise_id}: {problem}" for exercise_id, problem in staged.problems.items()]
    complete = report_problem is None and output.stopped is None and output.exit_code is not None
    unfinished = "the scorecard is incomplete: every test that did not finish scores 0 as an error"
    if output.stopped == DEADLINE:
        notices.append(f"grading stopped at its deadline of {args.deadline:g} s: {unfinished}")
    elif output.stopped:
        notices.append(f"grading was interrupted ({output.stopped}): {unfinished}")
    elif report_problem:
        said = " | ".join(line.strip() for line in log_tail)[:300]
        notices.append(f"{report_problem}: every test without a result scores 0 (pytest said: {said})")
    scored = []
    for exercise in exercises:
        own = [r for r in results if r.test.exercise == exercise.id]
        problem = staged.problems.get(exercise.id)
        if problem is None and output.stopped and not own:
            problem = "grading was stopped before its tests ran"
        scored.append(score_exercise(exercise, own, problem))
    score, max_score, percent = total(scored)
    return Scorecard(
        grader={"name": "mp-kata grader", "version": __version__},
        target={"kind": target.kind, "path": str(target.path)},
        environment={
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count() or 1,
            "default_start_method": multiprocessing.get_start_method(allow_none=False),
        },
        start_methods=list(methods),
        isolation={"tier": isolation.tier, "note": isolation.note},
        started_at=started_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
        duration=round(time.monotonic() - clock, 2),
        complete=complete,
        score=score,
        max_score=max_score,
        percent=percent,
        exercises=scored,
        notices=notices,
    )


def list_exercises() -> str:
    lines = []
    exercises = load_manifest().exercises
    width = max(len(exercise.id) for exercise in exercises)
    for number, exercise in enumerate(exercises, start=1):
        lines.append(f"{number:>2}. {exercise.id:<{width}}  {exercise.title} ({exercise.max_points} points)")
        for task in exercise.tasks:
            lines.append(f"      task {task.number}: {task.title} ({task.points})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "list":
        try:
            print(list_exercises())
        except ManifestError as problem:
            print(f"cannot list: {problem}", file=sys.stderr)
            return EXIT_CANNOT_GRADE
        return EXIT_GRADED
    if args.submissions or args.json_dir:
        return grade_many(args)
    with StopRequest() as stop:  # until the scorecard is out: a signal only cuts the run short
        try:
            scorecard = grade(args, stop)
        except (CannotGrade, TargetError, ManifestError) as problem:
            print(f"cannot grade: {problem}", file=sys.stderr)
            return EXIT_CANNOT_GRADE
        if args.json:
            write_scorecard(scorecard, Path(args.json))

        warn_about_isolation(scorecard)
        if args.quiet:
            print(render_text(scorecard).splitlines()[-1])
        else:
            print(render_text(scorecard, verbose=args.verbose))
    if stop.first_signal is not None:
        return end_by_signal(stop.first_signal)
    return EXIT_UNDER if is_under(scorecard, args.fail_under) else EXIT_GRADED


def warn_about_isolation(scorecard: Scorecard) -> None:
    if scorecard.isolation["tier"] == PROCESS:
        print(PROCESS_WARNING.format(note=scorecard.isolation["note"]), file=sys.stderr, flush=True)


def is_under(scorecard: Scorecard, fail_under: float | None) -> bool:
    return fail_under is not None and scorecard.percent < fail_under


def grade_many(args: argparse.Namespace) -> int:
    """--submissions: grade each folder in turn, one scorecard each, one line each on the terminal."""
    try:
        if not args.submissions:
            raise CannotGrade("--json-dir goes with --submissions (for one submission, use --json FILE)")
        if args.json:
            raise CannotGrade("--submissions writes one scorecard per submission: use --json-dir OUT, not --json")
        submissions = submissions_in(args.submissions)
        select_exercises(args.only)  # a wrong --only stops the batch before the first grade
    except (CannotGrade, ManifestError) as problem:
        print(f"cannot grade: {problem}", file=sys.stderr)
        return EXIT_CANNOT_GRADE
    out = Path(args.json_dir) if args.json_dir else None
    under = 0
    with StopRequest() as stop:
        for submission in submissions:
            try:
                scorecard = grade(args, stop, submission)
            except (CannotGrade, TargetError, ManifestError) as problem:
                print(f"cannot grade: {problem}", file=sys.stderr)
                return EXIT_CANNOT_GRADE
            if out is not None:
                write_scorecard(scorecard, out / f"{submission.name}.json")
            if args.verbose:
                print(f"== {submission.name}\n{render_text(scorecard, verbose=True)}\n", flush=True)
            else:
                print(f"{submission.name}: {render_text(scorecard).splitlines()[-1]}", flush=True)
            under += is_under(scorecard, args.fail_under)
            if stop.first_signal is not None:  # the interrupted submission's scorecard is out: go no further
                break
        warn_about_isolation(scorecard)
    if stop.first_signal is not None:
        return end_by_signal(stop.first_signal)
    return EXIT_UNDER if under else EXIT_GRADED


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
