"""Progress on a long run: a live display on a terminal or in a notebook, plain log lines
otherwise (a line per generation, and a heartbeat at most once a ``heartbeat`` seconds).

The display moves with every finished evaluation (every rung of successive halving), not only
when a generation or a rung ends, and counts the evaluations running, pruned and failed. The
estimate of what is left comes from the measured pace of the work (training epochs, or
evaluations when nothing trains), with the expected share of the running evaluations taken
from their measured durations, and from the budget: given a ``Budget``
(``start(total, budget=...)``), whichever of its budgets binds (evaluations, wall-clock seconds
or training epochs) ends the estimate. ``clock`` (seconds, monotonic) is injectable for tests;
a search builds its budget on the same clock.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from evonas.search.budget import Budget

__all__ = ["Progress", "duration"]

CREDIT_CAP = 0.95  # a running evaluation counts at most this share of its work before it ends


def duration(seconds: float) -> str:
    """Seconds in words a person reads at a glance: "42 s", "9 min", "3 h 05 min"."""
    seconds = max(float(seconds), 0.0)
    if seconds < 100:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 100:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _notebook() -> bool:
    """Whether output goes to a Jupyter notebook where rich can draw its live display (it needs
    ipywidgets there; without it a notebook gets the plain lines and heartbeat)."""
    import importlib.util

    from rich.console import Console

    return Console().is_jupyter and importlib.util.find_spec("ipywidgets") is not None


class Progress:
    """``start(total)``, then ``asked``/``told`` per evaluation and ``ended`` per individual,
    ``status(text)`` per generation, ``log(text)``, ``warn(text)``, ``stop()``.

    ``live``: a live display (default: when ``stream`` is a terminal, or in a notebook);
    ``quiet``: nothing but warnings; ``clock``: seconds, monotonic (for tests);
    ``heartbeat``: the least seconds between two heartbeat lines when not live.
    """

    def __init__(self, *, live: bool | None = None, quiet: bool = False, stream: TextIO | None = None,
                 clock: Callable[[], float] | None = None, heartbeat: float = 60.0):
        self.stream = stream or sys.stdout
        if live is None:
            live = self.stream.isatty() or (stream is None and _notebook())
        self.live = live
        self.quiet = quiet
        self.clock = clock or time.monotonic
        self.heartbeat = heartbeat
        self._real_clock = clock is None
        self._s0 = 0.0  # the budget's seconds at start (earlier sessions')
        self.capacity: int | None = None  # evaluations that run at once (None: all asked)
        self.budget: Budget | None = None
        self._bar = None
        self._task = None
        self._lock = threading.RLock()  # the heartbeat thread reads what the driver writes
        self._wake: threading.Event | None = None
        self._thread: threading.Thread | None = None
        self._reset(0)

    def _reset(self, total: int) -> None:
        self._total, self._before, self._start = total, 0, self.clock()
        self._earlier = {"pruned": 0, "failed": 0}  # individuals of earlier sessions
        self._label = ""
        self._ended: dict[int, str] = {}  # id -> complete / pruned / failed, this session
        self._queued: dict[int, float] = {}  # asked, waiting for a slot: id -> work (epochs)
        self._running: dict[int, tuple[float, float]] = {}  # id -> (started, work)
        self._per_unit: deque[float] = deque(maxlen=50)  # measured seconds per unit of work
        self._detailed = False  # told about single evaluations: the counts are shown
        self._origin: tuple[float, float] | None = None  # (elapsed, work share) at the first ask
        self._beat = 0.0  # elapsed at the last line written

    # ------------------------------------------------------------------ lifecycle
    def start(self, total: int, description: str = "evaluations", *,
              budget: Budget | None = None) -> None:
        """Show progress over ``total`` evaluations, or over ``budget`` (whichever of its
        budgets binds) when given."""
        self.stop()
        with self._lock:
            self.budget = budget
            self._reset(total)
            self._s0 = budget.seconds if budget is not None else 0.0
            self._label = description if description != "evaluations" else ""
        if self.quiet:
            return
        if not self.live:
            if self._real_clock and self.heartbeat > 0:  # silence between events is filled too
                self._wake = threading.Event()
                self._thread = threading.Thread(target=self._beats, name="evonas-heartbeat",
                                                daemon=True)
                self._thread.start()
            return
        from rich.progress import Progress as Bar

        self._bar = Bar(*_budget_columns(self), transient=False)
        self._bar.start()
        self._task = self._bar.add_task(description, total=max(total, 1))

    def stop(self) -> None:
        if self._wake is not None:
            self._wake.set()
            self._thread.join(timeout=5)
            self._wake = self._thread = None
        if self._bar is not None:
            self._bar.refresh()
            self._bar.stop()
            self._bar = None

    # ------------------------------------------------------------------ events
    def label(self, text: str) -> None:
        """What is going on now (e.g. "generation 3/10"): the bar's label and the heartbeat's."""
        with self._lock:
            self._label = text
        if self._bar is not None:
            self._bar.update(self._task, description=text)

    def asked(self, trials: Iterable[tuple[int, float]]) -> None:
        """Evaluations handed out: (id, work) pairs, work in training epochs (1 where nothing
        trains). Ids already handed out are ignored (a search asks for the same ones again)."""
        with self._lock:
            for ident, work in trials:
                if ident not in self._queued and ident not in self._running:
                    self._queued[ident] = max(float(work), 0.0)
            if self._origin is None and (self._queued or self._running):
                self._origin = (self._elapsed(), self._work_share())
            self._detailed = True
            self._fill()
        self._changed()

    def told(self, ident: int, *, seconds: float | None = None, failed: bool = False,
             final: bool = False) -> None:
        """Evaluation ``ident`` finished after ``seconds`` (measured on the clock where not
        given); ``final``: the last rung of its schedule, which ends the individual."""
        with self._lock:
            now = self._elapsed()
            started, work = self._running.pop(ident, (None, self._queued.pop(ident, 0.0)))
            took = seconds if seconds is not None else (now - started if started is not None
                                                        else None)
            if took is not None and work > 0 and took >= 0:
                self._per_unit.append(took / work)
            self._detailed = True
            if failed or final:
                self._end(ident, "failed" if failed else "complete")
            self._fill()
        self._changed()

    def ended(self, ident: int, outcome: str = "complete") -> None:
        """Individual ``ident``'s schedule ended (complete, pruned or failed); counted once."""
        with self._lock:
            self._detailed = True
            self._end(ident, outcome)
        self._changed()

    def advance(self, n: int = 1, *, pruned: int = 0, failed: int = 0) -> None:
        """``n`` more individuals ended (ones counted without an id: an earlier session's), of
        which ``pruned`` were pruned and ``failed`` failed (counted with this session's)."""
        with self._lock:
            self._before += n
            self._earlier["pruned"] += pruned
            self._earlier["failed"] += failed
        self._changed()

    def _end(self, ident: int, outcome: str) -> None:
        if ident not in self._ended or outcome != "complete":  # a later verdict may prune it
            self._ended[ident] = outcome
        self._queued.pop(ident, None)
        self._running.pop(ident, None)

    def _fill(self) -> None:
        """Queued evaluations take the free slots, first asked first (as the dispatchers do)."""
        now = self._elapsed()
        while self._queued and (self.capacity is None or len(self._running) < self.capacity):
            ident = next(iter(self._queued))
            self._running[ident] = (now, self._queued.pop(ident))

    def _changed(self) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done)
        else:
            self.tick()

    # ------------------------------------------------------------------ lines
    def status(self, text: str) -> None:
        """A one-line summary (a generation's end, its best values): a log line with where the
        run stands."""
        if self._bar is not None:
            self._bar.console.print(text, highlight=False)
            return
        self._line(f"{text} [{self.describe()}, {self._times()}]")

    def tick(self) -> None:
        """A heartbeat line if none was written for ``heartbeat`` seconds (not live)."""
        if self.quiet or self._bar is not None or self.heartbeat <= 0:
            return
        with self._lock:
            if self._elapsed() - self._beat < self.heartbeat:
                return
            text = f"{self._label or 'running'}: {self.describe()}, {self._times()}"
        self._line(text)

    def _line(self, text: str) -> None:
        with self._lock:
            self._beat = self._elapsed()
        self.log(text)

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

    def _beats(self) -> None:
        while not self._wake.wait(min(self.heartbeat, 5.0)):
            self.tick()

    # ------------------------------------------------------------------ where the run stands
    @property
    def done(self) -> int:
        """Individuals whose schedule ended (earlier sessions and the budget's count included)."""
        own = self._before + len(self._ended)
        return max(own, self.budget.evaluations) if self.budget is not None else own

    def counts(self) -> dict[str, int]:
        """Evaluations running now, and individuals pruned and failed over the whole run (an
        earlier session's as ``advance`` gave them, as the evaluations done are)."""
        with self._lock:
            outcomes = list(self._ended.values())
            return {"running": len(self._running),
                    "pruned": self._earlier["pruned"] + outcomes.count("pruned"),
                    "failed": self._earlier["failed"] + outcomes.count("failed")}

    def describe(self) -> str:
        """Where the run stands: "12/56 evaluations (2 running, 1 pruned, 0 failed)", with the
        seconds or epochs budget first where that binds ("40% of 60 s, ...")."""
        b = self.budget
        planned = b.planned.evaluations if b is not None else self._total
        text = f"{self.done}/{planned} evaluations"
        if self._detailed:
            c = self.counts()
            text += f" ({c['running']} running, {c['pruned']} pruned, {c['failed']} failed)"
        if b is None:
            return text
        if b.exhausted() is not None:
            spent = b.describe()
            return spent if spent.endswith(" evaluations") else f"{spent}, {text}"
        work, seconds, epochs = self._work_share(), self._seconds_share(), self._epochs_share()
        if seconds > max(work, epochs):
            return f"{seconds:.0%} of {b.max_seconds:g} s" + (f", {text}" if self._detailed else "")
        if epochs > work:
            return f"{b.epochs}/{b.max_epochs} epochs, {text}"
        return text

    def _times(self) -> str:
        spent = self.budget.seconds if self.budget is not None else self.clock() - self._start
        left = self.left() if self.budget is not None else self._left_unbudgeted()
        return duration(spent) + ("" if left is None else f", about {duration(left)} left")

    def _left_unbudgeted(self) -> float | None:
        if not self.done:
            return None
        spent = self.clock() - self._start
        return spent / self.done * max(self._total - self.done, 0)

    def fraction(self) -> float:
        """How far the run is, 0 to 1, by the budget that binds: the share of the planned work
        done (running evaluations by their expected share), or of the seconds."""
        b = self.budget
        if b is None:
            return min(self.done / self._total, 1.0) if self._total else 0.0
        if b.exhausted() is not None:
            return 1.0
        with self._lock:
            return min(max(self._work_share(), self._seconds_share(), self._epochs_share()), 1.0)

    def left(self) -> float | None:
        """Seconds left: the measured pace of the work (this session's) projected over what is
        left of the plan, capped by the seconds budget; 0 once a budget is spent; None without
        a budget or before anything is done."""
        b = self.budget
        if b is None:
            return None
        if b.exhausted() is not None:
            return 0.0
        with self._lock:
            options = []
            if b.max_seconds is not None:
                options.append(max(b.max_seconds - b.seconds, 0.0))
            share = max(self._work_share(), self._epochs_share())
            since, before = self._origin or (0.0, 0.0)
            gained, took = share - before, self._elapsed() - since
            if gained > 0 and took > 0:
                options.append(max(1.0 - share, 0.0) * took / gained)
            return min(options) if options else None

    def _elapsed(self) -> float:
        """Seconds since ``start`` on the budget's clock (the progress clock without one)."""
        if self.budget is not None:
            return self.budget.seconds - self._s0
        return self.clock() - self._start

    def _work_share(self) -> float:
        """Share of the planned work done: of the evaluations, or of the training epochs (with
        the expected share of the running evaluations) where that is further."""
        b = self.budget
        if b is None:
            return self.done / self._total if self._total else 0.0
        share = self.done / max(b.planned.evaluations, 1)
        if b.planned.epochs > 0:
            share = max(share, (b.epochs + self._credit()) / b.planned.epochs)
        return share

    def _seconds_share(self) -> float:
        b = self.budget
        return b.seconds / b.max_seconds if b is not None and b.max_seconds else 0.0

    def _epochs_share(self) -> float:
        b = self.budget
        return b.epochs / b.max_epochs if b is not None and b.max_epochs else 0.0

    def _credit(self) -> float:
        """The work the running evaluations have done, by the measured time per unit of work."""
        if not self._per_unit or not self._running:
            return 0.0
        per_unit, now = statistics.median(self._per_unit), self._elapsed()
        if per_unit <= 0:
            return 0.0
        return sum(work * min((now - started) / (per_unit * work), CREDIT_CAP)
                   for started, work in self._running.values() if work > 0)


