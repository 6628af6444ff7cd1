"""A small run on digits (a few seconds) driven through the command line in a child process,
with hooks that stop it inside a write, and what must match between two runs of it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

SMALL = {
    "name": "small", "seed": 3,
    "task": {"dataset": "digits", "fraction": 0.5},
    "space": {"kind": "multibranch", "channels": [4, 8], "max_blocks": 2},
    "search": {"population": 4, "offspring": 4, "generations": 5,
               "operators": {"deepen": 1, "widen": 1, "add_skip": 1, "shrink": 0.5, "mutate": 1,
                             "random": 0.5}},
    "objectives": [{"name": "val_error"}, {"name": "params"}],
    "training": {"epochs": 2, "batch_size": 64, "early_ranking": {"rungs": [1, 2], "keep": 0.5},
                 "repair_steps": 5},
    "checkpoints": {"keep": 3},
    "dispatch": {"backend": "inline"},  # fast; the kill test also runs it on worker processes
}
WORKERS = ("--set", "dispatch.backend=local", "--set", "dispatch.workers_per_device=2")
# smaller still (a few seconds in-process): for tests that copy and damage a finished run
TINY = {**SMALL, "name": "tiny", "task": {"dataset": "digits", "fraction": 0.3},
        "search": {**SMALL["search"], "population": 3, "offspring": 3, "generations": 3},
        "checkpoints": {"keep": 5}}

# Runs the CLI in a child process; EVONAS_TEST_PAUSE makes it stop inside a write (half a file
# written, fsynced) and wait there to be killed, so those moments are hit for certain.
DRIVER = r"""
import os, sys, time
from pathlib import Path
pause, marker = os.environ.get("EVONAS_TEST_PAUSE"), os.environ.get("EVONAS_TEST_MARKER")

def hold():
    Path(marker).touch()
    time.sleep(600)

if pause == "checkpoint":  # inside state.json of the third checkpoint
    from evonas.store import checkpoint
    real, seen = checkpoint._write_synced, []
    def write(path, data, **kw):
        if path.name == "state.json" and len(seen) == 2:
            real(path, data[: len(data) // 2], **kw); hold()
        seen.append(path.name) if path.name == "state.json" else None
        real(path, data, **kw)
    checkpoint._write_synced = write
elif pause == "weights":  # a state file written, its journal line not yet
    from evonas.store import recorder
    real, calls = recorder.write_atomic, []
    def save(path, data):
        real(path, data); calls.append(1)
        if len(calls) == 9: hold()
    recorder.write_atomic = save
elif pause == "journal":  # half a journal line written
    from evonas.store import journal
    real, calls = journal.append, []
    def append(path, event):
        calls.append(1)
        if len(calls) == 14:
            with open(path, "a") as f:
                f.write('{"event":"evaluated","id":'); f.flush(); os.fsync(f.fileno())
            hold()
        real(path, event)
    journal.append = append
from evonas.cli import main
sys.exit(main())
"""


def cli(*args: str, env: dict | None = None, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", DRIVER, *args], env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def lines(run: Path) -> list[dict]:
    path = run / "journal.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def outcome(run: Path) -> dict:
    """What must match between runs: the final population with its values, the front, and every
    evaluation journaled (id, rung) -> values."""
    from evonas.store import checkpoint

    name = (run / "LATEST").read_text().strip()
    doc = checkpoint.read(run / "checkpoints" / name).population
    individuals = {d["id"]: d for d in doc["individuals"]}
    evaluations = [(j["id"], j["rung_epochs"], j["event"], json.dumps(j["objectives"], sort_keys=True))
                   for j in lines(run) if j["event"] in ("evaluated", "failed")]
    return {
        "generation": doc["generation"],
        "population": [(i, individuals[i]["genome"], individuals[i]["record"]["objectives"])
                       for i in doc["population"]],
        "front": (run / "front.csv").read_text(),
        "evaluations": sorted(evaluations),
        "duplicates": len(evaluations) - len({e[:2] for e in evaluations}),
    }


def small_run(root: Path) -> tuple[Path, dict]:
    """Run SMALL uninterrupted in a child process; its run directory and outcome."""
    (root / "small.yaml").write_text(yaml.safe_dump(SMALL))
    run = root / "reference"
    proc = cli("run", str(root / "small.yaml"), "--run-dir", str(run), "--quiet")
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    return run, outcome(run)
