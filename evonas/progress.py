"""Progress on a long run: a live display on a terminal, plain log lines otherwise.

Given a ``Budget`` (``start(total, budget=...)``), the bar and the estimate of what is left
follow the budget that binds (evaluations, wall-clock seconds or training epochs), so a run
stopped by ``search.max_seconds`` shows how much of its time is gone.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from evonas.search.budget import Budget

__all__ = ["Progress"]


class Progress:
    """``start(total)``, ``advance(n)``, ``status(text)``, ``log(text)``, ``warn(text)``, ``stop()``."""

    def __init__(self, *, live: bool | None = None, quiet: bool = False, stream: TextIO | None = None):
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self.quiet = quiet
        self._bar = None
        self._task = None
        self._done = 0
        self._total = 0
        self._start = time.monotonic()
        self.budget: Budget | None = None

    def start(self, total: int, description: str = "evaluations", *,
              budget: Budget | None = None) -> None:
        """Show progress over ``total`` evaluations, or over ``budget`` (whichever of its
        budgets binds) when given."""
        self._total, self._done, self._start = total, 0, time.monotonic()
        self.budget = budget
        if self.quiet or not self.live:
            return
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        if budget is None:
            self._bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
                            transient=False)
        else:
            self._bar = Bar(*_budget_columns(self), transient=False)
        self._bar.start()
        self._task = self._bar.add_task(description, total=total)

    def advance(self, n: int = 1) -> None:
        self._done += n
        if self._bar is not None:
            self._bar.update(self._task, advance=n)

    def status(self, text: str) -> None:
        """A one-line summary (generation, best values): the bar's label, or a log line."""
        if self._bar is not None:
            self._bar.update(self._task, description=text)
        elif self.budget is not None:
            self.log(f"{text} [{self.budget.describe()}, {self._eta()}]")
        else:
            self.log(f"{text} [{self._done}/{self._total} evaluations, {self._eta()}]")

    def log(self, text: str) -> None:
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.console.print(text)
        else:
            print(text, file=self.stream, flush=True)

    def warn(self, text: str) -> None:
        """A warning: shown even when quiet, on standard error when not live."""
        if self._bar is not None:
            self._bar.console.print(f"warning: {text}", highlight=False)
        else:
            print(f"warning: {text}", file=sys.stderr, flush=True)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def _eta(self) -> str:
        spent = time.monotonic() - self._start
        if self.budget is not None:
            left = self.left()
            return f"{spent:.0f} s" if left is None else f"{spent:.0f} s, about {left:.0f} s left"
        if not self._done:
            return f"{spent:.0f} s"
        left = spent / self._done * max(self._total - self._done, 0)
        return f"{spent:.0f} s, about {left:.0f} s left"

    def left(self) -> float | None:
        """Seconds left by the budget's pace: elapsed x (1 - f) / f, with f its
        ``fraction()`` and elapsed its seconds (earlier sessions included, as f is); None
        before anything is spent or without a budget."""
        if self.budget is None:
            return None
        f = self.budget.fraction()
        if f <= 0:
            return None
        return self.budget.seconds * (1 - f) / f


def _budget_columns(progress: Progress) -> list:
    """Bar columns that read the budget each time they are drawn (seconds move on between
    evaluations): description, bar, "12/300 evaluations" or "40% of 60 s", elapsed, left."""
    from rich.progress import BarColumn, ProgressColumn, TextColumn, TimeElapsedColumn
    from rich.progress_bar import ProgressBar
    from rich.text import Text

    class Share(BarColumn):
        def render(self, task):
            return ProgressBar(total=1.0, completed=progress.budget.fraction(),
                               width=None if self.bar_width is None else max(1, self.bar_width),
                               animation_time=task.get_time(), style=self.style,
                               complete_style=self.complete_style,
                               finished_style=self.finished_style, pulse_style=self.pulse_style)

    class Spent(ProgressColumn):
        def render(self, task):
            return Text(progress.budget.describe(), style="progress.download")

    class Left(ProgressColumn):
        def render(self, task):
            left = progress.left()
            if left is None:
                return Text("-:--:--", style="progress.remaining")
            minutes, seconds = divmod(round(left), 60)
            hours, minutes = divmod(minutes, 60)
            return Text(f"{hours}:{minutes:02d}:{seconds:02d}", style="progress.remaining")

    return [TextColumn("{task.description}"), Share(), Spent(), TimeElapsedColumn(),
            TextColumn("left"), Left()]
