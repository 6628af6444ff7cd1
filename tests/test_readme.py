"""The README is executable documentation: its commands match CI and its example runs."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README, flags=re.S)


def test_readme_opens_with_the_two_fresh_machine_commands_and_ci_runs_them():
    (lang1, run), (lang2, test) = BLOCKS[:2]
    assert lang1 == lang2 == "bash"
    setup = " && ".join(run.strip().split(" && ")[:3])
    assert test.strip() == f"{setup} && pytest"
    ci = (ROOT / ".ci" / "run").read_text()
    install = run.strip().split(" && ")[2]
    assert install in ci and "\npytest\n" in ci
    assert run.strip().split(" && ")[3] in ci  # the main command runs in CI too


def test_readme_python_examples_run(tmp_path, monkeypatch):
    monkeypatch.setenv("EVONAS_CACHE", str(tmp_path))  # the latency table goes here, not to ~
    examples = [body for lang, body in BLOCKS if lang == "python"]
    assert len(examples) >= 2
    for code in examples:
        exec(compile(code, "README.md", "exec"), {})
