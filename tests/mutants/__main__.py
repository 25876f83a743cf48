"""Mutation run: does every classic mistake in a reference solution lose points?

    python -m tests.mutants [--exercise ID ...] [--jobs N] [--list] [--json FILE] [--threshold PERCENT]

For each exercise, every mutant of its reference solution (tests/mutants/operators.py:
one classic mistake at a time) is graded as a submission of that exercise,
under fork first and, if it keeps full marks there, under every start method.
A mutant that loses points is killed. A mutant listed as equivalent in
tests/mutants/<exercise>.toml behaves like the solution by design (the reason
is written there): it is graded too and must keep full marks, or a check
refuses a correct solution. The same file may add mistakes written out by
hand ([[by_hand]]: an id, the solution's text, found exactly once, and what
replaces it) where no operator reaches.

Prints, per exercise, the share of non-equivalent mutants killed and every
survivor. Exit status 0 when every exercise reaches --threshold (default 95%)
and every equivalent mutant keeps full marks; 1 otherwise; 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

from grader.manifest import Exercise, load_manifest
from tests.mutants.operators import Mutant, mutants

ROOT = Path(__file__).resolve().parents[2]
MUTANTS = Path(__file__).resolve().parent  # <exercise id>.toml: [equivalent] and [[by_hand]]
RUN_TIMEOUT = 600.0  # seconds one grading may take; only a grader that hangs reaches it
STOP_GRACE = 60.0


@dataclass
class Verdict:
    mutant: Mutant
    equivalent: str | None  # why it behaves like the solution, or None
    score: float | None = None  # the lowest score it got (None: no scorecard)
    max_score: float | None = None
    methods: str = "fork"  # the start methods of the grade that decided
    lost: list[str] = field(default_factory=list)  # tests that did not pass, with their outcome
    seconds: float = 0.0

    @property
    def killed(self) -> bool:
        return self.score is None or self.max_score is None or self.score < self.max_score


def exercise_file(exercise_id: str) -> dict[str, Any]:
    path = MUTANTS / f"{exercise_id}.toml"
    return tomllib.loads(path.read_text()) if path.exists() else {}


def load_equivalent() -> dict[str, dict[str, str]]:
    """exercise id -> {mutant id: why it is equivalent}."""
    return {exercise.id: exercise_file(exercise.id).get("equivalent", {}) for exercise in load_manifest().exercises}


def solution_source(exercise: Exercise) -> str:
    return (ROOT / "solutions" / exercise.folder / f"{exercise.module}.py").read_text()


def by_hand(exercise: Exercise, source: str) -> list[Mutant]:
    """The mistakes written out by hand for exercise: [[by_hand]] with id, old and new text."""
    found = []
    for entry in exercise_file(exercise.id).get("by_hand", []):
        if source.count(entry["old"]) != 1:
            raise SystemExit(f"{exercise.id}.toml: {entry['id']!r}: its old text is not in the solution exactly once")
        mutated = source.replace(entry["old"], entry["new"])
        found.append(Mutant(f"by-hand: {entry['id']}", "by-hand", "", entry["id"], mutated))
    return found


def all_mutants(exercise: Exercise) -> list[Mutant]:
    source = solution_source(exercise)
    return mutants(source) + by_hand(exercise, source)


def stop(child: subprocess.Popen) -> None:
    """SIGINT first: the grader then stops its pytest run and sweeps its sandboxes itself."""
    if child.poll() is not None:
        return
    child.send_signal(signal.SIGINT)
    try:
        child.wait(timeout=STOP_GRACE)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def grade(exercise: Exercise, source: str, methods: str, workers: int) -> dict[str, Any] | None:
    """Grade source as a submission of exercise; the scorecard, or None when the grader wrote none."""
    with tempfile.TemporaryDirectory(prefix="kata-mutant-") as folder:
        submission = Path(folder) / "submission"
        (submission / exercise.folder).mkdir(parents=True)
        (submission / exercise.folder / f"{exercise.module}.py").write_text(source)
        card = Path(folder) / "card.json"
        command = [sys.executable, "-m", "grader", "grade", "--submission", str(submission), "--only", exercise.id]
        command += ["--start-method", methods, "-n", str(workers), "--json", str(card), "-q"]
        child = subprocess.Popen(
            command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            child.wait(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        finally:
            stop(child)
        return json.loads(card.read_text()) if card.exists() else None


def judge(exercise: Exercise, mutant: Mutant, equivalent: str | None) -> Verdict:
    verdict = Verdict(mutant, equivalent)
    started = time.perf_counter()
    for methods, workers in (("fork", 1), ("all", 2)):
        card = grade(exercise, mutant.source, methods, workers)
        verdict.methods = methods
        if card is None:
            verdict.score = None
            break
        verdict.score, verdict.max_score = card["score"], card["max_score"]
        verdict.lost = [
            f"{t['id'].split('::')[-1]} ({t['outcome']})"
            for e in card["exercises"]
            for t in e["tests"]
            if t["outcome"] != "passed"
        ]
        if verdict.killed:
            break
    verdict.seconds = time.perf_counter() - started
    return verdict


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tests.mutants", description=__doc__.splitlines()[0])
    parser.add_argument("--exercise", action="append", default=[], metavar="ID", help="only this exercise (repeatable)")
    parser.add_argument("--jobs", type=int, default=2, help="mutants graded side by side (default: 2)")
    parser.add_argument("--list", action="store_true", help="list the mutants without grading them")
    parser.add_argument("--json", type=Path, help="write every verdict to this file")
    parser.add_argument("--threshold", type=float, default=95.0, help="kill share every exercise needs (default 95)")
    return parser


def main() -> int:
    args = build_parser().parse_args()
    manifest = load_manifest()
    chosen = [manifest.exercise(e) for e in args.exercise] if args.exercise else list(manifest.exercises)
    equivalent = load_equivalent()
    known = {exercise.id: {m.id for m in all_mutants(exercise)} for exercise in chosen}
    stale = [f"{e}: {m}" for e in known for m in equivalent.get(e, {}) if m not in known[e]]

    if args.list:
        for exercise in chosen:
            for mutant in all_mutants(exercise):
                mark = "  (equivalent)" if mutant.id in equivalent.get(exercise.id, {}) else ""
                print(f"{exercise.id}: {mutant.id}{mark}")
        return 0

    verdicts: dict[str, list[Verdict]] = {}
    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            for exercise in chosen:
                whys = equivalent.get(exercise.id, {})
                jobs = [pool.submit(judge, exercise, m, whys.get(m.id)) for m in all_mutants(exercise)]
                verdicts[exercise.id] = []
                print(f"{exercise.id}: ", end="", flush=True)
                for job in jobs:
                    verdict = job.result()
                    verdicts[exercise.id].append(verdict)
                    mark = "=" if verdict.equivalent else "x" if verdict.killed else "S"
                    print(mark, end="", flush=True)
                print(flush=True)
    except KeyboardInterrupt:
        print("\ninterrupted", flush=True)
        return 130

    failed = False
    print(f"\n{'exercise':<22} {'mutants':>7} {'equivalent':>10} {'killed':>6} {'survived':>8} {'killed %':>8}")
    for exercise_id, found in verdicts.items():
        real = [v for v in found if not v.equivalent]
        killed = sum(v.killed for v in real)
        share = 100.0 * killed / len(real) if real else 100.0
        failed |= share < args.threshold
        print(f"{exercise_id:<22} {len(found):>7} {len(found) - len(real):>10} {killed:>6} "
              f"{len(real) - killed:>8} {share:>8.1f}")  # fmt: skip
    for exercise_id, found in verdicts.items():
        survivors = [v for v in found if not v.equivalent and not v.killed]
        refused = [v for v in found if v.equivalent and v.killed]
        for verdict in survivors:
            print(f"survivor  {exercise_id}: {verdict.mutant.id}")
        for verdict in refused:
            failed = True
            print(f"REFUSED   {exercise_id}: equivalent mutant {verdict.mutant.id} lost points: {verdict.lost}")
    for line in stale:
        print(f"stale     tests/mutants/<exercise>.toml names an equivalent mutant that no longer exists: {line}")
    print(f"\n{sum(map(len, verdicts.values()))} mutants graded in {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    e: [
                        {
                            "id": v.mutant.id,
                            "equivalent": v.equivalent,
                            "killed": v.killed,
                            "score": v.score,
                            "max_score": v.max_score,
                            "methods": v.methods,
                            "lost": v.lost,
                            "seconds": round(v.seconds, 1),
                        }
                        for v in found
                    ]
                    for e, found in verdicts.items()
                },
                indent=1,
            )
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
