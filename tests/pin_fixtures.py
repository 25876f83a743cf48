"""Draft a fixture's pinned outcomes from a grade: which tests it loses, and how.

    python -m tests.pin_fixtures NAME [NAME ...] [--write]

Grades each fixture submission (tests/fixtures/submissions/NAME) as the fixture
test does and prints, per fixture, the points per task and every test that did
not pass, with its outcome and message. With --write, the "outcomes" and
"task_points" of its expected.json are replaced by what the grade gave: read
the messages first, a pin is a promise that this is the right verdict.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from tests.conftest import FIXTURES, run_grader


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.pin_fixtures", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="+", metavar="NAME")
    parser.add_argument("--write", action="store_true", help="write the outcomes into each expected.json")
    args = parser.parse_args()
    for name in args.names:
        folder = FIXTURES / "submissions" / name
        path = folder / "expected.json"
        expected = json.loads(path.read_text())
        method = expected.get("start_methods", "fork")
        with tempfile.TemporaryDirectory() as scratch:
            graded = run_grader(
                "--submission", str(folder), "--only", expected["exercise"], "--start-method", method, "-n", "1",
                tmp_path=Path(scratch),
            )  # fmt: skip
        if graded.scorecard is None:
            print(f"{name}: no scorecard: {graded.stderr.strip()[:500]}")
            continue
        tests = graded.tests(expected["exercise"])
        outcomes = {test: t["outcome"] for test, t in tests.items() if t["outcome"] != "passed"}
        points = {
            k: int(v) if float(v).is_integer() else v for k, v in graded.task_points(expected["exercise"]).items()
        }
        change = "" if points == expected["task_points"] else f"  (expected.json says {expected['task_points']})"
        print(f"{name}: {points}{change}")
        for test, t in tests.items():
            if t["outcome"] != "passed":
                print(f"  {test}: {t['outcome']}: {t['message']}")
        if args.write:
            expected["task_points"] = points
            expected["outcomes"] = outcomes
            ordered = {key: expected[key] for key in ("exercise", "why", "task_points", "outcomes") if key in expected}
            ordered |= {key: value for key, value in expected.items() if key not in ordered}
            path.write_text(json.dumps(ordered, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
