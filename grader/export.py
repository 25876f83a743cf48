"""Exports: a scorecard as another platform's results file. Pure: a scorecard in, the export out.

Each function takes the scorecard as a dict, the way ``json.load`` gives back a
written scorecard (the format is grader/schema/scorecard.schema.json), and
returns the other platform's document. Nothing here prints, reads or writes a
file, or looks at the clock; the caller writes the result where the platform
expects it.

What each format is for:

- ``gradescope_results``: Gradescope's autograder ``results.json``, which a
  course's ``run_autograder`` script leaves in ``/autograder/results/``. The
  whole submission in one document: one Gradescope test per check, so that
  the student sees every check with its points, and the run's score on top.
- ``exercism_results``: Exercism's test runner ``results.json``, version 3,
  which links each test to a task. Exercism grades one exercise at a time.
- ``junit_xml``: JUnit XML, the test report that CI services, IDEs and
  dashboards read. One ``<testsuite>`` per exercise.
- ``classroom_results``: the result of one runner for GitHub Classroom's
  autograding reporter (``classroom-resources/autograding-grading-reporter``),
  which a workflow step hands over base64-encoded in ``<RUNNER>_RESULTS``;
  the reporter adds up its tests' scores into the points Classroom records.

Rules all three follow:

- Every check of the scorecard appears exactly once, in the scorecard's
  order (the hidden test file's order within a task).
- An exercise that could not be graded and holds no check at all still shows
  up: as one Gradescope test worth the exercise's points that earned 0, as
  Exercism's ``error`` status with the reason, as one JUnit ``<error>``.
- The hidden tests' source is never shown. Where a platform asks for the test
  code (Exercism's ``test_code``), it gets what the check checks, in a
  student's words (the scorecard test's ``name``).
- Points are copied as the scorecard holds them, never rounded again.

Gradescope, the mapping decisions:

- ``score`` is the scorecard's ``score``. The spec says a top-level score
  overrides the total of the tests. That matters: grader/score.py rounds each
  check's points to 2 decimals on their own (a 1-point task with 3 checks
  gives 0.33 each) but computes the total from exact fractions, so the
  checks' sum may be off the total by up to 0.005 per check.
- The spec has no top-level ``max_score`` (an assignment's total is set on
  Gradescope); the scorecard's ``max_score``, ``percent``, ``complete`` and
  start methods go into ``extra_data``, which the spec stores as it is.
- ``execution_time`` is in whole seconds, rounded up (the spec's example is an
  integer number of seconds).
- ``output`` is a plain-text summary: the score, one line per exercise, the
  scorecard's notices, and a line saying so when the run was incomplete.
- Every text is marked ``"text"`` (``output_format``, ``test_output_format``,
  ``test_name_format``): the spec's default for the top-level output is
  ``simple_format``, which renders HTML, and messages quote what the
  student's code did, ``<`` and ``&`` included.
- ``visibility`` is ``visible``: the student should see every check.
  ``stdout_visibility`` is ``hidden`` (the spec's default): stdout is the log
  of the course's own ``run_autograder`` script, for instructors; everything
  a student needs is in ``output`` and the tests.
- A test's ``status`` is ``passed`` only when the check passed, else
  ``failed`` (the spec allows only these two); the outcome itself (failed,
  error, timeout, skipped) is among the ``tags``, beside the exercise id and
  ``task N``.
- A test's ``name`` is "NN exercise title / what the check checks", made
  unique with a counter in the rare case two checks of an exercise share
  their words; its ``number`` is "exercise.task.check", e.g. "1.3.2"
  (the spec: optional, a string like "1.1").
- A test's ``output``: the message, the task's hint, and what the code
  printed (bounded), in plain text.

Exercism, the mapping decisions:

- Exercism's results describe one exercise. ``exercism_results(card)`` takes
  the card's only exercise; a card with several needs ``exercise_id`` (a
  ``ValueError`` says which ids it holds otherwise). A caller that wants them
  all calls it once per exercise.
- Per check: passed -> ``pass``; failed -> ``fail``; error and timeout ->
  ``error`` (the spec: "the test errored"; a timeout is the code not
  finishing, not a wrong answer). Skipped (the machine could not check it)
  follows grader/score.py's rule for an exercise's status: a skipped check
  that carries no points neither earns nor costs, so it is ``pass``; one that
  kept its points (every check of its task skipped, nothing was checked) is
  ``fail``. Either way its message says why it was skipped.
- Overall: ``error`` only when no check ran at all (the exercise has no
  checks, or every check's outcome is error); the spec keeps ``error`` for
  "no test was executed". Else ``pass`` when every check is ``pass``, else
  ``fail``. ``message`` is set for ``error`` only (the spec: required then,
  null otherwise) and holds the exercise's message, or its checks' most
  common one, and the scorecard's notices.
- A check's ``message`` is null when it passed; otherwise its message and the
  task's hint. ``output`` is what the code printed, present only when it
  printed something, and at most 500 characters (the spec's limit) with the
  notice of the cut inside those 500.
- ``test_code`` is the check's description (``name``), never the hidden test
  code; ``task_id`` is the task number.

GitHub Classroom, the mapping decisions:

- The reporter's points are the sum of the tests' ``score`` over the sum of
  the runners' ``max_score``, so the document has one test per exercise
  (what a student pushes is the whole kata) and ``max_score`` is the
  scorecard's. The exercises' scores are split from the scorecard's total so
  that they add up to it exactly: each exercise's exact score is rounded to
  2 decimals, down or up, the largest remainders up (an exercise scored
  3.33 on the scorecard may show 3.34 when three such round up to a total of
  10). Without that, three exercises of 1/3 point each would give Classroom
  0.99 where the scorecard says 1.
- A test's ``status`` is the exercise's: passed -> ``pass``, failed ->
  ``fail``, error -> ``error``; the document's is ``pass`` when every
  exercise passed, ``error`` when every one is an error, else ``fail``.
- A test's ``message`` says the score and which checks did not pass and why
  (the first few), the command that shows them all, and the scorecard's
  notices; ``test_code`` is that command, never the hidden test code.

JUnit, the mapping decisions:

- ``<testsuites>`` carries tests, failures, errors, skipped and time (the
  run's wall clock; checks run in parallel, so it is less than their sum).
- One ``<testsuite>`` per exercise, named by the exercise id, with the same
  counts, the sum of its checks' durations as time, and ``<properties>``:
  score, max_score, status, title, and, when the run was incomplete or has
  notices, ``complete`` and one ``notice`` each (a report reader may show one
  suite only).
- One ``<testcase>`` per check: classname ``kata.<exercise id>.task<N>``,
  name the check's description, time its duration. Failed ->
  ``<failure>``; error and timeout -> ``<error type="error|timeout">``;
  skipped -> ``<skipped>``; what the code printed -> ``<system-out>``.
- Characters that XML 1.0 forbids (control characters other than tab and
  newlines, lone surrogates, U+FFFE and U+FFFF) are written as visible
  escapes such as ``\\x07``, so the document always parses.
"""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from collections import Counter
from fractions import Fraction
from typing import Any, TypedDict

