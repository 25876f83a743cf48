"""How long grading takes, and how much of it is the sandbox's own start-up.

    python benchmarks/grading_time.py [--repeat N]

Measured side by side in one run, on this machine:
- a trivial sandboxed call (import a module, return 1) under fork: the fixed
  cost every hidden-test call pays before any graded code runs, forked from
  the worker's zygote;
- beside it, what the same call would cost with a fresh interpreter instead
  (the same wrapping, Python started with what the zygote imports once), and
  the ratio;
- the full grade of solutions/ with -n 1 and -n 2, and one exercise alone;
- the share of each grade spent starting sandboxed calls: calls x fixed cost,
  divided over the workers, against the wall-clock time.
Prints a table; asserts nothing (timings are not pass/fail).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.names import NAMESPACES, PROCESS, TIERS  # noqa: E402
from grader.sandbox import (  # noqa: E402
    IsolationUnavailable,
    Sandbox,
    _clean_env,
    bwrap_command,
    detect_isolation,
    stage_harness,
)
from grader.sandboxed.zygote import PRELOAD  # noqa: E402

FRESH_IMPORTS = "import json, " + ", ".join(PRELOAD)


def fresh_interpreter_seconds(samples: int, tier: str) -> float:
    """A fresh interpreter that imports what the zygote has imported, wrapped as the tier would wrap it."""
    with tempfile.TemporaryDirectory() as folder:
        os.chmod(folder, 0o755)
        python = [sys.executable, "-I", "-S", "-c", FRESH_IMPORTS]
        if tier == NAMESPACES:
            python = [*bwrap_command(sys.executable, Path(folder), Path(folder), _clean_env(Path("/tmp"))), *python[1:]]
        times = []
        for _ in range(samples):
            started = time.perf_counter()
            subprocess.run(python, check=True, stdin=subprocess.DEVNULL)
            times.append(time.perf_counter() - started)
        return statistics.median(times)


def trivial_call_seconds(samples: int, tier: str) -> float:
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        (base / "mod").mkdir()
        (base / "mod" / "trivial.py").write_text("def one():\n    return 1\n")
        sandbox = Sandbox(harness_dir=stage_harness(base / "harness"), isolation=detect_isolation(tier))
        times = []
        for _ in range(samples):
            started = time.perf_counter()
            result = sandbox.call(
                "trivial", base / "mod", "grader.sandboxed.scenarios.generic:call", ["one"], "fork", 10
            )
            times.append(time.perf_counter() - started)
            assert result.value == 1, result
        return statistics.median(times)


def grade(*options: str) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory() as folder:
        card = Path(folder) / "card.json"
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "grader", "grade", "-q", "--json", str(card), *options],
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        return time.perf_counter() - started, json.loads(card.read_text())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    fixed = {}
    for tier in TIERS:
        try:
            fixed[tier] = trivial_call_seconds(40, tier)
        except IsolationUnavailable as why:
            print(f"{tier}: not available here ({why})")
            continue
        print(f"trivial sandboxed call, {tier} tier (median of 40): {fixed[tier] * 1000:.1f} ms")
        if tier in (NAMESPACES, PROCESS):
            fresh = fresh_interpreter_seconds(40, tier)
            print(f"  a fresh interpreter instead (median of 40): {fresh * 1000:.1f} ms, {fresh / fixed[tier]:.1f}x")
    cases = [
        ("solutions, all methods, -n 1", ("--solutions", "-n", "1"), 1),
        ("solutions, all methods, -n 2", ("--solutions", "-n", "2"), 2),
        ("solutions, fork only, -n 2", ("--solutions", "--start-method", "fork", "-n", "2"), 2),
        ("one exercise (processes), all methods, -n 2", ("--solutions", "--only", "processes", "-n", "2"), 2),
    ]
    # One sandboxed call per test and start method (a few tests make two).
    print(f"{'case':<46} {'median s':>9} {'test runs':>10} {'start-up share':>15}")
    for name, options, workers in cases:
        runs = [grade(*options) for _ in range(args.repeat)]
        wall = statistics.median(seconds for seconds, _ in runs)
        card = runs[0][1]
        calls = sum(len(t["start_methods"]) for e in card["exercises"] for t in e["tests"])
        share = calls * fixed[card["isolation"]["tier"]] / workers / wall
        assert card["percent"] == 100.0
        print(f"{name:<46} {wall:>9.2f} {calls:>10} {share:>14.0%}  ({card['isolation']['tier']})")


if __name__ == "__main__":
    main()
