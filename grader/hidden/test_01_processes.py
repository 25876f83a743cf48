"""Hidden tests for exercise 1 (processes). Scenarios: grader/sandboxed/scenarios/processes.py.

The contract each test holds a solution to: grader/hidden/contracts/01_processes.toml.
"""

import itertools

import pytest

from grader.names import STARTING_CALL_TIMEOUT

EXERCISE = "processes"
# Calls that start processes get STARTING_CALL_TIMEOUT; start_worker's calls start one and keep the default,
# so that a start_worker that hangs is told within --call-timeout.

RAN_IN_CALLER = (
    "a worker ran in the calling process: give the function to Process(target=..., args=...) and start() it, "
    "do not call it yourself"
)


@pytest.mark.task(1)
def test_target_runs_in_another_process(student):
    """start_worker runs the target in a new, started process"""
    facts = student.call("start_worker_identity")
    reports = facts["reports"]
    assert reports, "the target never ran: start_worker must create the Process and call start() on it"
    for report in reports:
        assert report["pid"] != facts["caller_pid"], (
            "the target ran in the calling process: pass it as Process(target=...) and call start(), "
            "do not call it yourself"
        )
    assert len(reports) == 1, f"the target ran {len(reports)} times instead of once"
    assert facts["is_process"], f"start_worker returned {facts['returned_type']}, not the Process it started"
    assert facts["started"], "the returned process was never started: call start() before returning it"
    assert reports[0]["parent_pid"] == facts["caller_pid"], "the worker was not started by the caller"
    assert facts["exitcode"] == 0, f"the worker ended with exit code {facts['exitcode']} instead of 0"


@pytest.mark.task(1)
def test_args_kwargs_and_name_reach_the_process(student):
    """start_worker passes args, kwargs and the name to the process"""
    facts = student.call("start_worker_identity")
    assert facts["reports"], "the target never ran: start_worker must create the Process and call start() on it"
    report = facts["reports"][-1]
    assert report["pid"] != facts["caller_pid"], "the target ran in the calling process, not in the process you started"
    assert report["args"] == ["from-args"], (
        f"the target was called with the positional arguments {tuple(report['args'])!r}, not ('from-args',): "
        "pass args=args to Process as it is (it is already a tuple)"
    )
    assert report["tag"] == "from-kwargs", f"the target got tag={report['tag']!r}: pass kwargs=kwargs"
    assert report["name"] == "kata-worker", f"the process is named {report['name']!r}: pass name=name"
    # kwargs and name are optional: start_worker(target, args) alone must work too.
    plain = student.run("start_worker_identity", False)
    assert plain.status != "raised", (
        f"start_worker(target, args) without kwargs raised {plain.error.type}: {plain.error.message} "
        f"({plain.error.where or 'in your code'}). "
        "kwargs=None means no keyword arguments: give Process an empty dict then"
    )
    if plain.status != "returned":
        student.reject(plain)
    reports = plain.value["reports"]
    assert reports, "start_worker(target, args) without kwargs and name never ran the target"
    assert reports[-1]["args"] == ["from-args"], (
        f"the target was called with the positional arguments {tuple(reports[-1]['args'])!r}, not ('from-args',)"
    )
    assert reports[-1]["tag"] is None, f"the target got tag={reports[-1]['tag']!r} although no kwargs were given"


@pytest.mark.task(1)
def test_start_worker_returns_while_the_process_runs(student):
    """start_worker returns the started process at once, without waiting for it"""
    facts = student.call("start_worker_returns_at_once")
    report = facts["report"]
    assert report is None or report["pid"] != facts["caller_pid"], (
        "the target ran in the calling process: pass it as Process(target=...) and call start(), "
        "do not call it yourself"
    )
    if facts["outcome"] == "hung":
        # It never returned, even once its process could end: a hang of its own, not a wait for the process.
        student.returned(facts["after_release"], "start_worker")
        pytest.fail(
            "start_worker returned only once its process had ended: it waits for the process "
            "(join() or is_alive() in a loop). Start it and return it at once: the caller joins it",
            pytrace=False,
        )
    student.returned(facts["call"], "start_worker")  # fails the test if it raised
    assert facts["is_process"], "start_worker did not return the Process it started"
    assert report is not None, (
        f"the target never reported; its process ended with exit code {facts['exitcode']}: "
        "start_worker must start target(*args, **kwargs) in the Process"
    )
    assert facts["alive_at_return"], "the process start_worker returned had already ended: do not wait for it"
    assert facts["exitcode"] == 0, f"the worker ended with exit code {facts['exitcode']} instead of 0"