from grader.names import ERROR, FAILED, PASSED, SKIPPED, TIMEOUT
from grader.score import exact_score_of

EXERCISM_VERSION = 3
CLASSROOM_VERSION = 1  # the reporter's runner result format
CLASSROOM_CHECKS_SHOWN = 5  # failed checks named in a Classroom test's message; the check command shows all
CLASSROOM_MESSAGE_LIMIT = 2000  # characters a test: the whole document travels base64-encoded in one variable
EXERCISM_OUTPUT_LIMIT = 500  # characters, the spec's limit for a test's output
EXERCISM_MESSAGE_LIMIT = 65535  # characters, the spec's limit for the top-level message
MAX_PRINTED_CHARS = 2000  # of the code's output in a Gradescope test or a JUnit <system-out>
UNGRADED = "could not be graded"  # the name of the stand-in check of an exercise with no checks

_CUT_NOTICE = "\n[cut to {limit} characters, this notice included]"
# Everything XML 1.0 allows: tab, newline, carriage return and the ranges below (XML 1.0, production 2).
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


# Shared helpers


def _cut(text: str, limit: int) -> str:
    """Text of at most limit characters; when it had to be shortened, the notice saying so is inside the limit."""
    if len(text) <= limit:
        return text
    notice = _CUT_NOTICE.format(limit=limit)
    return text[: max(0, limit - len(notice))] + notice


def _points(value: float) -> str:
    return f"{value:g}"


def _label(exercise: dict[str, Any]) -> str:
    return f"{exercise['number']:02d} {exercise['title']}"


def _notices(card: dict[str, Any]) -> list[str]:
    """The scorecard's notices, and one more when the run did not finish."""
    lines = [f"note: {notice}" for notice in card.get("notices", [])]
    if not card.get("complete", True):
        lines.append("incomplete: the run was stopped or lost its report; checks that did not report score 0")
    return lines


