"""What the student's loop costs, in seconds of waiting: this checkout, and optionally an earlier one, side by side.

    python benchmarks/student_loop.py [--before PATH] [--repeat N] [--cases 1,2,3] [--cold] [--json FILE]

Cases (each graded as a student would, with the default number of workers):

- exercise 1, correct, under fork; and under all three start methods;
- exercise 1 with every function hanging (a loop that never ends), all methods;
- every exercise's module hanging at import, all methods, all twelve exercises.

By default each case is first run once, unmeasured, per checkout: the grader
keeps how long each check took (its state folder's durations.json) and the
next run starts the longest first, as a student's next check would. --cold
gives every run an empty state folder instead: a first run.

--before PATH: a checkout of an earlier version of this project (for example
``git worktree add /tmp/before <commit>``); each case then runs there too,
right after it runs here, with the same interpreter, so that both see the
same machine. An older grader has no ``check``: the cases use ``grade``
with ``--only``, which both have. Prints a table (median seconds over
--repeat runs) and writes it as JSON with --json FILE. Timings, never a
pass/fail test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.manifest import load_manifest  # noqa: E402

HANGING_FUNCTIONS = """
def _spin(*args, **kwargs):
    while True:
        pass


start_worker = run_all = whoami = _spin
"""
HANGING_IMPORT = "import time\n\ntime.sleep(3600)\n"


def submissions(folder: Path) -> dict[str, Path]:
    """The graded folders the cases use, built once."""
    manifest = load_manifest()
    processes = manifest.exercise("processes")
    hanging = folder / "hanging-functions"
    (hanging / processes.folder).mkdir(parents=True)
    (hanging / processes.folder / processes.file_name).write_text(HANGING_FUNCTIONS)
    at_import = folder / "hanging-at-import"
    for exercise in manifest.exercises:
        (at_import / exercise.folder).mkdir(parents=True)
        (at_import / exercise.folder / exercise.file_name).write_text(HANGING_IMPORT)
    return {"hanging": hanging, "at_import": at_import}


def cases(folders: dict[str, Path]) -> list[tuple[str, list[str]]]:
    return [
        ("exercise 1, correct, fork", ["--solutions", "--only", "1", "--start-method", "fork"]),
        ("exercise 1, correct, all methods", ["--solutions", "--only", "1"]),
        ("exercise 1, every function hangs", ["--submission", str(folders["hanging"]), "--only", "1"]),
        ("12 exercises, every module hangs at import", ["--submission", str(folders["at_import"])]),
    ]


def timed(checkout: Path, options: list[str], state: Path) -> float:
    """Seconds of one grading, as the student waits for it (the process from start to end).

    state: the grader's state folder for this run (its durations.json orders the tests).
    """
    state.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "grader", "grade", "-q", *options],
        cwd=checkout,
        env={**os.environ, "KATA_STATE_DIR": str(state)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
        timeout=3600,
    )
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="a checkout of an earlier version, measured side by side")
    parser.add_argument("--repeat", type=int, default=1, help="runs per case and checkout (default: 1)")
    parser.add_argument("--json", type=Path, help="also write the table as JSON to this file")
    parser.add_argument("--cases", help="which cases to run, by number from 1, comma-separated (default: all)")
    parser.add_argument(
        "--cold", action="store_true", help="every run starts with no durations known (a first run); by default "
        "each case is run once, unmeasured, first, as a student's earlier check would have"
    )  # fmt: skip
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="kata-loop-bench-"))
    rows = []
    try:
        chosen = {int(number) for number in args.cases.split(",")} if args.cases else None
        for number, (name, options) in enumerate(cases(submissions(folder)), start=1):
            if chosen is not None and number not in chosen:
                continue
            row = {"case": name, "now": [], "before": []}
            checkouts = {"now": ROOT, **({"before": args.before} if args.before else {})}
            states = {label: folder / f"state-{number}-{label}" for label in checkouts}
            if not args.cold:  # the run before: it leaves the durations the measured runs start from
                for label, checkout in checkouts.items():
                    timed(checkout, options, states[label])
            for run in range(args.repeat):
                for label, checkout in checkouts.items():
                    state = folder / f"cold-{number}-{label}-{run}" if args.cold else states[label]
                    row[label].append(timed(checkout, options, state))
            rows.append(row)
            now = statistics.median(row["now"])
            before = f"{statistics.median(row['before']):9.1f}" if row["before"] else f"{'-':>9}"
            print(f"{name:<45} now {now:7.1f} s   before {before} s", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
