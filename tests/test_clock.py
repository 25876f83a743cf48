"""grader.sandboxed.clock: a budget counts a runnable task's progress, so that load does not use it up, within a cap."""

from __future__ import annotations

import multiprocessing
import threading

import pytest

from grader.sandboxed.clock import CAP, LOOK, Budget, machine_cpus, runnable_tasks
from grader.sandboxed.scenarios.kit import Rendezvous


class FakeMachine:
    """A clock that moves only when told, and a count of runnable tasks that the test sets."""

    def __init__(self, runnable: int | None = 1) -> None:
        self.now = 100.0
        self.runnable = runnable

    def clock(self) -> float:
        return self.now

    def tasks(self) -> int | None:
        return self.runnable

    def budget(self, seconds: float, cpus: int = 2) -> Budget:
        return Budget(seconds, clock=self.clock, runnable=self.tasks, cpus=cpus)


def run_out(machine: FakeMachine, budget: Budget, step: float = 0.05) -> float:
    """Move the fake clock in steps, looking each time, until the budget is spent; the wall time it took."""
    while not budget.spent():
        machine.now += step
    return budget.wall()


def test_an_idle_machine_spends_a_budget_in_its_own_seconds():
    machine = FakeMachine(runnable=2)
    assert run_out(machine, machine.budget(3.0)) == pytest.approx(3.0, abs=0.06)


def test_a_loaded_machine_spends_it_at_the_share_of_a_cpu_each_task_gets():
    machine = FakeMachine(runnable=8)  # four tasks to a CPU on two CPUs: a quarter of a second per second
    assert run_out(machine, machine.budget(2.0)) == pytest.approx(8.0, abs=0.06)


def test_load_that_changes_is_counted_as_it_was_at_each_look():
    machine = FakeMachine(runnable=1)
    budget = machine.budget(3.0)
    machine.now += 1.0
    assert budget.used() == pytest.approx(1.0)
    machine.runnable = 4  # half a CPU per task from here on
    machine.now += 2.0
    assert budget.used() == pytest.approx(2.0)
    assert not budget.spent()
    machine.now += 2.0
    assert budget.spent()


def test_no_load_stretches_a_budget_past_its_cap():
    machine = FakeMachine(runnable=10_000)
    assert run_out(machine, machine.budget(2.0)) == pytest.approx(2.0 * CAP, abs=0.06)


def test_a_cap_of_one_is_wall_time_whatever_the_load():
    """For a deadline that measures the graded code's own timeout, which runs on the wall clock."""
    machine = FakeMachine(runnable=64)
    budget = Budget(2.0, cap=1.0, clock=machine.clock, runnable=machine.tasks, cpus=2)
    assert run_out(machine, budget) == pytest.approx(2.0, abs=0.06)


def test_without_a_count_of_runnable_tasks_a_budget_is_wall_time():
    machine = FakeMachine(runnable=None)
    assert run_out(machine, machine.budget(1.5)) == pytest.approx(1.5, abs=0.06)


def test_a_wait_blocks_at_most_a_look_and_never_past_the_budget():
    machine = FakeMachine(runnable=1)
    budget = machine.budget(1.0)
    assert budget.left() == LOOK
    machine.now += 0.97
    assert budget.left() == pytest.approx(0.03)
    machine.now += 0.05
    assert budget.left() == 0.0 and budget.spent()


def test_the_machine_is_read_from_proc():
    tasks = runnable_tasks()
    assert tasks is not None and tasks >= 1  # this very process is running while it reads
    assert machine_cpus() >= 1


def meet(rendezvous, arrived, index: int) -> None:
    """Child target: wait at the rendezvous; note 1 if everyone came, 2 if it broke."""
    try:
        rendezvous.wait()
        arrived[index] = 1
    except threading.BrokenBarrierError:
        arrived[index] = 2


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_rendezvous_lets_everyone_through_once_all_have_come_and_breaks_for_all_when_one_is_missing(method):
    context = multiprocessing.get_context(method)
    old = multiprocessing.get_start_method(allow_none=True)
    multiprocessing.set_start_method(method, force=True)  # the rendezvous makes its values in the default context
    try:
        for parties, started, outcome in ((3, 3, 1), (3, 2, 2)):
            rendezvous = Rendezvous(parties, 1.0)
            arrived = context.Array("i", started)
            children = [context.Process(target=meet, args=(rendezvous, arrived, i)) for i in range(started)]
            for child in children:
                child.start()
            for child in children:
                child.join(60)
            assert list(arrived) == [outcome] * started
    finally:
        multiprocessing.set_start_method(old, force=True)
