"""Budgets: what a config plans to spend (evaluations, training epochs, generations), and a
run's count of what it spent, across sessions, with whichever budget ends first binding. A
fake clock stands in for the wall clock."""

import io
import re

import pytest

from evonas.config import parse
from evonas.progress import Progress
from evonas.search.budget import Budget, Plan, halving_epochs, plan


def config(*, early=None, epochs=4, objectives=("val_error", "params"), **search):
    training = {"epochs": epochs}
    if early is not None:
        training["early_ranking"] = {"rungs": early[0], "keep": early[1]}
    return parse({"objectives": [{"name": n} for n in objectives],
                  "search": {"population": 4, "offspring": 4, "generations": 3, **search},
                  "training": training})


class Clock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_halving_spends_each_rung_on_the_candidates_still_alive():
    assert halving_epochs(8, [2, 8], 0.5) == 8 * 2 + 4 * 6
    assert halving_epochs(10, [1, 3, 9], 1 / 3) == 10 * 1 + 4 * 2 + 2 * 6  # ceil(10/3), ceil(4/3)
    assert halving_epochs(5, [4], 0.5) == 20  # one rung: everyone trains to it
    assert halving_epochs(0, [1, 2], 0.5) == 0


def test_plan_without_early_ranking():
    assert plan(config()) == Plan(evaluations=16, epochs=64, generations=3)
    assert plan(config(), generations=5) == Plan(evaluations=24, epochs=96, generations=5)
    assert plan(config(generations=0)) == Plan(evaluations=4, epochs=16, generations=0)


def test_plan_with_early_ranking():
    # initial: 4 x 4 epochs; each generation: 4 children x 1 epoch, ceil(0.5 x 4) = 2 x 3 more
    assert plan(config(early=([1, 4], 0.5))) == Plan(evaluations=16, epochs=16 + 3 * 10, generations=3)
    # keep 1/3 of 4: ceil(4/3) = 2 go on to 2 epochs, ceil(2/3) = 1 to 4
    assert plan(config(early=([1, 2, 4], 1 / 3))).epochs == 16 + 3 * (4 + 2 + 2)


def test_max_evaluations_truncates_the_last_generation():
    # 4 initial, 2 full generations of 4, then 2 of the third generation's children
    capped = plan(config(early=([1, 4], 0.5), max_evaluations=14))
    assert capped == Plan(evaluations=14, epochs=16 + 2 * 10 + (2 * 1 + 1 * 3), generations=3)
    # a cap at a generation's end plans no partial generation
    assert plan(config(max_evaluations=12)) == Plan(evaluations=12, epochs=48, generations=2)
    # a cap below the population trims the initial population and plans no generation
    assert plan(config(max_evaluations=3)) == Plan(evaluations=3, epochs=12, generations=0)
    assert plan(config(max_evaluations=1000)) == plan(config())


def test_max_epochs_caps_the_epochs_and_cheap_runs_train_nothing():
    assert plan(config(max_epochs=50)) == Plan(evaluations=16, epochs=50, generations=3)
    assert plan(config(max_epochs=500)).epochs == 64
    cheap = config(objectives=("params", "flops"))
    assert plan(cheap) == Plan(evaluations=16, epochs=0, generations=3)
    assert plan(cheap, expensive=True).epochs == 64  # told, not read from the objectives
    assert plan(config(), expensive=False).epochs == 0


def test_budget_of_a_config():
    budget = Budget.of(config(max_seconds=60, max_epochs=30), generations=5, clock=Clock())
    assert (budget.generations, budget.max_evaluations, budget.max_seconds, budget.max_epochs) \
        == (5, None, 60.0, 30)
    assert budget.planned == Plan(evaluations=24, epochs=30, generations=5)
    assert budget.left() == {"generations": 5, "evaluations": None, "seconds": 60.0, "epochs": 30}
    assert budget.exhausted() is None and budget.fraction() == 0.0
    assert budget.binding() == "evaluations"


def _budget(clock, **kwargs):
    limits = {"generations": 3, "max_evaluations": None, "max_seconds": None, "max_epochs": None,
              "planned": Plan(evaluations=16, epochs=64, generations=3), **kwargs}
    return Budget(**limits, clock=clock)


def test_each_budget_can_end_the_run():
    clock = Clock()
    budget = _budget(clock, max_evaluations=10, max_seconds=100.0, max_epochs=40)
    budget.spend(evaluations=4, epochs=16)
    budget.generation_done(0)
    assert budget.exhausted() is None
    budget.spend(evaluations=4, epochs=20)
    assert budget.exhausted() is None and budget.left()["epochs"] == 4
    budget.spend(epochs=4)
    assert budget.exhausted() == "epochs" and budget.left()["epochs"] == 0
    assert budget.fraction() == 1.0 and budget.binding() == "epochs"
    clock.now += 100
    assert budget.exhausted() == "seconds"  # checked before epochs
    budget.spend(evaluations=2)
    assert budget.exhausted() == "evaluations"
    budget.generation_done(3)
    assert budget.exhausted() == "generations"
    assert budget.left() == {"generations": 0, "evaluations": 0, "seconds": 0, "epochs": 0}


