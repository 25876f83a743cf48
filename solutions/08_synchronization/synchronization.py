"""Exercise 8: synchronization. Reference solution."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from typing import Any


def add_to_total(lock: Any, total: Any, amount: int) -> None:
    """Add amount to total.value, reading and writing it while holding lock."""
    with lock:
        total.value = total.value + amount


def make_account_lock() -> Any:
    """A lock that the process holding it may take again."""
    return multiprocessing.RLock()


def pay_with_fee(account: Any, amount: int, fee: int) -> None:
    """Deposit amount and charge fee with account.lock held around both calls."""
    with account.lock:
        account.deposit(amount)
        account.charge(fee)


def make_slots(k: int) -> Any:
    """A semaphore that lets k processes in at once."""
    return multiprocessing.Semaphore(k)


def fetch_with_slot(slots: Any, site: Any) -> None:
    """Call site.fetch() while holding one of the slots."""
    with slots:
        site.fetch()


def wait_for_go(go: Any, timeout: float) -> bool:
    """Wait until the event go is set, at most timeout seconds; say whether it was set."""
    return go.wait(timeout)


def step_worker(barrier: Any, first: Callable[[int], Any], second: Callable[[int], Any], index: int) -> None:
    """Run first(index), wait at the barrier for the others, then run second(index)."""
    first(index)
    barrier.wait()
    second(index)


def run_in_step(count: int, first: Callable[[int], Any], second: Callable[[int], Any]) -> None:
    """Run step_worker in count processes that share one barrier; return when all have ended."""
    barrier = multiprocessing.Barrier(count)
    processes = [
        multiprocessing.Process(target=step_worker, args=(barrier, first, second, index)) for index in range(count)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join()


def add_items(condition: Any, box: Any, count: int) -> None:
    """Add count to box.value and wake every waiter, all under the condition."""
    with condition:
        box.value += count
        condition.notify_all()


def wait_for_items(condition: Any, box: Any, wanted: int, timeout: float) -> bool:
    """Wait until box.value >= wanted, at most timeout seconds; say whether it got there."""
    with condition:
        return condition.wait_for(lambda: box.value >= wanted, timeout)
