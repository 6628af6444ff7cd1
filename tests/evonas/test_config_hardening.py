"""A config is untrusted input (issue 11, 3.6-3.8): it cannot exhaust memory through YAML
aliases, size or depth, an error message stays small whatever the input, overrides reach list
entries, a config that validates can start, and ``dispatch.security`` is checked."""

from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from evonas.cli import main
from evonas.config import ConfigError, load, parse, quickstart

ROOT = Path(__file__).resolve().parents[2]


def _validate(*args: str):
    return CliRunner().invoke(main, ["validate", *args])


def _laughs(levels: int, key: str = "population") -> str:
    """A "billion laughs": each anchor lists the one before nine times; ``search.<key>`` uses
    the last, which expands to 9**levels strings."""
    anchors = ['    x0: &x0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    anchors += [f"    x{i}: &x{i} [" + ", ".join([f"*x{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return ("name: laughs\nobjectives: [{name: params}]\nsearch:\n  anchors:\n"
            + "\n".join(anchors) + f"\n  {key}: *x{levels - 1}\n")


def test_a_billion_laughs_is_refused_with_a_short_message(tmp_path):
    file = tmp_path / "laughs.yaml"
    file.write_text(_laughs(6))  # 444 bytes that expand to 531,441 strings
    assert file.stat().st_size < 1000
    result = _validate(str(file))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "search: expands to more than 2,000,000 values and characters" in result.output
    assert len(result.output) < 1000, len(result.output)  # was 3.8 MB


def test_aliases_under_the_limit_in_a_typed_key_echo_a_capped_value(tmp_path):
    file = tmp_path / "laughs.yaml"
    file.write_text(_laughs(5))  # 59,049 strings: allowed in size, wrong in type
    result = _validate(str(file))
    assert result.exit_code == 2 and "search.population:" in result.output
    assert len(result.output) < 2000, len(result.output)  # was 400 kB


def test_self_referencing_and_deep_documents_are_refused(tmp_path):
    file = tmp_path / "loop.yaml"
    file.write_text("objectives: [{name: params}]\ntask:\n  dataset: digits\n  fraction: &a [*a]\n")
    result = _validate(str(file))
    assert result.exit_code == 2 and "task: nests deeper than 32 levels" in result.output
    deep = tmp_path / "deep.yaml"
    deep.write_text("objectives: [{name: params}]\ntask: {dataset: digits, fraction: "
                    + "[" * 200 + "]" * 200 + "}\n")
    result = _validate(str(deep))
    assert result.exit_code == 2 and "task: nests deeper" in result.output
    assert "Traceback" not in result.output


def test_size_is_checked_by_parse_itself():
    data = quickstart()
    shared = ["x" * 100] * 100
    data["task"]["blob"] = [shared] * 1000  # 10**7 characters once expanded
    with pytest.raises(ConfigError, match="expands to more than"):
        parse(data)


def test_a_config_file_over_a_megabyte_is_refused_unread(tmp_path):
    file = tmp_path / "big.yaml"
    file.write_text((ROOT / "runs/quickstart.yaml").read_text() + "#" + "x" * 1_100_000 + "\n")
    result = _validate(str(file))
    assert result.exit_code == 2 and "larger than 1,000,000 bytes" in result.output


@pytest.mark.parametrize("content, words", [
    (b"name: caf\xe9\n", "not UTF-8 text"),
    (b"seed: 2024-13-45\n", "not valid YAML"),  # PyYAML raises a ValueError for the date
])
def test_files_that_yaml_cannot_read_exit_2(tmp_path, content, words):
    file = tmp_path / "bad.yaml"
    file.write_bytes(content)
    result = _validate(str(file))
    assert result.exit_code == 2 and words in result.output and "Traceback" not in result.output


def test_long_keys_values_and_paths_are_cut_in_messages(tmp_path):
    data = quickstart()
    data["task"]["k" * 20_000] = "v" * 20_000
    data["search"]["operators"] = {"o" * 20_000: 1.0}
    file = tmp_path / "long.yaml"
    file.write_text(yaml.safe_dump(data))
    result = _validate(str(file))
    assert result.exit_code == 2 and "unknown option" in result.output
    assert len(result.output) < 3000, len(result.output)
    missing = _validate(str(tmp_path / ("m" * 5000)))  # a file name too long for the OS
    assert missing.exit_code == 2 and len(missing.output) < 1000 and "Traceback" not in missing.output
    error = ConfigError([("p" * 10_000, "m" * 100_000)])
    assert len(str(error)) < 2500


