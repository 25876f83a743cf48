"""Grade the reference solutions (or the fixture submissions) many times under load: grades must never change.

    python benchmarks/flakiness.py [--runs N] [--methods fork spawn forkserver] [--no-load]
                                   [--isolation auto|namespaces|process] [--run-timeout S]
                                   [--fixtures [NAME ...] [--jobs N]]

For each start method, runs `python -m grader grade --solutions --start-method M
--json FILE -q` N times, one after the other, while one busy-loop process per
CPU keeps every core busy (the loops are started here, and killed by their
pids at the end, also after Ctrl-C or an error). Every run must score 100%,
complete, and give the same per-test outcomes and scores as every other run.

Prints a table (method, runs, distinct score sets, min/median/max seconds per
run). Exit status 0 when every run was identical and perfect; 1 otherwise,
after naming each test that differed, with its messages; 130 on Ctrl-C.
The scorecards of the runs that differed are kept in a folder it names.

With --fixtures, the same for the fixture submissions (all of them, or those
named, or those of an exercise: --fixtures processes-): each is graded --runs
times under each start method alone, --jobs gradings side by side on top of
the busy loops. Under each method every run must give the same outcome for
every test; a fixture graded under fork in the test suite must lose exactly
its pinned tests (expected.json "outcomes") under every method, and one pinned
with "start_methods": "all" must lose them under the methods together.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
START_METHODS = ("fork", "spawn", "forkserver")
ISOLATIONS = ("auto", "namespaces", "process")
BUSY_LOOP = "while True: pass"
# A grade of the solutions takes seconds; this only stops a run that hangs.
DEFAULT_RUN_TIMEOUT = 900.0
# Time the grader gets to stop its pytest run and sweep its sandboxes after SIGINT.
STOP_GRACE = 60.0
MAX_SHOWN = 600  # characters of a message or output shown per test


@dataclass
class Run:
    number: int
    seconds: float
    exit_code: int | None  # None: stopped at --run-timeout
    scorecard: dict[str, Any] | None
    said: str  # the grader's stdout and stderr, for runs without a scorecard

    def score_set(self) -> tuple:
        """Everything the grade consists of: totals, exercises, tasks and every test's outcome and score.

        Not durations, messages or pids, which differ between honest runs.
        """
        card = self.scorecard
        if card is None:
            return ("no scorecard", self.exit_code)
        exercises = tuple(
            (e["id"], e["score"], e["max_score"], e["status"], tuple((t["number"], t["score"]) for t in e["tasks"]))
            for e in card["exercises"]
        )
        return (card["score"], card["max_score"], card["percent"], card["complete"], exercises, self.tests_key())

    def tests_key(self) -> tuple:
        return tuple(sorted(self.tests().items()))

    def tests(self) -> dict[str, tuple]:
        """test id -> (outcome, score, max_score, outcome per start method)."""
        if self.scorecard is None:
            return {}
        return {
            t["id"]: (t["outcome"], t["score"], t["max_score"], tuple(sorted(t["start_methods"].items())))
            for e in self.scorecard["exercises"]
            for t in e["tests"]
        }

    def perfect(self) -> bool:
        card = self.scorecard
        return (
            self.exit_code == 0
            and card is not None
            and card["complete"]
            and card["percent"] == 100
            and all(outcome[0] == "passed" for outcome in self.tests().values())
        )


@dataclass
class MethodResult:
    method: str
    runs: list[Run] = field(default_factory=list)

    def distinct(self) -> int:
        return len({run.score_set() for run in self.runs})

    def modal(self) -> Run | None:
        """A run with the most common score set: what the others are compared with."""
        if not self.runs:
            return None
        common, _ = Counter(run.score_set() for run in self.runs).most_common(1)[0]
        return next(run for run in self.runs if run.score_set() == common)

    def odd_runs(self) -> list[Run]:
        modal = self.modal()
        return [run for run in self.runs if not run.perfect() or run.score_set() != modal.score_set()]


class Stopped(Exception):
    """SIGTERM arrived: stop like on Ctrl-C, cleaning up first."""


def on_sigterm(signum: int, frame: Any) -> None:
    raise Stopped()


def start_load(count: int) -> list[subprocess.Popen]:
    """One busy loop per CPU. Popen runs the interpreter itself (no shim), so each pid is the loop's."""
    loops = []
    try:
        for _ in range(count):
            loops.append(
                subprocess.Popen([sys.executable, "-c", BUSY_LOOP], stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
    except BaseException:
        stop_load(loops)
        raise
    return loops


def stop_load(loops: list[subprocess.Popen]) -> None:
    for loop in loops:
        if loop.poll() is None:
            loop.kill()  # by the pid this script started; never reaped before, so never reused
    for loop in loops:
        loop.wait()


RUNNING: set[subprocess.Popen] = set()  # graders started and not yet ended, for an interrupted sweep
RUNNING_LOCK = threading.Lock()


def stop_grader(child: subprocess.Popen) -> None:
    """SIGINT first: the grader then stops its pytest run and sweeps its sandboxes itself."""
    if child.poll() is not None:
        return
    child.send_signal(signal.SIGINT)
    try:
        child.wait(timeout=STOP_GRACE)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def grade_once(
    method: str,
    number: int,
    isolation: str,
    run_timeout: float,
    folder: Path,
    target: tuple[str, ...] = ("--solutions",),
    label: str = "solutions",
) -> Run:
    # One file per grading: gradings side by side must never share a scorecard.
    card = folder / f"{label}-{method}-{number:03d}.json"
    command = [sys.executable, "-m", "grader", "grade", *target, "--start-method", method]
    command += ["--json", str(card), "-q", "--isolation", isolation]
    started = time.perf_counter()
    child = subprocess.Popen(
        command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    with RUNNING_LOCK:
        RUNNING.add(child)
    try:
        said, _ = child.communicate(timeout=run_timeout)
        exit_code: int | None = child.returncode
    except subprocess.TimeoutExpired:
        stop_grader(child)
        said, exit_code = f"stopped after --run-timeout {run_timeout:g} s", None
    finally:
        # Ctrl-C, SIGTERM or an error here: the grader must not outlive this script.
        stop_grader(child)
        with RUNNING_LOCK:
            RUNNING.discard(child)
    seconds = time.perf_counter() - started
    scorecard = json.loads(card.read_text()) if card.exists() else None
    return Run(number, seconds, exit_code, scorecard, said.strip())


def test_outcomes(result: MethodResult) -> dict[str, Counter]:
    """test id -> how often each (outcome, score) came up over the method's runs ("missing": no scorecard)."""
    every = {test_id for run in result.runs for test_id in run.tests()}
    found: dict[str, Counter] = {test_id: Counter() for test_id in sorted(every)}
    for run in result.runs:
        tests = run.tests()
        for test_id, counter in found.items():
            outcome = tests.get(test_id)
            counter[(outcome[0], outcome[1]) if outcome else ("missing", 0.0)] += 1
    return found


def shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "..."


def describe(run: Run, modal: Run | None) -> list[str]:
    """What this run got wrong, or got differently from the modal run: per test, with messages."""
    lines = [f"  run {run.number}: exit status {run.exit_code}, {run.seconds:.1f} s"]
    card = run.scorecard
    if card is None:
        lines.append(f"    no scorecard; the grader said: {shorten(run.said)}")
        return lines
    lines.append(f"    score {card['score']}/{card['max_score']} ({card['percent']}%), complete={card['complete']}")
    for notice in card["notices"]:
        lines.append(f"    notice: {shorten(notice)}")
    usual = modal.tests() if modal is not None and modal.scorecard is not None else {}
    for exercise in card["exercises"]:
        if exercise["message"]:
            lines.append(f"    {exercise['id']}: {shorten(exercise['message'])}")
        for test in exercise["tests"]:
            mine = run.tests()[test["id"]]
            if test["outcome"] == "passed" and usual.get(test["id"], mine) == mine:
                continue
            per_method = ", ".join(f"{m}: {o}" for m, o in test["start_methods"].items())
            lines.append(f"    {test['id']}: {test['outcome']} ({per_method}), {test['score']}/{test['max_score']}")
            if test["id"] in usual and usual[test["id"]] != mine:
                lines.append(f"      in most runs: {usual[test['id']][0]}, {usual[test['id']][1]}")
            for key in ("message", "output"):
                if test.get(key):
                    lines.append(f"      {key}: {shorten(test[key])}")
    return lines


def table(results: list[MethodResult], tier: str, load: str) -> str:
    rows = [f"isolation {tier}; load: {load}", f"{'method':<11} {'runs':>5} {'distinct':>9} {'not 100%':>9} "
            f"{'min s':>7} {'median s':>9} {'max s':>7}"]  # fmt: skip
    for result in results:
        seconds = [run.seconds for run in result.runs] or [0.0]
        bad = sum(not run.perfect() for run in result.runs)
        rows.append(
            f"{result.method:<11} {len(result.runs):>5} {result.distinct():>9} {bad:>9} "
            f"{min(seconds):>7.1f} {statistics.median(seconds):>9.1f} {max(seconds):>7.1f}"
        )
    return "\n".join(rows)


FIXTURES = ROOT / "tests" / "fixtures" / "submissions"


@dataclass
class FixtureResult:
    name: str
    expected: dict[str, Any]
    runs: dict[str, list[Run]] = field(default_factory=dict)  # method -> runs

    def outcomes(self, run: Run) -> dict[str, str]:
        """test name -> outcome, for the tests that did not pass (what expected.json pins)."""
        if run.scorecard is None:
            return {"(no scorecard)": str(run.exit_code)}
        return {
            t["id"].split("::")[-1]: t["outcome"]
            for e in run.scorecard["exercises"]
            for t in e["tests"]
            if t["outcome"] != "passed"
        }

    def problems(self) -> list[str]:
        found = []
        pinned = self.expected["outcomes"]
        together: dict[str, str] = {}
        for method, runs in self.runs.items():
            seen = {json.dumps(self.outcomes(run), sort_keys=True) for run in runs}
            if len(seen) > 1:
                found.append(f"{method}: {len(seen)} different grades in {len(runs)} runs: {sorted(seen)}")
                continue
            mine = self.outcomes(runs[0]) if runs else {}
            for test, outcome in mine.items():
                together.setdefault(test, outcome)
            if self.expected.get("start_methods") != "all" and runs and mine != pinned:
                found.append(f"{method}: loses {mine}, pinned {pinned}")
        if self.expected.get("start_methods") == "all" and set(together) != set(pinned):
            found.append(f"all methods together lose {sorted(together)}, pinned {sorted(pinned)}")
        return found


def fixture_names(patterns: list[str]) -> list[str]:
    every = sorted(path.name for path in FIXTURES.iterdir() if (path / "expected.json").is_file())
    if not patterns:
        return every
    chosen = [name for name in every if any(name == p or (p.endswith("-") and name.startswith(p)) for p in patterns)]
    unknown = [p for p in patterns if not any(n == p or (p.endswith("-") and n.startswith(p)) for n in every)]
    if unknown:
        raise SystemExit(f"--fixtures: no fixture submission matches {unknown}")
    return chosen


def run_fixtures(args: argparse.Namespace, methods: list[str]) -> int:
    """Grade every chosen fixture --runs times per method under load; 0 when every grade held."""
    from concurrent.futures import ThreadPoolExecutor

    names = fixture_names(args.fixtures)
    results = {name: FixtureResult(name, json.loads((FIXTURES / name / "expected.json").read_text())) for name in names}
    cpus = os.cpu_count() or 1
    folder = Path(tempfile.mkdtemp(prefix="kata-flakiness-fixtures-"))
    loops: list[subprocess.Popen] = []
    loads: list[float] = []  # the 1-minute load average as each grading ended: how loaded "under load" was
    started = time.perf_counter()
    jobs = [(name, method, number) for name in names for method in methods for number in range(1, args.runs + 1)]
    print(f"{len(names)} fixtures x {len(methods)} methods x {args.runs} runs = {len(jobs)} gradings, "
          f"{args.jobs} at a time", flush=True)  # fmt: skip

    cancel = threading.Event()

    def one(job: tuple[str, str, int]) -> tuple[str, str, Run] | None:
        name, method, number = job
        if cancel.is_set():
            return None
        expected = results[name].expected
        target = ("--submission", str(FIXTURES / name), "--only", expected["exercise"], "-n", "0")
        return name, method, grade_once(method, number, args.isolation, args.run_timeout, folder, target, name)

    per_fixture = len(methods) * args.runs
    finished: list[str] = []  # fixtures with every run in, in the order they finished
    interrupted = False
    pool = ThreadPoolExecutor(max_workers=max(1, args.jobs))
    try:
        loops = [] if args.no_load else start_load(cpus)
        for done, job in enumerate(pool.map(one, jobs), start=1):
            if job is None:
                continue
            name, method, run = job
            result = results[name]
            result.runs.setdefault(method, []).append(run)
            loads.append(os.getloadavg()[0])
            if sum(len(runs) for runs in result.runs.values()) == per_fixture:
                # Told at once, so that a long sweep can be read, or stopped, half-way.
                finished.append(name)
                problems = result.problems()
                print(f"  {name}: {'ok' if not problems else 'DIFFERS: ' + '; '.join(problems)}", flush=True)
            if done % 50 == 0:
                print(f"  {done}/{len(jobs)} gradings, {time.perf_counter() - started:.0f} s", flush=True)
        pool.shutdown()
    except (KeyboardInterrupt, Stopped):
        interrupted = True
        cancel.set()  # no grading starts any more; those under way are stopped like on Ctrl-C
        with RUNNING_LOCK:
            running = list(RUNNING)
        for child in running:
            if child.poll() is None:
                child.send_signal(signal.SIGINT)
        pool.shutdown(cancel_futures=True)
        print(f"\ninterrupted: the summary covers the {len(finished)} fixtures whose runs all finished", flush=True)
    finally:
        stop_load(loops)
    results = {name: results[name] for name in finished}
    names = finished
    if not names:
        return 130 if interrupted else 1
    bad = {name: result.problems() for name, result in results.items() if result.problems()}
    seconds = [run.seconds for result in results.values() for runs in result.runs.values() for run in runs]
    print(f"\n{len(names)} fixtures, {len(seconds)} gradings under {', '.join(methods)} in "
          f"{time.perf_counter() - started:.0f} s (per grading: median {statistics.median(seconds):.1f} s, "
          f"max {max(seconds):.1f} s); busy loops: {'none' if args.no_load else cpus}; 1-minute load average "
          f"on {cpus} CPUs: median {statistics.median(loads):.1f}, max {max(loads):.1f}")  # fmt: skip
    for name, problems in bad.items():
        print(f"{name}:")
        for problem in problems:
            print(f"  {problem}")
    print(f"{len(names) - len(bad)} of {len(names)} fixtures lost the same tests in every run, as pinned")
    shutil.rmtree(folder, ignore_errors=True)
    if interrupted:
        return 130
    return 1 if bad else 0


def parse_methods(values: list[str]) -> list[str]:
    methods = [m for value in values for m in value.replace(",", " ").split()]
    unknown = [m for m in methods if m not in START_METHODS]
    if unknown or not methods:
        raise argparse.ArgumentTypeError(f"--methods: choose from {', '.join(START_METHODS)} (got {values})")
    return list(dict.fromkeys(methods))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="grading runs per start method (default: 50)")
    parser.add_argument(
        "--methods", nargs="+", default=list(START_METHODS), metavar="METHOD", help="start methods (default: all three)"
    )
    parser.add_argument("--no-load", action="store_true", help="do not start the busy loops")
    parser.add_argument("--isolation", choices=ISOLATIONS, default="auto", help="passed to the grader (default: auto)")
    parser.add_argument(
        "--run-timeout",
        type=float,
        default=DEFAULT_RUN_TIMEOUT,
        metavar="S",
        help=f"seconds one grading run may take before it is stopped and counted as differing "
        f"(default: {DEFAULT_RUN_TIMEOUT:g})",
    )
    parser.add_argument(
        "--fixtures", nargs="*", metavar="NAME", help="grade fixture submissions instead (none named: all of them)"
    )
    parser.add_argument("--jobs", type=int, default=2, help="with --fixtures: gradings side by side (default: 2)")
    return parser


def main() -> int:
    parser = build_parser()
    args = parser.parse_args()
    try:
        methods = parse_methods(args.methods)
    except argparse.ArgumentTypeError as problem:
        parser.error(str(problem))
    if args.runs < 1:
        parser.error("--runs must be 1 or more")
    signal.signal(signal.SIGTERM, on_sigterm)
    if args.fixtures is not None:
        return run_fixtures(args, methods)
    cpus = os.cpu_count() or 1
    load = "none" if args.no_load else f"{cpus} busy loop(s), one per CPU"
    folder = Path(tempfile.mkdtemp(prefix="kata-flakiness-"))
    results: list[MethodResult] = []
    loops: list[subprocess.Popen] = []
    interrupted = broken = False
    try:
        loops = [] if args.no_load else start_load(cpus)
        if loops:
            print(f"load: busy loops with pids {', '.join(str(loop.pid) for loop in loops)}", flush=True)
        for method in methods:
            result = MethodResult(method)
            results.append(result)
            print(f"{method}: ", end="", flush=True)
            for number in range(1, args.runs + 1):
                died = [loop.pid for loop in loops if loop.poll() is not None]
                if died:
                    raise RuntimeError(f"busy loop(s) {died} died: the load is off, the measurement would lie")
                run = grade_once(method, number, args.isolation, args.run_timeout, folder)
                result.runs.append(run)
                reference = next((r for r in result.runs if r.perfect()), None)
                same = run.perfect() and run.score_set() == reference.score_set()
                print("." if same else "X", end="", flush=True)
                if not same:
                    # Tell at once, so a long run can be diagnosed before it ends.
                    print("\n" + "\n".join(describe(run, reference)), flush=True)
                    print(f"{method}: ", end="", flush=True)
            print(flush=True)
    except (KeyboardInterrupt, Stopped):
        interrupted = True
        print("\ninterrupted: the table covers the runs that finished", flush=True)
    except RuntimeError as problem:
        broken = True
        print(f"\nstopped: {problem}", flush=True)
    finally:
        stop_load(loops)

    tier = next((r.scorecard["isolation"]["tier"] for m in results for r in m.runs if r.scorecard), "unknown")
    print(table(results, tier, load))
    odd = [(result, run) for result in results for run in result.odd_runs()]
    if odd:
        print("\nruns that differ from the usual score set of their method, or are not 100%:")
        for result, run in odd:
            print(f"{result.method}:")
            print("\n".join(describe(run, result.modal())))
        print("\ntests that did not pass, or not the same way, in every run (method, test, outcomes over the runs):")
        for result in results:
            for test_id, outcomes in test_outcomes(result).items():
                if len(outcomes) > 1 or next(iter(outcomes))[0] != "passed":
                    seen = ", ".join(f"{o} {s:g} pts {n}/{len(result.runs)}" for (o, s), n in outcomes.most_common())
                    print(f"  {result.method:<11} {test_id}: {seen}")
        print(f"\nscorecards kept in {folder}")
    kept = {f"solutions-{result.method}-{run.number:03d}.json" for result, run in odd}
    for card in folder.iterdir():
        if card.name not in kept:
            card.unlink()
    if not kept:
        shutil.rmtree(folder, ignore_errors=True)
    if interrupted:
        return 130
    return 1 if broken or odd or any(result.distinct() != 1 for result in results) else 0


if __name__ == "__main__":
    sys.exit(main())
