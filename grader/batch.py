"""A class at once: every submission in a folder, graded side by side, each by a grader of its own.

    class/                              out/
      alice/01_processes/...   ─┐         scorecards/alice.json
      bob.zip                   ├─ jobs ─> scorecards/bob.json ...
      carol/exercises/01_.../  ─┘         batch.json (what was graded, skipped, with which grader)
      notes.txt  (skipped: why)           gradebook.csv, stats.json, report.html (the class view)

Finding: each entry of the class folder is one submission: a folder, or a
zip file (unpacked with every name checked, sizes capped, links refused).
Anything else in the class folder is listed as skipped, with why. Inside a
submission, its grader looks for the exercise folders where students and
platforms put them (grader.target.locate_exercises) and says where.

Grading: each submission is graded by ``python -m grader grade --submission``
in a process of its own (own session, stdin from /dev/null, its output to a
log), up to ``jobs`` at once. Each still runs its tests in its own sandbox; a
submission that hangs, floods or crashes its grader costs only its own line.
A stop (Ctrl-C, SIGTERM) is passed on to every grader running: each writes
its incomplete scorecard and the batch stops starting new ones.

Resuming: ``batch.json`` keeps, per submission, a key made of the grader's own
files, the grading options and the submission's content. A rerun skips every
submission whose key is unchanged and whose scorecard is still there;
``force`` grades them all again.

Sharding: ``--shard K/N`` grades only the K-th of N shares of the class (the
submissions in name order, every N-th from the K-th), so that N machines, CI
jobs or job-array tasks grade a class between them; each writes its own OUT.
``merge`` puts the N OUTs together into one, with the class's files made from
all the scorecards, as one run would have made them. Each OUT's batch.json
says which shard it is, of which class, by which grader with which options:
merge refuses shards that do not belong together, or a class with a shard
missing, rather than write a gradebook that lacks students.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from grader import __version__
from grader.scorecard import write_text_atomically

BATCH_FILE = "batch.json"
SCORECARDS = "scorecards"
LOGS = "logs"
BATCH_FORMAT = 1
SHARD_HELP = "K/N, two whole numbers with 1 <= K <= N (the K-th of N shares of the class)"
# A zip that unpacks to more than this, or holds more files, is not a student's exercises.
MAX_UNPACKED_BYTES = 200 << 20
MAX_ZIP_MEMBERS = 20_000
POLL_SECONDS = 0.1
STOP_WAIT = 30.0  # seconds a stopped grader gets to write its incomplete scorecard before it is killed
SKIP_PARTS = {"__pycache__", ".git", ".kata", ".venv", "node_modules"}


class BatchError(Exception):
    """The batch cannot start; the message is the one line to show."""


@dataclass(frozen=True)
class Submission:
    name: str  # the student, as the class folder names them (a zip's name without .zip)
    source: Path  # the entry in the class folder
    kind: str  # "folder" or "zip"


@dataclass(frozen=True)
class Skipped:
    name: str
    why: str


@dataclass(frozen=True)
class Outcome:
    """What became of one submission."""

    submission: Submission
    state: str  # "graded", "kept" (graded before, unchanged) or "failed" (its grader wrote no scorecard)
    scorecard: Path | None
    line: str  # the student's line: score, and the notices that explain it
    card: dict[str, Any] | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class Options:
    """How each submission is graded: the options of ``grade`` passed on to every grader."""

    only: tuple[str, ...] = ()
    start_method: str = "all"
    workers: int | None = None
    call_timeout: float | None = None
    deadline: float | None = None
    isolation: str = "auto"
    explain: bool = False

    def arguments(self) -> list[str]:
        args = ["--start-method", self.start_method, "--isolation", self.isolation]
        for exercise in self.only:
            args += ["--only", exercise]
        if self.workers is not None:
            args += ["-n", str(self.workers)]
        if self.call_timeout is not None:
            args += ["--call-timeout", repr(self.call_timeout)]
        if self.deadline is not None:
            args += ["--deadline", repr(self.deadline)]
        if self.explain:
            args.append("--explain")
        return args


@dataclass
class Progress:
    """Events for a live view: called as submissions start and end."""

    on_start: Callable[[Submission], None] = lambda submission: None
    on_end: Callable[[Outcome, int, int], None] = lambda outcome, done, total: None
    total: int = 0


# --- finding the submissions ---------------------------------------------------------------------------------------


def find_submissions(folder: Path) -> tuple[list[Submission], list[Skipped]]:
    """Every entry of the class folder, by name: a submission, or skipped with why."""
    if not folder.is_dir():
        raise BatchError(f"--submissions {folder}: {'not a folder' if folder.exists() else 'does not exist'}")
    submissions, skipped = [], []
    for entry in sorted(folder.iterdir(), key=lambda path: path.name):
        if entry.name.startswith("."):
            skipped.append(Skipped(entry.name, "a hidden entry, not a submission"))
        elif entry.is_symlink():
            skipped.append(Skipped(entry.name, "a symbolic link: hand in the folder or zip itself"))
        elif entry.is_dir():
            submissions.append(Submission(entry.name, entry, "folder"))
        elif entry.is_file() and entry.suffix.lower() == ".zip":
            submissions.append(Submission(entry.name[: -len(".zip")], entry, "zip"))
        else:
            skipped.append(Skipped(entry.name, "not a folder or a .zip file"))
    names = [submission.name for submission in submissions]
    for name in {name for name in names if names.count(name) > 1}:  # alice/ beside alice.zip: which is alice's?
        for submission in [s for s in submissions if s.name == name]:
            submissions.remove(submission)
            skipped.append(Skipped(submission.source.name, f"both a folder and a zip are named {name}: keep one"))
    if not submissions:
        raise BatchError(f"--submissions {folder}: no submissions in it (one folder or .zip file per student)")
    return submissions, sorted(skipped, key=lambda item: item.name)


def unpack(archive: Path, destination: Path) -> None:
    """Unpack a student's zip file, refusing what could write outside destination or fill the disk."""
    try:
        with zipfile.ZipFile(archive) as bundle:
            members = bundle.infolist()
            if len(members) > MAX_ZIP_MEMBERS:
                raise BatchError(f"holds {len(members)} files (at most {MAX_ZIP_MEMBERS})")
            if sum(member.file_size for member in members) > MAX_UNPACKED_BYTES:
                raise BatchError(f"unpacks to more than {MAX_UNPACKED_BYTES >> 20} MB")
            destination.mkdir(parents=True)
            for member in members:
                parts = Path(member.filename.replace("\\", "/")).parts
                if member.filename.startswith(("/", "\\")) or ".." in parts or any(":" in part for part in parts):
                    raise BatchError(f"holds a path outside its own folder: {member.filename[:100]!r}")
                if stat.S_ISLNK(member.external_attr >> 16):
                    continue  # a link could point anywhere: leave it out
                target = destination.joinpath(*parts)
                if member.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with bundle.open(member) as source, open(target, "wb") as copy:
                    shutil.copyfileobj(source, copy)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError, EOFError) as problem:
        raise BatchError(f"is not a zip file that can be read ({type(problem).__name__}: {problem})"[:200])


