"""The HTML report of a ~200-individual run: its size (bar: under 5 MB) and how long headless
Chromium takes to open it until every plot is drawn (bar: under 3 s).

    python benchmarks/report_size.py [--population 20] [--generations 9] [--repeats 5]
                                     [--run-dir DIR] [--results /tmp/report_results.md]

The run is the built-in quick start made cheap: digits at ``--fraction``, 1 epoch, no early
ranking, in-process; population + generations x offspring individuals (20 + 9 x 20 = 200).
``--run-dir`` keeps the run (reused when it is already there). The open time is the page's own
``performance.now()`` when the loader has drawn every figure (navigation start to plots drawn),
median over ``--repeats`` fresh pages, with the wall time of ``goto`` to drawn beside it.
Writes the figures as a RESULTS.md section to ``--results``; last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make_run(run: Path, population: int, generations: int, fraction: float) -> float:
    """Run the cheap quick start into ``run``; its wall seconds."""
    sets = {"name": "report-bench", "task.fraction": fraction, "search.population": population,
            "search.offspring": population, "search.generations": generations, "training.epochs": 1,
            "training.early_ranking": "null", "dispatch.backend": "inline"}
    command = [sys.executable, "-m", "evonas.cli", "run", "--run-dir", str(run), "--quiet"]
    for key, value in sets.items():
        command += ["--set", f"{key}={value}"]
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def open_times(path: Path, repeats: int) -> tuple[list[float], list[float], dict[str, int]]:
    """(page's ms to drawn, wall ms from goto to drawn) for each of ``repeats`` fresh pages, and
    the median ms at which plotly.js was unpacked and had run."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    page_ms, wall_ms, marks = [], [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable)
        for _ in range(repeats):
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            start = time.perf_counter()
            page.goto(path.resolve().as_uri())
            while not (state := page.evaluate("document.documentElement.dataset.report")):
                page.wait_for_timeout(10)
            wall_ms.append((time.perf_counter() - start) * 1000)
            if state != "ready" or errors:
                raise SystemExit(f"the report did not draw: {state} {errors}")
            page_ms.append(float(page.evaluate("document.documentElement.dataset.readyMs")))
            marks.append(page.evaluate("Object.fromEntries(performance.getEntriesByType('mark')"
                                       ".map(m => [m.name, m.startTime]))"))
            page.close()
        browser.close()
    steps = {name: round(statistics.median(m.get(name, float("nan")) for m in marks))
             for name in ("evonas:unpacked", "evonas:plotly")}
    return page_ms, wall_ms, steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--population", type=int, default=20, help="also the offspring per generation")
    ap.add_argument("--generations", type=int, default=9)
    ap.add_argument("--fraction", type=float, default=0.2, help="of digits")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--run-dir", type=Path, default=None, help="keep (or reuse) the run here")
    ap.add_argument("--results", type=Path, default=Path("/tmp/report_results.md"))
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from evonas.report import write_report
    from evonas.runview import RunView

    scratch = None
    run = args.run_dir
    if run is None:
        scratch = tempfile.mkdtemp(prefix="report-bench-")
        run = Path(scratch) / "run"
    run_seconds = None
    if not (run / "journal.jsonl").exists():
        run_seconds = round(make_run(run, args.population, args.generations, args.fraction), 1)
    view = RunView.load(run)
    start = time.perf_counter()
    report = write_report([run])
    write_seconds = time.perf_counter() - start
    size = report.stat().st_size
    page_ms, wall_ms, steps = open_times(report, args.repeats)
    result = {
        "individuals": len(view.entries), "complete": len(view.complete), "front": len(view.front()),
        "run_seconds": run_seconds, "write_seconds": round(write_seconds, 2),
        "bytes": size, "mb": round(size / 1e6, 3), "size_bar_mb": 5.0, "size_ok": size < 5e6,
        "open_ms_median": round(statistics.median(page_ms)), "open_ms_max": round(max(page_ms)),
        "goto_to_drawn_ms_median": round(statistics.median(wall_ms)), "open_bar_ms": 3000,
        "plotly_unpacked_ms": steps["evonas:unpacked"], "plotly_ran_ms": steps["evonas:plotly"],
        "open_ok": statistics.median(page_ms) < 3000, "repeats": args.repeats,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}",
    }
    command = "python benchmarks/report_size.py" + "".join(
        f" {flag} {value}" for flag, value, default in (
            ("--population", args.population, 20), ("--generations", args.generations, 9),
            ("--fraction", args.fraction, 0.2), ("--repeats", args.repeats, 5)) if value != default)
    args.results.write_text(
        "## The HTML report of a 200-individual run (issue 15)\n\n"
        f"`{command}` — the cheap quick start (digits at {args.fraction}, 1 epoch, "
        f"{len(view.entries)} individuals, {result['front']} on the front), its report written by "
        f"`evonas report` and opened {args.repeats} times in headless Chromium (Debian `chromium`, "
        f"playwright) on {result['machine']}.\n\n"
        "| what | measured | bar |\n| --- | --- | --- |\n"
        f"| report size | {result['mb']} MB ({size:,} bytes) | < 5 MB: {'met' if result['size_ok'] else 'NOT met'} |\n"
        f"| open until every plot is drawn (median, page's clock) | {result['open_ms_median']} ms "
        f"(max {result['open_ms_max']} ms; goto to drawn {result['goto_to_drawn_ms_median']} ms; plotly.js "
        f"unpacked at {result['plotly_unpacked_ms']} ms, run by {result['plotly_ran_ms']} ms) | "
        f"< 3 s: {'met' if result['open_ok'] else 'NOT met'} |\n"
        f"| writing the report | {result['write_seconds']} s | — |\n\n"
        "plotly.js (4.8 MB) travels gzip-compressed and base64-encoded (about 2 MB) and is unpacked "
        "by the browser's `DecompressionStream`; the genome drawings of the front travel the same way.\n")
    print(f"report {report}: {result['mb']} MB; opens in {result['open_ms_median']} ms "
          f"(median of {args.repeats}); results in {args.results}")
    if scratch is not None:
        shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
