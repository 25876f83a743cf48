"""Stage 4: the raw pytest report, held against the list of expected tests.

Every test that the trusted plugin collected gets exactly one result. A test
with no report (a crashed worker, a run stopped at its deadline, a report
file that is missing or unreadable) is an ``error`` saying so; it never
counts as passed. Messages come from the failure's own first lines, never
from the test's source, and are cut to a bounded length.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.names import (
    ERROR,
    FAILED,
    OUTPUT_PROPERTY,
    PASSED,
    SKIPPED,
    STATUS_PROPERTY,
    TIMELINE_PROPERTY,
    TIMEOUT,
)
from grader.plugin_api import MAX_TIMELINE_ROWS
from grader.protocol import MAX_MESSAGE_CHARS, cut

MAX_REPORT_BYTES = 64 << 20
NO_RESULT = "no result: the test did not finish (a test worker crashed, or the run was stopped)"


@dataclass(frozen=True)
class ExpectedTest:
    nodeid: str
    exercise: str
    task: int
    name: str
    start_method: str | None


@dataclass(frozen=True)
class TestResult:
    test: ExpectedTest
    outcome: str  # one of OUTCOMES
    duration: float
    message: str
    output: str
    timeline: dict[str, Any] | None = None  # what ran when, for checks where timing is the concept


def read_timeline(text: str | None) -> dict[str, Any] | None:
    """The timeline a hidden test recorded ({title, rows: [{pid, start, end}]}), checked; None if absent or odd."""
    if not text:
        return None
    try:
        data = json.loads(text)
        rows = [
            {"pid": int(row["pid"]), "start": _seconds(row["start"]), "end": _seconds(row["end"])}
            for row in data["rows"][:MAX_TIMELINE_ROWS]
        ]
        return {"title": str(data["title"])[:100], "rows": rows}
    except (ValueError, KeyError, TypeError):
        return None


def _seconds(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    if not 0 <= number < 1e6:
        raise ValueError(number)
    return round(number, 3)


def read_expected(folder: Path) -> list[ExpectedTest]:
    """Union of what every pytest process collected (xdist workers all collect the same)."""
    seen: dict[str, ExpectedTest] = {}
    for path in sorted(folder.glob("collected-*.json")):
        try:
            entries = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        for entry in entries:
            seen.setdefault(entry["nodeid"], ExpectedTest(**entry))
    return list(seen.values())


def read_report(path: Path) -> tuple[dict[str, dict[str, Any]], str | None]:
    """nodeid -> raw test entry, and why the report is unusable (None when it is fine)."""
    try:
        if path.stat().st_size > MAX_REPORT_BYTES:
            return {}, "the test report is too large to read"
        data = json.loads(path.read_text())
        return {entry["nodeid"]: entry for entry in data["tests"]}, None
    except FileNotFoundError:
        return {}, "pytest wrote no report"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return {}, f"the test report could not be read ({type(exc).__name__})"


def read_finished(path: Path) -> dict[str, dict[str, Any]]:
    """nodeid -> raw test entry, from the lines grader.plugin appended as each test ended.

    These stand in for a report that a stopped or killed pytest could not write
    in time: what finished keeps its result even then.
    """
    try:
        with open(path, "rb") as stream:
            data = stream.read(MAX_REPORT_BYTES)
    except OSError:
        return {}
    finished = {}
    for line in data[: data.rfind(b"\n") + 1].splitlines():  # a line cut short is a test not finished
        try:
            entry = json.loads(line)["result"]
            finished[str(entry["nodeid"])] = entry
        except (ValueError, KeyError, TypeError):
            continue
    return finished


def _properties(entry: dict[str, Any]) -> dict[str, str]:
    merged: dict[str, str] = {}
    for item in entry.get("user_properties") or []:
        if isinstance(item, dict):
            merged.update({str(k): str(v) for k, v in item.items()})
    return merged


def failure_message(stage: dict[str, Any]) -> str:
    """The failure's own words: the crash message without pytest's prefixes and assert rewriting."""
    crash = stage.get("crash") or {}
    text = str(crash.get("message") or "")
    if not text:
        return "the test failed without a message"
    kept = []
    for line in text.splitlines():
        if line.startswith("assert ") or line.startswith("+  where") or line.startswith("  "):
            break
        kept.append(line)
    message = "\n".join(kept).strip() or text.splitlines()[0]
    message = re.sub(r"^(AssertionError|Failed): ", "", message)
    return cut(message, MAX_MESSAGE_CHARS)


def _judge(entry: dict[str, Any]) -> tuple[str, str]:
    """(outcome, message) of one reported test."""
    properties = _properties(entry)
    outcome = entry.get("outcome")
    if "teardown" not in entry and "???" not in entry:
        # Only its first stages reported: the run was stopped while the test ran.
        return ERROR, NO_RESULT
    if outcome == "passed":
        return PASSED, ""
    if outcome == "skipped":
        return SKIPPED, failure_message(entry.get("setup") or entry.get("call") or {})
    stages = [entry.get(name) or {} for name in ("setup", "call", "teardown")]
    failed = next((s for s in stages if s.get("outcome") in ("failed", "error")), {})
    message = failure_message(failed)
    if "???" in entry or (message.startswith("worker ") and "crashed" in message):
        return ERROR, "the test worker crashed while running this test"
    if message.startswith("Timeout"):  # pytest-timeout's backstop fired
        return TIMEOUT, "the test did not finish in time"
    kind = properties.get(STATUS_PROPERTY)
    if kind in (TIMEOUT, ERROR):
        return kind, message
    if failed is not entry.get("call"):
        return ERROR, message  # a setup or teardown problem is not the student's failed check
    return FAILED, message


def collect(
    expected: list[ExpectedTest], report: Path, finished: Path | None = None
) -> tuple[list[TestResult], str | None]:
    """One result per expected test, and why the report was unusable, if it was.

    finished: grader.plugin's progress lines; a test the report lacks keeps the result they hold.
    """
    entries, problem = read_report(report)
    if finished is not None and any(test.nodeid not in entries for test in expected):
        entries = read_finished(finished) | entries  # read only when the report lacks a test
    results = []
    for test in expected:
        entry = entries.get(test.nodeid)
        if entry is None:
            # Not finished, whatever the report's state; the report's problem rides along as the likely why.
            message = f"{NO_RESULT}; {problem}" if problem else NO_RESULT
            results.append(TestResult(test, ERROR, 0.0, message, ""))
            continue
        outcome, message = _judge(entry)
        duration = sum(float((entry.get(s) or {}).get("duration") or 0.0) for s in ("setup", "call", "teardown"))
        properties = _properties(entry)
        output = properties.get(OUTPUT_PROPERTY, "")
        timeline = read_timeline(properties.get(TIMELINE_PROPERTY))
        results.append(TestResult(test, outcome, round(duration, 3), message, output, timeline))
    return results, problem
