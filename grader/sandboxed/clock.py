"""Budgets of time that a busy machine does not use up.

A check gives graded code so many seconds: to import, to start its processes,
to return, to end once told to. When more tasks are runnable than there are
CPUs, each one gets only its share of a CPU: a correct solution that needs 2 s
on an idle 2-core machine needs about 10 s while ten tasks are runnable. A
budget of wall-clock seconds would then fail correct code, and a grade would
change with the load.

So a Budget counts time at the rate a runnable task progresses: a second of
wall time counts in full while no more tasks are runnable than there are CPUs,
and as cpus / runnable of a second while more are (the count of runnable tasks
is read from /proc/loadavg at each look). A hang still ends: after its budget
of such time, and never later than CAP times the budget in wall time, so that
no load, not even one the graded code makes itself, stretches it further.
Where /proc/loadavg cannot be read, a budget is plain wall time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

CAP = 6.0  # a budget ends after at most this many times its seconds of wall time, whatever the load
LOOK = 0.1  # seconds a wait on a budget blocks at most before it looks at the machine's load again


def machine_cpus() -> int:
    """CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def runnable_tasks() -> int | None:
    """Tasks that run or wait for a CPU right now, machine-wide (/proc/loadavg); None where it cannot be read."""
    try:
        with open("/proc/loadavg", "rb") as stream:
            fields = stream.read().split()
        return int(fields[3].split(b"/")[0])
    except (OSError, IndexError, ValueError):
        return None


CPUS = machine_cpus()


class Budget:
    """seconds of a runnable task's progress, counted from now; see the module's docstring."""

    def __init__(
        self,
        seconds: float,
        *,
        cap: float = CAP,
        clock: Callable[[], float] = time.monotonic,
        runnable: Callable[[], int | None] = runnable_tasks,
        cpus: int = CPUS,
    ) -> None:
        self.seconds = seconds
        self._clock = clock
        self._runnable = runnable
        self._cpus = cpus
        self.started = self._looked = clock()
        self._latest_end = self.started + seconds * cap
        self._used = 0.0

    def _look(self) -> float:
        """Count the time since the last look at the share of a CPU a task had then; the clock's time now."""
        now = self._clock()
        passed = now - self._looked
        if passed > 0:
            running = self._runnable()
            share = self._cpus / running if running is not None and running > self._cpus else 1.0
            self._used += passed * share
            self._looked = now
        return now

    def used(self) -> float:
        """Seconds of the budget used so far."""
        self._look()
        return self._used

    def left(self) -> float:
        """Wall-clock seconds a wait may block before it looks again (at most LOOK); 0 once the budget is spent."""
        now = self._look()
        if self._used >= self.seconds or now >= self._latest_end:
            return 0.0
        return min(LOOK, self.seconds - self._used, self._latest_end - now)

    def spent(self) -> bool:
        """Whether the budget is used up."""
        return self.left() == 0.0

    def wall(self) -> float:
        """Wall-clock seconds since the budget began."""
        return self._clock() - self.started
