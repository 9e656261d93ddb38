"""The report site, drawn from a hand-written warehouse of the four marts it reads.

The fixture is one run of ten journey customers over four stages, two of them named to break HTML
(`</script><script>alert(1)</script>` and `Bob's "cart"`), with the sankey cut at three steps:

    c1-c3  browse → X → cart → purchase         c7   browse → cart → browse
    c4-c5  browse → X                            c8   X → cart → purchase
    c6     browse                                c9   browse → X → cart → purchase → browse
    c10    browse → cart

(X is the script-named stage; step nodes under 15% of journey customers are folded into `other`.)
"""

from __future__ import annotations

import html
import re
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pandas as pd
import plotly.offline
import pytest

from cjm_analytics.report import (
    PLOTLY_JS,
    SANKEY_LINKS_COLUMNS,
    STAGE_FUNNEL_COLUMNS,
    STAGE_TRANSITIONS_COLUMNS,
    build_report,
    funnel_figure,
    plotly_text,
    read_marts,
    sankey_figure,
    transitions_figure,
)
from tests.browser import Visit

if TYPE_CHECKING:
    from playwright.sync_api import Browser

REPO = Path(__file__).resolve().parents[1]
BROWSE = "browse & search"
XSS = "</script><script>alert(1)</script>"
CART = 'Bob\'s "cart"'
BUY = "purchase"
START, END = "(start)", "(end)"
DROP, CONT, OTHER = "(drop-off)", "(continues)", "other"
TEXTS = "els => els.map(e => e.textContent)"
PAGES = ("index.html", "sankey.html", "funnel.html", "transitions.html")
CHART_PAGES = ("sankey.html", "funnel.html", "transitions.html")

RUN_SUMMARY = {
    "run_id": "run-42",
    "run_started_at": datetime(2024, 3, 5, 2, 0),
    "events_read": 60,
    "events_loaded": 55,
    "events_rejected": 3,
    "events_duplicate": 2,
    "customers": 12,
    "journey_customers": 10,
    "sessions": 17,
    "converted": 5,
    "conversion_rate": 0.5,
    "worst_dropoff_stage": CART,
    "worst_dropoff_rate": 2 / 7,
}
# stage, stage_order, reached, exited, dropoff_rate, conversion_to_next, conversion_from_first
STAGE_FUNNEL = [
    (BROWSE, 1, 10, 1, 1 / 10, 9 / 10, 1.0),
    (XSS, 2, 9, 2, 2 / 9, 7 / 9, 0.9),
    (CART, 3, 7, 2, 2 / 7, 5 / 7, 0.7),
    (BUY, 4, 5, 5, None, None, 0.5),
]
# from_stage, to_stage, from_order, to_order, transitions, customers, probability, median_hours
STAGE_TRANSITIONS = [
    (START, BROWSE, 0, 1, 9, 9, 9 / 10, None),
    (START, XSS, 0, 2, 1, 1, 1 / 10, None),
    (BROWSE, XSS, 1, 2, 6, 6, 6 / 11, 1.5),
    (BROWSE, CART, 1, 3, 2, 2, 2 / 11, 3.25),
    (BROWSE, END, 1, 5, 3, 3, 3 / 11, None),
    (XSS, CART, 2, 3, 5, 5, 5 / 7, 0.5),
    (XSS, END, 2, 5, 2, 2, 2 / 7, None),
    (CART, BUY, 3, 4, 5, 5, 5 / 7, 26.0),
    (CART, BROWSE, 3, 1, 1, 1, 1 / 7, 2.0),
    (CART, END, 3, 5, 1, 1, 1 / 7, None),
    (BUY, END, 4, 5, 4, 4, 4 / 5, None),
    (BUY, BROWSE, 4, 1, 1, 1, 1 / 5, 120.5),
]
# from_step, from_node, to_step, to_node, customers
SANKEY_LINKS = [
    (1, BROWSE, 2, XSS, 6),
    (1, BROWSE, 2, CART, 2),
    (1, BROWSE, 2, DROP, 1),
    (1, OTHER, 2, CART, 1),
    (2, XSS, 3, CART, 4),
    (2, XSS, 3, DROP, 2),
    (2, CART, 3, OTHER, 2),
    (2, CART, 3, DROP, 1),
    (3, CART, 4, CONT, 4),
    (3, OTHER, 4, DROP, 2),
]
SANKEY_NODES = {(s, n) for s, n, _, _, _ in SANKEY_LINKS} | {(s, n) for _, _, s, n, _ in SANKEY_LINKS}

