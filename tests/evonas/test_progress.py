"""Live progress: a search driven on a fake clock moves the display with every finished
evaluation, its estimate of the time left holds, and piped output has a heartbeat."""

from __future__ import annotations

import io
import re
import time

import numpy as np
import pytest

from evonas.asktell import Search
from evonas.progress import Progress, duration

from tests.evonas.runs import TINY

SECONDS_PER_EPOCH = 30.0
CONFIG = {**TINY, "search": {**TINY["search"], "population": 4, "offspring": 4, "generations": 3}}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def drive(progress: Progress, clock: Clock) -> tuple[Search, list[dict], list[str]]:
    """Evaluate every trial one at a time (30 s per epoch trained, on the fake clock), telling
    values made up from the id; samples of the display halfway through and after each."""
    search = Search(CONFIG, progress=progress)
    progress.capacity = 1  # one at a time, in the order asked: as the inline back-end runs them
    reached: dict[int, int] = {}
    samples: list[dict] = []
    while trials := search.ask():
        for trial in trials:
            took = SECONDS_PER_EPOCH * (trial.fidelity - reached.get(trial.id, 0))
            reached[trial.id] = trial.fidelity
            before = progress.fraction()
            clock.now += took / 2
            samples.append({"t": clock.now, "fraction": progress.fraction(),
                            "left": progress.left(), "running": progress.counts()["running"]})
            clock.now += took / 2
            value = float(np.random.default_rng(trial.id).uniform(0.1, 0.9)) / trial.fidelity
            search.tell(trial.id, {"val_error": value}, seconds=took)
            samples.append({"t": clock.now, "fraction": progress.fraction(), "left": progress.left(),
                            "before": before, "running": progress.counts()["running"]})
    search.close()
    return search, samples, progress.stream.getvalue().splitlines()


@pytest.fixture(scope="module")
def driven():
    clock = Clock()
    progress = Progress(live=False, stream=io.StringIO(), clock=clock, heartbeat=60.0)
    search, samples, lines = drive(progress, clock)
    return search, samples, lines, clock.now


def test_the_display_advances_with_every_finished_evaluation(driven):
    search, samples, _, _ = driven
    told = [s for s in samples if "before" in s]
    assert len(told) > search.evaluations  # rungs of successive halving are evaluations too
    for s in told[:-1]:  # the last one ends the run
        assert s["fraction"] > s["before"], s
    assert told[-1]["fraction"] == 1.0
    assert all(s["running"] == 1 for s in samples if "before" not in s)  # capacity 1


def test_the_estimate_is_within_2x_of_the_time_left_after_a_quarter(driven):
    _, samples, _, end = driven
    checked = 0
    for s in samples:
        true = end - s["t"]
        if s["fraction"] >= 0.25 and true > 0:
            assert s["left"] is not None and true / 2 <= s["left"] <= 2 * true, (s, true)
            checked += 1
    assert checked >= 10


def test_piped_output_has_generation_lines_and_a_heartbeat_at_most_once_a_minute(driven):
    search, _, lines, end = driven
    generations = [line for line in lines if re.match(r"generation \d+/3: front of", line)]
    beats = [line for line in lines if re.match(r"generation \d+/3: \d+/\d+ evaluations", line)]
    assert len(generations) == 4 and beats, lines
    first = lines.index(generations[0])
    assert first > 0 and all(line in beats for line in lines[:first])  # generation 0 is not silent
    assert len(beats) <= (end - 1000.0) / 60  # each at least a minute after the line before
    assert re.fullmatch(r"generation \d/3: \d+/\d+ evaluations \(1 running, \d+ pruned, 0 failed\), "
                        r"\d+ (s|min), about \d+ (s|min) left", beats[0]), beats[0]
    # each generation's best values name the individual they come from (often not one network)
    front = {ind.id: ind for ind in search.front}
    last = generations[-1]
    for key in ("val_error", "params"):
        best = min(front.values(), key=lambda i: i.record.objectives[key])
        assert f"{key} {best.record.objectives[key]:.4g} (#{best.id})" in last or \
            f"#{best.id} (" in last, last


def test_failures_and_pruned_evaluations_are_counted_as_they_happen():
    clock = Clock()
    progress = Progress(live=False, stream=io.StringIO(), clock=clock, heartbeat=0)
    search = Search(CONFIG, progress=progress)
    trials = search.ask()
    assert progress.counts()["running"] == len(trials)  # capacity unknown: all asked run
    clock.now += 10
    search.tell(trials[0].id, RuntimeError("out of memory"))
    assert progress.counts() == {"running": len(trials) - 1, "pruned": 0, "failed": 1}
    assert progress.done == 1
    for trial in trials[1:]:
        search.tell(trial.id, {"val_error": 0.5 + 0.01 * trial.id})
    while search.generation < 1:  # the first generation of children has a pruning rung
        for trial in search.ask():
            search.tell(trial.id, {"val_error": 0.3 + 0.01 * trial.id})
    assert progress.counts()["pruned"] >= 1 and progress.counts()["failed"] == 1
    assert "pruned" in progress.describe() and "1 failed" in progress.describe()
    search.close()


