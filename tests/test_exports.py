"""grader/export.py: a scorecard as Gradescope, Exercism, JUnit and GitHub Classroom results, against golden files.

The input is a hand-written scorecard, tests/fixtures/exports/scorecard.json
(valid against the schema, its totals as grader/score.py computes them); the
expected exports lie beside it: gradescope.json, exercism-<exercise id>.json
(one per exercise: Exercism's results describe one exercise), junit.xml and classroom.json.

After a deliberate change of an export, rewrite the golden files and read the
diff before committing it:

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/test_exports.py

Beside the golden files, invariants every export must hold on any scorecard,
checked on the fixture and on a real scorecard (the heavy test grades one
exercise). The rule for sums: grader/score.py rounds each check's points to 2
decimals on their own and the totals once, from exact fractions, so the
Gradescope tests' scores (and max scores) add up to the scorecard's score (and
max score) within 0.005 per check, plus 0.005 for the total's own rounding.
"""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from grader import scorecard
from grader.export import (
    EXERCISM_OUTPUT_LIMIT,
    UNGRADED,
    classroom_results,
    exercism_results,
    gradescope_results,
    junit_xml,
    split_total,
)
from grader.score import exact_score, exact_score_of, points, total

from .conftest import ROOT, Graded, grader_environment, validate_scorecard

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "exports"
SCORECARD = FIXTURES / "scorecard.json"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
ROUNDING = 0.005  # the most one rounding to 2 decimals moves a number
OUTCOMES = {"passed", "failed", "error", "timeout", "skipped"}


def load_card() -> dict[str, Any]:
    return json.loads(SCORECARD.read_text(encoding="utf-8"))


def checks_of(card: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(exercise["id"], test) for exercise in card["exercises"] for test in exercise["tests"]]


def as_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def golden(name: str, text: str) -> str:
    """The golden file's text; with UPDATE_GOLDEN=1, first rewritten with text."""
    path = FIXTURES / name
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} is missing: run with UPDATE_GOLDEN=1 to write it, then read it"
    return path.read_text(encoding="utf-8")


# The invariants, for any scorecard


def check_gradescope(card: dict[str, Any]) -> None:
    results = gradescope_results(card)
    exported = results["tests"]
    assert results["score"] == card["score"]
    assert json.loads(json.dumps(results)) == results  # plain JSON
    # Every check exactly once, with its points as the scorecard holds them.
    by_id = {(exercise_id, test["id"]): test for exercise_id, test in checks_of(card)}
    seen = Counter((test["extra_data"]["exercise"], test["extra_data"]["id"]) for test in exported)
    assert {key: count for key, count in seen.items() if key[1] is not None} == dict.fromkeys(by_id, 1)
    for test in exported:
        source = by_id.get((test["extra_data"]["exercise"], test["extra_data"]["id"]))
        if source is not None:
            assert (test["score"], test["max_score"]) == (source["score"], source["max_score"])
            assert test["status"] == ("passed" if source["outcome"] == "passed" else "failed")
            assert source["outcome"] in test["tags"]
    # An exercise with no checks is one stand-in test worth its points.
    stand_ins = [test for test in exported if test["extra_data"]["id"] is None]
    empty = [exercise for exercise in card["exercises"] if not exercise["tests"]]
    assert [(t["extra_data"]["exercise"], t["score"], t["max_score"]) for t in stand_ins] == [
        (exercise["id"], 0, exercise["max_score"]) for exercise in empty
    ]
    # The points add up (see the module's docstring for the rule).
    tolerance = ROUNDING * (len(exported) + 1) + 1e-9
    assert math.isclose(sum(test["score"] for test in exported), card["score"], rel_tol=0, abs_tol=tolerance)
    assert math.isclose(sum(test["max_score"] for test in exported), card["max_score"], rel_tol=0, abs_tol=tolerance)
    assert len({test["name"] for test in exported}) == len(exported)
    assert len({test["number"] for test in exported}) == len(exported)
    assert ("incomplete" in results["output"]) == (not card["complete"])


