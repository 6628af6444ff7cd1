"""`evonas front`, `show` and `export` on a finished small run, and on one still being written;
the operators' accounting on a run directory written by hand."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from evonas.cli import main
from evonas.runview import RunView

from tests.evonas.runs import SMALL, cli, outcome, small_run


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("inspect")
    run, expected = small_run(root)
    return root, run, expected


def invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def not_blank(path) -> bool:
    """A PNG with drawing on it: enough pixels differ from the background."""
    import matplotlib.image as mpimg

    image = mpimg.imread(path)[..., :3]
    return float((np.abs(image - image[0, 0]).sum(-1) > 0.1).mean()) > 0.005


def test_front_formats_agree_with_the_runs_own_front(small, tmp_path):
    _, run, _ = small
    with open(run / "front.csv") as f:  # written by the engine at the last generation
        engine_front = sorted(int(r["id"]) for r in csv.DictReader(f))
    as_json = invoke("front", run, "--format", "json")
    assert as_json.exit_code == 0, as_json.output
    rows = json.loads(as_json.output)
    assert sorted(r["id"] for r in rows) == engine_front
    for r in rows:
        assert {"id", "objectives", "genome_hash", "params", "test_accuracy"} <= set(r)
        assert set(r["objectives"]) == {"val_error", "params"} and 0 <= r["test_accuracy"] <= 1
    # no row of the front is dominated by any complete individual of the run
    view = RunView.load(run)
    F = view.matrix(view.complete)
    for r in rows:
        mine = np.array([r["objectives"]["val_error"], r["objectives"]["params"]])
        assert not np.any(np.all(F <= mine, axis=1) & np.any(F < mine, axis=1))
    as_csv = invoke("front", run, "--format", "csv")
    parsed = list(csv.DictReader(io.StringIO(as_csv.output)))
    assert [int(p["id"]) for p in parsed] == [r["id"] for r in rows]
    table = invoke("front", run, "--plot", tmp_path / "front.png")
    assert table.exit_code == 0 and "Pareto front" in table.output and "test acc" in table.output
    assert not_blank(tmp_path / "front.png")


def test_show_gives_layers_curve_and_lineage_back_to_generation_zero(small, tmp_path):
    _, run, _ = small
    view = RunView.load(run)
    child = max((e for e in view.complete if e.parents), key=lambda e: e.generation)
    graph = ("--graph", tmp_path / "g.png") if shutil.which("dot") else ()  # needs Graphviz
    result = invoke("show", run, child.id, "--format", "json", *graph)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output[: result.output.rindex("}") + 1])
    assert [layer["id"] for layer in doc["layers"]] == child.genome.nodes
    assert sum(layer["num_params"] for layer in doc["layers"]) == child.genome.num_params()
    assert len(doc["curve"]) == doc["epochs"] == SMALL["training"]["epochs"]
    lineage = doc["lineage"]
    ids = {step["id"] for step in lineage}
    assert lineage[0]["id"] == child.id and len(lineage) > 1
    for step in lineage:  # closed under parents; it ends at generation 0 or a fresh sample
        assert set(step["parents"]) <= ids
        assert step["parents"] or (step["operator"], step["generation"]) == ("initial", 0) \
            or step["operator"] == "random"
    assert not graph or not_blank(tmp_path / "g.png")
    text = invoke("show", run, child.id)
    assert text.exit_code == 0 and "lineage" in text.output and "learning curve" in text.output


@pytest.mark.parametrize("suffix", [".pt", ".onnx", ".safetensors"])
def test_exports_reload_and_match_the_runs_model(small, tmp_path, suffix):
    from evonas.export import load_model, sample_batch

    _, run, _ = small
    view = RunView.load(run)
    best = view.front()[0]
    target = tmp_path / f"model{suffix}"
    result = invoke("export", run, best.id, "--to", target)
    assert result.exit_code == 0, result.output
    assert "note:" not in result.output  # complete: trained to the horizon
    x, _ = sample_batch(view, best)  # raw inputs: exports standardise them themselves
    with torch.no_grad():
        expected = load_model(view, best)(view.preprocessing.apply(x))
    if suffix == ".pt":
        got = torch.jit.load(str(target))(x)
    elif suffix == ".onnx":
        ort = pytest.importorskip("onnxruntime")
        session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
        got = torch.from_numpy(session.run(None, {"input": x.numpy()})[0])
    else:  # rebuilt from the export document's genome and the weights, nothing else
        from safetensors.torch import load_file

        from genomes import Genome
        from objectives.tasks import Preprocessing

        document = json.loads(target.with_suffix(".json").read_text())
        net = Genome.from_dict(document["genome"]).build(seed=5)
        net.load_state_dict(load_file(target))
        pre = Preprocessing.from_dict(document["preprocessing"])
        got = net.eval()(pre.apply(x))
    assert torch.allclose(got, expected, atol=1e-5)


def test_inspection_errors_exit_2_with_a_message(small, tmp_path):
    _, run, _ = small
    view = RunView.load(run)
    cases = [
        (("front", tmp_path / "nothing"), "not a run directory"),
        (("show", run, 10_000), "no evaluated individual 10000"),
        (("export", run, view.front()[0].id, "--to", tmp_path / "m.txt"), ".pt, .onnx, .safetensors"),
    ]
    failed = [e for e in view.entries.values() if e.status == "failed"]
    if failed:
        cases.append((("export", run, failed[0].id, "--to", tmp_path / "f.pt"), "no trained weights"))
    for args, message in cases:
        result = invoke(*args)
        assert result.exit_code == 2 and message in result.output, (args, result.output)
        assert "Traceback" not in result.output


def test_a_run_can_be_read_while_it_is_written_without_disturbing_it(small, tmp_path):
    root, _, expected = small
    run = tmp_path / "live"
    proc = cli("run", str(root / "small.yaml"), "--run-dir", str(run), "--quiet")
    reads = 0
    while proc.poll() is None:
        if (run / "config.yaml").exists():
            for args in (("front", run, "--format", "json"), ("front", run, "--format", "csv")):
                result = invoke(*args)
                assert result.exit_code == 0, result.output
                reads += 1
            view = RunView.load(run)
            if view.entries:
                assert invoke("show", run, max(view.entries), "--format", "json").exit_code == 0
        time.sleep(0.05)
    assert proc.returncode == 0 and reads >= 2  # at least one read while it was going
    assert outcome(run) == expected


# ---------------------------------------------------------------- the operators' accounting
COUNTS = {"deepen": {"proposals": 9, "duplicates": 2, "evaluated": 7, "front": 1, "seconds": 0.25},
          "mutate": {"proposals": 5, "duplicates": 0, "evaluated": 5, "front": 2, "seconds": 1.5}}


def hand_made(root, accounting=()):
    """A run directory written line by line: the config, four evaluated individuals of
    generation 0, one child of each operator in generation 1, and ``accounting`` as
    "operators" lines."""
    import yaml

    from evonas.config import parse
    from evonas.store.journal import append
    from genomes import spaces

    config = parse({"name": "hand", "objectives": [{"name": "val_error"}, {"name": "params"}],
                    "search": {"population": 4, "offspring": 2, "generations": 1,
                               "operators": {"deepen": 1, "mutate": {"weight": 2}}}})
    run = root / "hand"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    journal = run / "journal.jsonl"
    append(journal, {"event": "started", "config": config.to_dict(), "preprocessing": None})
    space = spaces.get("chain", input_shape=(1, 8, 8), num_outputs=10)
    rng = np.random.default_rng(0)
    made = [("initial", 0, ())] * 4 + [("deepen", 1, (0,)), ("mutate", 1, (1,))]
    for ident, (operator, generation, parents) in enumerate(made):
        genome = space.sample(rng)
        append(journal, {"event": "evaluated", "id": ident, "generation": generation,
                         "genome_hash": genome.canonical_hash(), "state": "complete",
                         "objectives": {"val_error": 0.5 - 0.05 * ident,
                                        "params": float(genome.num_params())},
                         "epochs": 8, "parents": list(parents), "operator": operator,
                         "genome": genome.to_dict()})
    for line in accounting:
        append(journal, line)
    return run


def test_front_shows_each_operators_totals_from_the_newest_line(tmp_path):
    early = {name: {**c, "proposals": 1} for name, c in COUNTS.items()}
    run = hand_made(tmp_path, [{"event": "operators", "generation": 0, "operators": early},
                               {"event": "operators", "generation": 1, "operators": COUNTS}])
    view = RunView.load(run)
    assert view.operators == COUNTS and not view.notes
    as_json = invoke("front", run, "--format", "json", "--operators")
    assert as_json.exit_code == 0, as_json.output
    doc = json.loads(as_json.output)
    assert doc["operators"] == COUNTS and [r["id"] for r in doc["front"]] == [e.id for e in view.front()]
    assert isinstance(json.loads(invoke("front", run, "--format", "json").output), list)  # as before
    final = {}  # how many of the front's members each operator made ("initial" included)
    for e in view.front():
        final[e.operator] = final.get(e.operator, 0) + 1
    assert doc["in_final_front"] == {"deepen": 0, "mutate": 0, **final}
    table = CliRunner(env={"COLUMNS": "200"}).invoke(main, ["front", str(run), "--operators"])
    assert table.exit_code == 0, table.output
    assert "Pareto front" in table.output and "entered front" in table.output
    assert "in final front" in table.output
    for name, numbers in (("mutate", r"5\W+0\W+5\W+2"), ("deepen", r"9\W+2\W+7\W+1")):
        seconds = re.escape(f"{COUNTS[name]['seconds']:.2f}")
        assert re.search(rf"{name}\W+{numbers}\W+{final.get(name, 0)}\W+{seconds}", table.output), \
            table.output
    if "initial" in final:  # the initial population's share of the front has a row of its own
        assert re.search(rf"initial\W+-\W+-\W+-\W+-\W+{final['initial']}\W+-", table.output)
    plain = invoke("front", run)
    assert "entered front" not in plain.output and "final front" not in plain.output
    refused = invoke("front", run, "--format", "csv", "--operators")
    assert refused.exit_code == 2 and "--operators works with --format table or json" in refused.output


def test_show_gives_the_totals_of_the_operator_that_made_it(tmp_path):
    run = hand_made(tmp_path, [{"event": "operators", "generation": 1, "operators": COUNTS}])
    doc = json.loads(invoke("show", run, 5, "--format", "json").output)
    assert doc["operator"] == "mutate" and doc["operator_totals"] == COUNTS["mutate"]
    assert json.loads(invoke("show", run, 0, "--format", "json").output)["operator_totals"] is None
    text = invoke("show", run, 4)
    assert text.exit_code == 0, text.output
    in_final = sum(e.operator == "deepen" for e in RunView.load(run).front())
    assert f"operator deepen over the run: 9 proposals, 2 duplicates, 7 evaluated, 1 entered the " \
           f"front, {in_final} in the final front, 0.25 s proposing" in text.output
    assert json.loads(invoke("show", run, 4, "--format", "json").output)[
        "operator_in_final_front"] == in_final


def test_a_run_without_accounting_says_so(tmp_path):
    run = hand_made(tmp_path)
    assert RunView.load(run).operators == {}
    result = invoke("front", run, "--operators")
    assert result.exit_code == 0 and "no operator accounting" in result.output
    doc = json.loads(invoke("front", run, "--format", "json", "--operators").output)
    assert doc["operators"] == {}


@pytest.mark.parametrize("counts, where", [
    ({"deepen": {**COUNTS["deepen"], "proposals": -1}}, "operators.deepen.proposals"),
    ({"deepen": {**COUNTS["deepen"], "front": True}}, "operators.deepen.front"),
    ({"deepen": {**COUNTS["deepen"], "seconds": "0.5"}}, "operators.deepen.seconds"),
    ({"deepen": {k: v for k, v in COUNTS["deepen"].items() if k != "evaluated"}},
     "operators.deepen.evaluated"),
    ({"deepen": 3}, "operators.deepen"),
])
def test_a_damaged_accounting_line_is_named_and_skipped(tmp_path, counts, where):
    good = {"event": "operators", "generation": 0, "operators": COUNTS}
    run = hand_made(tmp_path, [good, {"event": "operators", "generation": 1, "operators": counts}])
    view = RunView.load(run)
    assert view.operators == COUNTS  # the newest line that can be read
    assert any("line 9 is damaged" in note and where in note for note in view.notes), view.notes
    result = invoke("front", run, "--operators")
    assert result.exit_code == 0 and "warning: journal.jsonl line 9 is damaged" in result.output


# ---------------------------------------------------------------- slips a new user ran into
def test_a_plot_named_without_a_suffix_is_reported_by_the_file_written(small, tmp_path):
    _, run, _ = small
    result = invoke("front", run, "--plot", tmp_path / "frontX")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "frontX.png").is_file() and not (tmp_path / "frontX").exists()
    assert f"plot: {tmp_path / 'frontX.png'}" in result.output


def test_csv_writes_whole_numbers_as_integers(small):
    _, run, _ = small
    view = RunView.load(run)
    rows = list(csv.DictReader(io.StringIO(invoke("front", run, "--format", "csv").output)))
    assert rows
    for row in rows:
        assert row["params"] == str(view.get(int(row["id"])).params), row  # not "33084.0"
        assert row["epochs"].isdigit() and row["generation"].isdigit()


def test_show_says_the_parameter_count_once(small):
    _, run, _ = small
    best = RunView.load(run).front()[0]
    result = invoke("show", run, best.id)
    assert result.exit_code == 0, result.output
    summary = result.output.splitlines()[1]
    assert f"{best.params:,} parameters" in summary and "params" not in summary, summary


@pytest.mark.parametrize("quiet", [True, False])
def test_resuming_a_finished_run_says_there_is_nothing_to_do(small, tmp_path, quiet):
    import shutil

    _, run, _ = small
    copy = tmp_path / "done"
    shutil.copytree(run, copy)
    result = invoke("resume", copy, *(["--quiet"] if quiet else []))
    assert result.exit_code == 0, result.output
    g = SMALL["search"]["generations"]
    assert result.output.count(f"nothing to do: the run finished at generation {g}; extend it "
                               f"with --generations") == 1, result.output
    assert outcome(copy)["evaluations"] == outcome(run)["evaluations"]  # nothing was redone


# Imports refused in a child process: reading a run needs none of them (they cost about 2 s of a
# read-only command's start; the engine and export import them when they need them).
NO_HEAVY = r"""
import sys, importlib.abc
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("torch", "igraph", "matplotlib", "safetensors", "scipy"):
            raise ImportError("a read-only command imported " + name)