DDL = {
    "run_summary": """run_id VARCHAR, run_started_at TIMESTAMP, events_read BIGINT, events_loaded BIGINT,
        events_rejected BIGINT, events_duplicate BIGINT, customers BIGINT, journey_customers BIGINT,
        sessions BIGINT, converted BIGINT, conversion_rate DOUBLE, worst_dropoff_stage VARCHAR,
        worst_dropoff_rate DOUBLE""",
    "stage_funnel": """stage VARCHAR, stage_order INTEGER, reached BIGINT, exited BIGINT, dropoff_rate DOUBLE,
        conversion_to_next DOUBLE, conversion_from_first DOUBLE""",
    "stage_transitions": """from_stage VARCHAR, to_stage VARCHAR, from_order INTEGER, to_order INTEGER,
        transitions BIGINT, customers BIGINT, probability DOUBLE, median_hours DOUBLE""",
    "sankey_links": """from_step INTEGER, from_node VARCHAR, to_step INTEGER, to_node VARCHAR,
        customers BIGINT""",
}


def make_warehouse(
    *,
    summary: dict[str, Any] | None = None,
    funnel: list[tuple[Any, ...]] = STAGE_FUNNEL,
    transitions: list[tuple[Any, ...]] = STAGE_TRANSITIONS,
    links: list[tuple[Any, ...]] = SANKEY_LINKS,
) -> duckdb.DuckDBPyConnection:
    """An in-memory warehouse holding only the four marts, as documented in docs/tables.md."""
    con = duckdb.connect()
    for table, columns in DDL.items():
        con.execute(f"CREATE TABLE {table} ({columns})")
    row = summary if summary is not None else RUN_SUMMARY
    con.execute(f"INSERT INTO run_summary VALUES ({', '.join('?' * len(row))})", list(row.values()))
    marts = {"stage_funnel": funnel, "stage_transitions": transitions, "sankey_links": links}
    for table, rows in marts.items():
        if rows:
            con.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(rows[0]))})", rows)
    return con


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    build_report(make_warehouse(), out, title="Journeys & <more>")
    return out


def page(site: Path, name: str) -> str:
    return (site / name).read_text(encoding="utf-8")


# --- files -------------------------------------------------------------------------------------------


def test_writes_the_pages_and_one_plotly_js(tmp_path: Path) -> None:
    out = tmp_path / "reports" / "nested"
    written = build_report(make_warehouse(), out)
    assert [p.name for p in written] == [PLOTLY_JS, *PAGES]
    assert all(p.parent == out and p.is_file() for p in written)
    assert sorted(p.name for p in out.iterdir()) == sorted([PLOTLY_JS, *PAGES])  # no temp files left
    assert (out / PLOTLY_JS).read_text(encoding="utf-8") == plotly.offline.get_plotlyjs()


