"""Markup in the data never becomes markup on a `cjm analyze` page.

plotly.js reads a subset of HTML in every text it draws (tick labels, legend names, hover text, titles):
`<a href>` becomes a clickable link, `<b>` and `<span style>` render. The nightly report escapes names with
plotly_text (tests/test_report.py); these tests hold the analysis pages to the same rule.

The fixture is a real warehouse built from a web and a CRM source whose channels, event names (and so
touchpoints), a stage name, and property values (clickstream `plan`, CRM `region`) are markup. Times are
2026-11-01 UTC. Stages: browse (landing, SCRIPT) < BOLD (add_to_cart, LINK) < buy (order, deal_won).

    customer  events (channel)                                            plan    region (CRM)
    u1        landing (LINK), LINK (LINK), order (LINK); nps 9            BOLD    SPAN
    u2        SCRIPT (BOLD), add_to_cart (SPAN), SPAN, order; nps 4       SPAN    SCRIPT
    u3        landing (SCRIPT), DROP, LINK                                LINK    BOLD
    u4        landing (DROP), SPAN; nps 2                                 SCRIPT  LINK
    u5        SCRIPT (SPAN), LINK (BOLD), DROP; deal_won                  DROP    DROP
    u6        landing (LINK), add_to_cart (SCRIPT), order (DROP)          -       SPAN

(LINK, BOLD, SPAN, SCRIPT and DROP are the values below; every customer's region comes from a CRM `profile`
event at 08:00; nps is the configured survey and DROP the support event.)

Every `cjm analyze` command runs on it through the CLI, each writing its page. The figures are checked as
JSON (fast), and the pages are opened in headless Chromium.
"""

from __future__ import annotations

import argparse
import csv
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import plotly.graph_objects as go
import pytest
import yaml

from cjm_analytics import analyze_cli, cli
from cjm_analytics.config import load_config
from cjm_analytics.report import analysis_pages, plotly_text
from tests.browser import Visit
from tests.fixtures import RUN_STARTED, WEB_COLUMNS, run_steps

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

LINK = '<a href="https://example.com">x</a>'
BOLD = "<b>bold</b>"
SPAN = '<span style="color:red">s</span>'
SCRIPT = "<script>alert(1)</script>"
DROP = "'; drop table events; --"
MARKUP = (LINK, BOLD, SPAN, SCRIPT)  # DROP holds no markup: it is the same text escaped

T = "2026-11-01T{}:00Z"
WEB = [  # event_id, user_id, event, time, channel, plan
    ("w01", "u1", "landing", "10:00", LINK, BOLD),
    ("w02", "u1", LINK, "10:05", LINK, ""),
    ("w03", "u1", "order", "10:10", LINK, ""),
    ("w04", "u2", SCRIPT, "10:00", BOLD, SPAN),
    ("w05", "u2", "add_to_cart", "10:30", SPAN, ""),
    ("w06", "u2", SPAN, "10:40", "", ""),
    ("w07", "u2", "order", "11:00", "", ""),
    ("w08", "u3", "landing", "10:00", SCRIPT, LINK),
    ("w09", "u3", DROP, "10:05", "", ""),
    ("w10", "u3", LINK, "10:10", "", ""),
    ("w11", "u4", "landing", "10:00", DROP, SCRIPT),
    ("w12", "u4", SPAN, "10:01", "", ""),
    ("w13", "u5", SCRIPT, "09:00", SPAN, DROP),
    ("w14", "u5", LINK, "09:30", BOLD, ""),
    ("w15", "u5", DROP, "09:40", "", ""),
    ("w16", "u6", "landing", "10:00", LINK, ""),
    ("w17", "u6", "add_to_cart", "10:20", SCRIPT, ""),
    ("w18", "u6", "order", "12:00", DROP, ""),
]
CRM = [  # customer_id, activity, time, region, score
    ("u1", "profile", "08:00", SPAN, ""),
    ("u1", "nps", "10:20", "", "9"),
    ("u2", "profile", "08:00", SCRIPT, ""),
    ("u2", "nps", "11:10", "", "4"),
    ("u3", "profile", "08:00", BOLD, ""),
    ("u4", "profile", "08:00", LINK, ""),
    ("u4", "nps", "10:05", "", "2"),
    ("u5", "profile", "08:00", DROP, ""),
    ("u5", "deal_won", "10:00", "", ""),
    ("u6", "profile", "08:00", SPAN, ""),
]
STAGES = [
    {"name": "browse", "events": ["landing", SCRIPT]},
    {"name": BOLD, "events": ["add_to_cart", LINK]},
    {"name": "buy", "events": ["order", "deal_won"]},
]