def test_heartbeats_on_a_real_clock_need_no_event():
    out = io.StringIO()
    progress = Progress(live=False, stream=out, heartbeat=0.05)
    progress.start(10)
    progress.label("generation 0/3")
    deadline = time.monotonic() + 30
    while "generation 0/3: 0/10 evaluations" not in out.getvalue() and time.monotonic() < deadline:
        time.sleep(0.02)
    progress.stop()
    assert "generation 0/3: 0/10 evaluations" in out.getvalue()


def test_a_notebook_gets_the_live_display(monkeypatch):
    import evonas.progress as module

    monkeypatch.setattr(module, "_notebook", lambda: True)
    assert Progress().live and not Progress(stream=io.StringIO()).live
    monkeypatch.setattr(module, "_notebook", lambda: False)
    assert not Progress(live=None, stream=io.StringIO()).live


def test_the_live_display_shows_the_counts():
    from rich.console import Console

    clock = Clock()
    progress = Progress(live=True, stream=io.StringIO(), clock=clock)
    progress.start(8)
    progress.asked([(0, 1), (1, 1), (2, 1)])
    progress.told(0, seconds=3, final=True)
    progress.ended(1, "pruned")
    screen = io.StringIO()
    bar = progress._bar
    Console(file=screen, width=160).print(bar.make_tasks_table(bar.tasks))
    progress.stop()
    assert "2/8 evaluations (1 running, 1 pruned, 0 failed)" in screen.getvalue(), screen.getvalue()


@pytest.mark.parametrize("seconds, words", [(0, "0 s"), (42.4, "42 s"), (540, "9 min"),
                                            (3 * 3600 + 300, "3 h 05 min")])
def test_durations_read_at_a_glance(seconds, words):
    assert duration(seconds) == words


def test_the_live_display_says_which_time_is_elapsed_and_which_is_left():
    from rich.console import Console

    progress = Progress(live=True, stream=io.StringIO(), clock=Clock())
    progress.start(8)
    screen = io.StringIO()
    bar = progress._bar
    Console(file=screen, width=160).print(bar.make_tasks_table(bar.tasks))
    progress.stop()
    assert re.search(r"\d+:\d\d:\d\d elapsed, (\d+:\d\d:\d\d|-:--:--) left", screen.getvalue()), \
        screen.getvalue()


class _Recording(Progress):
    """Progress that keeps its counts at each generation's end: "generation g/n" -> counts."""

    def __init__(self) -> None:
        super().__init__(live=False, stream=io.StringIO(), clock=Clock(), heartbeat=0)
        self.at: dict[str, dict[str, int]] = {}

    def status(self, text: str) -> None:
        super().status(text)
        self.at[text.split(":")[0]] = self.counts()


def _tell_all(search: Search, until: int | None = None) -> None:
    """Tell every trial made-up values (trial 1 fails), to the end or to generation ``until``."""
    while trials := search.ask():
        for trial in trials:
            value = RuntimeError("out of memory") if trial.id == 1 else \
                {"val_error": float(np.random.default_rng(trial.id).uniform(0.1, 0.9)) / trial.fidelity}
            search.tell(trial.id, value)
        if until is not None and search.generation >= until:
            return


def test_a_resumed_run_counts_pruned_and_failed_over_the_whole_run(tmp_path):
    uninterrupted = _Recording()
    with Search(CONFIG, run_dir=tmp_path / "whole", progress=uninterrupted) as search:
        _tell_all(search)
    at_one = uninterrupted.at["generation 1/3"]
    assert at_one["pruned"] >= 1 and at_one["failed"] == 1, uninterrupted.at  # something to count

    with Search(CONFIG, run_dir=tmp_path / "stopped", progress=_Recording()) as search:
        _tell_all(search, until=1)  # stopped at generation 1's checkpoint
    resumed = _Recording()
    with Search.resume(tmp_path / "stopped", progress=resumed) as search:
        assert resumed.counts() == {**at_one, "running": 0}  # before anything more is told
        _tell_all(search)
    for g in ("generation 2/3", "generation 3/3"):
        assert resumed.at[g] == uninterrupted.at[g], (g, resumed.at, uninterrupted.at)
    line = next(x for x in resumed.stream.getvalue().splitlines() if x.startswith("generation 2/3"))
    pruned = uninterrupted.at["generation 2/3"]["pruned"]
    assert f"evaluations (0 running, {pruned} pruned, 1 failed)" in line, line
