"""``evonas report``: where the file goes and what is refused, that run text cannot break out of
the page, that the report builds without Graphviz, and (in headless Chromium via playwright)
that the quick start's report and a two-run comparison open offline with no console error,
show every front member, show an id on hover, and scroll to a member's section on click."""

from __future__ import annotations

import html
import io
import json
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from evonas.cli import main
from evonas.report import DEFAULT_NAME, write_report
from evonas.runview import RunView
from evonas.store.rundir import OutputError, RunDir, RunDirError, foreign

# the built-in quick start made a few seconds long (digits, few networks, 2 epochs, in-process)
QUICK = ["--set", "task.fraction=0.3", "--set", "search.population=6", "--set", "search.offspring=6",
         "--set", "search.generations=3", "--set", "training.epochs=2",
         "--set", "training.early_ranking.rungs=[1,2]", "--set", "dispatch.backend=inline"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The quick start's run and a second, shorter one with another seed (for the comparison)."""
    root = tmp_path_factory.mktemp("report")
    made = []
    for name, extra in (("quickstart", []), ("other", ["--set", "seed=1", "--set", "search.generations=2"])):
        result = CliRunner().invoke(main, ["run", "--run-dir", str(root / name), "--quiet", *QUICK, *extra])
        assert result.exit_code == 0, result.output
        made.append(root / name)
    return made


def front_rows(run: Path) -> list[dict]:
    out = CliRunner().invoke(main, ["front", str(run), "--format", "json"])
    assert out.exit_code == 0, out.output
    return json.loads(out.output[: out.output.rindex("]") + 1])


# ------------------------------------------------------------------ the file, no browser
def test_the_report_goes_into_the_run_and_is_replaced_when_made_again(runs):
    run = runs[0]
    path = write_report([run])
    assert path == run / "report" / "index.html" and path.stat().st_size > 100_000
    assert write_report([run]) == path  # made again: replaced, no --force needed
    assert foreign(run) == []  # report/ is evonas's own: run --force may replace this run


def test_an_explicit_out_is_refused_where_it_exists_or_inside_a_run(runs, tmp_path, monkeypatch):
    run = runs[0]
    out = tmp_path / "r.html"
    assert write_report([run], out) == out
    with pytest.raises(OutputError, match="already exists"):
        write_report([run], out)
    assert write_report([run], out, force=True) == out
    for inside in (run / "r.html", run / "weights" / "r.html"):
        with pytest.raises(OutputError, match="inside the run directory"):
            write_report(runs, inside)
    assert write_report(runs, run / "report" / "both.html") == run / "report" / "both.html"
    with pytest.raises(OutputError, match=r"\.html"):
        write_report([run], tmp_path / "r.png")
    monkeypatch.chdir(tmp_path)  # several runs and no out: in the current directory
    assert write_report(runs) == Path(DEFAULT_NAME) and (tmp_path / DEFAULT_NAME).is_file()
    with pytest.raises(OutputError, match="already exists"):
        write_report(runs)


def test_unreadable_runs_are_named(runs, tmp_path):
    with pytest.raises(RunDirError, match="nowhere"):
        write_report([tmp_path / "nowhere"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunDirError, match="empty.*config.yaml"):
        write_report([runs[0], tmp_path / "empty"])


def test_run_force_replaces_a_run_with_its_report_but_not_a_folder_in_it(runs, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(runs[0], copy)
    write_report([copy])
    (copy / "report" / "mine").mkdir()
    (copy / "report" / "mine" / "notes.txt").write_text("not evonas's")
    with pytest.raises(RunDirError, match="report/mine/notes.txt"):
        RunDir(copy).check_new(force=True)
    shutil.rmtree(copy / "report" / "mine")
    RunDir(copy).create(RunView.load(copy).config.to_dict(), force=True)
    assert not (copy / "report").exists()


def test_a_run_that_has_just_started_gets_a_report(runs, tmp_path):
    copy = tmp_path / "young"
    shutil.copytree(runs[0], copy, ignore=shutil.ignore_patterns("report", "checkpoints", "LATEST"))
    lines = (copy / "journal.jsonl").read_text().splitlines(keepends=True)
    (copy / "journal.jsonl").write_text("".join(lines[:3]))  # started, two evaluations
    text = write_report([copy]).read_text()
    assert "stopped before generation 0" in text and "data-figure='fig-front'" in text


def test_a_report_folder_that_is_a_link_is_not_written_through(runs, tmp_path):
    copy, elsewhere = tmp_path / "copy", tmp_path / "elsewhere"
    shutil.copytree(runs[0], copy, ignore=shutil.ignore_patterns("report"))
    elsewhere.mkdir()
    (copy / "report").symlink_to(elsewhere)
    with pytest.raises(OutputError, match="symbolic link"):
        write_report([copy])
    assert list(elsewhere.iterdir()) == []


def test_text_from_a_run_cannot_break_out_of_the_page(runs, tmp_path):
    from evonas.report.page import render
    from evonas.report.runs import load_runs

    evil = "</script><script>alert(1)</script><img src=x onerror=alert(2)>"
    loaded = load_runs([runs[0]])
    member = loaded[0].front[0]
    member.operator, member.detail = evil, evil
    text = render(loaded)
    assert "alert(1)</script>" not in text and "<img src=x" not in text
    assert html.escape(evil) in text  # shown as text in the member's section
    for chunk in text.split("<script type='application/json'")[1:]:  # figure JSON: parses back
        body = chunk[chunk.index(">") + 1: chunk.index("</script>")]
        assert "<" not in body
        json.loads(body)


def test_without_graphviz_the_report_says_where_the_drawings_would_be(runs, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot on PATH
    text = write_report([runs[0]], tmp_path / "r.html").read_text()
    assert "install Graphviz" in text and "data-drawing=" not in text


# ------------------------------------------------------------------ in a real browser
def _chromium() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if found:
        return found
    try:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            return p.chromium.executable_path if Path(p.chromium.executable_path).exists() else None
    except Exception:
        return None


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed "
                                   "(pip install playwright): the report is not checked in a browser")
    executable = _chromium()
    if executable is None:
        pytest.skip("no Chromium found (install Debian's chromium): the report is not checked in a browser")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=executable)
        yield chromium
        chromium.close()


def wait_until(page, expression: str, timeout: float = 30.0):
    """Poll ``expression`` until it is truthy. (playwright's wait_for_function evaluates its
    predicate with eval inside the page, which the report's Content-Security-Policy forbids.)"""
    deadline = time.monotonic() + timeout
    while not (value := page.evaluate(expression)):
        assert time.monotonic() < deadline, f"still false after {timeout} s: {expression}"
        page.wait_for_timeout(50)
    return value


def open_report(browser, path: Path):
    """The report in a fresh page; the console errors and any request that left the file."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors, requests = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url)
            if not r.url.startswith(("file:", "blob:", "data:")) else None)
    page.goto(path.resolve().as_uri())
    assert wait_until(page, "document.documentElement.dataset.report") == "ready", errors
    return page, errors, requests


def front_points(page, run: int) -> list:
    """The drawn markers of run ``run``'s front trace in the front figure's first panel."""
    index = page.evaluate(f"document.getElementById('fig-front').data.findIndex(t => t.uid === 'front-{run}-0')")
    assert index >= 0
    return page.locator("#fig-front .scatterlayer .trace").nth(index).locator("path.point").all()


def hover_and_click(page, point, same: set[int], prefix: str) -> str:
    """Hover ``point``: its label names one of ``same`` (the ids with its values: points that
    coincide); click it: the window scrolls to that individual's section."""
    box = point.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.wait_for_selector("#fig-front .hoverlayer .hovertext")
    label = page.locator("#fig-front .hoverlayer .hovertext").first.text_content()
    shown = re.search(r"#(\d+)", label)
    assert shown and int(shown.group(1)) in same, (label, same)
    anchor = f"{prefix}ind-{shown.group(1)}"
    assert page.evaluate("window.scrollY") < 50
    page.mouse.click(x, y)
    wait_until(page,  # at the top of the window, or as near as the page's end lets it
               f"(top => Math.abs(top) < 40 || top > 0 && top < innerHeight / 2 && scrollY + innerHeight >= "
               f"document.documentElement.scrollHeight - 2)"
               f"(document.getElementById('{anchor}').getBoundingClientRect().top)")
    assert page.evaluate("window.scrollY") > 300
    return label


def distinct_colours(page) -> int:
    """Distinct pixel colours in a screenshot of the window (a blank page has a handful)."""
    from PIL import Image

    image = np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("RGB")).astype(np.uint32)
    return len(np.unique(image[..., 0] << 16 | image[..., 1] << 8 | image[..., 2]))


def test_the_quick_starts_report_in_chromium(runs, browser):
    run = runs[0]
    rows = front_rows(run)
    page, errors, requests = open_report(browser, write_report([run]))
    assert distinct_colours(page) > 200  # the front and hypervolume plots at the top
    points = front_points(page, 0)
    assert len(points) == len(rows) >= 2
    # the points in x order are the front's rows: hover the one in the middle
    xs = [p.bounding_box()["x"] for p in points]
    ordered = sorted(rows, key=lambda r: r["objectives"]["val_error"])
    middle = len(rows) // 2
    same = {r["id"] for r in rows if r["objectives"] == ordered[middle]["objectives"]}
    label = hover_and_click(page, points[int(np.argsort(xs)[middle])], same, "")
    assert "test accuracy" in label and "operator" in label
    assert page.locator("section.member").count() == len(rows)
    assert page.locator("img[data-drawing]").count() == len(rows)
    assert page.evaluate("[...document.querySelectorAll('img[data-drawing]')]"
                         ".every(i => i.complete && i.naturalWidth > 0)")
    assert errors == [] and requests == []
    page.close()


def test_a_two_run_comparison_in_chromium(runs, browser, tmp_path):
    page, errors, requests = open_report(browser, write_report(runs, tmp_path / "both.html"))
    assert distinct_colours(page) > 200
    views = [RunView.load(r) for r in runs]
    for k, view in enumerate(views):
        assert len(front_points(page, k)) == len(view.front())
    hv = page.evaluate("document.getElementById('fig-hypervolume').data.map(t => t.legendgroup)")
    assert {"run-0", "run-1"} <= set(hv)
    second = front_points(page, 1)
    xs = [p.bounding_box()["x"] for p in second]
    member = sorted(views[1].front(), key=lambda e: e.objectives["val_error"])[0]
    same = {e.id for e in views[1].front() if e.objectives == member.objectives}
    label = hover_and_click(page, second[int(np.argmin(xs))], same, "r1-")
    assert "(other)" in label  # the run's label: both runs are named quickstart
    assert page.locator("section.run").count() == 2
    assert errors == [] and requests == []
    page.close()


def test_three_objectives_get_a_panel_per_pair_each_with_the_whole_front(browser, tmp_path):
    run = tmp_path / "three"
    result = CliRunner().invoke(main, [
        "run", "--run-dir", str(run), "--quiet", *QUICK, "--set", "search.generations=1",
        "--set", "objectives=[{name: val_error}, {name: params}, {name: flops}]"])
    assert result.exit_code == 0, result.output
    front = RunView.load(run).front()
    page, errors, requests = open_report(browser, write_report([run]))
    uids = page.evaluate("document.getElementById('fig-front').data.map(t => t.uid)")
    panels = sorted(u for u in uids if u.startswith("front-0-"))
    assert panels == ["front-0-0", "front-0-1", "front-0-2"]  # (val_error, params), (.., flops), (params, flops)
    traces = page.locator("#fig-front .scatterlayer .trace")
    for uid in panels:
        drawn = traces.nth(uids.index(uid)).locator("path.point").count()
        assert drawn == len(front), uid
    assert errors == [] and requests == []
    page.close()