def test_long_operator_options_are_cut_in_messages(tmp_path):
    data = quickstart()
    data["search"]["operators"] = {"mutate": {"o" * 20_000: "v" * 20_000},
                                   "deepen": {"weight": 2, "w" * 20_000: [1] * 20_000}}
    file = tmp_path / "long.yaml"
    file.write_text(yaml.safe_dump(data))
    result = _validate(str(file))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "search.operators.mutate" in result.output and "search.operators.deepen" in result.output
    assert len(result.output) < 3000, len(result.output)
    data["search"]["operators"] = {"deepen": {"weight": 2, 7: 1}}  # YAML keys need not be strings
    file.write_text(yaml.safe_dump(data))
    result = _validate(str(file))
    assert result.exit_code == 2 and "search.operators.deepen" in result.output, result.output


def test_budgets_and_operator_entries_through_overrides():
    quick = str(ROOT / "runs/quickstart.yaml")
    for setting, words in [("search.max_seconds=.inf", "search.max_seconds: Input should be a finite"),
                           ("search.max_seconds=1 hour", "search.max_seconds: Input should be a valid"),
                           ("search.max_epochs=-3", "search.max_epochs: Input should be greater"),
                           ("search.operators.mutate=[1, 2]", "search.operators.mutate: an operator's"),
                           ("search.operators.mutate.weight=0", "search.operators.mutate.weight: weight"),
                           ("search.operators.mutate.depth=2", "search.operators.mutate.depth: unknown")]:
        result = _validate(quick, "--set", setting)
        assert result.exit_code == 2 and words in result.output, (setting, result.output)
        assert "Traceback" not in result.output
    config = load(None, ["search.max_seconds=90", "search.max_epochs=200"])
    assert (config.search.max_seconds, config.search.max_epochs) == (90.0, 200)


def test_overrides_reach_list_entries_by_their_dotted_key():
    config = load(None, ["objectives[0].time_penalty=0.5"])
    assert config.objectives[0].options() == {"time_penalty": 0.5}
    result = _validate(str(ROOT / "runs/quickstart.yaml"), "--set", "objectives[0].time_penalty=.nan")
    assert result.exit_code == 2 and "objectives[0].time_penalty:" in result.output
    result = _validate(str(ROOT / "runs/quickstart.yaml"), "--set", "objectives[7].time_penalty=1")
    assert result.exit_code == 2 and "objectives has 2 entries" in result.output


def test_run_refuses_a_space_that_cannot_draw_before_writing_the_run(tmp_path):
    target = tmp_path / "run"
    result = CliRunner().invoke(main, ["run", "--quiet", "--run-dir", str(target),
                                       "--set", "space.max_params=10"])
    assert result.exit_code == 2, result.output
    assert "space.max_params:" in result.output and "Traceback" not in result.output
    assert not target.exists()


def test_huge_class_counts_from_an_npz_are_refused_at_validate(tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, x=np.random.default_rng(0).normal(size=(40, 2, 8)), y=np.arange(40) % 2)
    data = quickstart() | {"task": {"dataset": "npz", "path": str(path), "num_classes": 10**9}}
    file = tmp_path / "c.yaml"
    file.write_text(yaml.safe_dump(data))
    result = _validate(str(file))
    assert result.exit_code == 2 and "task.num_classes:" in result.output and "100,000" in result.output


def test_a_lying_npz_header_exits_2_naming_the_file(tmp_path):
    import io
    import zipfile

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False,
                                                  "shape": (2**37,)})  # 128 GiB declared
    labels = io.BytesIO()
    np.save(labels, np.arange(4) % 2)
    path = tmp_path / "lie.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x.npy", header.getvalue() + b"1234")
        archive.writestr("y.npy", labels.getvalue())
    data = quickstart() | {"task": {"dataset": "npz", "path": str(path)}}
    file = tmp_path / "c.yaml"
    file.write_text(yaml.safe_dump(data))
    result = _validate(str(file))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "task.path:" in result.output and "lie.npz" in result.output
    assert "declares shape (137438953472,)" in result.output


def test_dask_security_is_checked_and_kept(tmp_path):
    ca, cert = tmp_path / "ca.pem", tmp_path / "client.pem"
    ca.write_text("ca")
    cert.write_text("cert")
    data = quickstart()
    data["dispatch"] = {"backend": "dask", "scheduler": "tls://10.0.0.1:8786",
                        "security": {"ca_file": str(ca), "client_cert": str(cert)}}
    config = parse(data)
    security = config.dispatch.security
    assert (security.ca_file, security.client_cert, security.client_key) == (str(ca), str(cert), None)
    assert security.require_encryption is True and security.missing() == []
    assert parse(config.to_dict()) == config  # survives the run folder's config.yaml
    data["dispatch"]["security"]["require_encryption"] = "yes"
    with pytest.raises(ConfigError, match="boolean"):
        parse(data)
    data["dispatch"] = {"scheduler": "tls://h:8786"}  # tls without security: dask's own config
    assert parse(data).dispatch.security is None