def check_exercism(card: dict[str, Any]) -> None:
    for exercise in card["exercises"]:
        results = exercism_results(card, exercise["id"])
        assert results["version"] == 3
        exported = results["tests"]
        # Every check exactly once, in the scorecard's order; the hidden code never shown.
        assert [test["name"] for test in exported] == [test["name"] for test in exercise["tests"]]
        assert [test["task_id"] for test in exported] == [test["task"] for test in exercise["tests"]]
        assert [test["test_code"] for test in exported] == [test["name"] for test in exercise["tests"]]
        for test, source in zip(exported, exercise["tests"], strict=True):
            assert test["status"] in ("pass", "fail", "error")
            assert (test["message"] is None) == (source["outcome"] == "passed")
            assert len(test.get("output", "")) <= EXERCISM_OUTPUT_LIMIT
            assert ("output" in test) == bool(source["output"])
        nothing_ran = all(test["outcome"] == "error" for test in exercise["tests"])  # also with no checks
        assert (results["status"] == "error") == nothing_ran
        assert (results["message"] is not None) == nothing_ran
        if results["status"] == "pass":
            assert exercise["status"] == "passed"


def check_junit(card: dict[str, Any]) -> None:
    text = junit_xml(card)
    root = ET.fromstring(text.encode("utf-8"))
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert [suite.get("name") for suite in suites] == [exercise["id"] for exercise in card["exercises"]]
    for suite, exercise in zip(suites, card["exercises"], strict=True):
        cases = suite.findall("testcase")
        expected = [(f"kata.{exercise['id']}.task{test['task']}", test["name"]) for test in exercise["tests"]]
        assert [(case.get("classname"), case.get("name")) for case in cases] == (
            expected or [(f"kata.{exercise['id']}", UNGRADED)]
        )
        properties = {p.get("name"): p.get("value") for p in suite.find("properties")}
        assert float(properties["score"]) == exercise["score"]
        assert float(properties["max_score"]) == exercise["max_score"]
        for case, test in zip(cases[: len(exercise["tests"])], exercise["tests"], strict=True):
            kinds = [child.tag for child in case if child.tag != "system-out"]
            assert kinds == {"passed": [], "failed": ["failure"], "skipped": ["skipped"]}.get(
                test["outcome"], ["error"]
            )
            if test["outcome"] in ("error", "timeout"):
                assert case.find("error").get("type") == test["outcome"]
            assert (case.find("system-out") is not None) == bool(test["output"])
    # The counts say what the testcases hold.
    for element in [root, *suites]:
        cases = element.iter("testcase")
        found = Counter(next((child.tag for child in case if child.tag != "system-out"), "passed") for case in cases)
        assert int(element.get("tests")) == sum(found.values())
        assert int(element.get("failures")) == found["failure"]
        assert int(element.get("errors")) == found["error"]
        assert int(element.get("skipped")) == found["skipped"]
    assert int(root.get("tests")) == sum(max(1, len(exercise["tests"])) for exercise in card["exercises"])


def check_classroom(card: dict[str, Any]) -> None:
    results = classroom_results(card)
    assert json.loads(json.dumps(results)) == results
    assert results["version"] == 1 and results["max_score"] == card["max_score"]
    exported = results["tests"]
    assert [test["name"] for test in exported] == [f"{e['number']:02d} {e['title']}" for e in card["exercises"]]
    # The reporter adds the tests' scores up into Classroom's points: exactly the scorecard's score, in cents.
    assert sum(round(test["score"] * 100) for test in exported) == round(card["score"] * 100)
    for test, exercise in zip(exported, card["exercises"], strict=True):
        assert test["score"] == round(test["score"], 2)
        assert abs(Fraction(test["score"]).limit_denominator(100) - exact_score_of(exercise)) < Fraction(1, 100)
        assert test["max_score"] == exercise["max_score"]
        assert test["status"] == {"passed": "pass", "failed": "fail", "error": "error"}[exercise["status"]]
        assert test["test_code"] == f"python -m grader check {exercise['number']}"
        lost = [check for check in exercise["tests"] if check["outcome"] != "passed" and check["max_score"] > 0]
        if exercise["status"] == "failed":
            assert f"{len(lost)} of {len(exercise['tests'])} checks did not pass" in test["message"]
            assert lost[0]["name"] in test["message"]
    statuses = {test["status"] for test in exported}
    assert results["status"] == ("pass" if statuses == {"pass"} else "error" if statuses <= {"error"} else "fail")


