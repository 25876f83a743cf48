"""Gradescope's autograder bundle: the zip an instructor uploads to a programming assignment.

    python -m grader gradescope-bundle OUT.zip

Gradescope unpacks the zip into ``/autograder/source``, runs its ``setup.sh``
once (as root) while it builds the assignment's image, copies its
``run_autograder`` to ``/autograder/run_autograder`` and runs that for each
submission, with the student's files in ``/autograder/submission``. Whatever
``run_autograder`` leaves in ``/autograder/results/results.json`` is the
result. So the zip holds, at its top:

    setup.sh          installs what is missing (Python's venv, bubblewrap for the strongest
                      isolation tier), makes .venv and installs the grader into it
    run_autograder    grades /autograder/submission with --format gradescope into
                      /autograder/results/results.json; when the grader could not grade
                      at all, writes a results.json that says why (score 0)
    the kata          what the handout holds (grader/handout.py: the grader package with its
                      hidden tests, the exercises' stubs, pyproject.toml, README.md), without
                      the Classroom workflow; never the reference solutions

The submission may be laid out like ``exercises/`` at its top, hold
``exercises/`` (a repository submitted from GitHub), or sit in one folder
(a zip of a folder): the grader looks in each (grader.target.locate_exercises).

The bundle is built the same way every time: members in sorted order, one
fixed timestamp, fixed modes (0755 for the two scripts), so that two builds of
one checkout are the same bytes. It is written beside OUT and renamed into place.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from grader.handout import CHECKOUT, CLASSROOM_WORKFLOW, HandoutError, build_handout

# The grading run's own deadline, under Gradescope's default limit of 10 minutes for a submission, so that
# the grader writes its (incomplete) results before Gradescope stops the container. Raise both together.
DEADLINE_SECONDS = 540
# Test workers per CPU: a grading waits far more than it computes (see BATCH_WORKERS_PER_CPU in grader/cli.py).
WORKERS_PER_CPU = 4
ZIP_TIMESTAMP = (2020, 1, 1, 0, 0, 0)
SCRIPT_MODE = 0o755
FILE_MODE = 0o644

SETUP_SH = """\
#!/usr/bin/env bash
# Gradescope runs this once, as root, while it builds the autograder's image.
# It installs what grading needs and the kata's grader, in /autograder/source/.venv.
set -euo pipefail
cd "$(dirname "$0")"

install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "setup.sh: cannot install $* here (no apt-get): choose an Ubuntu base image" >&2
        return 1
    fi
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

command -v python3 >/dev/null 2>&1 || install python3 || exit 1
python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' || {
    echo "setup.sh: the grader needs Python 3.10 or newer; this image has $(python3 --version)" >&2
    exit 1
}
# bubblewrap gives graded code the strongest isolation tier where the container allows it;
# without it the grader picks the strongest tier that works and says which in each result.
command -v bwrap >/dev/null 2>&1 || install bubblewrap || true
rm -rf .venv
python3 -m venv .venv 2>/dev/null || { install python3-venv && rm -rf .venv && python3 -m venv .venv; } || exit 1
.venv/bin/python -m pip install --quiet -e .
.venv/bin/python -m grader --version
"""

RUN_AUTOGRADER = f"""\
#!/usr/bin/env bash
# Gradescope runs this for each submission: it grades /autograder/submission and
# leaves Gradescope's results in /autograder/results/results.json, whatever happens.
set -u
here="$(cd "$(dirname "$0")" && pwd)"
# Gradescope copies this file to /autograder/; the bundle also holds it in /autograder/source/.
if [ "$(basename "$here")" = source ]; then root="$(dirname "$here")"; else root="$here"; fi
python="$root/source/.venv/bin/python"
results="$root/results/results.json"
mkdir -p "$root/results"
rm -f "$results"
log="$(mktemp)"
FALLBACK='{{"score": 0, "output": "The autograder could not grade this submission.", "tests": []}}'
workers=$(( {WORKERS_PER_CPU} * $(nproc 2>/dev/null || echo 1) ))
status=0
"$python" -m grader grade --submission "$root/submission" --format gradescope --json "$results" \\
    --deadline {DEADLINE_SECONDS} -n "$workers" 2>"$log" || status=$?
cat "$log" >&2
if [ ! -s "$results" ]; then
    # The grader could not grade this submission at all; its reason is the last line it wrote.
    reason="$(tail -n 1 "$log" 2>/dev/null)"
    "$python" - "$results" "$status" "$reason" <<'PYTHON' || printf '%s\\n' "$FALLBACK" > "$results"
import json, sys
path, status, reason = sys.argv[1:]
said = reason or "no reason was given"
output = f"The autograder could not grade this submission (exit status {{status}}): {{said}}"
document = {{"score": 0, "output": output, "output_format": "text", "visibility": "visible", "tests": []}}
with open(path, "w", encoding="utf-8") as stream:
    json.dump(document, stream, indent=2)
PYTHON
fi
rm -f "$log"
exit 0
"""

SCRIPTS = {"setup.sh": SETUP_SH, "run_autograder": RUN_AUTOGRADER}


class BundleError(Exception):
    """The bundle cannot be made; the message says why."""


@dataclass(frozen=True)
class BundleSummary:
    path: Path  # the zip, resolved
    members: tuple[str, ...]  # every file in it, in its order

    @property
    def count(self) -> int:
        return len(self.members)


def build_gradescope_bundle(out: Path, root: Path = CHECKOUT) -> BundleSummary:
    """Write Gradescope's autograder zip of the kata at root to out (a file; replaced when it exists)."""
    out = Path(os.path.abspath(out))
    if out.is_dir():
        raise BundleError(f"{out} is a folder: give the path of the zip file to write, such as autograder.zip")
    if out.suffix.lower() != ".zip":
        raise BundleError(f"{out.name}: Gradescope takes a .zip file: give a name ending in .zip")
    with tempfile.TemporaryDirectory(prefix="kata-bundle-") as scratch:
        try:
            kata = build_handout(Path(scratch) / "kata", root).folder
        except HandoutError as problem:
            raise BundleError(str(problem))
        shutil.rmtree(kata / CLASSROOM_WORKFLOW.split("/")[0])  # the Classroom workflow is the students' own
        files = {
            path.relative_to(kata).as_posix(): path.read_bytes() for path in sorted(kata.rglob("*")) if path.is_file()
        }
        members = [*SCRIPTS, *sorted(files)]
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            fd, building = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
            os.close(fd)
            try:
                with zipfile.ZipFile(building, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
                    for name in members:
                        script = name in SCRIPTS
                        data = SCRIPTS[name].encode() if script else files[name]
                        info = zipfile.ZipInfo(name, date_time=ZIP_TIMESTAMP)
                        info.compress_type = zipfile.ZIP_DEFLATED
                        info.external_attr = (0o100000 | (SCRIPT_MODE if script else FILE_MODE)) << 16
                        bundle.writestr(info, data)
                os.chmod(building, FILE_MODE)
                os.replace(building, out)
            except BaseException:
                os.unlink(building)
                raise
        except OSError as problem:
            raise BundleError(f"writing {out} failed: {problem}")
    return BundleSummary(path=out.resolve(), members=tuple(members))


def describe(summary: BundleSummary) -> str:
    return (
        f"Wrote {summary.path} ({summary.count} files: setup.sh, run_autograder, the grader and the exercises' "
        "stubs; no solutions).\nUpload it as the autograder of a Gradescope programming assignment "
        f"(an Ubuntu base image; the grading stops itself after {DEADLINE_SECONDS} s, under Gradescope's "
        "default limit of 10 minutes)."
    )
