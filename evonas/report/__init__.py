"""``evonas report``: one self-contained HTML file about one run or several side by side,
that opens offline (nothing is fetched when it is viewed).

It holds an interactive Pareto front (hover: id, operator, values, test accuracy; click: that
individual's section), hypervolume against generation and time, operator counts and success,
the front's lineage, learning curves, genome drawings, and the config with run metadata. Runs
are read only through ``RunView`` (read-only, works on a running run, executes nothing).

>>> write_report(["runs/out/quickstart"])                  # doctest: +SKIP
PosixPath('runs/out/quickstart/report/index.html')
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from evonas.store.rundir import REPORT, OutputError, RunDirError, check_output
from evonas.store.files import write_atomic

__all__ = ["DEFAULT_NAME", "write_report"]

DEFAULT_NAME = "evonas-report.html"  # several runs and no ``out``: in the current directory


def write_report(run_dirs: Sequence[str | Path], out: str | Path | None = None, *,
                 force: bool = False) -> Path:
    """Write the report of ``run_dirs`` and return its path. ``out`` None: one run's goes to
    ``<run>/report/index.html`` (replaced when made again), several runs' to
    ``evonas-report.html`` here. An ``out`` that exists is refused without ``force``, and one
    inside a run directory anywhere but its ``report/`` folder always (``OutputError``); a run
    that cannot be read raises ``RunDirError``."""
    paths = [Path(p) for p in run_dirs]
    if not paths:
        raise OutputError("name at least one run directory to report on")
    for path in paths:
        if not path.is_dir():
            raise RunDirError(f"{str(path)!r} is not a run directory (no such folder)")
    if out is None and len(paths) == 1:
        target, replace = paths[0] / REPORT / "index.html", True
    else:
        target, replace = Path(DEFAULT_NAME if out is None else out), force
    if target.suffix.lower() not in (".html", ".htm"):
        raise OutputError(f"cannot write the report to {str(target)!r}: the name must end in .html")
    for path in paths:
        check_output(path, target, force=replace, report=True)
    try:
        import plotly  # noqa: F401  (checked before the runs are read: a clear message)
    except ImportError:
        raise OutputError("the HTML report needs plotly: pip install plotly") from None
    from .page import render
    from .runs import load_runs

    text = render(load_runs(paths))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, text.encode("utf-8"), sync=False)  # derived: rebuilt at will
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
    return target