# (page, the command line after `cjm analyze`, the names the chart shows as tick labels or legend entries)
RUNS: list[tuple[str, list[str], tuple[str, ...]]] = [
    ("funnel", ["funnel", "--steps", f"browse,event:{LINK},{BOLD},buy"], (LINK, BOLD)),
    ("funnel-by-region", ["funnel", "--steps", f"browse,{BOLD}", "--segment", "region"], (BOLD, LINK, SCRIPT, SPAN)),
    ("funnel-by-segment", ["funnel-by-segment", "--by", "first_touch_channel"], (BOLD, LINK, SCRIPT, SPAN)),
    ("funnel-by-segment-region", ["funnel-by-segment", "--by", "region"], (BOLD, LINK, SCRIPT, SPAN)),
    ("time-between-stages", ["time-between-stages"], (BOLD,)),
    ("time-between-stages-plan", ["time-between-stages", "--segment", "plan"], (BOLD, SPAN, LINK)),
    ("time-to-convert", ["time-to-convert", "--segment", "first_touch_channel"], (LINK, BOLD, SPAN)),
    ("paths", ["paths", "--level", "touchpoint"], (LINK, SCRIPT, SPAN)),
    ("paths-stage", ["paths", "--level", "stage"], (BOLD,)),
    ("paths-around", ["paths-around", "--anchor", LINK, "--level", "touchpoint"], (LINK, SCRIPT)),
    ("paths-between", ["paths-between", "--start", SCRIPT, "--end", SPAN, "--level", "touchpoint"],
     (SCRIPT, SPAN)),
    ("pain-points", ["pain-points", "--min-customers", "1"], (BOLD,)),
    ("emotion-curve", ["emotion-curve"], (BOLD,)),
    ("attribution", ["attribution"], (LINK, BOLD, SPAN, SCRIPT)),
    ("drivers", ["drivers", "--from", "browse", "--to", "buy", "--min-support", "1"], (LINK, SCRIPT, SPAN)),
    ("time-to-next", ["time-to-next"], (BOLD,)),
    ("audience", ["audience", "--dropped-at", BOLD], (LINK,)),
]
SUBCOMMANDS = {argv[0] for _, argv, _ in RUNS}


