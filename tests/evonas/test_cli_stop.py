"""`evonas run` stopped by SIGTERM (what `timeout` and cluster schedulers send) stops as Ctrl-C
does: the run is journaled as stopped, exit 130 (resume goes on from there, as after Ctrl-C);
an interrupt before the run started exits 130 too, with a message rather than "Aborted!"."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
import yaml
from click.testing import CliRunner

from evonas.cli import main

from tests.evonas.runs import TINY, cli, lines


def test_sigterm_stops_a_run_that_is_journaled_as_stopped(tmp_path):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    run = tmp_path / "run"
    proc = cli("run", str(tmp_path / "tiny.yaml"), "--run-dir", str(run), "--quiet")
    deadline = time.monotonic() + 240
    while proc.poll() is None and time.monotonic() < deadline:
        if any(line["event"] == "evaluated" for line in lines(run)):  # under way
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be sent SIGTERM"
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert f"stopped early; what was done is in {run}" in out, out
    assert "Traceback" not in out
    assert [line["event"] for line in lines(run)][-1] == "stopped"  # as Ctrl-C leaves it


def _sigterm(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGTERM)
    for _ in range(1000):  # the handler raises KeyboardInterrupt in here
        time.sleep(0.01)
    raise AssertionError("SIGTERM did not stop the run")


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                    reason="signal handlers are installed from the main thread only")
@pytest.mark.parametrize("stop", [_sigterm, _interrupt], ids=["sigterm", "ctrl-c"])
def test_a_run_stopped_before_it_started_exits_130_with_a_message(monkeypatch, tmp_path, stop):
    """Stopped while it starts (here: as the engine is entered, before the run directory is
    made): exit 130, a short message, no "Aborted!"; the SIGTERM handler is put back."""
    import evonas.engine

    monkeypatch.setattr(evonas.engine, "run", stop)
    before = signal.getsignal(signal.SIGTERM)
    result = CliRunner().invoke(main, ["run", "--run-dir", str(tmp_path / "run"), "--quiet",
                                       "--set", "search.generations=1"])
    assert result.exit_code == 130, result.output
    assert "stopped before the run started; nothing was written" in result.stderr, result.output
    assert "Aborted" not in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()
    assert signal.getsignal(signal.SIGTERM) is before