def check_all(card: dict[str, Any]) -> None:
    before = copy.deepcopy(card)
    check_gradescope(card)
    check_exercism(card)
    check_junit(card)
    check_classroom(card)
    assert card == before, "an export changed the scorecard it was given"


# The fixture: valid, realistic, and covering what it promises


def test_the_fixture_is_a_valid_scorecard():
    validate_scorecard(load_card())


def test_the_fixture_totals_are_what_the_grader_computes():
    card = load_card()
    # An exercise with no checks earned nothing; its tasks are left out, as exact_score divides by their checks.
    exercises = [
        scorecard.ExerciseScore(
            **{
                **exercise,
                "tasks": [scorecard.TaskScore(**task) for task in exercise["tasks"]] if exercise["tests"] else [],
                "tests": [scorecard.TestScore(**test) for test in exercise["tests"]],
            }
        )
        for exercise in card["exercises"]
    ]
    for exercise in exercises:
        if exercise.tests:
            assert exercise.score == points(exact_score(exercise)), exercise.id
    assert total(exercises) == (card["score"], card["max_score"], card["percent"])


def test_the_fixture_covers_every_case():
    card = load_card()
    tests = [test for _, test in checks_of(card)]
    assert {test["outcome"] for test in tests} == OUTCOMES
    assert 2 <= len(card["exercises"]) <= 3
    assert any(exercise["status"] == "error" and not exercise["tests"] for exercise in card["exercises"])
    assert any(Fraction(test["max_score"]).limit_denominator(100) == Fraction(33, 100) for test in tests)
    assert any(len(test["output"]) > EXERCISM_OUTPUT_LIMIT for test in tests)
    messages = " ".join(test["message"] for test in tests)
    assert all(character in messages for character in '<&"')
    assert any(ord(character) < 0x20 and character not in "\t\n\r" for character in messages)
    assert any(ord(character) > 0xFFFF for character in messages)  # beyond the BMP: 🐍
    assert card["complete"] is False and card["notices"]


def test_the_invariants_hold_on_the_fixture():
    check_all(load_card())


# Golden files


def test_gradescope_matches_its_golden_file():
    assert json.loads(golden("gradescope.json", as_json(gradescope_results(load_card())))) == gradescope_results(
        load_card()
    )


@pytest.mark.parametrize("exercise_id", [exercise["id"] for exercise in load_card()["exercises"]])
def test_exercism_matches_its_golden_file(exercise_id):
    results = exercism_results(load_card(), exercise_id)
    assert json.loads(golden(f"exercism-{exercise_id}.json", as_json(results))) == results


def test_junit_matches_its_golden_file():
    text = junit_xml(load_card())
    assert golden("junit.xml", text) == text


def test_classroom_matches_its_golden_file():
    results = classroom_results(load_card())
    assert json.loads(golden("classroom.json", as_json(results))) == results


# Decisions the golden files show once, pinned on their own