def test_missing_certificate_files_are_found_by_validate_not_by_inspection(tmp_path):
    cert = tmp_path / "client.pem"
    cert.write_text("cert")
    data = quickstart()
    data["dispatch"] = {"scheduler": "tls://h:8786",
                        "security": {"ca_file": str(tmp_path / "gone.pem"), "client_cert": str(cert),
                                     "client_key": "~/no/such.key"}}
    assert parse(data).dispatch.security.client_key == "~/no/such.key"  # a finished run stays readable
    file = tmp_path / "c.yaml"
    file.write_text(yaml.safe_dump(data))
    result = _validate(str(file))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "dispatch.security.ca_file: file" in result.output and "gone.pem" in result.output
    assert "dispatch.security.client_key: file '~/no/such.key' does not exist" in result.output


def test_a_key_written_twice_is_refused_at_its_key_with_its_lines(tmp_path):
    quick = (ROOT / "runs/quickstart.yaml").read_text()
    file = tmp_path / "twice.yaml"
    file.write_text(quick + "seed: 5\n")
    first = quick.splitlines().index("seed: 0") + 1
    last = len(quick.splitlines()) + 1
    result = _validate(str(file))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert (f"  seed: key 'seed' is written twice in {file} (lines {first} and {last})"
            in result.output), result.output
    file.write_text(quick.replace("  population: 8\n", "  population: 8\n  population: 2\n"))
    with pytest.raises(ConfigError) as info:
        load(file)
    assert list(dict(info.value.issues)) == ["search.population"]
    # in an override's value, and in a list entry, with the override's key above it
    for setting, key in [("search.operators={mutate: 1, mutate: 2}", "search.operators.mutate"),
                         ("objectives[1]={name: params, name: flops}", "objectives[1].name")]:
        result = _validate(str(ROOT / "runs/quickstart.yaml"), "--set", setting)
        assert result.exit_code == 2 and f"  {key}: key " in result.output, (setting, result.output)
        assert "is written twice in the value of --set" in result.output
    # a merge (<<) brings keys in that the mapping may override: that is not writing one twice
    file.write_text("objectives: [{name: params}]\nsearch:\n  <<: {population: 4, offspring: 4}\n"
                    "  population: 6\n")
    assert load(file).search.population == 6
    # PyYAML's own safe loader is left as it was
    assert yaml.safe_load("a: 1\na: 2\n") == {"a": 2}


def test_duplicate_keys_are_found_without_expanding_aliases(tmp_path):
    file = tmp_path / "laughs.yaml"
    file.write_text(_laughs(6) + "name: again\nname: twice\n")
    result = _validate(str(file))
    assert result.exit_code == 2 and "  name: key 'name' is written twice" in result.output, result.output
    assert len(result.output) < 1000


def test_schema_messages_name_the_key_in_the_configs_words():
    quick = str(ROOT / "runs/quickstart.yaml")
    result = _validate(quick, "--set", "objectives=[val_error, params]")
    assert result.exit_code == 2 and "ObjectiveConfig" not in result.output, result.output
    assert "  objectives[0]: an objective is a mapping: write {name: val_error}" in result.output
    assert "  objectives[1]: an objective is a mapping: write {name: params}" in result.output
    result = _validate(quick, "--set", "training=5")
    assert result.exit_code == 2 and "  training: must be a mapping of keys, got 5" in result.output
    assert "TrainingConfig" not in result.output
    # YAML reads {mutate:1} as the key 'mutate:1' with no value
    result = _validate(quick, "--set", "search.operators={mutate:1}")
    assert result.exit_code == 2 and "  search.operators.mutate:1: " in result.output, result.output
    assert "put a space after the colon (mutate: 1)" in result.output
    assert "Input should be 'auto'" not in result.output
    # a weight of 0 is one problem, reported once, at its key
    for setting, key in [("search.operators.mutate=0", "search.operators.mutate"),
                         ("search.operators.mutate.weight=0", "search.operators.mutate.weight")]:
        result = _validate(quick, "--set", setting)
        issues = [line for line in result.output.splitlines() if line.startswith("  ")]
        assert result.exit_code == 2 and issues == [
            f"  {key}: weight must be > 0 and <= 1e+06, got 0.0"], (setting, result.output)
    # a value of the wrong type entirely still lists both forms
    result = _validate(quick, "--set", "search.operators=5")
    assert "search.operators: Input should be 'auto'" in result.output
    assert "Input should be a valid dictionary" in result.output
