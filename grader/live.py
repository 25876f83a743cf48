"""What the terminal shows while grading runs: the header at once, a progress line, each task as it ends.

Built on rich: it knows the terminal's width, colours only on a terminal
(never in a pipe, nor under NO_COLOR), and draws the progress line only
where it can be redrawn; in a pipe, the header and the task lines are
plain text, in order. A view, never a verdict: the final report comes from
the scorecard.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from grader.grading import Event, Started, TaskEnded, TestEnded
from grader.render import header

# Marks in rendered reports, coloured on a terminal.
GOOD = r"^\s*ok\b|\bdone\b"
BAD = r"^\s*(FAIL|ERROR|TIMEOUT)\b|\bto do\b"


def console_for(stream: TextIO | None = None) -> Console:
    # soft_wrap: lines are written whole and the terminal wraps them; rich would cut them at 80 in a pipe.
    return Console(file=stream or sys.stdout, highlight=False, soft_wrap=True)


def show(console: Console, rendered: str) -> None:
    """A rendered report, with its marks in colour where colour is on."""
    for line in rendered.splitlines():
        text = Text(line)
        text.highlight_regex(GOOD, "green")
        text.highlight_regex(BAD, "red")
        console.print(text)


class LiveView:
    """An event listener for grader.grading.grade that draws progress; use as a context manager."""

    def __init__(self, console: Console, show_tasks: bool = True) -> None:
        self.console = console
        self.show_tasks = show_tasks
        self.progress = Progress(
            TextColumn("checks"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,  # the bar goes when grading ends; the report takes its place
        )
        self.bar = self.progress.add_task("checks", total=None)

    def __enter__(self) -> LiveView:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.progress.stop()

    def __call__(self, event: Event) -> None:
        if isinstance(event, Started):
            kind, path = event.target.kind, str(event.target.path)
            self.console.print(Text(header(kind, path, event.start_methods, event.isolation)))
            self.progress.start()
        elif isinstance(event, TestEnded):
            self.progress.update(self.bar, completed=event.done, total=event.total or None)
        elif isinstance(event, TaskEnded) and self.show_tasks:
            mark = Text("  ok   ", style="green") if event.passed else Text("  FAIL ", style="red")
            line = mark + Text(f"{event.exercise.number}. {event.exercise.title}, task {event.task.number}: ")
            line += Text(event.task.title)
            self.progress.console.print(line)


class BatchView:
    """A class being graded: a line per student as each ends, under them a bar with the time left (terminal only).

    A context manager; ``progress`` is the grader.batch.Progress to hand to grade_batch.
    """

    def __init__(self, console: Console, total: int) -> None:
        from grader.batch import Progress as BatchProgress

        self.console = console
        self.bar: Progress | None = None
        self.task: TaskID | None = None
        self.total = total
        self.progress = BatchProgress(on_end=self._ended, total=total)

    def __enter__(self) -> BatchView:
        if self.console.is_terminal:
            self.bar = Progress(
                TextColumn("grading the class"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("left"),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            )
            self.bar.start()
            self.task = self.bar.add_task("class", total=self.total)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def _ended(self, outcome: Any, done: int, total: int) -> None:
        kept = " (graded before, unchanged)" if outcome.state == "kept" else ""
        self.console.print(f"{outcome.submission.name}: {outcome.line}{kept}", markup=False, highlight=False)
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, completed=done)