def thirds_card(passed: list[int]) -> dict[str, Any]:
    """A scorecard of three 1-point exercises, each a task of 3 checks, with passed[i] checks passed in exercise i."""
    exercises = []
    for number, count in enumerate(passed, start=1):
        tests = [
            {**load_card()["exercises"][0]["tests"][0], "task": 1, "max_score": 0.33, "outcome": outcome}
            for outcome in ["passed"] * count + ["failed"] * (3 - count)
        ]
        for test in tests:
            test["score"] = 0.33 if test["outcome"] == "passed" else 0.0
        earned = Fraction(count, 3)
        exercises.append(
            {
                "id": f"e{number}",
                "title": f"exercise {number}",
                "number": number,
                "score": points(earned),
                "max_score": 1,
                "status": "passed" if count == 3 else "failed",
                "message": "",
                "tasks": [{"number": 1, "title": "t", "score": points(earned), "max_score": 1}],
                "tests": tests,
            }
        )
    score = points(sum((Fraction(count, 3) for count in passed), Fraction(0)))
    return {**load_card(), "exercises": exercises, "score": score, "max_score": 3.0, "notices": [], "complete": True}


@pytest.mark.parametrize("passed", [[1, 1, 1], [2, 2, 2], [1, 2, 0], [2, 2, 1], [3, 1, 1], [3, 3, 3], [0, 0, 0]])
def test_classroom_points_add_up_to_the_scorecards_score_where_rounding_each_exercise_would_not(passed):
    card = thirds_card(passed)
    scores = [test["score"] for test in classroom_results(card)["tests"]]
    assert round(sum(scores), 2) == card["score"]
    assert all(abs(score - count / 3) < 0.01 for score, count in zip(scores, passed, strict=True))
    check_classroom(card)


def test_split_total_rounds_the_largest_remainders_up_and_refuses_a_total_that_is_not_the_sum():
    thirds = [Fraction(1, 3)] * 3
    assert split_total(thirds, 1.0) == [0.34, 0.33, 0.33]  # equal remainders: the first in order
    assert split_total([Fraction(1, 3), Fraction(2, 3)], 1.0) == [0.33, 0.67]
    assert split_total([Fraction(9, 2), Fraction(8, 3)], 7.17) == [4.5, 2.67]
    assert split_total([Fraction(1), Fraction(2)], 3.5) is None  # whole scores cannot round to 3.5
    assert split_total(thirds, 2.0) is None
    assert split_total([], 0.0) == []


def test_points_are_copied_exactly_never_rounded_again():
    card = load_card()
    test = card["exercises"][1]["tests"][0]
    test["score"] = test["max_score"] = 1 / 3
    card["score"] = 7.166666666666667
    exported = gradescope_results(card)
    assert exported["score"] == 7.166666666666667
    assert [t["score"] for t in exported["tests"] if t["extra_data"]["id"] == test["id"]] == [1 / 3]


def test_exercism_needs_a_choice_when_the_card_holds_several_exercises():
    card = load_card()
    with pytest.raises(ValueError, match="processes, pool, pool_methods"):
        exercism_results(card)
    with pytest.raises(ValueError, match="no exercise 'threads'"):
        exercism_results(card, "threads")
    single = {**card, "exercises": card["exercises"][:1]}
    assert exercism_results(single) == exercism_results(card, "processes")


def test_exercism_status_follows_the_checks():
    card = load_card()
    exercise = card["exercises"][0]
    single = {**card, "exercises": [exercise]}
    for test in exercise["tests"]:
        test.update(outcome="passed", message="", hint=None)
    assert exercism_results(single)["status"] == "pass"
    exercise["tests"][0].update(outcome="skipped", message="Skipped: one CPU", max_score=0.0, score=0.0)
    assert exercism_results(single)["status"] == "pass"  # skipped without points: neither earns nor costs
    exercise["tests"][0]["max_score"] = 1.0
    assert exercism_results(single)["status"] == "fail"  # skipped while keeping its points: nothing was checked
    for test in exercise["tests"]:
        test.update(outcome="error", message="processes.py could not be imported")
    errored = exercism_results(single)
    assert errored["status"] == "error" and "processes.py could not be imported" in errored["message"]
    exercise["tests"][0]["outcome"] = "timeout"  # a timeout ran: the code did not finish
    assert exercism_results(single)["status"] == "fail"