def _write(path: Path, header: list[str], rows: list[tuple[str, ...]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


class Ran:
    """The pages the commands wrote (one per run, copied beside plotly.min.js) and the figures they drew."""

    def __init__(self, reports: Path) -> None:
        self.reports = reports
        self.pages: dict[str, Path] = {}
        self.figures: dict[str, go.Figure] = {}


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ran]:
    root = tmp_path_factory.mktemp("escaping")
    _write(root / "web" / "events.csv", ["event_id", "user_id", "event", "ts", "channel", "plan"],
           [(i, u, e, T.format(t), ch, plan) for i, u, e, t, ch, plan in WEB])
    _write(root / "crm" / "activities.csv", ["customer_id", "activity", "occurred_at", "region", "score"],
           [(u, a, T.format(t), region, score) for u, a, t, region, score in CRM])
    web_columns = {k: v for k, v in WEB_COLUMNS.items() if k != "anonymous_id"}
    data = {
        "warehouse": "warehouse/cjm.duckdb", "reports": "reports", "stages": STAGES, "goal": "buy",
        "sources": [
            {"name": "web", "kind": "clickstream", "path": "web/*.csv", "columns": web_columns},
            {"name": "crm", "kind": "crm", "path": "crm/*.csv",
             "columns": {"customer_id": "customer_id", "event_name": "activity", "timestamp": "occurred_at"}},
        ],
        "analysis": {"min_segment_size": 2, "surveys": [{"event": "nps", "score": "score", "kind": "nps"}],
                     "support_events": [DROP]},
    }
    (root / "cjm.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    cfg = load_config(root / "cjm.yaml")
    run_steps(cfg, run_started=RUN_STARTED)

    out = Ran(cfg.reports)
    drawn: list[go.Figure | None] = []
    written: list[Path] = []
    real_write = analysis_pages.write_analysis_page

    def write_and_keep(*args: Any, **kwargs: Any) -> Path:
        drawn.append(kwargs.get("figure", args[6] if len(args) > 6 else None))
        written.append(real_write(*args, **kwargs))
        return written[-1]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(analyze_cli, "write_analysis_page", write_and_keep)
        for name, argv, _ in RUNS:
            drawn.clear()
            written.clear()
            assert cli.main(["analyze", *argv, "--config", str(cfg.config_path)]) == 0, name
            figure = drawn[0]
            assert isinstance(figure, go.Figure), name
            out.figures[name] = figure
            # Each under the run's name, beside plotly.min.js.
            page = cfg.reports / f"run-{name}.html"
            out.pages[name] = Path(shutil.copy(written[0], page))
    yield out


def test_every_analyze_command_is_run() -> None:
    parser = argparse.ArgumentParser()
    subparsers = parser.add_subparsers()
    analyze_cli.register_all(subparsers)
    analyze = subparsers.choices["analyze"]
    names = next(a.choices for a in analyze._actions if isinstance(a, argparse._SubParsersAction))
    assert set(names) == SUBCOMMANDS


# --- the figures, as JSON ----------------------------------------------------------------------------------


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, (list, tuple, np.ndarray)):
        for v in value:
            yield from _strings(v)


def _unescape(text: str) -> str:
    # The inverse of plotly_text: every & it leaves starts &amp;, &lt; or &gt;.
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


# Trace and layout fields that hold names (text from data or the command line) rather than our own templates.
NAME_FIELDS = ("x", "y", "name", "text", "customdata", "labels", "ids", "legendgroup")


@pytest.mark.parametrize("name", [r[0] for r in RUNS])
def test_figure_text_is_plotly_text(ran: Ran, name: str) -> None:
    fig = ran.figures[name].to_plotly_json()
    everything = list(_strings(fig))
    # No name from the data is in the figure as it is, anywhere: not in the traces, nor in hover or titles.
    for markup in MARKUP:
        assert not [s for s in everything if markup in s], (name, markup)
    # Every name field holds plotly text: plotly_text of the name.
    for trace in fig["data"]:
        for field in NAME_FIELDS:
            for s in _strings(trace.get(field)):
                assert s == plotly_text(_unescape(s)), (name, field, s)
    layout = fig["layout"]
    titles = [layout.get("title", {}).get("text")]
    titles += [v.get("title", {}).get("text") for k, v in layout.items() if k.startswith(("xaxis", "yaxis"))]
    for s in _strings(titles):
        assert s == plotly_text(_unescape(s)), (name, s)


@pytest.mark.parametrize(("name", "shown"), [(r[0], r[2]) for r in RUNS])
def test_figure_shows_the_names_escaped(ran: Ran, name: str, shown: tuple[str, ...]) -> None:
    everything = " ".join(_strings(ran.figures[name].to_plotly_json()))
    for markup in shown:
        assert plotly_text(markup) in everything, (name, markup)


def test_titles_built_from_the_command_line_are_escaped(ran: Ran) -> None:
    assert ran.figures["paths-around"].layout.title.text == f"Paths around {plotly_text(LINK)}"
    assert ran.figures["paths-between"].layout.title.text == (
        f"Paths from {plotly_text(SCRIPT)} to {plotly_text(SPAN)}")


# --- the pages, in the browser -----------------------------------------------------------------------------

# Whatever plotly.js made of markup inside the chart: links, bold or coloured text that came from the data.
MADE_FROM_DATA = """root => {
    const found = [];
    for (const a of document.querySelectorAll('a')) {
        const href = a.getAttribute('href') || a.getAttribute('xlink:href') || '';
        if (href.includes('example.com')) found.push('link to ' + href);
    }
    for (const a of root.querySelectorAll('svg a')) found.push('svg link ' + a.outerHTML);
    for (const t of root.querySelectorAll('svg [style]')) {
        const style = t.getAttribute('style');
        if (/font-weight:\\s*bold/.test(style) && t.textContent.includes('bold')) found.push('bold ' + t.outerHTML);
        if (/(fill|color):\\s*red/.test(style)) found.push('red ' + t.outerHTML);
    }
    return found;
}"""
SVG_TEXT = "root => Array.from(root.querySelectorAll('svg text')).map(t => t.textContent).join('\\n')"
HOVER_TEXT = "() => Array.from(document.querySelectorAll('.hoverlayer .hovertext')).map(t => t.textContent).join('\\n')"


HOVER_SHOWN = "() => document.querySelectorAll('.hoverlayer .hovertext').length > 0"
HOVER_GONE = "() => document.querySelectorAll('.hoverlayer .hovertext').length === 0"


def _hover_each_point(page: Page, div: str) -> list[str]:
    """Hover every drawn bar, funnel bar and marker; return each hover label's text.

    Each point is scrolled into view (the mouse cannot hover below the viewport), the pointer leaves it and
    the last label must be gone, then the point's own label must be drawn. A fixed short wait instead read
    the previous point's label again, for points off screen and on a loaded machine.
    """
    texts = []
    points = page.locator(f"{div} .point")
    for i in range(points.count()):
        point = points.nth(i)
        point.scroll_into_view_if_needed()
        box = point.bounding_box()
        if box is None or box["width"] == 0 or box["height"] == 0:
            continue
        page.mouse.move(0, 0)
        page.wait_for_function(HOVER_GONE, timeout=5_000)
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.wait_for_function(HOVER_SHOWN, timeout=5_000)
        texts.append(page.evaluate(HOVER_TEXT))
    return texts


@pytest.mark.browser
def test_pages_show_markup_from_data_as_text(browser: Browser, ran: Ran) -> None:
    visit = Visit(browser, ran.pages[RUNS[0][0]].as_uri())
    page = visit.page
    for name, _, shown in RUNS:  # one tab for all pages: plotly.min.js is compiled once
        page.goto(ran.pages[name].as_uri(), wait_until="load")
        page.wait_for_selector("#analysis-chart .main-svg")
        root = page.locator("#analysis-chart")
        svg_text = root.evaluate(SVG_TEXT)
        for markup in shown:
            assert markup in svg_text, (name, markup)
        hovers = _hover_each_point(page, "#analysis-chart")
        assert hovers and any(hovers), name
        # After every hover label has been drawn, nothing in the page was made from the data's markup.
        assert root.evaluate(MADE_FROM_DATA) == [], name
        # The names are text on the page, in its caption and table too (escaped as HTML).
        body = page.inner_text("body")
        for markup in shown:
            assert markup in body, (name, markup)
        assert page.locator("script", has_text="alert(1)").count() == 0, name
    # The lost customers' last touchpoints reach the pain-points chart only as hover text.
    page.goto(ran.pages["pain-points"].as_uri(), wait_until="load")
    page.wait_for_selector("#analysis-chart .main-svg")
    hover = "\n".join(_hover_each_point(page, "#analysis-chart"))
    assert f"last touchpoint: {LINK}" in hover and f"highest lift: {LINK}" in hover, hover
    assert page.locator("#analysis-chart").evaluate(MADE_FROM_DATA) == []
    visit.assert_clean()
    page.close()