@pytest.mark.task(1)
def test_python_names_the_process_when_no_name_is_given(student):
    """start_worker(target, args) without a name: Python chooses the process's name"""
    facts = student.call("start_worker_defaults")
    report = facts["report"]
    assert report is None or report["pid"] != facts["caller_pid"], "the target ran in the calling process"
    assert facts["is_process"], "start_worker(target, args) did not return the Process it started"
    assert report is not None, (
        f"start_worker(target, args) never ran the target; its process ended with exit code {facts['exitcode']}"
    )
    name = report["name"]
    assert name == facts["default_name"], (
        f"without a name, the process is called {name!r}, not {facts['default_name']!r}: name=None must let "
        "Python choose, so pass name=name on as it is"
    )


@pytest.mark.task(2)
def test_processes_run_at_the_same_time(student):
    """run_all runs all the processes at the same time"""
    facts = student.call("run_all_together", 3, timeout=40)
    student.timeline(facts["timeline"], "run_all's processes")
    assert isinstance(facts["exit_codes"], list), f"run_all returned {facts['exit_codes']}, not a list of exit codes"
    assert facts["caller_pid"] not in facts["pids"], RAN_IN_CALLER
    assert None not in facts["exit_codes"], (
        f"run_all returned {facts['exit_codes']}: exitcode is None while a process still runs, "
        "and join() itself returns None. Join every process, then return each process's exitcode"
    )
    rows = facts["timeline"]
    in_turn = len(rows) > 1 and all(
        before["end"] is not None and after["start"] is not None and after["start"] >= before["end"]
        for before, after in itertools.pairwise(rows)
    )
    assert all(facts["met"]) or not in_turn, (
        "the processes ran one after another: each started only once the one before it had ended (see the "
        "timeline), so run_all starts and joins them in turn. Start every process first, then join every process"
    )
    assert all(facts["met"]), (
        "the processes did not run at the same time: each waited for its siblings, who were not running. "
        "Start every process first, then join every process"
    )
    assert facts["exit_codes"] == [0, 0, 0], f"exit codes {facts['exit_codes']}, expected [0, 0, 0]"


@pytest.mark.task(2)
def test_run_all_waits_for_every_process(student):
    """run_all returns only when every process has finished"""
    facts = student.call("run_all_waits", 3, 0.5, timeout=STARTING_CALL_TIMEOUT)
    assert facts["caller_pid"] not in facts["pids"], RAN_IN_CALLER
    unfinished = facts["done"].count(0)
    assert unfinished == 0, (
        f"{unfinished} of 3 processes were still working when run_all returned: join() every process before returning"
    )
    assert facts["left_running"] == 0, "some processes were still running after run_all returned"
    assert facts["exit_codes"] == [0, 0, 0], f"exit codes {facts['exit_codes']}, expected [0, 0, 0]"


@pytest.mark.task(2)
def test_exit_codes_come_back_in_order(student):
    """run_all returns every exit code, in the order of the arguments"""
    facts = student.call("run_all_exit_codes", [0, 3, 0, 1], timeout=STARTING_CALL_TIMEOUT)
    assert facts["caller_pid"] not in facts["pids"], RAN_IN_CALLER
    codes = facts["exit_codes"]
    if (
        isinstance(codes, list)
        and codes != [0, 3, 0, 1]
        and sorted(map(repr, codes)) == sorted(map(repr, [0, 3, 0, 1]))
    ):
        pytest.fail(
            f"run_all returned {codes} for workers that exit with [0, 3, 0, 1] and end last one first: "
            "the exit codes are all there, in another order. Return them in the order of arg_tuples, "
            "not in the order the processes ended",
            pytrace=False,
        )
    assert codes == [0, 3, 0, 1], (
        f"run_all returned {codes} for workers that exit with [0, 3, 0, 1] "
        "(the 1 is an uncaught exception): return each process's exitcode, after join, in order"
    )
    pids = facts["pids"]
    assert len(set(pids)) == len(pids), "two workers shared one process: start one process per argument tuple"