sys.meta_path.insert(0, Refuse())
from evonas.cli import main
main(sys.argv[1:])
"""


@pytest.mark.parametrize("args", [("front", "{run}"), ("front", "{run}", "--format", "json"),
                                  ("show", "{run}", "{ident}"), ("runs", "{root}")])
def test_reading_a_run_imports_no_torch_igraph_or_matplotlib(small, args):
    root, run, _ = small
    ident = RunView.load(run).front()[0].id
    argv = [a.format(run=run, root=root, ident=ident) for a in args]
    done = subprocess.run([sys.executable, "-c", NO_HEAVY, *argv], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (run.name if args[0] == "runs" else str(ident)) in done.stdout  # it did the work


# ---------------------------------------------------------------- read at 80 columns, in words
def test_adaptive_weights_read_whole_at_80_columns_piped(tmp_path):
    """Thirty generations of fourteen operators' weights: every number whole, no line over 80."""
    names = ["deepen", "widen", "add_skip", "widen_kernel", "insert_branch", "remove_layer",
             "shrink", "replace_op", "mutate", "crossover", "random", "bayesian", "rl", "gradient"]
    counts = {n: {"proposals": 1, "duplicates": 0, "evaluated": 1, "front": 0, "seconds": 0.5}
              for n in names}
    rng = np.random.default_rng(1)
    lines = [{"event": "operators", "generation": g, "operators": counts,
              "weights": dict(zip(names, rng.dirichlet(np.ones(len(names))).round(6).tolist()))}
             for g in range(30)]
    run = hand_made(tmp_path, lines)
    result = CliRunner(env={"COLUMNS": "80"}).invoke(main, ["front", str(run), "--operators"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "…" not in out and max(len(line) for line in out.splitlines()) <= 80, out
    last = lines[-1]["weights"]
    row = [line for line in out.splitlines() if line.startswith("│ insert_branch ")][-1]
    assert row.rstrip(" │").endswith(f"{last['insert_branch']:.3f}"), row  # the last generation
    assert "entered" in out and "in final" in out  # the accounting's headings, on two lines
    for name in names:  # every operator's row, name whole, in both tables
        assert sum(line.startswith(f"│ {name} ") for line in out.splitlines()) == 2, name


def test_show_and_front_say_it_in_words(tmp_path):
    """Singular for one, and no "of nothing" for an individual without parents."""
    from evonas.store.journal import append
    from genomes import spaces

    one = {"deepen": {"proposals": 1, "duplicates": 1, "evaluated": 1, "front": 1, "seconds": 0.1}}
    run = hand_made(tmp_path, [{"event": "operators", "generation": 1, "operators": one}])
    genome = spaces.get("chain", input_shape=(1, 8, 8), num_outputs=10).sample(
        np.random.default_rng(9))
    append(run / "journal.jsonl", {  # better than all the others in both: the whole front
        "event": "evaluated", "id": 6, "generation": 1, "genome_hash": genome.canonical_hash(),
        "state": "complete", "objectives": {"val_error": 0.01, "params": 1.0}, "epochs": 1,
        "parents": [0], "operator": "deepen", "genome": genome.to_dict()})
    front = invoke("front", run)
    assert front.exit_code == 0 and ": 1 network (" in front.output, front.output
    initial = invoke("show", run, 0)
    assert initial.exit_code == 0, initial.output
    assert "generation 0, initial (no parents), complete" in initial.output
    assert "nothing" not in initial.output
    child = invoke("show", run, 6).output
    assert "generation 1, deepen of 0, complete" in child and "; 1 epoch;" in child, child
    assert "operator deepen over the run: 1 proposal, 1 duplicate, 1 evaluated, 1 entered the " \
           "front, 1 in the final front" in child, child


def test_exporting_a_pruned_individual_says_it_trained_less(small, tmp_path):
    _, run, _ = small
    view = RunView.load(run)
    pruned = next(e for e in view.entries.values() if e.status == "pruned")
    horizon = SMALL["training"]["epochs"]
    result = invoke("export", run, pruned.id, "--to", tmp_path / "p.pt")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "p.pt").is_file() and "wrote" in result.stdout
    assert f"note: individual {pruned.id} was pruned at {pruned.epochs} of {horizon} epochs" \
        in result.stderr, result.stderr


def test_resume_asking_for_fewer_generations_names_the_flag(small, tmp_path):
    _, run, _ = small
    copy = tmp_path / "done"
    shutil.copytree(run, copy)
    g = SMALL["search"]["generations"]
    result = invoke("resume", copy, "--generations", g - 2, "--quiet")
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == (f"error: --generations: {g - 2} asked for, but the run "
                                     f"already has {g} generations; to extend it, ask for more "
                                     f"than {g}"), result.stderr
    assert "config.yaml" not in result.output
