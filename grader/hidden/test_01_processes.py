"""Hidden tests for exercise 1 (processes). Scenarios: grader/sandboxed/scenarios/processes.py."""

import pytest

EXERCISE = "processes"

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
    assert report["first"] == "from-args", f"the target got {report['first']!r} instead of the args: pass args=args"
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
    assert reports[-1]["first"] == "from-args", f"the target got {reports[-1]['first']!r} instead of the args"
    assert reports[-1]["tag"] is None, f"the target got tag={reports[-1]['tag']!r} although no kwargs were given"


@pytest.mark.task(2)
def test_processes_run_at_the_same_time(student):
    """run_all runs all the processes at the same time"""
    facts = student.call("run_all_together", 3, timeout=40)
    assert isinstance(facts["exit_codes"], list), f"run_all returned {facts['exit_codes']}, not a list of exit codes"
    assert facts["caller_pid"] not in facts["pids"], RAN_IN_CALLER
    assert None not in facts["exit_codes"], (
        f"run_all returned {facts['exit_codes']}: exitcode is None while a process still runs, "
        "and join() itself returns None. Join every process, then return each process's exitcode"
    )
    assert all(facts["met"]), (
        "the processes did not run at the same time: each waited for its siblings, who were not running. "
        "Start every process first, then join every process"
    )
    assert facts["exit_codes"] == [0, 0, 0], f"exit codes {facts['exit_codes']}, expected [0, 0, 0]"


@pytest.mark.task(2)
def test_run_all_waits_for_every_process(student):
    """run_all returns only when every process has finished"""
    facts = student.call("run_all_waits", 3, 0.5)
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
    facts = student.call("run_all_exit_codes", [0, 3, 0, 1])
    assert facts["caller_pid"] not in facts["pids"], RAN_IN_CALLER
    assert facts["exit_codes"] == [0, 3, 0, 1], (
        f"run_all returned {facts['exit_codes']} for workers that exit with [0, 3, 0, 1] "
        "(the 1 is an uncaught exception): return each process's exitcode, after join, in order"
    )
    pids = facts["pids"]
    assert len(set(pids)) == len(pids), "two workers shared one process: start one process per argument tuple"


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
    facts = student.call("whoami_in_child")
    assert facts["kind"] == "ok", f"whoami failed in a child process: {facts['answer']}"
    answer = facts["answer"]
    assert isinstance(answer, dict), f"whoami returned {answer}, not a dict"
    assert answer.get("pid") == facts["child_pid"], "pid is not the child's own pid"
    assert answer.get("name") == "kata-child", f"name is {answer.get('name')!r}, expected 'kata-child'"
    assert answer.get("parent_pid") == facts["caller_pid"], (
        f"parent_pid is {answer.get('parent_pid')}, but the process that started this one is {facts['caller_pid']}: "
        "use multiprocessing.parent_process(), not os.getppid()"
    )