def _feedback(test: dict[str, Any]) -> str:
    """A check in plain text: why it did not pass and the task's hint (when it did not), what the code printed."""
    parts = []
    if test["outcome"] != PASSED:
        parts.append(test["message"] or test["outcome"])
        if test.get("hint"):
            parts.append(f"Hint: {test['hint']}")
    if test.get("output"):
        parts.append("Your code printed:\n" + _cut(test["output"], MAX_PRINTED_CHARS))
    return "\n\n".join(parts)


# Gradescope


def _gradescope_summary(card: dict[str, Any]) -> str:
    lines = [f"Score: {_points(card['score'])}/{_points(card['max_score'])} ({card['percent']:g}%)"]
    for exercise in card["exercises"]:
        line = f"{_label(exercise)}: {_points(exercise['score'])}/{_points(exercise['max_score'])} {exercise['status']}"
        if exercise["status"] == ERROR and exercise.get("message"):
            line += f" ({exercise['message']})"
        lines.append(line)
    return "\n".join(lines + _notices(card))


def _gradescope_tests(exercise: dict[str, Any]) -> list[dict[str, Any]]:
    if not exercise["tests"]:
        return [
            {
                "name": f"{_label(exercise)} / {UNGRADED}",
                "number": str(exercise["number"]),
                "score": 0,
                "max_score": exercise["max_score"],
                "status": "failed",
                "output": exercise.get("message") or UNGRADED,
                "tags": [exercise["id"], ERROR],
                "visibility": "visible",
                "extra_data": {"exercise": exercise["id"], "id": None, "outcome": ERROR},
            }
        ]
    tests = []
    names: Counter[str] = Counter()
    in_task: Counter[int] = Counter()
    for test in exercise["tests"]:
        name = f"{_label(exercise)} / {test['name']}"
        names[name] += 1
        if names[name] > 1:
            name += f" ({names[name]})"
        in_task[test["task"]] += 1
        tests.append(
            {
                "name": name,
                "number": f"{exercise['number']}.{test['task']}.{in_task[test['task']]}",
                "score": test["score"],
                "max_score": test["max_score"],
                "status": "passed" if test["outcome"] == PASSED else "failed",
                "output": _feedback(test),
                "tags": [exercise["id"], f"task {test['task']}", test["outcome"]],
                "visibility": "visible",
                "extra_data": {
                    "exercise": exercise["id"],
                    "id": test["id"],
                    "outcome": test["outcome"],
                    "start_methods": test.get("start_methods", {}),
                    "duration": test.get("duration", 0.0),
                },
            }
        )
    return tests


def gradescope_results(card: dict[str, Any]) -> dict[str, Any]:
    """The scorecard as Gradescope's autograder results.json (see the module's docstring for the mapping)."""
    return {
        "score": card["score"],
        "execution_time": math.ceil(card["duration"]),
        "output": _gradescope_summary(card),
        "output_format": "text",
        "test_output_format": "text",
        "test_name_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "extra_data": {
            "max_score": card["max_score"],
            "percent": card["percent"],
            "complete": card["complete"],
            "start_methods": card["start_methods"],
            "grader": card["grader"],
            "schema_version": card["schema_version"],
        },
        "tests": [test for exercise in card["exercises"] for test in _gradescope_tests(exercise)],
    }


# Exercism


def _choose(card: dict[str, Any], exercise_id: str | None) -> dict[str, Any]:
    held = [exercise["id"] for exercise in card["exercises"]]
    if exercise_id is None:
        if len(held) == 1:
            return card["exercises"][0]
        raise ValueError(
            f"Exercism's results describe one exercise and this scorecard holds {len(held)}"
            + (f" ({', '.join(held)})" if held else "")
            + ": choose one with exercise_id"
        )
    for exercise in card["exercises"]:
        if exercise["id"] == exercise_id:
            return exercise
    raise ValueError(f"the scorecard holds no exercise {exercise_id!r}; it holds: {', '.join(held) or 'none'}")


def _exercism_status(test: dict[str, Any]) -> str:
    outcome = test["outcome"]
    if outcome == PASSED:
        return "pass"
    if outcome in (ERROR, TIMEOUT):
        return "error"
    if outcome == SKIPPED and test["max_score"] == 0:  # neither earns nor costs (grader/score.py)
        return "pass"
    return "fail"  # failed, or skipped while keeping its points


def _exercism_test(test: dict[str, Any]) -> dict[str, Any]:
    message = None
    if test["outcome"] != PASSED:
        message = test["message"] or test["outcome"]
        if test.get("hint"):
            message += f"\n\nHint: {test['hint']}"
    result: dict[str, Any] = {
        "name": test["name"],
        "status": _exercism_status(test),
        "message": message,
        "test_code": test["name"],  # what the check checks: the hidden test's code stays hidden
        "task_id": test["task"],
    }
    if test.get("output"):
        result["output"] = _cut(test["output"], EXERCISM_OUTPUT_LIMIT)
    return result