# --- keys for resuming -----------------------------------------------------------------------------------------------


def grader_digest() -> str:
    """The grader's own files (code, hidden tests, scenarios, manifest): a change to any of them regrades."""
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256(__version__.encode())
    for path in sorted(_files(package)):
        if path.suffix in (".py", ".toml", ".json", ".ini"):
            digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def content_digest(source: Path) -> str:
    """A submission's content: the zip's bytes, or every file of the folder (names and bytes)."""
    digest = hashlib.sha256()
    if source.is_file():
        with open(source, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()
    for path in sorted(_files(source)):
        digest.update(str(path.relative_to(source)).encode() + b"\0")
        try:
            digest.update(path.read_bytes() if path.stat().st_size <= MAX_UNPACKED_BYTES else b"too large")
        except OSError:
            digest.update(b"unreadable")
    return digest.hexdigest()


def _files(folder: Path) -> Iterator[Path]:
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink() and not SKIP_PARTS & set(path.relative_to(folder).parts):
            yield path


def batch_key(grader: str, options: Options, content: str) -> str:
    settings = json.dumps(asdict(options), sort_keys=True)
    return hashlib.sha256(f"{grader}\n{settings}\n{content}".encode()).hexdigest()


# --- grading --------------------------------------------------------------------------------------------------------


def student_line(card: dict[str, Any]) -> str:
    """A scorecard in one line: the score, then what explains it (its notices), shortened."""
    score = f"{card['score']:g}/{card['max_score']:g} ({card['percent']:g}%)"
    if not card.get("complete", True):
        score += " INCOMPLETE"
    notices = card.get("notices") or []
    if notices:
        shown = notices[0] if len(notices[0]) <= 160 else notices[0][:157] + "..."
        more = f" (and {len(notices) - 1} more in its scorecard)" if len(notices) > 1 else ""
        score += f" - {shown}{more}"
    return score


@dataclass
class _Running:
    submission: Submission
    process: subprocess.Popen
    scorecard: Path
    written: Path
    log: Path
    key: str
    started: float
    unpacked: Path | None


def grade_batch(
    submissions: list[Submission],
    out: Path,
    options: Options,
    jobs: int = 1,
    force: bool = False,
    progress: Progress | None = None,
    stop: Any = None,
) -> list[Outcome]:
    """Grade every submission, up to jobs at once, skipping those graded before unchanged (unless force).

    stop: an object with ``first_signal`` (grader.run.StopRequest); once it is set no
    grader starts and every running one is passed the signal.
    """
    progress = progress or Progress()
    (out / SCORECARDS).mkdir(parents=True, exist_ok=True)
    (out / LOGS).mkdir(parents=True, exist_ok=True)
    known = read_batch(out)
    grader = grader_digest()
    outcomes: dict[str, Outcome] = {}
    waiting: list[tuple[Submission, str]] = []
    for submission in submissions:
        key = batch_key(grader, options, content_digest(submission.source))
        card_path = out / SCORECARDS / f"{submission.name}.json"
        kept = known.get(submission.name, {})
        if not force and kept.get("key") == key and card_path.is_file():
            card = _read_card(card_path)
            if card is not None:
                outcomes[submission.name] = Outcome(submission, "kept", card_path, student_line(card), card)
                continue
        waiting.append((submission, key))
    done = 0
    for outcome in outcomes.values():
        done += 1
        progress.on_end(outcome, done, len(submissions))
    unpacking = Path(tempfile.mkdtemp(prefix="kata-batch-"))
    running: list[_Running] = []
    stopped_at: float | None = None
    try:
        while waiting or running:
            stopping = stop is not None and stop.first_signal is not None
            if stopping and stopped_at is None:
                for job in running:  # each writes its incomplete scorecard and ends
                    _signal_group(job.process, stop.first_signal)
                stopped_at = time.monotonic()
            while waiting and len(running) < max(1, jobs) and not stopping:
                submission, key = waiting.pop(0)
                started = _start(submission, key, out, options, unpacking)
                if isinstance(started, Outcome):
                    outcomes[submission.name] = started
                    done += 1
                    _remember(out, started, key, grader)
                    progress.on_end(started, done, len(submissions))
                    continue
                running.append(started)
                progress.on_start(submission)
            if stopping:
                waiting.clear()
            for job in list(running):
                if job.process.poll() is None:
                    if stopped_at is not None and time.monotonic() - stopped_at > STOP_WAIT:
                        _signal_group(job.process, signal.SIGKILL)
                    continue
                running.remove(job)
                outcome = _finish(job)
                outcomes[job.submission.name] = outcome
                done += 1
                if outcome.state == "graded":
                    _remember(out, outcome, job.key, grader)
                progress.on_end(outcome, done, len(submissions))
            time.sleep(POLL_SECONDS)
    finally:
        for job in running:  # an error in this loop: leave nothing running
            _signal_group(job.process, signal.SIGKILL)
            job.process.wait()
        shutil.rmtree(unpacking, ignore_errors=True)
    return [outcomes[s.name] for s in submissions if s.name in outcomes]


def _start(submission: Submission, key: str, out: Path, options: Options, unpacking: Path) -> _Running | Outcome:
    unpacked = None
    folder = submission.source
    if submission.kind == "zip":
        unpacked = unpacking / submission.name
        try:
            unpack(submission.source, unpacked)
        except BatchError as problem:
            return Outcome(submission, "failed", None, f"not graded: {submission.source.name} {problem}")
        folder = unpacked
    scorecard = out / SCORECARDS / f"{submission.name}.json"
    written = scorecard.with_name(f".{submission.name}.json.part")
    written.unlink(missing_ok=True)
    log = out / LOGS / f"{submission.name}.log"
    # The grader looks for the exercise folders inside (grader.target.locate_exercises) and says where it found them.
    command = [sys.executable, "-m", "grader", "grade", "--submission", str(folder), "--json", str(written), "-q"]
    with open(log, "wb") as stream:
        process = subprocess.Popen(
            [*command, *options.arguments()],
            stdin=subprocess.DEVNULL,
            stdout=stream,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: a stop reaches it from here, not from the terminal
        )
    return _Running(submission, process, scorecard, written, log, key, time.monotonic(), unpacked)


def _finish(job: _Running) -> Outcome:
    seconds = time.monotonic() - job.started
    card = _read_card(job.written) if job.written.is_file() else None
    if card is None:
        said = _last_line(job.log)
        status = job.process.returncode
        why = f"killed by signal {-status}" if status < 0 else f"exit status {status}"
        line = f"not graded: its grader wrote no scorecard ({why}{': ' + said if said else ''})"
        return Outcome(job.submission, "failed", None, line, seconds=seconds)
    if job.submission.kind == "zip":  # not the unpacked copy, gone once the batch ends
        card.setdefault("target", {})["path"] = str(job.submission.source.resolve())
    write_json(job.scorecard, card)
    job.written.unlink(missing_ok=True)
    return Outcome(job.submission, "graded", job.scorecard, student_line(card), card, seconds)


def _signal_group(process: subprocess.Popen, number: int) -> None:
    try:
        os.killpg(process.pid, number)
    except (ProcessLookupError, PermissionError):
        pass


def _read_card(path: Path) -> dict[str, Any] | None:
    try:
        card = json.loads(path.read_text())
        return card if isinstance(card, dict) and "score" in card else None
    except (OSError, ValueError):
        return None


def _last_line(path: Path) -> str:
    try:
        with open(path, "rb") as stream:
            stream.seek(max(0, path.stat().st_size - 2000))
            lines = stream.read().decode(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1][:200] if lines else ""


# --- batch.json -------------------------------------------------------------------------------------------------------


def read_batch(out: Path) -> dict[str, dict[str, Any]]:
    """Submission name -> what batch.json remembers of it; empty when there is none or it cannot be read."""
    return _submissions_of(_read_batch_file(out))


def _read_batch_file(out: Path) -> dict[str, Any]:
    """The whole of batch.json; empty when there is none or it cannot be read."""
    try:
        data = json.loads((out / BATCH_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _submissions_of(batch: dict[str, Any]) -> dict[str, dict[str, Any]]:
    submissions = batch.get("submissions")
    if not isinstance(submissions, dict):
        return {}
    return {str(name): entry for name, entry in submissions.items() if isinstance(entry, dict)}


def _remember(out: Path, outcome: Outcome, key: str, grader: str) -> None:
    kept = _read_batch_file(out)  # what the class's files added (the class, the shard, the options) stays
    known = _submissions_of(kept)
    if outcome.state == "graded":
        known[outcome.submission.name] = {
            "key": key,
            "source": outcome.submission.source.name,
            "scorecard": f"{SCORECARDS}/{outcome.submission.name}.json",
        }
    else:
        known.pop(outcome.submission.name, None)
    write_json(out / BATCH_FILE, {**kept, "format": BATCH_FORMAT, "grader": grader, "submissions": known})


def write_json(path: Path, data: Any) -> None:
    write_text_atomically(path, json.dumps(data, indent=2) + "\n")


# --- the class's files ------------------------------------------------------------------------------------------------


def write_class_files(
    out: Path,
    graded: list[tuple[str, dict[str, Any]]],
    skipped: list[Skipped],
    form: str = "scorecard",
    about: dict[str, Any] | None = None,
) -> list[str]:
    """The gradebook, the statistics and the page of the class (and each student's export); the names written.

    about: what batch.json also keeps of the run: the class (every submission's name), the shard, the options.
    """
    from grader.classview import class_stats, write_gradebook, write_report, write_stats
    from grader.manifest import load_manifest

    graded_ids = {exercise["id"] for _, card in graded for exercise in card.get("exercises", [])}
    # With --only, only the exercises graded get a column.
    order = [exercise_id for exercise_id in load_manifest().ids if exercise_id in graded_ids]
    write_gradebook(out / "gradebook.csv", graded, order)
    write_stats(out / "stats.json", class_stats(graded, order))
    write_report(out / "report.html", graded, order, scorecards=SCORECARDS)
    written = ["gradebook.csv", "stats.json", "report.html"]
    batch = _read_batch_file(out)
    batch.update(about or {})
    batch["skipped"] = [asdict(item) for item in skipped]
    write_json(out / BATCH_FILE, batch)
    if form != "scorecard":
        from grader.export import export_text

        folder = out / form
        folder.mkdir(exist_ok=True)
        suffix = ".xml" if form == "junit" else ".json"
        for name, card in graded:
            write_text_atomically(folder / f"{name}{suffix}", export_text(card, form))
        written.append(f"{form}/")
    return written


# --- shards -----------------------------------------------------------------------------------------------------------


def parse_shard(text: str) -> tuple[int, int]:
    """(K, N) of "K/N"; BatchError when it is not two whole numbers with 1 <= K <= N."""
    index, _, count = text.partition("/")
    try:
        shard = int(index), int(count)
    except ValueError:
        raise BatchError(f"--shard {text}: give {SHARD_HELP}")
    if not 1 <= shard[0] <= shard[1]:
        raise BatchError(f"--shard {text}: give {SHARD_HELP}")
    return shard


def shard_of(submissions: list[Submission], index: int, count: int) -> list[Submission]:
    """The index-th of count shares (from 1): every count-th submission in name order, from the index-th."""
    ordered = sorted(submissions, key=lambda submission: submission.name)
    return ordered[index - 1 :: count]


@dataclass(frozen=True)
class Merged:
    out: Path
    shards: int
    graded: list[tuple[str, dict[str, Any]]]
    skipped: list[Skipped]
    not_graded: list[str]  # in the class, but no shard has a scorecard of it (its grader wrote none)
    written: list[str]


def merge_shards(shard_outs: list[Path], out: Path, form: str = "scorecard") -> Merged:
    """Put the OUTs of a class's shards together into out, with the class's files made from all their scorecards.

    Raises BatchError, saying why, when an OUT is not a shard's (no batch.json, or one without a shard), when the
    shards were graded by different graders, with different options or of different classes, when one is given
    twice or is missing, or when out is one of them.
    """
    if not shard_outs:
        raise BatchError("merge: give the OUT folder of every shard")
    out = out.resolve()
    infos = []
    for folder in shard_outs:
        if not (folder / BATCH_FILE).is_file():
            raise BatchError(f"{folder}: no {BATCH_FILE} in it: give the --out folders of grade --submissions --shard")
        if folder.resolve() == out:
            raise BatchError(f"{folder}: --out must be a folder of its own, not one of the shards")
        info = _read_batch_file(folder)
        if not info.get("shard") or "class" not in info:
            raise BatchError(f"{folder}: its {BATCH_FILE} says no shard: it was not graded with --shard K/N")
        infos.append((folder, info))
    first_folder, first = infos[0]
    for folder, info in infos[1:]:
        for key, what in (("grader", "another grader"), ("options", "other options"), ("class", "another class")):
            if info.get(key) != first.get(key):
                raise BatchError(f"{folder} and {first_folder} were graded by {what}: grade every shard alike")
    counts = {parse_shard(info["shard"])[1] for _, info in infos}
    if len(counts) > 1:
        raise BatchError(f"the shards are of different splits ({', '.join(info['shard'] for _, info in infos)})")
    (count,) = counts
    given = [parse_shard(info["shard"])[0] for _, info in infos]
    twice = sorted({index for index in given if given.count(index) > 1})
    if twice:
        raise BatchError(f"shard {twice[0]}/{count} is given more than once")
    missing = sorted(set(range(1, count + 1)) - set(given))
    if missing:
        shown = ", ".join(f"{index}/{count}" for index in missing)
        raise BatchError(f"shard {shown} is missing: merge needs every shard of the class")

    submissions: dict[str, Any] = {}
    graded: list[tuple[str, dict[str, Any]]] = []
    logs: dict[str, Path] = {}
    skipped: dict[str, Skipped] = {}
    for folder, info in infos:
        for name, entry in sorted(_submissions_of(info).items()):
            card = _read_card(folder / SCORECARDS / f"{name}.json")
            if card is None:
                continue  # its grader wrote no scorecard: in the class list, graded by none
            if name in submissions:
                raise BatchError(f"{name} was graded in more than one shard: grade the shards of one split")
            submissions[name] = entry
            logs[name] = folder / LOGS / f"{name}.log"
            graded.append((name, card))
        for item in info.get("skipped", []):
            skipped[item["name"]] = Skipped(item["name"], item["why"])
    # Nothing is written before every shard was read and found to belong.
    (out / SCORECARDS).mkdir(parents=True, exist_ok=True)
    (out / LOGS).mkdir(parents=True, exist_ok=True)
    for name, card in graded:
        write_json(out / SCORECARDS / f"{name}.json", card)
        if logs[name].is_file():
            shutil.copyfile(logs[name], out / LOGS / f"{name}.log")
    everyone = list(first["class"])
    not_graded = sorted(set(everyone) - set(submissions))
    merged_from = [str(folder) for folder, _ in infos]
    write_json(
        out / BATCH_FILE,
        {"format": BATCH_FORMAT, "grader": first["grader"], "submissions": submissions, "merged_from": merged_from},
    )
    about = {"class": everyone, "options": first.get("options")}
    ordered = sorted(graded, key=lambda pair: everyone.index(pair[0]) if pair[0] in everyone else len(everyone))
    skipped_in_order = sorted(skipped.values(), key=lambda item: item.name)
    written = write_class_files(out, ordered, skipped_in_order, form, about)
    return Merged(out, count, ordered, skipped_in_order, not_graded, written)