def _budget_columns(progress: Progress) -> list:
    """Bar columns that read the progress each time they are drawn (seconds move on between
    evaluations): label, bar, "12/56 evaluations (2 running, ...)" or "40% of 60 s", then
    "0:01:10 elapsed, 0:02:30 left"."""
    from rich.progress import BarColumn, ProgressColumn, TextColumn, TimeElapsedColumn
    from rich.progress_bar import ProgressBar
    from rich.text import Text

    class Share(BarColumn):
        def render(self, task):
            return ProgressBar(total=1.0, completed=progress.fraction(),
                               width=None if self.bar_width is None else max(1, self.bar_width),
                               animation_time=task.get_time(), style=self.style,
                               complete_style=self.complete_style,
                               finished_style=self.finished_style, pulse_style=self.pulse_style)

    class Spent(ProgressColumn):
        def render(self, task):
            # one line whatever the terminal's width: cut with an ellipsis, never wrapped
            return Text(progress.describe(), style="progress.download", no_wrap=True,
                        overflow="ellipsis")

    class Left(ProgressColumn):
        def render(self, task):
            left = progress.left()
            if left is None:
                return Text("-:--:--", style="progress.remaining")
            minutes, seconds = divmod(round(left), 60)
            hours, minutes = divmod(minutes, 60)
            return Text(f"{hours}:{minutes:02d}:{seconds:02d}", style="progress.remaining")

    return [TextColumn("{task.description}"), Share(bar_width=20), Spent(), TimeElapsedColumn(),
            TextColumn("elapsed,"), Left(), TextColumn("left")]