def _exercism_error_message(card: dict[str, Any], exercise: dict[str, Any]) -> str:
    reason = exercise.get("message") or ""
    if not reason and exercise["tests"]:
        reason = Counter(test["message"] for test in exercise["tests"]).most_common(1)[0][0]
    lines = [f"{exercise['title']}: {reason or 'no check of this exercise ran'}", *_notices(card)]
    return _cut("\n".join(lines), EXERCISM_MESSAGE_LIMIT)


def exercism_results(card: dict[str, Any], exercise_id: str | None = None) -> dict[str, Any]:
    """One exercise of the scorecard as Exercism's test runner results.json, version 3.

    exercise_id: which exercise; may be left out when the scorecard holds only one.
    Raises ValueError when it is left out and the card holds several (or none), or names none of them.
    """
    exercise = _choose(card, exercise_id)
    tests = [_exercism_test(test) for test in exercise["tests"]]
    if not tests or all(test["outcome"] == ERROR for test in exercise["tests"]):
        status = "error"
    elif all(test["status"] == "pass" for test in tests):
        status = "pass"
    else:
        status = "fail"
    return {
        "version": EXERCISM_VERSION,
        "status": status,
        "message": _exercism_error_message(card, exercise) if status == "error" else None,
        "tests": tests,
    }


# JUnit XML


def _xml(text: Any) -> str:
    """Text XML 1.0 can hold: each character it forbids becomes a visible escape such as \\x07."""

    def escape(match: re.Match[str]) -> str:
        code = ord(match.group())
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _NOT_XML.sub(escape, str(text))


class _Counts(TypedDict):
    """How many tests ended how: attributes of a testsuite or of testsuites."""

    tests: str
    failures: str
    errors: str
    skipped: str


def _counts(tests: list[dict[str, Any]]) -> _Counts:
    outcomes = Counter(test["outcome"] for test in tests)
    return {
        "tests": str(len(tests)),
        "failures": str(outcomes[FAILED]),
        "errors": str(outcomes[ERROR] + outcomes[TIMEOUT]),
        "skipped": str(outcomes[SKIPPED]),
    }


def _testcase(suite: ET.Element, test: dict[str, Any], exercise_id: str) -> None:
    case = ET.SubElement(
        suite,
        "testcase",
        classname=_xml(f"kata.{exercise_id}.task{test['task']}"),
        name=_xml(test["name"]),
        time=f"{test.get('duration', 0.0):.3f}",
    )
    outcome = test["outcome"]
    why = _xml(test["message"] or outcome)
    details = _xml(test["message"] + (f"\n\nHint: {test['hint']}" if test.get("hint") else ""))
    if outcome == FAILED:
        ET.SubElement(case, "failure", message=why, type=FAILED).text = details
    elif outcome in (ERROR, TIMEOUT):
        ET.SubElement(case, "error", message=why, type=outcome).text = details
    elif outcome == SKIPPED:
        ET.SubElement(case, "skipped", message=why)
    if test.get("output"):
        ET.SubElement(case, "system-out").text = _xml(_cut(test["output"], MAX_PRINTED_CHARS))


def _testsuite(parent: ET.Element, card: dict[str, Any], exercise: dict[str, Any]) -> None:
    tests = exercise["tests"]
    stand_in = tests or [{"outcome": ERROR}]  # an exercise with no checks shows one error
    suite = ET.SubElement(
        parent,
        "testsuite",
        name=_xml(exercise["id"]),
        **_counts(stand_in),
        time=f"{sum(test.get('duration', 0.0) for test in tests):.3f}",
    )
    properties = ET.SubElement(suite, "properties")
    values = [
        ("title", exercise["title"]),
        ("score", exercise["score"]),
        ("max_score", exercise["max_score"]),
        ("status", exercise["status"]),
    ]
    if not card.get("complete", True) or card.get("notices"):
        values.append(("complete", str(card.get("complete", True)).lower()))
        values += [("notice", notice) for notice in card.get("notices", [])]
    for name, value in values:
        ET.SubElement(properties, "property", name=name, value=_xml(value))
    if not tests:
        case = ET.SubElement(suite, "testcase", classname=_xml(f"kata.{exercise['id']}"), name=UNGRADED, time="0.000")
        reason = _xml(exercise.get("message") or UNGRADED)
        ET.SubElement(case, "error", message=reason, type=ERROR).text = reason
    for test in tests:
        _testcase(suite, test, exercise["id"])