def test_rebuild_overwrites_in_place(tmp_path: Path) -> None:
    build_report(make_warehouse(), tmp_path)
    first = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    build_report(make_warehouse(), tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == first  # deterministic, div ids too


@pytest.mark.parametrize("name", PAGES)
def test_page_is_offline_and_small(site: Path, name: str) -> None:
    text = page(site, name)
    assert len(text.encode("utf-8")) < 300_000
    srcs = re.findall(r"<script\b[^>]*\bsrc\s*=\s*[\"']?([^\"' >]+)", text, flags=re.I)
    assert srcs == ([PLOTLY_JS] if name in CHART_PAGES else [])
    assert "cdn" not in text.lower()
    assert not re.search(r"\b(src|href)\s*=\s*[\"']?(https?:)?//", text, flags=re.I)
    assert "<link" not in text.lower() and "@import" not in text and "@font-face" not in text
    # The page does not carry plotly.js itself.
    assert "plotly.js v" not in text.lower() and len(text) < len(plotly.offline.get_plotlyjs()) / 10


@pytest.mark.parametrize("name", PAGES)
def test_every_page_has_the_nav_and_says_what_and_when(site: Path, name: str) -> None:
    text = page(site, name)
    nav = re.findall(r"<nav>.*?</nav>", text, flags=re.S)
    assert len(nav) == 1
    assert re.findall(r'href="([^"]+)"', nav[0]) == list(PAGES)
    assert nav[0].count('aria-current="page"') == 1 and f'href="{name}" aria-current="page"' in nav[0]
    title = re.search(r"<title>(.*?)</title>", text, flags=re.S)
    assert title is not None
    assert "Journeys &amp; &lt;more&gt;" in title.group(1) and "2024-03-05 02:00 UTC" in title.group(1)
    assert "Journeys & <more>" not in text


# --- escaping ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PAGES)
def test_names_from_data_never_appear_raw(site: Path, name: str) -> None:
    text = page(site, name)
    assert "alert(1)</script>" not in text and "<script>alert" not in text
    assert CART not in text and BROWSE not in text
    # Every <script> opened is closed exactly once by the page itself, never by data.
    assert len(re.findall(r"<script\b", text)) == text.count("</script>")


def test_names_from_data_appear_escaped(site: Path) -> None:
    for name in ("funnel.html", "transitions.html"):
        text = page(site, name)
        for stage in (XSS, CART, BROWSE):
            assert f">{html.escape(stage)}</td>" in text, (name, stage)
    assert f">{html.escape(CART)}</span>" in page(site, "index.html")  # the worst drop-off stage


def test_script_json_cannot_close_its_tag(site: Path) -> None:
    for name in CHART_PAGES:
        text = page(site, name)
        for script in re.findall(r"<script>(.*?)</script>", text, flags=re.S):
            assert "</" not in script and "<!--" not in script


def test_plotly_text_escapes_markup() -> None:
    assert plotly_text(XSS) == "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;"
    assert plotly_text("a & b <br>") == "a &amp; b &lt;br&gt;"
    assert plotly_text(CART) == CART  # plotly.js does not decode &quot;, so quotes stay


# --- figures (pure) ----------------------------------------------------------------------------------


def sankey_links_frame() -> pd.DataFrame:
    return pd.DataFrame(SANKEY_LINKS, columns=list(SANKEY_LINKS_COLUMNS))


def test_sankey_nodes_and_links_are_the_mart_rows() -> None:
    fig = sankey_figure(sankey_links_frame(), 10, [s[0] for s in STAGE_FUNNEL])
    trace = fig.data[0]
    labels = list(trace.node.label)
    assert len(labels) == len(SANKEY_NODES) == 10  # one node per (step, node)
    assert Counter(labels) == Counter(plotly_text(n) for _, n in SANKEY_NODES)
    drawn = Counter(
        (labels[s], labels[t], v)
        for s, t, v in zip(trace.link.source, trace.link.target, trace.link.value, strict=True)
    )
    assert drawn == Counter((plotly_text(f), plotly_text(t), c) for _, f, _, t, c in SANKEY_LINKS)
    assert sum(trace.link.value) == sum(c for *_, c in SANKEY_LINKS)
    assert trace.arrangement == "fixed" and trace.node.align == "left"
    assert [a.text for a in fig.layout.annotations] == ["step 1", "step 2", "step 3", "after step 3"]


def test_sankey_hover_shares_and_colours() -> None:
    trace = sankey_figure(sankey_links_frame(), 10, [s[0] for s in STAGE_FUNNEL]).data[0]
    labels = list(trace.node.label)
    ends = zip(trace.link.source, trace.link.target, strict=True)
    hovers = dict(zip(ends, trace.link.customdata, strict=True))
    browse, xss_step2 = labels.index(plotly_text(BROWSE)), labels.index(plotly_text(XSS))
    hover = hovers[(browse, xss_step2)]
    # 6 of 10 journey customers; 6 of the 9 at browse in step 1.
    assert "6 customers" in hover and "60.0% of journey customers" in hover
    assert "66.7% of the customers at browse &amp; search (step 1)" in hover
    assert "<script" not in hover and "&lt;/script&gt;" in hover
    drops = [i for i, label in enumerate(labels) if label == DROP]
    assert all(trace.node.color[i] == "#d62728" for i in drops)
    for t, colour in zip(trace.link.target, trace.link.color, strict=True):
        node = trace.node.color[t]
        r, g, b = (int(node[i : i + 2], 16) for i in (1, 3, 5))
        assert colour.startswith(f"rgba({r},{g},{b},") and not colour.endswith(",1)")  # target's, see-through


def test_sankey_without_journeys_is_a_message() -> None:
    fig = sankey_figure(sankey_links_frame().iloc[0:0], 0)
    assert len(fig.data) == 0 and "No journeys" in fig.layout.annotations[0].text


def test_funnel_figure_values_are_the_mart_rows() -> None:
    frame = pd.DataFrame(STAGE_FUNNEL, columns=list(STAGE_FUNNEL_COLUMNS))
    funnel, dropoff = funnel_figure(frame).data
    assert list(funnel.y) == [plotly_text(s[0]) for s in STAGE_FUNNEL]
    assert list(funnel.x) == [s[2] for s in STAGE_FUNNEL]
    assert list(dropoff.x) == [s[4] for s in STAGE_FUNNEL]
    assert list(dropoff.text)[:3] == ["10.0%", "22.2%", "28.6%"]


def test_transitions_figure_places_each_probability() -> None:
    frame = pd.DataFrame(STAGE_TRANSITIONS, columns=list(STAGE_TRANSITIONS_COLUMNS))
    heat = transitions_figure(frame).data[0]
    rows, cols = list(heat.y), list(heat.x)
    assert rows == [plotly_text(s) for s in (START, BROWSE, XSS, CART, BUY)]
    assert cols == [plotly_text(s) for s in (BROWSE, XSS, CART, BUY, END)]
    for f, t, *_, p, _ in STAGE_TRANSITIONS:
        assert heat.z[rows.index(plotly_text(f))][cols.index(plotly_text(t))] == p
    assert sum(v is not None for row in heat.z for v in row) == len(STAGE_TRANSITIONS)


# --- pages -------------------------------------------------------------------------------------------


def test_index_shows_the_run_summary(site: Path) -> None:
    text = page(site, "index.html")
    for label, value in [
        ("Events loaded", "55"),
        ("Events rejected", "3"),
        ("Customers", "12"),
        ("Journey customers", "10"),
        ("Sessions", "17"),
        ("Converted", "5"),
    ]:
        assert re.search(rf"<dt>{label}</dt><dd><span class=\"value\">{value}</span>", text), label
    assert "conversion rate 50.0%" in text and "28.6% of the customers reaching it" in text
    assert "run-42" in text


def test_funnel_table_rows(site: Path) -> None:
    text = page(site, "funnel.html")
    rows = re.findall(r"<tr>(.*?)</tr>", text.split("<tbody>")[1], flags=re.S)
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", r) for r in rows]
    assert cells == [
        [html.escape(BROWSE), "1", "10", "1", "10.0%", "90.0%", "100.0%"],
        [html.escape(XSS), "2", "9", "2", "22.2%", "77.8%", "90.0%"],
        [html.escape(CART), "3", "7", "2", "28.6%", "71.4%", "70.0%"],
        [BUY, "4", "5", "5", "—", "—", "50.0%"],
    ]


def test_transition_table_sorted_by_from_order_then_transitions(site: Path) -> None:
    text = page(site, "transitions.html")
    rows = re.findall(r"<tr>(.*?)</tr>", text.split("<tbody>")[1], flags=re.S)
    cells = [[html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", r)] for r in rows]
    expected = sorted(STAGE_TRANSITIONS, key=lambda t: (t[2], -t[4], t[3]))
    assert [(c[0], c[1], int(c[2]), int(c[3])) for c in cells] == [(t[0], t[1], t[4], t[5]) for t in expected]
    assert cells[0][4:] == ["90.0%", "—"]  # probability as %, no median on a (start) edge
    assert [c[5] for c in cells if c[0] == BUY and c[1] == BROWSE] == ["120.5"]


def test_empty_marts_still_build(tmp_path: Path) -> None:
    summary = dict(
        RUN_SUMMARY, journey_customers=0, converted=0, conversion_rate=None, worst_dropoff_stage=None,
        worst_dropoff_rate=None,
    )  # fmt: skip
    written = build_report(make_warehouse(summary=summary, funnel=[], transitions=[], links=[]), tmp_path)
    assert len(written) == 5
    index = page(tmp_path, "index.html")
    assert "conversion rate —" in index and "no stage before the last" in index
    assert "No journeys in this run." in page(tmp_path, "sankey.html")


def test_run_summary_must_hold_one_row() -> None:
    # (make_warehouse holds only the four marts, so every other test also shows nothing else is read.)
    con = make_warehouse()
    con.execute("DELETE FROM run_summary")
    with pytest.raises(ValueError, match="run_summary holds 0 rows"):
        read_marts(con)


# --- in the browser ----------------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.parametrize("name", PAGES)
def test_page_opens_cleanly(browser: Browser, site: Path, name: str) -> None:
    visit = Visit(browser, (site / name).as_uri())
    if name in CHART_PAGES:
        visit.page.wait_for_selector(".plotly-graph-div .main-svg")
        assert visit.page.evaluate("typeof window.Plotly") == "object"
        # Nothing on the mode bar reaches the network (plotly.js 3 adds a "Share chart" upload button).
        buttons = visit.page.eval_on_selector_all(".modebar-btn", "els => els.map(e => e.dataset.title)")
        assert "Download plot as a PNG" in buttons and not any("Share" in b for b in buttons)
    visit.page.wait_for_timeout(300)  # let late errors and dialogs surface
    visit.assert_clean()
    visit.page.close()


@pytest.mark.browser
def test_sankey_renders_every_node(browser: Browser, site: Path) -> None:
    visit = Visit(browser, (site / "sankey.html").as_uri())
    visit.page.wait_for_selector("g.sankey-node")
    assert visit.page.locator("g.sankey-node").count() == len(SANKEY_NODES)
    assert visit.page.locator(".sankey-link").count() == len(SANKEY_LINKS)
    # plotly.js decodes the escaped labels back to the names, as text, not markup.
    labels = visit.page.eval_on_selector_all("g.sankey-node .node-label", TEXTS)
    assert Counter(labels) == Counter(n for _, n in SANKEY_NODES)
    artifacts = REPO / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    visit.page.screenshot(path=str(artifacts / "sankey.png"), full_page=True)
    # The hover label of a node whose name is markup shows the name as text.
    node = visit.page.locator("g.sankey-node").nth(labels.index(XSS))
    node.hover()
    visit.page.wait_for_selector(".hoverlayer .hovertext")
    hover = visit.page.locator(".hoverlayer .hovertext").first.text_content() or ""
    assert XSS in hover and "6 customers" in hover and "60.0% of journey customers" in hover
    visit.assert_clean()
    visit.page.close()


@pytest.mark.browser
def test_funnel_renders_its_bars(browser: Browser, site: Path) -> None:
    visit = Visit(browser, (site / "funnel.html").as_uri())
    visit.page.wait_for_selector(".funnellayer .point path")
    bars = visit.page.locator(".funnellayer .point path")
    assert bars.count() == len(STAGE_FUNNEL)
    boxes = [bars.nth(i).bounding_box() for i in range(bars.count())]
    widths = [box["width"] for box in boxes if box is not None]
    # Drawn, visible, and narrowing down the funnel as reached does (10, 9, 7, 5).
    assert len(widths) == len(STAGE_FUNNEL) and all(w > 0 for w in widths)
    assert widths == sorted(widths, reverse=True)
    # Both subplots share the y axis: one tick per stage, the names as text.
    ticks = visit.page.eval_on_selector_all(".yaxislayer-above .ytick text", TEXTS)
    assert Counter(ticks) == Counter(s[0] for s in STAGE_FUNNEL)
    visit.assert_clean()
    visit.page.close()
