"""The pytest plugin the hidden tests run under (trusted side only).

It gives hidden tests one way to reach graded code, the ``student`` fixture:

    EXERCISE = "processes"

    @pytest.mark.task(1)
    def test_target_runs_in_a_child(student):
        '''The target runs in a process of its own.'''
        info = student.call("start_worker_identity")   # a JSON value, or the test fails
        assert info["child_pid"] != info["caller_pid"], "the target ran in the calling process"

``student.call(name, *args)`` runs ``grader.sandboxed.scenarios.<EXERCISE>.<name>``
against the graded module in a sandbox (see ``grader.sandbox``) under the start
method this test is parametrized with, and returns the plain value the
scenario returned. When the graded code raised, hung or crashed instead, the
test fails with a message written for the student, and the outcome kind
(``timeout``, ``error``) is recorded for the scorecard. ``student.run`` returns
the raw ``CallResult`` for tests that expect an exception. A scenario runs once
per grading run, start method and arguments: every test that asks for it
judges its own copy of the same facts (a hang costs its budget once).

It also writes what it collected (test, exercise, task, readable name, start
method) to ``--kata-collected``, so that a test that never reports is still
known and scored as an error.
"""

from __future__ import annotations

import dataclasses
import fcntl
import gc
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from grader.isolation import Isolation, detect_isolation, reserve_uid
from grader.manifest import Exercise, load_manifest
from grader.names import (
    DEFAULT_CALL_TIMEOUT,
    NAMESPACES,
    OUTPUT_PROPERTY,
    PROCESS,
    START_METHODS,
    STATUS_PROPERTY,
    TIERS,
    TIMELINE_PROPERTY,
)
from grader.plugin_api import MAX_SHOWN_OUTPUT, MAX_TIMELINE_ROWS, group_of, read_durations, run_order
from grader.protocol import CRASHED, GAVE_UP, INVALID, RAISED, RETURNED, TIMEOUT, CallResult, ErrorInfo, Limits, cut
from grader.sandbox import Sandbox, stage_harness
from grader.target import NOT_STAGED  # what the stand-in for a file that staging refused raises

if TYPE_CHECKING:
    from pluggy import Result

HELP_SUBMISSION = "folder laid out like exercises/ whose code the hidden tests run (staged copy)"
HELP_START_METHODS = "comma-separated start methods every hidden test runs under"
HELP_CALL_TIMEOUT = "seconds one sandboxed call may take before it counts as a timeout"
HELP_COLLECTED = "folder to write the collected hidden tests to, one JSON file per pytest process"
HELP_WORKDIR = "private folder for the sandbox's copy of its harness"
HELP_ISOLATION = "isolation tier of the sandbox: auto (the strongest that works here), namespaces, user or process"
HELP_EVERY_METHOD = "run each test under every start method, also after it failed under one"
HELP_PROGRESS = "file to append one JSON line to as each test ends (the grader's live progress)"
HELP_DURATIONS = "JSON file of seconds per test from earlier runs: the longest tests start first"
_RESULTS: dict[str, str] = {}  # _once's results, as JSON, when there is no work folder to share them
NOT_RUN = "not run: it failed under {method} already, and a check earns its points only under every start method"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kata", "multiprocessing kata grading")
    group.addoption("--kata-submission", help=HELP_SUBMISSION)
    group.addoption("--kata-start-methods", default="fork", help=HELP_START_METHODS)
    group.addoption("--kata-call-timeout", type=float, default=DEFAULT_CALL_TIMEOUT, help=HELP_CALL_TIMEOUT)
    group.addoption("--kata-collected", help=HELP_COLLECTED)
    group.addoption("--kata-workdir", help=HELP_WORKDIR)
    group.addoption("--kata-isolation", default="auto", choices=("auto", *TIERS), help=HELP_ISOLATION)
    group.addoption("--kata-every-method", action="store_true", help=HELP_EVERY_METHOD)
    group.addoption("--kata-progress", help=HELP_PROGRESS)
    group.addoption("--kata-durations", help=HELP_DURATIONS)


_config: pytest.Config | None = None  # this process's, for the hooks that are not given it


def pytest_configure(config: pytest.Config) -> None:
    global _config
    _config = config
    config.addinivalue_line("markers", "task(number): the manifest task this hidden test checks")
    methods = _start_methods(config)
    unknown = [m for m in methods if m not in START_METHODS]
    if unknown or not methods:
        raise pytest.UsageError(f"--kata-start-methods: {unknown or methods} is not a list of {START_METHODS}")


def _start_methods(config: pytest.Config) -> list[str]:
    return [m.strip() for m in config.getoption("kata_start_methods").split(",") if m.strip()]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "start_method" in metafunc.fixturenames:
        metafunc.parametrize("start_method", _start_methods(metafunc.config))


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Every start method of one test runs on one xdist worker, one after the other in the order given.

    So whether a later method runs (see pytest_runtest_setup) never depends
    on which worker was faster. A scheduler of pytest-xdist's own kind, with
    one test (all its start methods) as the unit of work; ``--dist loadgroup``
    would say the same with marks, but does not group under pytest 9.2.
    """
    from xdist.scheduler import LoadScopeScheduling

    durations = read_durations(config.getoption("kata_durations"))

    class OneTestAtATime(LoadScopeScheduling):
        collection: list[str] | None  # the base class's: xdist has no type information

        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid)

        def schedule(self) -> None:
            # The base class's first distribution, with the work queue in run_order's order.
            if self.collection is not None or not self._check_nodes_have_same_collection():
                return super().schedule()
            self.collection = list(next(iter(self.registered_collections.values())))
            units: dict[str, dict[str, bool]] = {}
            for nodeid in self.collection:
                units.setdefault(self._split_scope(nodeid), {})[nodeid] = False
            for scope in run_order(list(units), durations):
                self.workqueue[scope] = units[scope]
            for _ in range(len(self.nodes) - len(self.workqueue)):  # more workers than tests
                unused, _work = self.assigned_work.popitem()
                unused.shutdown()
            for node in self.nodes:
                self._assign_work_unit(node)
            for node in self.nodes:
                self._reschedule(node)
            if not self.workqueue:
                for node in self.nodes:
                    node.shutdown()
            return None

        def remove_node(self, node: Any) -> str | None:
            # A worker that died (graded code can kill it) takes its test with it: that test is
            # reported as crashed and not run again (the base class would rerun it, to crash again);
            # the tests it had not begun go back to the queue.
            workload = self.assigned_work.pop(node)
            crashed = next((nodeid for unit in workload.values() for nodeid, done in unit.items() if not done), None)
            if crashed is None:
                return None
            for unit in workload.values():
                if crashed in unit:
                    unit[crashed] = True
            self.workqueue.update((scope, unit) for scope, unit in workload.items() if not all(unit.values()))
            for other in self.assigned_work:
                self._reschedule(other)
            return crashed

    return OneTestAtATime(config, log)


_ending: dict[str, dict[str, Any]] = {}  # nodeid -> its stages reported so far, in the controller


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """In the process that runs the session (xdist's controller, or pytest alone): one line per ended test.

    The grader reads these lines while pytest runs, to show progress as it
    happens. Each also carries the test's result in pytest-json-report's
    shape: the verdict comes from the full report, and from these lines for
    the tests that finished before a stopped run could write it.
    """
    config = _config
    if config is None or hasattr(config, "workerinput") or not config.getoption("kata_progress"):
        return
    entry = _ending.setdefault(report.nodeid, {"nodeid": report.nodeid, "outcome": "passed"})
    if report.outcome != "passed" and entry["outcome"] != "failed":
        entry["outcome"] = report.outcome
    stage: dict[str, Any] = {"outcome": report.outcome, "duration": report.duration}
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        stage["crash"] = {"message": str(crash.message)}
    elif report.failed and report.longrepr is not None:  # a crashed worker's report is text only
        stage["crash"] = {"message": (str(report.longrepr).strip().splitlines() or [""])[-1]}
    entry[report.when or "???"] = stage
    if report.when not in ("teardown", "???"):
        return
    del _ending[report.nodeid]
    entry["user_properties"] = [{str(k): str(v)} for k, v in report.user_properties]
    kind = dict(report.user_properties).get(STATUS_PROPERTY)
    line = {"nodeid": report.nodeid, "outcome": entry["outcome"], "kind": kind, "result": entry}
    with open(config.getoption("kata_progress"), "a", encoding="utf-8") as stream:
        stream.write(json.dumps(line) + "\n")


_failed_under: dict[str, str] = {}  # test group -> the first start method it failed under, in this process


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo
) -> Generator[None, Result[pytest.TestReport], None]:
    outcome = yield
    report = outcome.get_result()
    callspec = getattr(item, "callspec", None)
    method = callspec and callspec.params.get("start_method")
    if report.failed and method:
        _failed_under.setdefault(group_of(item.nodeid), method)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test that failed under one start method cannot earn its points: do not run the others (--explain does)."""
    if item.config.getoption("kata_every_method"):
        return
    failed = _failed_under.get(group_of(item.nodeid))
    if failed is not None:
        pytest.skip(NOT_RUN.format(method=failed))


def _exercise_of(item: pytest.Function) -> Exercise:
    exercise_id = getattr(item.module, "EXERCISE", None)
    try:
        return load_manifest().exercise(exercise_id)
    except KeyError:
        raise pytest.UsageError(f"{item.nodeid}: EXERCISE = {exercise_id!r} is not in the manifest") from None


def _task_of(item: pytest.Item) -> int:
    marker = item.get_closest_marker("task")
    if marker is None or not marker.args:
        raise pytest.UsageError(f"{item.nodeid}: every hidden test needs @pytest.mark.task(N)")
    return int(marker.args[0])


def readable_name(item: pytest.Function) -> str:
    """The first line of the test's docstring, or its name in words."""
    doc = getattr(item.obj, "__doc__", None) if hasattr(item, "obj") else None
    if doc and doc.strip():
        return doc.strip().splitlines()[0].strip()
    return item.originalname.removeprefix("test_").replace("_", " ")


def pytest_collection_finish(session: pytest.Session) -> None:
    # pytest, its plugins and the collected tests stay alive all run long: without this the
    # collector walks them again and again while tests run (about 15% of a fixture grading's CPU).
    gc.freeze()
    folder = session.config.getoption("kata_collected")
    if not folder:
        return
    entries = []
    for item in session.items:
        # Every hidden test is a test function (pytest.ini: python_files = test_*.py, no doctests).
        assert isinstance(item, pytest.Function)
        exercise = _exercise_of(item)
        task = _task_of(item)
        if task not in {t.number for t in exercise.tasks}:
            raise pytest.UsageError(f"{item.nodeid}: exercise {exercise.id} has no task {task}")
        callspec = getattr(item, "callspec", None)
        entries.append(
            {
                "nodeid": item.nodeid,
                "exercise": exercise.id,
                "task": task,
                "name": readable_name(item),
                "start_method": callspec.params.get("start_method") if callspec else None,
            }
        )
    worker = getattr(session.config, "workerinput", {}).get("workerid", "main")
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / f"collected-{worker}.json").write_text(json.dumps(entries))


@pytest.fixture(scope="session")
def kata_sandbox(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """One sandbox owner per pytest process, with its own harness copy."""
    base = request.config.getoption("kata_workdir")
    root = Path(tempfile.mkdtemp(prefix="worker-", dir=base)) if base else tmp_path_factory.mktemp("kata")
    os.chmod(root, 0o755)
    harness = stage_harness(root / "harness")
    tier = request.config.getoption("kata_isolation")
    if tier == NAMESPACES:  # already probed by the grader: do not pay for it in every worker
        isolation = Isolation(NAMESPACES, uid=reserve_uid())
    elif tier == PROCESS:
        isolation = Isolation(PROCESS)
    else:  # user (probed again: it picks the interpreter this worker's uid can run), or auto
        isolation = detect_isolation(tier)
    sandbox = Sandbox(harness_dir=harness, isolation=isolation)
    yield sandbox
    sandbox.close()


def call_budget(declared: float | None, call_timeout: float) -> float:
    """Seconds one call may take: --call-timeout, or a long scenario's own budget.

    A hidden test may give a long scenario more than the default (timeout=30).
    A --call-timeout above the default scales that budget up by the same factor,
    so that asking for more time on a slow machine never leaves a long scenario
    with less than the others; a smaller one leaves it as it is.
    """
    if declared is None:
        return call_timeout
    return declared * max(1.0, call_timeout / DEFAULT_CALL_TIMEOUT)


IMPORT_FLOOR = 3.0  # seconds no import budget goes below: an honest import on a loaded machine takes well under 1 s


def import_budget(call_timeout: float) -> float:
    """Seconds the import of the graded module may take: half a call's, but never below IMPORT_FLOOR.

    An honest module imports in milliseconds (multiprocessing is imported
    before the call), so a module that hangs at import is told after 5 s by
    default, not 10; a short --call-timeout is not cut below the floor.
    """
    return min(call_timeout, max(IMPORT_FLOOR, call_timeout / 2))


def cannot_be_pickled(error: dict[str, Any]) -> bool:
    """Whether an error fact says that something could not be pickled to reach another process.

    The words vary with Python's version: "Can't pickle local object" up to
    3.12, "Can't get local object" (AttributeError) from 3.13 on.
    """
    text = f"{error.get('type', '')} {error.get('message', '')}".lower()
    return "pickl" in text or "<lambda>" in text or "<locals>" in text


GENERIC_WAIT = (
    "it waits for something that never comes (a join() on a process that never ends, a get() or recv() "
    "with nothing to receive, a missing sentinel)"
)
# What a call blocked in one of these waits for, in a student's words.
WAIT_ADVICE = {
    "join": "join() waits until the process (or pool, or thread) ends, and it never does: does it get everything it "
    "waits for (its items, its sentinel), and was it started at all?",
    "get": "get() waits for an item that never comes: is every item put, and one sentinel per consumer?",
    "recv": "recv() waits for a message that never comes: does the other end send one, on the right end of the pipe?",
    "acquire": "acquire() waits for a lock or semaphore that nobody releases: release it in a finally, or use with",
    "wait": "wait() waits for an Event that is never set, a Condition never notified or a Barrier missing parties",
    "result": "result() waits for a task that never ends: does the task itself wait for something?",
    "sleep": "it sleeps, again and again or for too long",
}


def stuck_words(head: str, stuck: dict[str, Any] | None, generic: str = GENERIC_WAIT) -> str:
    """Code that did not finish in time, in words: where graded code was, busy or waiting, and what to check.

    stuck: where it was at the deadline ("where", "waiting_in", "busy"), from a
    stack taken before the kill; None when there is none (generic words then).
    """
    stuck = stuck or {}
    where, waiting_in = stuck.get("where"), stuck.get("waiting_in")
    if stuck.get("busy") and waiting_in not in WAIT_ADVICE:
        at = f" at {where}" if where else ""
        return (
            f"{head}: it was busy, using the CPU all the time{at}. A loop that never ends? "
            "Check what ends it: its condition, a break, the sentinel it waits for"
        )
    if where:
        inside = f", in {waiting_in}()" if waiting_in else ""
        return f"{head}: it was waiting at {where}{inside}; {WAIT_ADVICE.get(waiting_in or '', generic)}"
    return f"{head}: {generic}"


def hung_words(call: dict[str, Any], function: str) -> str:
    """A call the kit saw hang (its facts: ``deadline``, ``stuck``), in words."""
    return stuck_words(f"{function}() had not returned after {call['deadline']:g} s", call.get("stuck"))


class GradedModule:
    """The graded module of one exercise, reached only through the sandbox."""

    def __init__(
        self,
        exercise: Exercise,
        submission: Path,
        start_method: str,
        sandbox: Sandbox,
        timeout: float,
        record,
        verdicts: Path | None = None,
    ) -> None:
        self.exercise = exercise
        self.verdicts = verdicts  # the grader's folder for verdicts shared by its workers (None: not shared)
        self.module_dir = submission / exercise.folder
        self.start_method = start_method
        self.sandbox = sandbox
        self.timeout = timeout
        self._record = record

    def run(self, scenario: str, *args: Any, timeout: float | None = None) -> CallResult:
        """Run a scenario and return its raw outcome (for tests that expect an error).

        A module that cannot be imported under this start method (it raises,
        hangs or crashes) gives every test that one outcome at once.
        """
        result = self._import_failure()
        if result is None:
            key = json.dumps([scenario, args, timeout], sort_keys=True, default=repr)
            digest = hashlib.sha256(key.encode()).hexdigest()[:24]
            result = self._once(f"call-{digest}", lambda: self._call(scenario, *args, timeout=timeout))
        shown = (result.stdout + result.stderr).strip()
        if shown:
            self._record(OUTPUT_PROPERTY, cut(shown, MAX_SHOWN_OUTPUT))
        return result

    def _import_failure(self) -> CallResult | None:
        """The failure to import the module under this start method, or None when it imports; one import per run."""
        probe = self._once("import", lambda: self._call("generic_imported"))
        return None if probe.status == RETURNED else probe

    def _once(self, name: str, run: Callable[[], CallResult]) -> CallResult:
        """run()'s result, run once per grading run, start method and name, and shared by every test that asks.

        Shared by the run's pytest workers through a file in the grader's own
        work folder: one worker runs it, the others wait for its result. So a
        scenario that several checks judge (each its own part of the same
        facts) runs once, and a module that hangs at import, or a scenario
        that hangs, costs its budget once, not once per test or per worker.
        Every test gets a copy of its own.
        """
        name = f"{name}-{self.exercise.id}-{self.start_method}"
        if self.verdicts is None:
            key = f"{self.module_dir}:{name}"
            if key not in _RESULTS:
                _RESULTS[key] = json.dumps(dataclasses.asdict(run()))
            saved = json.loads(_RESULTS[key])
        else:
            verdict = self.verdicts / f"{name}.json"
            with open(self.verdicts / f"{name}.lock", "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # one worker runs it; the others wait for its result
                if not verdict.exists():
                    written = verdict.with_suffix(".part")
                    written.write_text(json.dumps(dataclasses.asdict(run())))
                    os.replace(written, verdict)  # whole or not at all, should the worker die meanwhile
                saved = json.loads(verdict.read_text())
        error = saved.pop("error")
        return CallResult(**saved, error=ErrorInfo(**error) if error else None)

    def _call(self, scenario: str, *args: Any, timeout: float | None = None) -> CallResult:
        if scenario == "generic_imported":
            where = "grader.sandboxed.scenarios.generic:imported"
        else:
            where = f"grader.sandboxed.scenarios.{self.exercise.id}:{scenario}"
        return self.sandbox.call(
            module=self.exercise.module,
            module_dir=self.module_dir,
            scenario=where,
            args=list(args),
            start_method=self.start_method,
            timeout=call_budget(timeout, self.timeout),
            import_timeout=import_budget(self.timeout),  # a long scenario's budget is not the import's
        )

    def call(self, scenario: str, *args: Any, timeout: float | None = None) -> Any:
        """Run a scenario and return its value; fail the test with a clear message otherwise."""
        result = self.run(scenario, *args, timeout=timeout)
        if result.status == RETURNED:
            value = result.value
            if isinstance(value, dict) and isinstance(value.get(GAVE_UP), dict):
                self.returned(value[GAVE_UP], str(value.get("function")))  # a stuck call: fails as a timeout
            return value
        self.reject(result)

    def reject(self, result: CallResult) -> NoReturn:
        """Fail the test for a call that did not return, saying why in a student's words."""
        file = f"{self.exercise.module}.py"
        if result.status == TIMEOUT and "import" in result.detail:
            self._record(STATUS_PROPERTY, "timeout")
            top_level = (
                f"something at the top level of {file} does not end: keep the work inside functions, "
                'and a script\'s own run under if __name__ == "__main__":'
            )
            pytest.fail(stuck_words(f"timeout: your code {result.detail}", result.stuck, top_level), pytrace=False)
        if result.status == TIMEOUT:
            self._record(STATUS_PROPERTY, "timeout")
            pytest.fail(stuck_words(f"timeout: your code {result.detail}", result.stuck), pytrace=False)
        if result.status in (CRASHED, INVALID):
            self._record(STATUS_PROPERTY, "error")
            exited = result.status == CRASHED and result.detail.startswith("the process running the code")
            hint = " Does your code call os._exit() or sys.exit()?" if exited else ""
            pytest.fail(f"{result.detail}.{hint}", pytrace=False)
        assert result.status == RAISED and result.error is not None
        error = result.error
        where = f" ({error.where})" if error.where else ""
        if error.phase == "import":
            self._record(STATUS_PROPERTY, "error")
            if error.type == "ImportError" and error.message.startswith(NOT_STAGED):
                pytest.fail(f"{file} could not be imported: {error.message.removeprefix(NOT_STAGED)}", pytrace=False)
            pytest.fail(f"{file} could not be imported: {error.type}: {error.message}{where}", pytrace=False)
        pytest.fail(self.explain(error.type, error.message, error.where), pytrace=False)

    def explain(self, error_type: str, message: str, where: str | None, function: str | None = None) -> str:
        """An exception graded code raised, in a student's words: what it means and where to look.

        function names the graded function the scenario called, when the
        error came out of that call; otherwise "your code" raised it.
        """
        file = f"{self.exercise.module}.py"
        at = f" ({where})" if where else ""
        if error_type in ("OSError", "BrokenPipeError") and ("[Errno 27]" in message or "File too large" in message):
            limit = Limits().file_size_mib
            who = f"{function}()" if function else "your code"
            return (
                f"{who} wrote more than the output limit: a call may print (and write to one file) at most "
                f"{limit} MiB, and the next print failed with {error_type}: {message}{at}. Print less: "
                "not in a loop that runs many times, and not the whole data"
            )
        missing = re.fullmatch(r"module '(\w+)' has no attribute '(\w+)'", message)
        if error_type == "AttributeError" and missing and missing.group(1) == self.exercise.module:
            return f"{file} has no function {missing.group(2)}(): write it, or check its name"
        # Python's words when a call does not fit the def line. With no frame in the graded
        # file, the call failed on the way in: the function's parameters are not the task's.
        mismatch = re.match(
            r"(\w+)\(\) (takes|missing|got an unexpected keyword|got multiple values|got some positional-only) ",
            message,
        )
        if error_type == "TypeError" and mismatch and where is None:
            return (
                f"the parameters of {mismatch.group(1)}() in {file} do not match what the task asks "
                f"(Python said: {message}): compare its def line with the one in the exercise's stub"
            )
        if error_type == "NotImplementedError":
            name = where.rpartition(" in ")[2] if where else function or "a function"
            return (
                f"{name}() is not written yet: it still raises NotImplementedError{at}. "
                f"Replace the TODO in {file} with your code."
            )
        return f"{function + '()' if function else 'your code'} raised {error_type}: {message}{at}"

    def returned(self, call: dict[str, Any], function: str) -> Any:
        """The value of a call a scenario made with the kit's call_with_deadline; fail with why when there is none.

        call is ``Called.facts()``: a hang or an exception fails the test in
        words, naming the function and the line of graded code it raised from.
        """
        if call["outcome"] == "hung":
            self._record(STATUS_PROPERTY, "timeout")
            pytest.fail(hung_words(call, function), pytrace=False)
        if call["outcome"] == "raised":
            error = call["error"]
            pytest.fail(self.explain(error["type"], error["message"], error.get("where"), function), pytrace=False)
        return call["value"]

    def timeline(self, rows: Any, title: str) -> None:
        """Show what ran when under this check: rows of {pid, start, end}, seconds from the scenario's start."""
        kept = []
        for row in rows[:MAX_TIMELINE_ROWS] if isinstance(rows, list) else []:
            if isinstance(row, dict) and isinstance(row.get("pid"), int):
                times = [row.get(key) for key in ("start", "end")]
                if all(value is None or isinstance(value, (int, float)) for value in times):
                    kept.append({"pid": row["pid"], "start": times[0], "end": times[1]})
        if kept:
            self._record(TIMELINE_PROPERTY, json.dumps({"title": title, "rows": kept}))

    def fail_on_child_errors(self, errors: list[dict[str, Any]]) -> None:
        """Fail with the first exception graded code raised in another process (the kit's error_fact, as data).

        An error fact may name the graded function that raised (``function``);
        a NotImplementedError says that function is not written yet.
        """
        for error in errors:
            said = self.explain(error["type"], error["message"], error.get("where"), error.get("function"))
            pytest.fail(f"in a child process: {said}", pytrace=False)


@pytest.fixture
def student(request: pytest.FixtureRequest, start_method: str, kata_sandbox: Sandbox, record_property) -> GradedModule:
    """The graded module of this test's exercise, under this test's start method."""
    submission = request.config.getoption("kata_submission")
    if not submission:
        raise pytest.UsageError("hidden tests need --kata-submission DIR")
    return GradedModule(
        exercise=_exercise_of(request.node),
        submission=Path(submission).resolve(),
        start_method=start_method,
        sandbox=kata_sandbox,
        timeout=request.config.getoption("kata_call_timeout"),
        record=record_property,
        verdicts=Path(workdir) if (workdir := request.config.getoption("kata_workdir")) else None,
    )