def junit_xml(card: dict[str, Any]) -> str:
    """The scorecard as a JUnit XML report (see the module's docstring for the mapping), with its XML declaration."""
    every = [test for exercise in card["exercises"] for test in exercise["tests"] or [{"outcome": ERROR}]]
    root = ET.Element(
        "testsuites",
        name=_xml(card["grader"]["name"]),
        **_counts(every),
        time=f"{card['duration']:.3f}",
        timestamp=_xml(card["started_at"]),
    )
    for exercise in card["exercises"]:
        _testsuite(root, card, exercise)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# GitHub Classroom


def split_total(exact: list[Fraction], total: float) -> list[float] | None:
    """Each exact score rounded to 2 decimals, down or up, so that they add up to total (largest remainders up).

    total is the exact sum rounded to 2 decimals, as grader/score.py makes it. None when no such split
    exists (a total that is not the sum of these scores).
    """
    cents = [math.floor(score * 100) for score in exact]
    missing = round(total * 100) - sum(cents)
    if not 0 <= missing <= len(exact):
        return None
    order = sorted(range(len(exact)), key=lambda index: (-(exact[index] * 100 - cents[index]), index))
    for index in order[:missing]:
        if exact[index] * 100 == cents[index]:
            return None  # only a score that is not whole cents may round up
        cents[index] += 1
    return [cent / 100 for cent in cents]


def _classroom_message(card: dict[str, Any], exercise: dict[str, Any], score: float) -> str:
    lines = [f"{_points(score)}/{_points(exercise['max_score'])} points"]
    if exercise["status"] == ERROR and exercise.get("message"):
        lines.append(f"could not be graded: {exercise['message']}")
    # The checks that cost points: every one that did not pass, but a skipped one that carried none.
    lost = [test for test in exercise["tests"] if test["outcome"] != PASSED and test["max_score"] > 0]
    if exercise["status"] != ERROR and lost:
        lines.append(f"{len(lost)} of {len(exercise['tests'])} checks did not pass:")
        lines += [f"- {test['name']}: {test['message'] or test['outcome']}" for test in lost[:CLASSROOM_CHECKS_SHOWN]]
    if exercise["status"] != "passed":
        lines.append(f"python -m grader check {exercise['number']} shows every check, why, and a hint")
        lines += _notices(card)
    return _cut("\n".join(lines), CLASSROOM_MESSAGE_LIMIT)


def classroom_results(card: dict[str, Any]) -> dict[str, Any]:
    """The scorecard as one runner's result for GitHub Classroom's reporter (see the module's docstring)."""
    exercises = card["exercises"]
    scores = split_total([exact_score_of(exercise) for exercise in exercises], card["score"])
    if scores is None:  # a card whose total is not its exercises' (edited by hand): their own scores
        scores = [exercise["score"] for exercise in exercises]
    statuses = {"passed": "pass", "failed": "fail", ERROR: "error"}
    tests = [
        {
            "name": _label(exercise),
            "status": statuses.get(exercise["status"], "fail"),
            "score": score,
            "max_score": exercise["max_score"],
            "message": _classroom_message(card, exercise, score),
            "test_code": f"python -m grader check {exercise['number']}",
            "line_no": 0,
            "execution_time": f"{sum(test.get('duration', 0.0) for test in exercise['tests']):.1f}s",
        }
        for exercise, score in zip(exercises, scores, strict=True)
    ]
    if tests and all(test["status"] == "pass" for test in tests):
        status = "pass"
    elif all(test["status"] == "error" for test in tests):
        status = "error"
    else:
        status = "fail"
    return {"version": CLASSROOM_VERSION, "status": status, "max_score": card["max_score"], "tests": tests}


# what grade --format writes; scorecard: no export
FORMATS = ("scorecard", "gradescope", "exercism", "junit", "classroom")


def export_text(card: dict[str, Any], form: str) -> str:
    """The scorecard as the text of one of FORMATS' exports (JSON, or XML for junit), ready to write."""
    if form == "junit":
        return junit_xml(card)
    if form == "gradescope":
        return json.dumps(gradescope_results(card), indent=2, ensure_ascii=False) + "\n"
    if form == "exercism":
        return json.dumps(exercism_results(card), indent=2, ensure_ascii=False) + "\n"
    if form == "classroom":
        return json.dumps(classroom_results(card), indent=2, ensure_ascii=False) + "\n"
    raise ValueError(f"no export called {form!r}: one of {', '.join(FORMATS[1:])}")