@pytest.mark.task(2)
def test_run_all_takes_any_iterable_and_keeps_nothing_between_calls(student):
    """run_all takes a generator or an empty list, and a second call is like the first"""
    facts = student.call("run_all_any_iterable", [0, 0, 0], timeout=STARTING_CALL_TIMEOUT)
    assert facts["caller_pid"] not in facts["generator_pids"], RAN_IN_CALLER
    assert facts["from_generator"] == [0, 0, 0], (
        f"run_all returned {facts['from_generator']} for three tuples given as a generator, not [0, 0, 0]: "
        "arg_tuples can be any iterable, and an iterator can be gone through only once: "
        "make your list of processes from it first"
    )
    assert facts["empty"] == [], (
        f"run_all(target, []) returned {facts['empty']}, not []"
        + (": those are exit codes of an earlier call. Keep the processes of one call in a local list, "
           "not in one that lives on between calls" if facts["empty"] else "")
    )  # fmt: skip
    assert facts["again"] == [0, 0, 0], (
        f"a second run_all of three tuples in the same process returned {facts['again']}, not [0, 0, 0]: "
        "keep the processes of one call in a local list, not in one that lives on between calls"
    )
    assert facts["left_running"] == 0, "processes were still running after run_all returned"


@pytest.mark.task(3)
def test_whoami_in_the_main_process(student):
    """whoami in the main process: its pid, its name, no parent"""
    facts = student.call("whoami_here")
    answer = facts["answer"]
    assert isinstance(answer, dict), f"whoami returned {answer}, not a dict"
    assert answer.get("pid") == facts["pid"], f"pid is {answer.get('pid')}, expected this process's {facts['pid']}"
    assert answer.get("name") == facts["name"], f"name is {answer.get('name')!r}, expected {facts['name']!r}"
    assert answer.get("parent_pid") is None, (
        f"parent_pid is {answer.get('parent_pid')} in the main process: multiprocessing.parent_process() is None there"
    )


@pytest.mark.task(3)
def test_whoami_in_a_child_process(student):
    """whoami in a child: its own pid and name, the starting process as parent"""
    facts = student.call("whoami_in_child", timeout=STARTING_CALL_TIMEOUT)
    for child in facts["children"]:
        how = {
            "kata-child": "a child process",
            "kata-forked-child": "a child started with fork",
            "kata-forkserver-child": "a child started with forkserver",
        }[child["name"]]
        assert child["kind"] == "ok", f"whoami failed in {how}: {child['answer']}"
        answer = child["answer"]
        assert isinstance(answer, dict), f"whoami returned {answer} in {how}, not a dict"
        assert answer.get("pid") != facts["caller_pid"], (
            f"in {how}, whoami gave the pid of the process that started it: work the answer out each time "
            "whoami is called (os.getpid(), current_process()), not once when the module is imported"
        )
        assert answer.get("pid") == child["child_pid"], (
            f"in {how}, pid is {answer.get('pid')}, not the child's own pid {child['child_pid']}: use os.getpid()"
        )
        assert answer.get("name") == child["name"], (
            f"in {how}, name is {answer.get('name')!r}, expected {child['name']!r}: "
            "use multiprocessing.current_process().name"
        )
        assert answer.get("parent_pid") == facts["caller_pid"], (
            f"in {how}, parent_pid is {answer.get('parent_pid')}, but the process that started it is "
            f"{facts['caller_pid']}: use multiprocessing.parent_process(), not os.getppid()"
        )