def test_exercism_output_is_cut_within_500_characters_with_a_notice():
    card = load_card()
    test = card["exercises"][0]["tests"][0]
    test["output"] = "🐍" * 2000
    output = exercism_results(card, "processes")["tests"][0]["output"]
    assert len(output) == EXERCISM_OUTPUT_LIMIT and output.endswith("characters, this notice included]")
    test["output"] = "x" * EXERCISM_OUTPUT_LIMIT
    assert exercism_results(card, "processes")["tests"][0]["output"] == test["output"]


def test_gradescope_names_stay_unique_when_two_checks_share_their_words():
    card = load_card()
    tests = card["exercises"][0]["tests"]
    tests[1]["name"] = tests[0]["name"]
    names = [test["name"] for test in gradescope_results(card)["tests"]]
    assert len(set(names)) == len(names)
    assert names[1] == names[0] + " (2)"


def test_junit_always_parses_whatever_the_messages_hold():
    card = load_card()
    test = card["exercises"][0]["tests"][0]
    forbidden = "".join(map(chr, range(0x20))) + "\ud800\udfff\ufffe\uffff"
    test.update(outcome="failed", message=f"a{forbidden}b ]]> </testcase>", output=forbidden, name=forbidden)
    card["exercises"][0]["id"] = "id\x00"
    root = ET.fromstring(junit_xml(card).encode("utf-8"))
    case = root.find("testsuite").find("testcase")
    assert case.find("failure").get("message").startswith("a\\x00\\x01")
    assert "]]> </testcase>" in case.find("failure").text
    assert "\\ud800" in case.find("system-out").text and "\t" in case.find("system-out").text


def test_an_empty_scorecard_exports_without_tests():
    card = {**load_card(), "exercises": [], "score": 0.0, "max_score": 0.0, "percent": 0.0}
    assert gradescope_results(card)["tests"] == []
    assert ET.fromstring(junit_xml(card).encode("utf-8")).get("tests") == "0"
    with pytest.raises(ValueError, match="holds 0"):
        exercism_results(card)


# On a real scorecard


@pytest.mark.heavy  # grades one exercise (about 4 s each)
@pytest.mark.parametrize("target", [["--solutions"], []], ids=["solutions", "stubs"])
def test_the_invariants_hold_on_a_real_scorecard(grade: Callable[..., Graded], target: list[str]):
    graded = grade(*target, "--only", "processes", "--start-method", "fork", "-n", "2", "-q")
    assert graded.scorecard is not None, graded.stderr
    card = graded.scorecard
    check_all(card)
    assert exercism_results(card) == exercism_results(card, "processes")
    expected = "pass" if target else "fail"
    assert exercism_results(card)["status"] == expected, card["exercises"][0]["status"]


@pytest.mark.heavy  # grades one exercise per format (about 4 s each)
def test_grade_writes_the_chosen_format_where_json_says(tmp_path: Path):
    def grade(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "grader", "grade", "--solutions", "--start-method", "fork", "-n", "2", *args]
        return subprocess.run(command, cwd=ROOT, env=grader_environment(tmp_path), capture_output=True, text=True)

    for form in ("gradescope", "exercism", "junit", "classroom"):
        path = tmp_path / f"{form}.out"
        graded = grade("--only", "processes", "-q", "--format", form, "--json", str(path))
        assert graded.returncode == 0, graded.stderr
        if form == "junit":
            suites = ET.fromstring(path.read_bytes())
            assert suites.get("failures") == suites.get("errors") == "0" and int(suites.get("tests")) >= 7
        elif form == "gradescope":
            assert json.loads(path.read_text())["score"] == 7
        else:
            assert json.loads(path.read_text())["status"] == "pass"
    refused = grade("--format", "exercism", "--json", str(tmp_path / "x.json"))
    assert refused.returncode == 2 and "add --only" in refused.stderr, refused.stderr
