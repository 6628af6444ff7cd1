"""Progress on a long run: a live display on a terminal, plain log lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO

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

    def start(self, total: int, description: str = "evaluations") -> None:
        self._total, self._done, self._start = total, 0, time.monotonic()
        if self.quiet or not self.live:
            return
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self._bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
                        transient=False)
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
        if not self._done:
            return f"{spent:.0f} s"
        left = spent / self._done * max(self._total - self._done, 0)
        return f"{spent:.0f} s, about {left:.0f} s left"
