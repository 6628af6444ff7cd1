"""The adaptive operator portfolio: adaptive pursuit on hypervolume-improvement credits.

Unit level (issue 14's bar): three synthetic operators whose children succeed with probability
0.1, 0.3 and 0.6 (credit 1 on success, else 0), ten children per generation drawn from the
portfolio's probabilities as the strategy draws them. Over 30 seeds the best takes at least 70 %
of the slots among the first 100 children once it is found, no operator falls below ``p_min``,
and after the rates are swapped the new best leads again within 100 children.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pymoo.indicators.hv import HV

from evonas.search.portfolio import REFERENCE, Portfolio, hv_credits

NAMES = ("a", "b", "c")
BATCH = 10  # children per generation
SEEDS = 30


def _simulate(seed: int, rates: tuple[float, ...], generations: int, *, swap_at: int | None = None,
              portfolio: Portfolio | None = None):
    """Drive a portfolio with Bernoulli credits; the operator drawn for every slot, and the
    probabilities after each generation."""
    rng = np.random.default_rng(seed)
    portfolio = portfolio or Portfolio(dict.fromkeys(NAMES, 1.0))
    rates = list(rates)
    slots, history = [], []
    for g in range(generations):
        if g == swap_at:
            rates = rates[::-1]
        p = np.array(list(portfolio.probabilities().values()))
        drawn = rng.choice(len(NAMES), size=BATCH, p=p / p.sum())
        slots += drawn.tolist()
        portfolio.credit([(NAMES[k], float(rng.random() < rates[k])) for k in drawn])
        history.append(portfolio.probabilities())
    return np.array(slots), history


def test_the_best_of_three_synthetic_operators_gets_most_slots_within_100_children():
    shares, leads = [], []
    for seed in range(SEEDS):
        slots, history = _simulate(seed, (0.1, 0.3, 0.6), 10)
        shares.append(float(np.mean(slots[50:100] == 2)))  # children 51-100
        leads.append(max(history[-1], key=history[-1].get) == "c")
    assert np.mean(shares) >= 0.7, shares
    assert np.mean(leads) >= 0.8, leads  # the best leads after 100 children in most seeds
    uniform = 1 / 3
    assert np.mean(shares) > 2 * uniform


def test_after_the_rates_are_swapped_the_new_best_leads_again_within_100_children():
    leads, shares = [], []
    for seed in range(SEEDS):
        slots, history = _simulate(seed, (0.1, 0.3, 0.6), 20, swap_at=10)
        leads.append(max(history[-1], key=history[-1].get) == "a")
        shares.append(float(np.mean(slots[150:200] == 0)))
    assert np.mean(leads) >= 0.8, leads
    assert np.mean(shares) >= 0.6, shares


@settings(max_examples=60, deadline=None)
@given(p_min=st.floats(0.0, 0.3), alpha=st.floats(0.01, 1.0), beta=st.floats(0.01, 1.0),
       weights=st.lists(st.floats(0.01, 100.0), min_size=3, max_size=3),
       credits=st.lists(st.tuples(st.sampled_from(NAMES + ("other",)), st.floats(0.0, 5.0)),
                        max_size=80))
def test_no_operator_falls_below_p_min_and_the_weights_sum_to_one(p_min, alpha, beta, weights,
                                                                  credits):
    portfolio = Portfolio(dict(zip(NAMES, weights)), p_min=p_min, alpha=alpha, beta=beta)
    for pair in credits:
        portfolio.credit([pair])
        p = np.array(list(portfolio.probabilities().values()))
        assert p.min() >= p_min - 1e-12 and p.max() <= portfolio.p_max + 1e-12
        assert abs(p.sum() - 1) < 1e-9


def test_the_configured_weights_are_the_starting_point():
    portfolio = Portfolio({"a": 3.0, "b": 1.0}, p_min=0.1)
    assert portfolio.probabilities() == pytest.approx({"a": 0.1 + 0.8 * 0.75, "b": 0.1 + 0.8 * 0.25})
    assert Portfolio({"a": 1.0, "b": 1.0}).probabilities() == {"a": 0.5, "b": 0.5}


def test_a_saved_and_restored_portfolio_continues_exactly():
    a, _ = _simulate(1, (0.1, 0.3, 0.6), 6)
    straight = Portfolio(dict.fromkeys(NAMES, 1.0))
    _simulate(1, (0.1, 0.3, 0.6), 6, portfolio=straight)
    restored = Portfolio(dict.fromkeys(NAMES, 1.0))
    restored.load_state(json.loads(json.dumps(straight.state())))
    assert restored.probabilities() == straight.probabilities()
    for p in (straight, restored):
        p.credit([("a", 1.0), ("b", 0.0), ("c", 0.25)])
    assert restored.state() == straight.state()


def test_bad_settings_are_refused_with_their_names():
    with pytest.raises(ValueError, match="'p_min'.*1 / 3"):
        Portfolio(dict.fromkeys(NAMES, 1.0), p_min=0.34)
    with pytest.raises(ValueError, match="'beta'"):
        Portfolio(dict.fromkeys(NAMES, 1.0), beta=0)
    with pytest.raises(ValueError, match="> 0"):
        Portfolio({"a": 0.0})


# ---------------------------------------------------------------- credits
def test_a_child_is_credited_with_its_exact_hypervolume_gain_in_the_normalised_space():
    front = np.array([[0.0, 4.0], [2.0, 2.0], [4.0, 0.0]])
    child = np.array([1.0, 1.0])  # fills the corner between the first two points
    dominated = np.array([3.0, 3.0])
    credits = hv_credits(front, [child, dominated, None])
    # normalised by the span [0, 4]: the front is (0, 1), (0.5, 0.5), (1, 0) and the child
    # (0.25, 0.25); it newly dominates [0.25, 0.5) x [0.25, 1) and [0.5, 1) x [0.25, 0.5):
    # 0.25 * 0.75 + 0.5 * 0.25 = 0.3125
    scaled = lambda F: np.asarray(F) / 4  # noqa: E731
    hv = HV(ref_point=np.full(2, REFERENCE))
    want = hv(scaled(np.vstack([front, child]))) - hv(scaled(front))
    assert credits[0] == pytest.approx(want, abs=1e-12) and credits[0] == pytest.approx(0.3125)
    assert credits[1] == 0.0 and credits[2] == 0.0


def test_credits_do_not_depend_on_an_objectives_unit():
    rng = np.random.default_rng(0)
    front, children = rng.random((6, 2)), [rng.random(2) for _ in range(5)]
    scale = np.array([1.0, 1000.0])
    assert hv_credits(front, children) == pytest.approx(
        hv_credits(front * scale, [c * scale for c in children]), abs=1e-12)


def test_one_objective_credits_the_improvement_of_the_best():
    front = np.array([[0.5]])
    got = hv_credits(front, [np.array([0.3]), np.array([0.7]), np.array([0.5])])
    assert got == pytest.approx([0.2 / 0.4, 0.0, 0.0])  # span [0.3, 0.7]
    assert hv_credits(np.zeros((0, 1)), [np.array([0.1])]) == [0.0]  # nothing to improve on


# ---------------------------------------------------------------- in a run
def _auto_config(table, **search) -> dict:
    return {"name": "auto", "seed": 3,
            "task": {"dataset": "synthetic", "input_shape": [3, 32, 32], "num_classes": 10,
                     "samples": 100},
            "space": {"kind": "nb201"},
            "search": {"population": 5, "offspring": 5, "generations": 4, "operators": "auto",
                       **search},
            "objectives": [{"name": "tabular", "path": str(table), "value_column": "acc"},
                           {"name": "params"}]}


def test_operators_auto_adapts_the_mix_of_every_operator_that_applies_and_shows_it(tmp_path):
    from click.testing import CliRunner

    import operators
    from evonas import Search, engine
    from evonas.cli import main
    from evonas.store.journal import load
    from tests.nb201 import synthetic_table

    table = synthetic_table(tmp_path / "table.csv")
    run = tmp_path / "run"
    with Search(_auto_config(table), run_dir=run) as search:
        mixed = list(search.strategy.proposers)
        # nb201 is fixed: no morphism or crossover applies (other tests may register more)
        assert mixed == operators.applicable(search.r.space, trains=False), mixed
        assert {"mutate", "random", "bayesian", "rl"} <= set(mixed), mixed
        assert not set(mixed) & {*operators.morphisms.names(), "crossover"}, mixed
        engine.drive(search)
        final = search.strategy.mix()
    lines = [line for line in load(run / "journal.jsonl").lines if line["event"] == "operators"]
    assert [line["generation"] for line in lines] == list(range(5))
    assert lines[0]["weights"] == {n: round(1 / len(mixed), 6) for n in mixed}
    assert lines[-1]["weights"] == {k: round(v, 6) for k, v in final.items()}
    assert final != lines[0]["weights"] and min(final.values()) >= 0.05 - 1e-12  # it moved

    shown = CliRunner().invoke(main, ["front", str(run), "--operators", "--format", "json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["weights"] == {str(line["generation"]): line["weights"]
                                                   for line in lines}
    table_out = CliRunner().invoke(main, ["front", str(run), "--operators"])
    assert "operator weights after each generation" in table_out.output
    child = next(line["id"] for line in load(run / "journal.jsonl").lines
                 if line["event"] == "evaluated" and line.get("generation", 0) > 0)
    doc = json.loads(CliRunner().invoke(main, ["show", str(run), str(child), "--format",
                                               "json"]).output)
    assert doc["operator_weights"] == [[line["generation"], line["weights"][doc["operator"]]]
                                       for line in lines]


@pytest.mark.parametrize("search, key, message", [
    ({"operators": "all"}, "search.operators", "auto"),
    ({"operators": {"mutate": 1, "random": 1, "rl": 1}, "portfolio": {"p_min": 0.4}},
     "search.portfolio.p_min", "below 1 / 3"),
    ({"portfolio": {"rule": "bandit"}}, "search.portfolio.rule", "pursuit"),
    ({"portfolio": {"p_min": 0.3}}, "search.portfolio.p_min", "operators for the nb201 space"),
])
def test_a_bad_portfolio_is_refused_naming_its_key(tmp_path, search, key, message):
    from evonas.config import ConfigError, parse
    from evonas.resolve import resolve
    from tests.nb201 import synthetic_table

    table = synthetic_table(tmp_path / "table.csv")
    with pytest.raises(ConfigError) as caught:
        resolve(parse(_auto_config(table, **search)))
    assert any(where == key and message in text for where, text in caught.value.issues), \
        caught.value.issues


def test_validate_names_the_operators_auto_will_mix(tmp_path):
    from click.testing import CliRunner

    from evonas.cli import main
    from tests.nb201 import synthetic_table

    conf = _auto_config(synthetic_table(tmp_path / "table.csv"))
    (tmp_path / "auto.yaml").write_text(yaml.safe_dump(conf))
    out = CliRunner().invoke(main, ["validate", str(tmp_path / "auto.yaml")])
    assert out.exit_code == 0, out.output
    line = next(x for x in out.output.splitlines() if x.startswith("# operators"))
    # a tabular run trains nothing: gradient, which trains to propose, is left out
    assert "mutate 1, random 1, bayesian 1, rl 1" in line and "gradient" not in line, line
