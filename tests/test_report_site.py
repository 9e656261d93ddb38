"""The report site in headless Chromium: each chart drawn as its mart says, the Sankey's segment selector,
the sample's site at 1280 and 375 px (screenshots in test-artifacts/ for a person to look at), the page size
budget on the sample, and the optional chart export (kaleido with the system Chromium).
"""

from __future__ import annotations

import os
import struct
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pytest

from cjm_analytics.config import Config
from cjm_analytics.report import PAGE_BUDGET_BYTES, PAGES, build_report, read_marts
from cjm_analytics.report.export import ExportError, export_charts, export_figures
from cjm_analytics.report.pages import NAV
from tests.browser import CHROMIUM, Visit
from tests.test_report import (
    ADS,
    ADS_LINKS,
    BROWSE,
    BUY,
    CART,
    CHANNEL_ATTRIBUTION,
    DROP,
    EMAIL_LINKS,
    LEAKS,
    SANKEY_LINKS,
    SINKS_NOTE,
    STAGE_TRANSITIONS,
    STAGES,
    TEXTS,
    XSS,
    make_warehouse,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
PAGE_NAMES = tuple(p.name for p in PAGES)
WIDTHS = (1280, 375)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    build_report(make_warehouse(), out, title="Journeys & <more>")
    return out


def nodes_of(page: Page) -> list[str]:
    return page.eval_on_selector_all("g.sankey-node .node-label", TEXTS)


def link_nodes(links: list[tuple[object, ...]]) -> Counter[str]:
    nodes = {(link[0], link[1]) for link in links} | {(link[2], link[3]) for link in links}
    return Counter(str(name) for _, name in nodes)


def choose_segment(page: Page, label: str, nodes: int) -> None:
    """Pick a segment in the Sankey's menu and wait for plotly.js's transition to leave its `nodes` nodes."""
    page.locator(".updatemenu-header-group").click()
    page.locator(".updatemenu-dropdown-button-group .updatemenu-item-text", has_text=label).click()
    page.wait_for_function("n => document.querySelectorAll('g.sankey-node').length === n", arg=nodes)
    page.wait_for_timeout(100)


@pytest.mark.browser
def test_segment_selector_switches_the_sankey(browser: Browser, site: Path) -> None:
    visit = Visit(browser, (site / "sankey.html").as_uri())
    page = visit.page
    page.wait_for_selector("g.sankey-node")
    assert Counter(nodes_of(page)) == link_nodes(SANKEY_LINKS)  # all journeys first
    header = page.eval_on_selector_all(".updatemenu-header-group", TEXTS)
    assert header == ["all journeys (10)▼"]

    choose_segment(page, ADS, 4)  # the channel's markup is shown as text in the menu
    assert Counter(nodes_of(page)) == Counter([XSS, CART, DROP, DROP]) == link_nodes(ADS_LINKS)
    assert page.locator(".sankey-link").count() == len(ADS_LINKS)
    assert page.eval_on_selector_all(".updatemenu-header-group", TEXTS) == [f"first touch: {ADS} (3)▼"]
    steps = page.eval_on_selector_all(".annotation-text", TEXTS)
    assert steps == ["step 1", "step 2", "after step 2", SINKS_NOTE]  # the sinks' meaning stays under it

    choose_segment(page, "email", 5)
    assert Counter(nodes_of(page)) == link_nodes(EMAIL_LINKS)
    node = page.locator("g.sankey-node").nth(nodes_of(page).index(XSS))
    node.hover()
    page.wait_for_selector(".hoverlayer .hovertext")
    hover = page.locator(".hoverlayer .hovertext").first.text_content() or ""
    assert "3 customers" in hover and "75.0% of journeys first touched via email" in hover

    choose_segment(page, "all journeys", 10)
    assert Counter(nodes_of(page)) == link_nodes(SANKEY_LINKS)
    visit.assert_clean()
    page.close()


@pytest.mark.browser
def test_network_draws_every_stage_and_edge(browser: Browser, site: Path) -> None:
    visit = Visit(browser, (site / "transitions.html").as_uri())
    page = visit.page
    page.wait_for_selector("#network-chart .shapelayer path")
    # One arc per edge, and browse's exit split into lost and completed (a buyer went back and left there).
    assert page.locator("#network-chart .shapelayer path").count() == len(STAGE_TRANSITIONS) + 1
    traces = page.evaluate(
        "() => document.getElementById('network-chart')._fullData.map(t => [t.name, t.x.length])"
    )
    assert ["edges", len(STAGE_TRANSITIONS) + 1] in traces and ["stages", 6] in traces
    labels = page.eval_on_selector_all("#network-chart .annotation-text", TEXTS)
    assert labels[:6] == [
        "(start)", f"{BROWSE}lost 18%completed 9%", f"{XSS}lost 29%", f"{CART}lost 14%", f"{BUY}completed 80%",
        "(end)",
    ]  # fmt: skip
    legend = page.eval_on_selector_all("#network-chart .legendtext", TEXTS)
    assert "exit after the goal: completed" in legend and "exit before the goal: lost" in legend
    # Thicker arcs carry more transitions.
    widths = page.eval_on_selector_all(
        "#network-chart .shapelayer path", "els => els.map(e => parseFloat(getComputedStyle(e).strokeWidth))"
    )
    assert max(widths) == pytest.approx(18) and min(widths) == pytest.approx(2)  # 9 and 1 transitions
    assert page.locator("#transitions-chart .hm").count() == 1  # the matrix below it
    visit.assert_clean()
    page.close()


@pytest.mark.browser
def test_trends_draw_two_cohorts_and_a_line_per_later_stage(browser: Browser, site: Path) -> None:
    visit = Visit(browser, (site / "trends.html").as_uri())
    page = visit.page
    page.wait_for_selector("#trends-chart .scatterlayer .trace")
    assert page.locator("#trends-chart .barlayer .point").count() == 2  # Nov 2023 and Mar 2024, by month
    # Per later stage a solid line over the matured cohorts and a dotted one on to March, still maturing.
    # (and one empty trace: the legend's key for them)
    assert page.locator("#trends-chart .scatterlayer .trace").count() == 2 * (len(STAGES) - 1) + 1
    dashes = page.eval_on_selector_all("#trends-chart .scatterlayer .js-line",
                                       "els => els.map(e => e.style.strokeDasharray || '')")
    assert sum(d != "" for d in dashes) == len(STAGES) - 1
    legend = page.eval_on_selector_all("#trends-chart .legendtext", TEXTS)
    assert legend == [XSS, CART, BUY, "still maturing"]
    visit.assert_clean()
    page.close()


@pytest.mark.browser
def test_leak_emotion_and_attribution_charts(browser: Browser, site: Path) -> None:
    visit = Visit(browser, (site / "pain-points.html").as_uri())
    visit.page.wait_for_selector("#leaks-chart .barlayer .point")
    assert visit.page.locator("#leaks-chart .barlayer .point").count() == len(LEAKS)
    ticks = visit.page.eval_on_selector_all(
        "#leaks-chart .ytick text",
        "els => els.map(e => [e.getBoundingClientRect().top, e.textContent]).sort((a, b) => a[0] - b[0])",
    )
    assert [text for _, text in ticks] == [XSS, CART, BROWSE]  # biggest leak on top

    visit.page.goto((site / "emotion.html").as_uri())
    visit.page.wait_for_selector("#emotion-chart .scatterlayer .point")
    assert visit.page.locator("#emotion-chart .scatterlayer .point").count() == 3  # X has no answers
    assert visit.page.locator("#emotion-chart .errorbar").count() >= 2  # browse and cart have intervals
    ticks = visit.page.eval_on_selector_all("#emotion-chart .xtick text", TEXTS)
    assert ticks == STAGES  # journey order

    visit.page.goto((site / "attribution.html").as_uri())
    visit.page.wait_for_selector("#attribution-chart .barlayer .point")
    assert visit.page.locator("#attribution-chart .barlayer .trace").count() == 4
    assert visit.page.locator("#attribution-chart .barlayer .point").count() == 4 * len(CHANNEL_ATTRIBUTION)
    ticks = visit.page.eval_on_selector_all("#attribution-chart .xtick text", TEXTS)
    assert ticks == ["direct", ADS, "email"]
    legend = visit.page.eval_on_selector_all("#attribution-chart .legendtext", TEXTS)
    assert legend == ["first touch", "last touch", "linear", "Markov chain"]
    visit.assert_clean()
    visit.page.close()


# --- the sample --------------------------------------------------------------------------------------

MARTS = (
    "run_summary", "run_history", "stage_funnel", "stage_funnel_by_segment", "stage_transitions", "sankey_links",
    "sankey_segment_links", "stage_conversion_daily", "leaks", "channel_attribution", "emotion_curve", "journey_map",
)  # fmt: skip


@pytest.fixture(scope="module")
def sample_site(sample: Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample's report, from a copy of its marts with two earlier runs made up from tonight's figures
    (a warehouse only gets a history night after night), so that the overview shows changes."""
    con = duckdb.connect()
    con.execute("ATTACH ? AS sample (READ_ONLY)", [str(sample.warehouse)])
    for table in MARTS:
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM sample.{table}")
    con.execute("DETACH sample")
    for run_id, days, lost, converted, worse in (("made-up-previous-night", 1, 180, 25, 0.01),
                                                  ("made-up-week-ago", 7, 1300, 190, -0.02)):  # fmt: skip
        con.execute(
            f"""INSERT INTO run_history BY NAME
            SELECT * REPLACE (
                '{run_id}' AS run_id, run_started_at - INTERVAL {days} DAY AS run_started_at,
                events_loaded - 10 * {lost} AS events_loaded, customers - {lost} AS customers,
                journey_customers - {lost} AS journey_customers, sessions - 2 * {lost} AS sessions,
                converted - {converted} AS converted,
                (converted - {converted}) / (journey_customers - {lost}) AS conversion_rate,
                worst_dropoff_rate + {worse} AS worst_dropoff_rate)
            FROM run_summary"""
        )
    out = tmp_path_factory.mktemp("sample-site")
    build_report(con, out, sample.report.title)
    return out


@pytest.mark.parametrize("name", PAGE_NAMES)
def test_sample_pages_fit_the_budget(sample_site: Path, name: str) -> None:
    assert (sample_site / name).stat().st_size < PAGE_BUDGET_BYTES


def test_sample_overview_finds_the_earlier_runs(sample_site: Path) -> None:
    text = (sample_site / "index.html").read_text(encoding="utf-8")
    assert "run <code>made-up-previous-night</code>" in text and "run <code>made-up-week-ago</code>" in text
    assert "no earlier run" not in text


@pytest.mark.browser
@pytest.mark.parametrize("width", WIDTHS)
def test_sample_site_reads_at_desktop_and_phone_width(browser: Browser, sample_site: Path, width: int) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    visit = Visit(browser, (sample_site / "index.html").as_uri())
    page = visit.page
    page.set_viewport_size({"width": width, "height": 900})
    for name in PAGE_NAMES:  # one tab for all pages: plotly.min.js is compiled once
        page.goto((sample_site / name).as_uri(), wait_until="load")
        if name != "index.html":
            page.wait_for_selector(".plotly-graph-div .main-svg")
        page.wait_for_timeout(150)
        # Nothing but a wide chart or a table scrolls sideways, and the navigation wraps within the screen.
        assert page.evaluate("document.scrollingElement.scrollWidth") <= width, name
        rights = page.eval_on_selector_all("nav a", "els => els.map(e => e.getBoundingClientRect().right)")
        assert len(rights) == len(NAV) and max(rights) <= width, name  # NAV: PAGES and Analyses
        page.screenshot(path=str(ARTIFACTS / f"report-{name.removesuffix('.html')}-{width}.png"), full_page=True)
    visit.assert_clean()
    page.close()


# --- export -------------------------------------------------------------------------------------------


def test_export_figures_are_every_chart_with_a_title() -> None:
    figures = export_figures(read_marts(make_warehouse()))
    assert [stem for stem, _ in figures] == [
        "sankey", "sankey-first-touch-email", "sankey-first-touch-b-ads-b", "funnel", "trends", "pain-points",
        "emotion", "attribution", "transitions-network", "transitions-matrix",
    ]  # fmt: skip
    for stem, fig in figures:
        assert fig.layout.title.text and fig.layout.title.subtitle.text, stem
        assert not fig.layout.updatemenus, stem  # a picture has no menu: one Sankey per segment
    assert "first touch: &lt;b&gt;ads&lt;/b&gt; (3)" in figures[2][1].layout.title.text


def test_export_refuses_an_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="cannot export gif"):
        export_charts(make_warehouse(), tmp_path, ("gif",))


@pytest.mark.parametrize(("errors", "fails"), [
    (["ReferenceError: kaleido_scopes is not defined"] * 2, False),  # kaleido's race with its page: tried again
    (["ReferenceError: kaleido_scopes is not defined"] * 3, True),  # but a bounded number of times
    (["Chromium crashed"], True),  # any other error at once
])
def test_export_tries_again_only_when_kaleidos_page_was_not_ready(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, errors: list[str], fails: bool) -> None:
    kaleido = pytest.importorskip("kaleido")
    calls: list[int] = []

    def write(jobs: list[dict[str, Any]], **kwargs: Any) -> None:
        calls.append(len(jobs))
        if len(calls) <= len(errors):
            raise RuntimeError(errors[len(calls) - 1])
        for job in jobs:
            Path(job["path"]).write_bytes(b"drawn")

    monkeypatch.setattr(kaleido, "write_fig_from_object_sync", write)
    chromium = tmp_path / "chromium"
    chromium.write_text("")
    if fails:
        with pytest.raises(ExportError, match=errors[-1]):
            export_charts(make_warehouse(), tmp_path, ("png",), chromium=chromium)
        assert len(calls) == min(len(errors), 3)
    else:
        assert len(export_charts(make_warehouse(), tmp_path, ("png",), chromium=chromium)) == 10
        assert calls == [10, 10, 10]


@pytest.mark.browser
def test_export_writes_png_and_pdf_with_the_system_chromium(tmp_path: Path) -> None:
    pytest.importorskip("kaleido")
    if not CHROMIUM.exists() and os.environ.get("CJM_REQUIRE_BROWSER") != "1":
        pytest.skip(f"{CHROMIUM} is not installed")
    written = export_charts(make_warehouse(), tmp_path, ("png", "pdf"), chromium=CHROMIUM, scale=1)
    assert len(written) == 2 * 10 and all(p.parent == tmp_path / "export" for p in written)
    png = (tmp_path / "export" / "sankey.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert width == 1200 and height > 300
    assert (tmp_path / "export" / "funnel.pdf").read_bytes()[:5] == b"%PDF-"
    assert min(p.stat().st_size for p in written) > 5_000  # drawn, not blank

