"""Journal integrity: every line carries its checksum, a damaged line is named and never used,
and a resume after random bit flips and truncations either says what it found and ends with the
uninterrupted run's front, or refuses naming the line; it never ends with another front in
silence."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import evonas
from evonas.store import journal
from evonas.cli import main
from evonas.runview import RunView

from tests.evonas.runs import TINY

START = 2  # the fuzzed copies resume from this checkpoint: the last generation comes from the journal


def test_the_started_line_is_read_alone_and_only_when_it_is_sound(tmp_path):
    """``journal.started`` (what ``resume`` reads to find where a run began) returns the first
    line only when it is a whole, checksummed ``started`` event."""
    path = tmp_path / "journal.jsonl"
    assert journal.started(path) is None  # no journal
    first = {"event": "started", "config": {"a": 1}, "cwd": "/somewhere"}
    journal.append(path, first, {"event": "pruned", "id": 3, "epochs": 1})
    assert journal.started(path) == first
    raw = path.read_bytes()
    path.write_bytes(raw.replace(b"/somewhere", b"/elsewhere", 1))  # the checksum catches it
    assert journal.started(path) is None
    path.write_bytes(raw[: raw.index(b"\n")])  # torn: no newline yet
    assert journal.started(path) is None
    path.write_bytes(b'{"event":"pruned","id":3,"epochs":1}\n')  # not a started line
    assert journal.started(path) is None


def test_lines_carry_a_checksum_that_catches_any_change(tmp_path):
    path = tmp_path / "journal.jsonl"
    events = [{"event": "started", "config": {"a": 1}},
              {"event": "pruned", "id": 3, "epochs": 1},
              {"event": "generation", "generation": 0, "evaluations": 2, "population": [0, 1],
               "front": [1]}]
    for event in events:
        journal.append(path, event)
    read = journal.load(path)
    assert read.lines == events and not read.damaged and not read.legacy
    raw = path.read_bytes()
    assert raw.count(b'"sum":"') == 3
    for pos in range(0, len(raw), 7):  # flip one bit at many places: always noticed
        damaged = bytearray(raw)
        damaged[pos] ^= 1 << (pos % 8)
        path.write_bytes(bytes(damaged))
        again = journal.load(path)
        assert again.damaged or again.torn, pos
        assert all(line in events for line in again.lines), pos  # nothing altered gets through


@pytest.mark.parametrize("change, why", [
    (lambda e: {**e, "id": "five"}, "id"),
    (lambda e: {**e, "objectives": [1, 2]}, "objectives"),
    (lambda e: {**e, "state": "coMplete"}, "state"),
    (lambda e: {**e, "weights": "../../elsewhere/x.safetensors"}, "weights"),
    (lambda e: {**e, "weights": "/etc/passwd"}, "weights"),
    (lambda e: {**e, "curve": [[1, 2]]}, "curve"),
    (lambda e: {**e, "curve": [["inf", 0.1, 0.5, 1.0]]}, "curve"),
    (lambda e: {**e, "rung_final": "false"}, "rung_final"),  # truthy if read loosely
    (lambda e: {**e, "id": 5.0}, "id"),
    (lambda e: {**e, "objectives": {"val_error": "nan"}}, "finite"),
])
def test_a_line_with_a_valid_checksum_but_wrong_types_is_damaged(tmp_path, change, why):
    good = {"event": "evaluated", "id": 5, "generation": 0, "genome_hash": "h", "state": "complete",
            "objectives": {"val_error": 0.5}, "epochs": 2, "genome": {}, "curve": [],
            "weights": "weights/5-e2.safetensors"}
    path = tmp_path / "journal.jsonl"
    journal.append(path, good)
    journal.append(path, change(good))  # forged with a correct checksum
    read = journal.load(path)
    assert read.lines == [good]
    assert [d.line for d in read.damaged] == [2] and why in read.damaged[0].reason


def test_a_journal_from_before_checksums_is_read_and_upgraded(tmp_path):
    path = tmp_path / "journal.jsonl"
    path.write_text('{"event":"started","config":{}}\n{"event":"pruned","id":1,"epochs":1}\n')
    read = journal.load(path)
    assert read.legacy and len(read.lines) == 2 and not read.damaged
    journal.quarantine(path, read)
    again = journal.load(path)
    assert not again.legacy and again.lines == read.lines


@pytest.fixture(scope="module")
def fuzz_base(tmp_path_factory):
    """The uninterrupted run, and a copy that stopped after generation START (its later
    checkpoints gone), whose resume takes the last generation from the journal."""
    root = tmp_path_factory.mktemp("fuzz")
    reference = root / "reference"
    evonas.run(TINY, run_dir=reference)
    base = root / "base"
    shutil.copytree(reference, base)
    for folder in (base / "checkpoints").iterdir():
        if int(folder.name.split("-")[1]) > START:
            shutil.rmtree(folder)
    (base / "LATEST").write_text(f"gen-{START:06d}\n")
    return reference, base


def _front_ids(run: Path) -> list[int] | str:
    try:
        return sorted(e.id for e in RunView.load(run).front())
    except Exception as exc:  # noqa: BLE001 - counted as another front, with why
        return f"unreadable: {exc}"


def _resume(run: Path):
    return CliRunner().invoke(main, ["resume", str(run), "--quiet"])


def test_an_undamaged_copy_resumes_to_the_reference_without_training(fuzz_base, tmp_path):
    reference, base = fuzz_base
    copy = tmp_path / "copy"
    shutil.copytree(base, copy)
    before = len(journal.load(copy / "journal.jsonl").lines)
    result = _resume(copy)
    assert result.exit_code == 0, result.output
    assert (copy / "front.csv").read_text() == (reference / "front.csv").read_text()
    lines = journal.load(copy / "journal.jsonl").lines
    assert not [e for e in lines[before:] if e["event"] in ("evaluated", "failed")]


def test_a_run_hashed_by_an_older_scheme_resumes_without_training_again(fuzz_base, tmp_path):
    reference, base = fuzz_base
    copy = tmp_path / "copy"
    shutil.copytree(base, copy)
    shutil.rmtree(copy / "checkpoints")  # everything from the journal, as an old run would
    shutil.rmtree(copy / "individuals")
    (copy / "LATEST").unlink()

    def old(event):  # as an older evonas wrote them: other hashes, no scheme named
        event = {k: v for k, v in event.items() if k != "hash_scheme"}
        if "genome_hash" in event:
            event["genome_hash"] = "0" * 64
        return event

    _rewrite(copy, old)
    before = len(journal.load(copy / "journal.jsonl").lines)
    result = _resume(copy)
    assert result.exit_code == 0, result.output
    assert "hashed again" in result.output
    assert _front_ids(copy) == _front_ids(reference)
    lines = journal.load(copy / "journal.jsonl").lines
    assert not [e for e in lines[before:] if e["event"] in ("evaluated", "failed")]


def test_random_bit_flips_and_truncations_never_change_the_front_in_silence(fuzz_base, tmp_path):
    reference, base = fuzz_base
    front_csv = (reference / "front.csv").read_text()
    front_ids = _front_ids(reference)
    data = (base / "journal.jsonl").read_bytes()
    rng = np.random.default_rng(2026)
    kinds = ["flip"] * 80 + ["truncate"] * 20
    outcomes: dict[str, list[str]] = {}
    for trial, kind in enumerate(kinds):
        copy = tmp_path / f"t{trial}"
        shutil.copytree(base, copy)
        pos = int(rng.integers(len(data)))
        damaged = bytearray(data)
        if kind == "flip":
            damaged[pos] ^= 1 << int(rng.integers(8))
        else:
            damaged = damaged[:pos]
        (copy / "journal.jsonl").write_bytes(bytes(damaged))
        line = data[:pos].count(b"\n") + 1
        result = _resume(copy)
        named = {int(n) for n in re.findall(r"journal\.jsonl line (\d+)", result.output)}
        cut = kind == "truncate" and pos > 0 and data[pos - 1:pos] != b"\n"  # a line cut in two
        found = bool(named & ({line - 1, line, line + 1} if kind == "flip" else {line}))
        if "Traceback" in result.output or result.exception and result.exit_code not in (0, 2):
            outcome = "crashed"
        elif result.exit_code == 2:
            outcome = "refused, naming the line" if named else "refused without naming the line"
        elif result.exit_code != 0:
            outcome = f"exit {result.exit_code}"
        elif (copy / "front.csv").read_text() != front_csv or _front_ids(copy) != front_ids:
            outcome = "another front, " + ("reported" if named else "in silence")
        elif kind == "flip" or cut:
            outcome = "reference front, damage named" if found else "reference front, damage not named"
        else:
            outcome = "reference front (cut at a line end)"
        outcomes.setdefault(outcome, []).append(f"{trial}: {kind} at byte {pos} (line {line})")
        shutil.rmtree(copy)
    counts = {k: len(v) for k, v in outcomes.items()}
    print("journal fuzz outcomes:", counts)
    good = {"refused, naming the line", "reference front, damage named",
            "reference front (cut at a line end)"}
    bad = {k: v[:3] for k, v in outcomes.items() if k not in good}
    assert not bad, (counts, bad)
    assert sum(counts.values()) == 100


def test_damaged_lines_are_moved_aside_and_named_by_the_inspection_commands(fuzz_base, tmp_path):
    reference, base = fuzz_base
    copy = tmp_path / "copy"
    shutil.copytree(reference, copy)
    lines = (copy / "journal.jsonl").read_bytes().split(b"\n")
    lines[3] = lines[3].replace(b'"state":"complete"', b'"state":"coMplete"')
    (copy / "journal.jsonl").write_bytes(b"\n".join(lines))
    shown = CliRunner().invoke(main, ["front", str(copy)])
    assert shown.exit_code == 0 and "journal.jsonl line 4 is damaged" in shown.output, shown.output
    assert _front_ids(copy) == _front_ids(reference)  # what the line held comes from a checkpoint
    resumed = _resume(copy)
    assert resumed.exit_code == 0 and "line 4" in resumed.output, resumed.output
    moved = [json.loads(x) for x in (copy / journal.DAMAGED).read_text().splitlines()]
    assert [m["line"] for m in moved] == [4] and "coMplete" in moved[0]["text"]
    assert not journal.load(copy / "journal.jsonl").damaged
    again = _resume(copy)  # nothing left to report
    assert again.exit_code == 0 and "is damaged" not in again.output, again.output


def _rewrite(run: Path, edit) -> None:
    """Apply ``edit(event) -> event | None`` to every journal line, checksums recomputed (what an
    attacker with write access could do)."""
    out = []
    for event in journal.load(run / "journal.jsonl").lines:
        changed = edit(event)
        if changed is not None:
            out.append(journal.encode(changed) + b"\n")
    (run / "journal.jsonl").write_bytes(b"".join(out))


def test_journal_paths_outside_the_run_are_never_read_or_deleted(fuzz_base, tmp_path):
    reference, base = fuzz_base
    copy = tmp_path / "run"
    shutil.copytree(base, copy)
    lines = journal.load(copy / "journal.jsonl").lines
    last = max(e["generation"] for e in lines if e["event"] == "evaluated")
    promoted = {e["id"] for e in lines if e["event"] == "evaluated" and e.get("rung_epochs") == 2}
    rung1 = next(e for e in lines if e["event"] == "evaluated" and e["generation"] == last
                 and not e["rung_final"] and e["id"] in promoted)
    elsewhere = tmp_path / "elsewhere" / "x.safetensors"
    elsewhere.parent.mkdir()
    shutil.copy(copy / rung1["weights"].replace("-e1", "-e2"), elsewhere)  # a valid state file
    import hashlib

    digest = hashlib.sha256(elsewhere.read_bytes()).hexdigest()
    for bad in ("../elsewhere/x.safetensors", str(elsewhere)):
        run = tmp_path / f"run{len(bad)}"
        shutil.copytree(copy, run)

        def forge(event, bad=bad):
            if event.get("id") == rung1["id"] and event["event"] == "evaluated":
                if event["rung_epochs"] > 1:
                    return None  # as if killed after rung 1: a resume goes on from its weights
                return {**event, "weights": bad, "sha256": digest}
            return event

        _rewrite(run, forge)
        shown = CliRunner().invoke(main, ["show", str(run), str(rung1["id"])])
        assert "damaged" in shown.output and "Traceback" not in shown.output, shown.output
        result = _resume(run)
        assert result.exit_code == 0 and "damaged" in result.output, result.output
        assert elsewhere.exists() and hashlib.sha256(elsewhere.read_bytes()).hexdigest() == digest
        assert (run / "front.csv").read_text() == (reference / "front.csv").read_text()


def test_lines_of_the_wrong_types_are_named_by_front_and_resume_not_crashed_on(fuzz_base, tmp_path):
    reference, base = fuzz_base
    copy = tmp_path / "copy"
    shutil.copytree(base, copy)
    good = next(e for e in journal.load(copy / "journal.jsonl").lines if e["event"] == "evaluated")
    with open(copy / "journal.jsonl", "ab") as f:  # forged, with correct checksums
        for bad in ({**good, "id": "five"}, {**good, "objectives": [1, 2]},
                    {"event": "generation", "generation": "x", "population": 1, "front": None}):
            f.write(journal.encode(bad) + b"\n")
    total = len((copy / "journal.jsonl").read_bytes().splitlines())
    for args in (["front", str(copy)], ["show", str(copy), str(good["id"])],
                 ["resume", str(copy), "--quiet"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0 and "Traceback" not in result.output, result.output
        for number in (total - 2, total - 1, total):
            assert f"journal.jsonl line {number} is damaged" in result.output, (args, result.output)
        if args[0] == "resume":
            assert (copy / "front.csv").read_text() == (reference / "front.csv").read_text()


def _forge_raw(run: Path, number: int, old: bytes, new: bytes) -> None:
    """Replace bytes in journal line ``number`` and sign it again."""
    lines = (run / "journal.jsonl").read_bytes().split(b"\n")
    body = lines[number - 1][:lines[number - 1].rindex(b',"sum":')] + b"}"
    body = body.replace(old, new, 1)
    lines[number - 1] = body[:-1] + b',"sum":"' + journal._digest(body).encode() + b'"}'
    (run / "journal.jsonl").write_bytes(b"\n".join(lines))


def _last_evaluated(run: Path) -> tuple[int, dict]:
    read = journal.load(run / "journal.jsonl")
    return max((n, e) for n, e in zip(read.numbers, read.lines) if e["event"] == "evaluated"
               and e["rung_final"])


@pytest.mark.parametrize("damage", ["nan", "missing objective", "deep", "duplicate"])
def test_forged_lines_never_change_the_front_or_crash_a_reader(fuzz_base, tmp_path, damage):
    reference, base = fuzz_base
    copy = tmp_path / "copy"
    shutil.copytree(base, copy)
    number, line = _last_evaluated(copy)
    if damage == "nan":  # JSON's NaN token: evonas never writes one
        _forge_raw(copy, number, b'"val_error":', b'"val_error":NaN,"was":')
    elif damage == "missing objective":
        _rewrite(copy, lambda e: {**e, "objectives": {}} if e == line else e)
    elif damage == "deep":
        with open(copy / "journal.jsonl", "ab") as f:
            f.write(journal.encode({"event": "note", "x": 1}).replace(b"1", b"[" * 50_000 +
                                                                       b"]" * 50_000) + b"\n")
    else:  # a line repeated at the end: readers must not take the older rung it repeats
        lines = (copy / "journal.jsonl").read_bytes().splitlines(keepends=True)
        first = next(i for i, raw in enumerate(lines) if f'"id":{line["id"]},'.encode() in raw)
        (copy / "journal.jsonl").write_bytes(b"".join(lines) + lines[first])
    for args in (["front", str(copy), "--format", "csv"], ["show", str(copy), str(line["id"])],
                 ["resume", str(copy), "--quiet"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0 and "Traceback" not in result.output, (args, result.output)
        if damage != "duplicate":
            assert "is damaged" in result.output, (args, result.output)
    assert (copy / "front.csv").read_text() == (reference / "front.csv").read_text()
    assert _front_ids(copy) == _front_ids(reference)


def test_resume_says_when_a_journaled_training_state_cannot_be_used(fuzz_base, tmp_path):
    reference, base = fuzz_base
    copy = tmp_path / "copy"
    shutil.copytree(base, copy)
    _, line = _last_evaluated(copy)
    state = copy / line["weights"]
    outside = tmp_path / "outside.safetensors"
    state.rename(outside)
    state.symlink_to(outside)  # the same bytes, but through a link leading out of the run
    result = _resume(copy)
    assert result.exit_code == 0, result.output
    assert f"training state of individual {line['id']}" in result.output, result.output
    assert (copy / "front.csv").read_text() == (reference / "front.csv").read_text()


def test_a_linked_weights_folder_is_never_written_through(fuzz_base, tmp_path):
    _, base = fuzz_base
    copy = tmp_path / "copy"
    shutil.copytree(base, copy)
    victim = tmp_path / "victim"
    (copy / "weights").rename(victim)
    (copy / "weights").symlink_to(victim)
    before = {p.name: p.read_bytes() for p in victim.iterdir()}
    result = _resume(copy)
    assert result.exit_code == 2 and "symbolic link" in result.output, result.output
    assert {p.name: p.read_bytes() for p in victim.iterdir()} == before
