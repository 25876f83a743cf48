"""Exercise 8: synchronization.

Read README.md in this folder first. Replace each TODO with your code, then
run the grader:  python -m grader grade --only synchronization
"""

from __future__ import annotations

import multiprocessing  # noqa: F401 - you will need it
from collections.abc import Callable
from typing import Any


def add_to_total(lock: Any, total: Any, amount: int) -> None:
    """Add amount to total.value, reading and writing it while holding lock.

    Several processes call this at the same time with the same lock and total.
    """
    # TODO (task 1): in one with lock: block, read total.value, add amount and
    # write the sum back to total.value. Use the lock you were given.
    raise NotImplementedError("add_to_total: task 1 of exercise 8")


def make_account_lock() -> Any:
    """A lock that the process holding it may take again."""
    # TODO (task 2): return the multiprocessing lock that counts its holder's acquires.
    raise NotImplementedError("make_account_lock: task 2 of exercise 8")


def pay_with_fee(account: Any, amount: int, fee: int) -> None:
    """Deposit amount and charge fee with account.lock held around both calls.

    account.deposit(amount) and account.charge(fee) take account.lock themselves.
    """
    # TODO (task 2): hold account.lock, and inside call account.deposit(amount),
    # then account.charge(fee).
    raise NotImplementedError("pay_with_fee: task 2 of exercise 8")


def make_slots(k: int) -> Any:
    """A semaphore that lets k processes in at once."""
    # TODO (task 3): return a multiprocessing semaphore for k processes.
    raise NotImplementedError("make_slots: task 3 of exercise 8")


def fetch_with_slot(slots: Any, site: Any) -> None:
    """Call site.fetch() while holding one of the slots."""
    # TODO (task 3): take a slot, call site.fetch(), give the slot back.
    raise NotImplementedError("fetch_with_slot: task 3 of exercise 8")


def wait_for_go(go: Any, timeout: float) -> bool:
    """Wait until the event go is set, at most timeout seconds.

    Return True if it was set, False if the time ran out first.
    """
    # TODO (task 4): wait on the event with the timeout.
    raise NotImplementedError("wait_for_go: task 4 of exercise 8")


def step_worker(barrier: Any, first: Callable[[int], Any], second: Callable[[int], Any], index: int) -> None:
    """Run first(index), wait at the barrier until every process got there, then run second(index)."""
    # TODO (task 5): first, then wait at the barrier, then second.
    raise NotImplementedError("step_worker: task 5 of exercise 8")


def run_in_step(count: int, first: Callable[[int], Any], second: Callable[[int], Any]) -> None:
    """Run step_worker(barrier, first, second, index) in count processes, index 0 to count - 1.

    They all share one barrier. Return when every process has ended.
    """
    # TODO (task 5): create the barrier, start one process per index, then join them all.
    raise NotImplementedError("run_in_step: task 5 of exercise 8")


def add_items(condition: Any, box: Any, count: int) -> None:
    """Add count to box.value and wake every process waiting on the condition."""
    # TODO (task 6): under the condition, change box.value, then notify the waiters.
    raise NotImplementedError("add_items: task 6 of exercise 8")


def wait_for_items(condition: Any, box: Any, wanted: int, timeout: float) -> bool:
    """Wait until box.value >= wanted, at most timeout seconds in all.

    Return True if there are enough items, False if the time ran out first.
    """
    # TODO (task 6): under the condition, wait for the predicate box.value >= wanted.
    raise NotImplementedError("wait_for_items: task 6 of exercise 8")
