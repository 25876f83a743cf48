"""report.html in a real browser: it loads offline, shows the gradebook's and the stats' numbers, runs no name.

Needs Playwright and Debian's Chromium (Playwright's own browser download does not work everywhere): skipped
without them, so that a student's install never needs either.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from grader.classview import class_stats, write_gradebook, write_report, write_stats

from .test_classview import ORDER, SCRIPT, class_of_four

sync_api = pytest.importorskip("playwright.sync_api", reason="the page tests need playwright (pip install playwright)")

CHROMIUM = Path("/usr/bin/chromium")
IMAGE = "<img src=x onerror=alert(2)>"  # a name that can be a folder's, and would run (and fetch x) as markup

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium); the page tests need it"
)


def _can_be_a_folder(name: str) -> bool:
    return "/" not in name and name not in ("", ".", "..")


@pytest.fixture(scope="module")
def shown(tmp_path_factory):
    """Write the class's three files and its scorecards, open the page once, and keep what the browser saw."""
    folder = tmp_path_factory.mktemp("class")
    students = [*class_of_four(), (IMAGE, class_of_four()[0][1])]
    for name, card in students:
        if _can_be_a_folder(name):  # as grade --submissions --out writes them: scorecards/<name>.json
            (folder / "scorecards").mkdir(exist_ok=True)
            (folder / "scorecards" / f"{name}.json").write_text(json.dumps(card))
    write_gradebook(folder / "gradebook.csv", students, ORDER)
    write_stats(folder / "stats.json", class_stats(students, ORDER))
    write_report(folder / "report.html", students, ORDER, scorecards="scorecards")
    url = (folder / "report.html").as_uri()

    seen: dict = {"console": [], "failed": [], "requests": [], "dialogs": [], "errors": []}
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.on("console", lambda message: seen["console"].append((message.type, message.text)))
            page.on("pageerror", lambda error: seen["errors"].append(str(error)))
            page.on("requestfailed", lambda request: seen["failed"].append(request.url))
            page.on("request", lambda request: seen["requests"].append(request.url))
            page.on("dialog", lambda dialog: (seen["dialogs"].append(dialog.message), dialog.dismiss()))
            page.goto(url, wait_until="load")
            page.wait_for_timeout(200)  # an onerror handler would fire by now
            seen["url"] = page.url
            seen["students"] = page.locator("tr[data-student]").evaluate_all(
                "rows => rows.map(row => ({...row.dataset, name: row.querySelector('a').textContent,"
                " href: row.querySelector('a').href}))"
            )
            rate = "row.querySelector('[data-pass-rate]').dataset.passRate"
            seen["exercises"] = page.locator("#exercises tr[data-exercise]").evaluate_all(
                f"rows => rows.map(row => [row.dataset.exercise, {rate}])"
            )
            seen["tasks"] = page.locator("#tasks tr[data-task]").evaluate_all(
                f"rows => rows.map(row => [row.dataset.exercise, row.dataset.task, {rate}])"
            )
            seen["tests"] = page.locator("#tests tr[data-test]").evaluate_all(
                f"rows => rows.map(row => [row.dataset.test, {rate}])"
            )
            seen["bins"] = page.locator("g.bin").evaluate_all(
                "bins => bins.map(bin => [bin.dataset.count, bin.querySelector('text.count').textContent])"
            )
            seen["elements"] = page.evaluate("document.querySelectorAll('script, img, iframe, object').length")
            seen["script visible"] = page.get_by_text(SCRIPT, exact=True).first.is_visible()
            seen["image visible"] = page.get_by_text(IMAGE, exact=True).first.is_visible()
        finally:
            browser.close()
    return folder, seen


def test_the_page_loads_offline_with_no_error_and_runs_no_name(shown):
    _, seen = shown
    assert seen["url"].startswith("file://")
    assert seen["requests"] == [seen["url"]]  # the page itself, nothing else: no network, no file
    assert seen["failed"] == []
    assert [text for kind, text in seen["console"] if kind == "error"] == []
    assert seen["errors"] == []
    assert seen["dialogs"] == []  # neither alert(1) nor alert(2) ran
    assert seen["elements"] == 0  # no script, img, iframe or object element came from a name
    assert seen["script visible"] and seen["image visible"]  # the names are there, as text


def test_the_numbers_on_the_page_are_the_gradebooks_and_the_stats(shown):
    folder, seen = shown
    with open(folder / "gradebook.csv", newline="", encoding="utf-8") as stream:
        gradebook = {row["student"]: row for row in csv.DictReader(stream)}
    stats = json.loads((folder / "stats.json").read_text())

    assert [student["student"] for student in seen["students"]] == sorted(gradebook)
    for student in seen["students"]:
        row = gradebook[student["student"]]
        assert student["name"] == student["student"]
        assert (student["total"], student["maxScore"], student["percent"]) == (
            row["total"],
            row["max_score"],
            row["percent"],
        )
        assert student["complete"] == row["complete"]

    def rate(value):
        return "" if value is None else str(value)

    assert sorted(seen["exercises"]) == sorted([e["id"], rate(e["pass_rate"])] for e in stats["exercises"])
    assert sorted(seen["tasks"]) == sorted(
        [t["exercise"], str(t["task"]), rate(t["pass_rate"])] for t in stats["tasks"]
    )
    assert sorted(seen["tests"]) == sorted([t["id"], rate(t["pass_rate"])] for t in stats["tests"])
    rates = [float(value) for _, value in seen["exercises"]]
    assert rates == sorted(rates)  # the most failed first
    assert seen["bins"] == [[str(b["count"]), str(b["count"])] for b in stats["histogram"]]


def test_each_students_link_opens_their_scorecard(shown):
    folder, seen = shown
    for student in seen["students"]:
        href = urlparse(student["href"])  # as the browser resolved it against the page's own URI
        assert href.scheme == "file"
        folder_part, _, file_part = href.path.rpartition("/")
        assert Path(unquote(folder_part)) == folder / "scorecards"
        assert unquote(file_part) == f"{student['name']}.json"
        if _can_be_a_folder(student["name"]):
            card = json.loads((folder / "scorecards" / unquote(file_part)).read_text())
            assert card["score"] == float(student["total"])
        else:  # a name with a slash cannot be a folder, so no scorecard has it; its link still names it whole
            assert student["name"] == SCRIPT
