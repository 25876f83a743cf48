"""What the sandbox's boundary costs: a table, and the same figures as JSON.

    python benchmarks/boundary.py [--json FILE] [--repeat N] [--workers N]     (nox -s benchmark)

Measured side by side in one run, on this machine:

- the zygote floor: a process that has imported what the scenarios need
  forks a child that answers on a pipe and ends (no sandbox at all): the
  least a forked call can cost;
- a trivial sandboxed call (import a module, return 1) under each tier this
  machine has, and its ratio to the floor;
- the hidden tests of the reference solutions under all three start methods
  with -n 2, run twice by the same pytest command: sandboxed (as the grader
  runs them) and in-process (benchmarks/inprocess.py: each call a plain fork
  of the pytest worker, no boundary; a benchmark-only mode, never used to
  grade), and their ratio; then the same per exercise, with a breakdown:
  the sandbox's start-up (test runs times the trivial call's cost, over the
  workers: a test run makes one call, a few make two), the rest of the boundary's cost (sandboxed minus
  in-process minus start-up: sweeps, the zygote's start, copies for the
  user tier), and the scenarios' own time (in-process);
- where that scenario time goes, per exercise, recorded inside each
  in-process call (benchmarks/scenario_time.py): the same scenarios under
  fork, spawn and forkserver; the graded code's processes starting (what
  spawn and forkserver cost more than fork); the scenario's deliberate
  waits (fixed sleeps, and windows that ran out); the rest (the graded
  code's work and waits, with the pauses the scenario asks of the processes
  it starts, the longest of them named, and the checks);
- ``python -m grader grade --solutions`` with the same options, as a user
  runs it (the grader's own start, staging and collecting included).

Timings, never a pass/fail test: it stops only if a run does not score 100%.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import scenario_time  # noqa: E402
from benchmarks.grading_time import trivial_call_seconds  # noqa: E402
from grader.manifest import load_manifest  # noqa: E402
from grader.names import DEFAULT_CALL_TIMEOUT, START_METHODS, TIERS  # noqa: E402
from grader.run import RunSettings, clean_environment, pytest_command  # noqa: E402
from grader.sandbox import IsolationUnavailable, detect_isolation  # noqa: E402
from grader.sandboxed.zygote import PRELOAD  # noqa: E402
from grader.target import choose_target, stage  # noqa: E402


def zygote_floor_seconds(samples: int) -> float:
    """A fork of this process (which has imported what the zygote imports) that answers on a pipe and ends."""
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.write(write_end, b"1")
            os._exit(0)
        os.close(write_end)
        os.read(read_end, 1)
        os.close(read_end)
        os.waitpid(pid, 0)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run_hidden_tests(
    exercise_ids: list[str], workers: int, isolation: str, in_process: bool, times: Path | None = None
) -> tuple[float, int]:
    """Seconds for one pytest run of the hidden tests on the solutions, and its test runs (test x start method).

    With times (in-process only), each call writes where its time went there (benchmarks/scenario_time.py).
    """
    manifest = load_manifest()
    exercises = [manifest.exercise(exercise_id) for exercise_id in exercise_ids]
    with tempfile.TemporaryDirectory(prefix="kata-boundary-") as folder:
        workdir = Path(folder)
        staged = stage(choose_target("solutions"), exercises, workdir / "submission")
        (workdir / "sandbox").mkdir()
        (workdir / "collected").mkdir()
        settings = RunSettings(tuple(START_METHODS), workers, DEFAULT_CALL_TIMEOUT, 600.0, isolation)
        command = pytest_command(exercises, staged.root, workdir, settings)
        if in_process:
            command[command.index("-p") : command.index("-p")] = ["-p", "benchmarks.inprocess"]
        env = clean_environment(workdir)
        if times is not None:
            env[scenario_time.FOLDER_VARIABLE] = str(times)
        started = time.perf_counter()
        subprocess.run(command, cwd=workdir, env=env, stdout=subprocess.DEVNULL, check=False)
        seconds = time.perf_counter() - started
        report = json.loads((workdir / "report.json").read_text())
    tests = report["tests"]
    failed = [test["nodeid"] for test in tests if test["outcome"] != "passed"]
    if failed or not tests:
        raise SystemExit(f"not every hidden test passed ({'in-process' if in_process else 'sandboxed'}): {failed[:5]}")
    return seconds, len(tests)


def scenario_breakdown(times: Path, workers: int) -> dict[str, Any]:
    """Where one exercise's scenario time went, from the figures its in-process calls wrote (scenario_time.py).

    Seconds are summed over the calls and divided over the workers, as shares of the run's wall time:
    - by start method: the same scenarios under fork, spawn and forkserver;
    - process starts: what spawn and forkserver cost more than fork, where a start is a fork of the caller
      (a fresh interpreter, or a fork of the fork server, that imports the graded code);
    - deliberate waits: fixed sleeps and windows that ran out, in the scenario's own thread;
    - rest: the graded code's own work and waits (with the pauses the scenario asks of the
      processes it starts: the longest are named, from fork's runs), and the checks.
    """
    by_method: dict[str, float] = {}
    waits = 0.0
    sites: dict[str, float] = {}
    child_pauses: dict[str, float] = {}
    for path in times.glob("*.json"):
        figures = json.loads(path.read_text())
        method = figures["start_method"]
        by_method[method] = by_method.get(method, 0.0) + figures.get("total_s", 0.0) / workers
        waits += (figures.get("sleep_s", 0.0) + figures.get("window_s", 0.0)) / workers
        for site, seconds in figures.get("sites", {}).items():
            sites[site] = sites.get(site, 0.0) + seconds / workers
    for path in times.glob("*.children"):
        for line in path.read_text().splitlines():
            site, _, seconds = line.rpartition("\t")
            child_pauses[site] = child_pauses.get(site, 0.0) + float(seconds)
    fork = by_method.get("fork", 0.0)
    starts = sum(max(0.0, seconds - fork) for method, seconds in by_method.items() if method != "fork")
    total = sum(by_method.values())
    return {
        "by_start_method_s": {method: round(seconds, 2) for method, seconds in sorted(by_method.items())},
        "process_starts_s": round(starts, 2),
        "deliberate_waits_s": round(waits, 2),
        "rest_s": round(max(0.0, total - starts - waits), 2),
        "deliberate_wait_sites_s": sorted(((site, round(s, 2)) for site, s in sites.items()), key=lambda x: -x[1]),
        "child_pauses_s": sorted(((site, round(s, 2)) for site, s in child_pauses.items()), key=lambda x: -x[1]),
    }


def grade_seconds(workers: int) -> float:
    command = [sys.executable, "-m", "grader", "grade", "--solutions", "-n", str(workers), "-q"]
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each whole-suite case; the median is kept")
    parser.add_argument("--workers", type=int, default=2, help="pytest-xdist workers (default: 2)")
    parser.add_argument("--samples", type=int, default=40, help="trivial calls per tier (default: 40)")
    args = parser.parse_args()

    floor = zygote_floor_seconds(200)
    calls: dict[str, float] = {}
    for tier in TIERS:
        try:
            calls[tier] = trivial_call_seconds(args.samples, tier)
        except IsolationUnavailable:
            continue
    strongest = detect_isolation("auto").tier
    print(f"{platform.python_version()}, {os.cpu_count()} CPUs, strongest tier here: {strongest}", flush=True)
    print(f"{'zygote floor (fork, answer, end)':<52} {floor * 1000:8.2f} ms")
    for tier, seconds in calls.items():
        print(f"{'trivial sandboxed call, ' + tier:<52} {seconds * 1000:8.2f} ms   {seconds / floor:5.1f}x the floor")

    ids = load_manifest().ids
    both: dict[str, list[float]] = {"sandboxed": [], "in_process": []}
    count = 0
    for _ in range(args.repeat):
        for mode in both:
            seconds, count = run_hidden_tests(ids, args.workers, strongest, mode == "in_process")
            both[mode].append(seconds)
    sandboxed, in_process = (statistics.median(both[mode]) for mode in both)
    grade = grade_seconds(args.workers)
    print(f"\nsolutions, all methods, -n {args.workers} ({count} test runs)")
    print(f"{'  hidden tests, sandboxed':<52} {sandboxed:8.1f} s")
    ratio = sandboxed / in_process
    print(f"{'  hidden tests, in-process (no boundary)':<52} {in_process:8.1f} s   (sandboxed: {ratio:.2f}x)")
    print(f"{'  python -m grader grade --solutions':<52} {grade:8.1f} s")

    trivial = calls[strongest]
    rows = []
    print(f"\n{'exercise':<16} {'sandboxed':>9} {'in-proc':>8} {'ratio':>6} {'runs':>6} {'start-up':>9} "
          f"{'rest of boundary':>17} {'scenarios':>10}")  # fmt: skip
    for exercise_id in ids:
        boxed, runs = run_hidden_tests([exercise_id], args.workers, strongest, False)
        with tempfile.TemporaryDirectory(prefix="kata-times-") as times:
            plain, _ = run_hidden_tests([exercise_id], args.workers, strongest, True, Path(times))
            where = scenario_breakdown(Path(times), args.workers)
        startup = runs * trivial / args.workers
        rest = max(0.0, boxed - plain - startup)
        rows.append(
            {
                "exercise": exercise_id,
                "sandboxed_s": round(boxed, 2),
                "in_process_s": round(plain, 2),
                "ratio": round(boxed / plain, 2),
                "test_runs": runs,
                "sandbox_start_up_s": round(startup, 2),
                "rest_of_boundary_s": round(rest, 2),
                "scenarios": where,
            }
        )
        print(f"{exercise_id:<16} {boxed:>8.1f}s {plain:>7.1f}s {boxed / plain:>5.2f}x {runs:>6} {startup:>8.2f}s "
              f"{rest:>16.2f}s {plain:>9.1f}s")  # fmt: skip

    print(f"\nwhere the scenarios' time goes (in-process, seconds of wall time over {args.workers} workers)")
    print(f"{'exercise':<21} {'fork':>6} {'spawn':>6} {'f.server':>8} {'starts':>7} {'waits':>6} {'rest':>6}  "
          "longest pauses inside the started processes (fork)")  # fmt: skip
    for row in rows:
        where = row["scenarios"]
        by = where["by_start_method_s"]
        pauses = ", ".join(f"{site} {seconds:.1f}s" for site, seconds in where["child_pauses_s"][:2])
        starts, waits, rest = where["process_starts_s"], where["deliberate_waits_s"], where["rest_s"]
        print(f"{row['exercise']:<21} {by.get('fork', 0):>5.1f}s {by.get('spawn', 0):>5.1f}s "
              f"{by.get('forkserver', 0):>7.1f}s {starts:>6.1f}s {waits:>5.1f}s {rest:>5.1f}s  {pauses}")  # fmt: skip

    figures: dict[str, Any] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "strongest_tier": strongest,
        "zygote_floor_ms": round(floor * 1000, 3),
        "trivial_call_ms": {tier: round(seconds * 1000, 3) for tier, seconds in calls.items()},
        "trivial_call_over_floor": round(trivial / floor, 2),
        "workers": args.workers,
        "solutions_all_methods": {
            "test_runs": count,
            "sandboxed_s": round(sandboxed, 2),
            "in_process_s": round(in_process, 2),
            "ratio": round(sandboxed / in_process, 2),
            "grade_s": round(grade, 2),
        },
        "exercises": rows,
    }
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
