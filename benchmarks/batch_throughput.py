"""A class of 20 mixed submissions: graded side by side (--submissions --jobs) against one after another.

    python benchmarks/batch_throughput.py [--jobs J] [--only ID ...] [--start-method M] [--json FILE] [--keep DIR]

The class (made afresh in a temporary folder, or in --keep DIR and kept):
correct (folders, a zip, a GitHub Classroom clone with exercises/ one level
down), untouched stubs, partly solved, hanging (functions that wait forever,
as a deadlock does; a busy loop; a module that hangs at import), hostile (a print flood, a module that ends
the interpreter at import, one that leaves sleeping processes behind),
wrongly laid out, and empty. Both ways grade the same exercises with the same
options, in one run, one right after the other:

- one after another, as before the batch grew: ``grade --submission`` for each
  submission's exercise folder in turn, with the default number of test workers;
- side by side: ``grade --submissions CLASS --out OUT --jobs J``.

Prints both times and their ratio and writes them as JSON with --json.
Timings, never a pass/fail test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.student_loop import timed  # noqa: E402  (the same timing as the student's loop benchmark)
from grader.manifest import load_manifest  # noqa: E402

SPIN = "def _spin(*args, **kwargs):\n    while True:\n        pass\n\n\n"
BLOCK = "def _block(*args, **kwargs):\n    import threading\n\n    threading.Event().wait()\n\n\n"
HANG_AT_IMPORT = "import time\n\ntime.sleep(3600)\n"
FLOOD = "import sys\n\nwhile True:\n    sys.stdout.write('x' * 65536)\n"
EXIT_AT_IMPORT = "import os\n\nos._exit(3)\n"
ORPHANS = """import os
import time

for _ in range(3):
    if os.fork() == 0:
        time.sleep(3600)
        os._exit(0)
"""


def make_class(folder: Path, exercise_ids: list[str]) -> dict[str, Path]:
    """The class folder and, per student, the folder a one-at-a-time grading is given."""
    manifest = load_manifest()
    chosen = [manifest.exercise(exercise_id) for exercise_id in exercise_ids]
    group = folder / "class"
    group.mkdir(parents=True)
    roots: dict[str, Path] = {}

    def lay_out(name: str, sources: dict[str, str], where: str = "") -> Path:
        root = group / name / where if where else group / name
        for exercise in chosen:
            (root / exercise.folder).mkdir(parents=True, exist_ok=True)
            (root / exercise.folder / exercise.file_name).write_text(sources[exercise.id])
        roots[name] = root
        return root

    def read(kind: str) -> dict[str, str]:
        return {e.id: (ROOT / kind / e.folder / e.file_name).read_text() for e in chosen}

    solved, stubs = read("solutions"), read("exercises")
    first = chosen[0]
    for name in ("correct-1", "correct-2"):
        lay_out(name, solved)
    lay_out("correct-classroom", solved, "exercises")
    lay_out("correct-zip", solved, "repo-main")
    for name in ("untouched-1", "untouched-2", "untouched-3"):
        lay_out(name, stubs)
    lay_out("untouched-zip", stubs)
    for number in range(1, 5):  # the first one, two, three or one exercises solved, the others untouched
        solved_count = (number - 1) % 3 + 1
        partial = {e.id: (solved if i < solved_count else stubs)[e.id] for i, e in enumerate(chosen)}
        lay_out(f"partial-{number}", partial)
    # A deadlock waits (the usual hang: a join before the drain, a get() with no sentinel); a busy loop computes.
    blocking = {e.id: solved[e.id] + "\n\n" + BLOCK + _bind_all(stubs[e.id], "_block") for e in chosen}
    lay_out("hanging-functions", blocking)
    lay_out("busy-loop", {**solved, first.id: solved[first.id] + "\n\n" + SPIN + _bind_all(stubs[first.id], "_spin")})
    lay_out("hanging-import", {e.id: HANG_AT_IMPORT for e in chosen})
    lay_out("hostile-flood", {**solved, first.id: FLOOD})
    lay_out("hostile-exit", {**solved, first.id: EXIT_AT_IMPORT})
    lay_out("hostile-orphans", {**solved, first.id: ORPHANS + solved[first.id]})
    flat = group / "wrong-layout"  # the files without their folders
    flat.mkdir()
    for exercise in chosen:
        (flat / exercise.file_name).write_text(solved[exercise.id])
    roots["wrong-layout"] = flat
    (group / "empty").mkdir()
    roots["empty"] = group / "empty"
    for name in ("correct-zip", "untouched-zip"):  # handed in as zip files
        _zip_folder(group / name, group / f"{name}.zip")
        extracted = folder / "extracted" / name
        shutil.copytree(group / name, extracted)
        shutil.rmtree(group / name)
        roots[name] = extracted / roots[name].relative_to(group / name)
    return roots


def _bind_all(stub: str, to: str) -> str:
    """Every public function of the exercise, bound to a function that never returns."""
    import ast

    names = [node.name for node in ast.parse(stub).body if isinstance(node, ast.FunctionDef)]
    return "".join(f"{name} = {to}\n" for name in names if not name.startswith("_"))


def _zip_folder(folder: Path, archive: Path) -> None:
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted(folder.rglob("*")):
            bundle.write(path, path.relative_to(folder))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=4, help="submissions graded at once by the batch (default: 4)")
    parser.add_argument("--only", action="append", default=[], help="exercise ids (default: processes, pool, queues)")
    parser.add_argument("--start-method", default="fork", help="start method(s), as grade takes it (default: fork)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON to this file")
    parser.add_argument("--keep", type=Path, help="make the class here and keep it (default: a temporary folder)")
    args = parser.parse_args()
    exercise_ids = args.only or ["processes", "pool", "queues"]
    folder = args.keep or Path(tempfile.mkdtemp(prefix="kata-batch-bench-"))
    try:
        roots = make_class(folder, exercise_ids)
        options = ["--start-method", args.start_method]
        for exercise_id in exercise_ids:
            options += ["--only", exercise_id]
        state = folder / "state"
        one_by_one = sum(timed(ROOT, ["--submission", str(root), *options], state) for root in roots.values())
        batch = ["--submissions", str(folder / "class"), "--out", str(folder / "out"), "--jobs", str(args.jobs)]
        side_by_side = timed(ROOT, [*batch, *options], state)
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    figures = {
        "submissions": len(roots),
        "exercises": exercise_ids,
        "start_method": args.start_method,
        "jobs": args.jobs,
        "cpus": os.cpu_count(),
        "one_after_another_s": round(one_by_one, 1),
        "side_by_side_s": round(side_by_side, 1),
        "speedup": round(one_by_one / side_by_side, 2),
    }
    print(f"{len(roots)} submissions, {', '.join(exercise_ids)}, {args.start_method}, {os.cpu_count()} CPUs")
    print(f"one after another        {one_by_one:7.1f} s")
    print(f"side by side, --jobs {args.jobs:<3} {side_by_side:7.1f} s   ({figures['speedup']:.2f}x)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