def test_generations_alone_end_a_run_without_other_budgets():
    budget = _budget(Clock())
    for generation in range(3):
        budget.generation_done(generation)
        assert budget.exhausted() is None
    budget.generation_done(1)  # never goes back
    budget.generation_done(3)
    assert budget.exhausted() == "generations"


def test_fraction_follows_the_budget_furthest_spent():
    clock = Clock()
    budget = _budget(clock, max_seconds=60.0, max_epochs=100)
    budget.spend(evaluations=4, epochs=16)  # 25% of 16 planned evaluations, 16% of the epochs
    assert budget.fraction() == 0.25 and budget.binding() == "evaluations"
    assert budget.describe() == "4/16 evaluations"
    clock.now += 24  # 40% of the time
    assert budget.fraction() == pytest.approx(0.4) and budget.binding() == "seconds"
    assert budget.describe() == "40% of 60 s"
    budget.spend(epochs=34)  # 50% of the epochs
    assert budget.fraction() == 0.5 and budget.binding() == "epochs"
    assert budget.describe() == "50/100 epochs"


def test_used_amounts_round_trip_through_a_checkpoint():
    import json

    clock = Clock()
    first = _budget(clock, max_seconds=100.0)
    first.spend(evaluations=6, epochs=20)
    first.generation_done(1)
    clock.now += 30.5
    saved = json.loads(json.dumps(first.to_dict()))
    assert saved == {"evaluations": 6, "epochs": 20, "seconds": 30.5, "generations": 1}
    later = Clock(5.0)  # a new process: its monotonic clock starts elsewhere
    second = _budget(later, max_seconds=100.0, used=saved)
    assert second.to_dict() == saved and second.seconds == 30.5
    later.now += 69.5
    assert second.seconds == 100.0 and second.exhausted() == "seconds"
    assert Budget.of(config(), used=saved, clock=later).to_dict()["evaluations"] == 6


@pytest.mark.parametrize("used", [{"evaluations": -1}, {"epochs": 1.5}, {"generations": True},
                                  {"seconds": float("nan")}, {"seconds": -1.0}, {"seconds": "3"}])
def test_bad_used_amounts_are_refused(used):
    with pytest.raises(ValueError, match="budget used"):
        _budget(Clock(), used=used)
    with pytest.raises(TypeError, match="mapping"):
        _budget(Clock(), used=[1, 2])


def test_spending_a_negative_amount_is_refused():
    with pytest.raises(ValueError, match="negative"):
        _budget(Clock()).spend(evaluations=-1)


def test_log_lines_follow_the_binding_budget():
    clock = Clock()
    budget = _budget(clock, max_seconds=60.0)
    out = io.StringIO()
    progress = Progress(live=False, stream=out)
    progress.start(16, budget=budget)
    budget.spend(evaluations=4)
    clock.now += 10  # 4/16 evaluations in 10 s: 30 s more at this pace
    progress.status("generation 1/3")
    clock.now += 14  # 24 s: 40% of the time, more than the 25% of the evaluations
    progress.status("generation 2/3")
    first, second = out.getvalue().splitlines()
    assert re.fullmatch(r"generation 1/3 \[4/16 evaluations, \d+ s, about 30 s left\]", first), first
    assert re.fullmatch(r"generation 2/3 \[40% of 60 s, \d+ s, about 36 s left\]", second), second


def test_log_lines_without_a_budget_are_as_before():
    out = io.StringIO()
    progress = Progress(live=False, stream=out)
    progress.start(10)
    progress.advance(2)
    progress.status("generation 1/5")
    assert re.fullmatch(r"generation 1/5 \[2/10 evaluations, \d+ s, about \d+ s left\]\n",
                        out.getvalue())
    assert progress.left() is None


def test_the_live_bar_names_the_binding_budget():
    from rich.console import Console
    from rich.progress import Progress as Bar

    from evonas.progress import _budget_columns

    clock = Clock()
    budget = _budget(clock, max_seconds=60.0)
    progress = Progress(live=False, stream=io.StringIO())
    progress.start(16, budget=budget)
    screen = io.StringIO()
    bar = Bar(*_budget_columns(progress), auto_refresh=False)
    bar.add_task("generation 1/3", total=16)
    budget.spend(evaluations=4)
    clock.now += 24  # drawn from the budget, not from the task's count
    Console(file=screen, width=120).print(bar.make_tasks_table(bar.tasks))
    assert "40% of 60 s" in screen.getvalue() and "0:00:36" in screen.getvalue(), screen.getvalue()
    live = Progress(live=True)  # the real one starts and stops cleanly
    live.start(16, budget=budget)
    live.advance()
    live.status("generation 2/3")
    live.stop()
