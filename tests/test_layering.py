"""Imports run one way only: genomes <- objectives <- operators <- evonas."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT.parent / "shared" / "tools" / "check_layers.py"


@pytest.mark.skipif(not TOOL.exists(), reason="the shared layering tool is not beside this checkout")
def test_imports_follow_the_layers():
    out = subprocess.run([sys.executable, str(TOOL), str(ROOT)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout
