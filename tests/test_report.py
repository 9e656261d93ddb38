"""The report site, drawn from a hand-written warehouse of the marts it reads.

The fixture is one run of ten journey customers over four stages, two of them named to break HTML
(`</script><script>alert(1)</script>` and `Bob's "cart"`), with the sankey cut at three steps:

    c1-c3  browse → X → cart → purchase         c7   browse → cart → browse
    c4-c5  browse → X                            c8   X → cart → purchase
    c6     browse                                c9   browse → X → cart → purchase → browse
    c10    browse → cart

(X is the script-named stage; step nodes under 15% of journey customers are folded into `other`.)
Around it: the run history (the previous night, a same-day rerun, runs either side of 7 days before),
Sankey links of two first-touch channels (`email`, 4 journeys, and `<b>ads</b>`, 3), three cohort dates
(one more than 90 days before the others), the leak table, channel attribution and an emotion curve, with
touchpoint and channel names that are markup too. Every expected number below can be counted by hand.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pandas as pd
import plotly.offline
import pytest

from cjm_analytics.errors import MartMissingError
from cjm_analytics.names import CUSTOMERS
from cjm_analytics.report import (
    CHANNEL_ATTRIBUTION_COLUMNS,
    EMOTION_CURVE_COLUMNS,
    KPIS,
    LEAKS_COLUMNS,
    PAGE_BUDGET_BYTES,
    PAGES,
    PLOTLY_JS,
    RUN_STATUS_JS,
    RUN_SUMMARY_COLUMNS,
    SANKEY_LINKS_COLUMNS,
    STAGE_CONVERSION_DAILY_COLUMNS,
    STAGE_FUNNEL_COLUMNS,
    STAGE_TRANSITIONS_COLUMNS,
    SankeySegment,
    attribution_figure,
    build_report,
    change,
    earlier_runs,
    emotion_figure,
    funnel_figure,
    leaks_figure,
    plotly_text,
    read_marts,
    sankey_figure,
    segment_sankey_figure,
    table_page,
    transition_network_figure,
    transitions_figure,
    trends_figure,
)
from cjm_analytics.report.figures import trend_bins
from cjm_analytics.report.formatting import fmt_date_range
from cjm_analytics.report.pages import NAV
from cjm_analytics.report.theme import BLUE, GREEN, INK, MUTED_TEXT, PURPLE, VERMILLION
from tests.browser import Visit

if TYPE_CHECKING:
    from playwright.sync_api import Browser

REPO = Path(__file__).resolve().parents[1]
BROWSE = "browse & search"
XSS = "</script><script>alert(1)</script>"
CART = 'Bob\'s "cart"'
BUY = "purchase"
ADS = "<b>ads</b>"  # a channel name that is markup
IMG = "<img src=x onerror=alert(2)>"  # a touchpoint that is markup
START, END = "(start)", "(end)"
DROP, DONE, CONT, OTHER = "(drop-off)", "(completed)", "(continues)", "other"
# Under every Sankey: what the two sinks mean (colour is never the only cue).
SINKS_NOTE = "(drop-off) (red): ended before the goal, lost · (completed) (green): reached the goal and ended"
TEXTS = "els => els.map(e => e.textContent)"
PAGE_NAMES = tuple(p.name for p in PAGES)
# The navigation bar: the pages, then the index of the analysis pages (written beside the site, not by build_report).
NAV_NAMES = (*PAGE_NAMES, "analyses.html")
CHART_PAGES = tuple(name for name in PAGE_NAMES if name != "index.html")
STAGES = [BROWSE, XSS, CART, BUY]

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


def history_row(run_id: str, started: datetime, **values: Any) -> dict[str, Any]:
    """A run_history row: tonight's figures, with some replaced."""
    return {**RUN_SUMMARY, "run_id": run_id, "run_started_at": started, **values}


# Previous night = run-41 (run-42a is a rerun earlier the same UTC day); 7 days ago = run-35, which started
# exactly 7 × 24 h before (run-36 started one second too late to count).
RUN_HISTORY = [
    history_row("run-30", datetime(2024, 2, 20, 2, 0), journey_customers=2),
    history_row(
        "run-35", datetime(2024, 2, 27, 2, 0), journey_customers=4, converted=1, conversion_rate=0.25,
        worst_dropoff_stage=BROWSE, worst_dropoff_rate=0.5, customers=5, sessions=6, events_loaded=20,
    ),
    history_row("run-36", datetime(2024, 2, 27, 2, 0, 1), journey_customers=5),
    history_row(
        "run-41", datetime(2024, 3, 4, 2, 0), journey_customers=8, conversion_rate=0.625, worst_dropoff_rate=0.25,
        customers=11, sessions=15, events_loaded=50, events_rejected=4,
    ),
    history_row("run-42a", datetime(2024, 3, 5, 0, 30), journey_customers=9),
    dict(RUN_SUMMARY),
]

# stage, stage_order, reached, exited, dropoff_rate, conversion_to_next, conversion_from_first, before_goal, is_goal
# (the goal is purchase, the last stage)
STAGE_FUNNEL = [
    (BROWSE, 1, 10, 1, 1 / 10, 9 / 10, 1.0, True, False),
    (XSS, 2, 9, 2, 2 / 9, 7 / 9, 0.9, True, False),
    (CART, 3, 7, 2, 2 / 7, 5 / 7, 0.7, True, False),
    (BUY, 4, 5, 5, None, None, 0.5, False, True),
]
# from_stage, to_stage, from_order, to_order, transitions, customers, probability, median_hours,
# converted_transitions (the 5 buyers: 4 end at purchase, one goes back to browse and ends there)
STAGE_TRANSITIONS = [
    (START, BROWSE, 0, 1, 9, 9, 9 / 10, None, 5),
    (START, XSS, 0, 2, 1, 1, 1 / 10, None, 0),
    (BROWSE, XSS, 1, 2, 6, 6, 6 / 11, 1.5, 3),
    (BROWSE, CART, 1, 3, 2, 2, 2 / 11, 3.25, 2),
    (BROWSE, END, 1, 5, 3, 3, 3 / 11, None, 1),
    (XSS, CART, 2, 3, 5, 5, 5 / 7, 0.5, 3),
    (XSS, END, 2, 5, 2, 2, 2 / 7, None, 0),
    (CART, BUY, 3, 4, 5, 5, 5 / 7, 26.0, 5),
    (CART, BROWSE, 3, 1, 1, 1, 1 / 7, 2.0, 0),
    (CART, END, 3, 5, 1, 1, 1 / 7, None, 0),
    (BUY, END, 4, 5, 4, 4, 4 / 5, None, 4),
    (BUY, BROWSE, 4, 1, 1, 1, 1 / 5, 120.5, 1),
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
# The first-touch segments: email (c1-c3, c6) and <b>ads</b> (c4, c5, c8 are made to start at X here).
EMAIL_LINKS = [(1, BROWSE, 2, XSS, 3), (1, BROWSE, 2, DROP, 1), (2, XSS, 3, CART, 3), (3, CART, 4, CONT, 3)]
ADS_LINKS = [(1, XSS, 2, CART, 2), (1, XSS, 2, DROP, 1), (2, CART, 3, DROP, 2)]
SANKEY_SEGMENT_LINKS = (
    [("all", "all", *link) for link in SANKEY_LINKS]
    + [("first_channel", "email", *link) for link in EMAIL_LINKS]
    + [("first_channel", ADS, *link) for link in ADS_LINKS]
)
# segment_type, segment, segment_size, then the stage_funnel columns (the first stage's row is enough here).
STAGE_FUNNEL_BY_SEGMENT = [
    ("first_channel", "email", 4, BROWSE, 1, 4, 1, 0.25, 0.75, 1.0, True, False),
    ("first_channel", ADS, 3, BROWSE, 1, 3, 0, 0.0, 1.0, 1.0, True, False),
    ("cohort_month", "2024-03", 9, BROWSE, 1, 9, 1, 1 / 9, 8 / 9, 1.0, True, False),
]
# cohort_date, stage, stage_order, reached, exited, dropoff_rate, before_goal, is_goal, matured,
# p90_hours_to_convert: 1 + 4 + 5 journeys
# add up to stage_funnel; the cohort of 3 Mar has not yet had the p90 time to convert (48 h).
OLD_COHORT, COHORT_1, COHORT_3 = date(2023, 11, 20), date(2024, 3, 1), date(2024, 3, 3)
STAGE_CONVERSION_DAILY = [
    (OLD_COHORT, BROWSE, 1, 1, 1, 1.0, True, False, True, 48.0),
    (OLD_COHORT, XSS, 2, 0, 0, None, True, False, True, 48.0),
    (OLD_COHORT, CART, 3, 0, 0, None, True, False, True, 48.0),
    (OLD_COHORT, BUY, 4, 0, 0, None, False, True, True, 48.0),
    (COHORT_1, BROWSE, 1, 4, 0, 0.0, True, False, True, 48.0),
    (COHORT_1, XSS, 2, 4, 1, 0.25, True, False, True, 48.0),
    (COHORT_1, CART, 3, 3, 1, 1 / 3, True, False, True, 48.0),
    (COHORT_1, BUY, 4, 2, 2, None, False, True, True, 48.0),
    (COHORT_3, BROWSE, 1, 5, 0, 0.0, True, False, False, 48.0),
    (COHORT_3, XSS, 2, 5, 1, 0.2, True, False, False, 48.0),
    (COHORT_3, CART, 3, 4, 1, 0.25, True, False, False, 48.0),
    (COHORT_3, BUY, 4, 3, 3, None, False, True, False, 48.0),
]
# rank, stage, customers_lost, share_of_reached, top_last_touchpoint, top_lift_touchpoint, support_share,
# low_score_share, loopers, median_hours_since_last_event (ties on customers lost: journey order).
LEAKS = [
    (1, XSS, 2, 2 / 9, IMG, None, 0.5, 0.0, 1, 12.25),
    (2, CART, 2, 2 / 7, "/cart?a=1&b=2", "/help", 0.0, 0.5, 0, 30.0),
    (3, BROWSE, 1, 1 / 10, "/", None, 0.0, 0.0, 0, 48.0),
]
# channel, first_touch, last_touch, linear, markov, removal_effect: every model credits the 5 conversions.
CHANNEL_ATTRIBUTION = [
    ("direct", 2.0, 1.0, 1.5, 2.2, 0.6),
    (ADS, 1.0, 2.0, 1.5, 1.8, 0.5),
    ("email", 2.0, 2.0, 2.0, 1.0, 0.3),
]
# stage, stage_order, responses, mean_score, ci_low, ci_high, nps, nps_responses, csat_mean, csat_responses,
# invalid_responses (X has no answers; purchase one, so no interval).
EMOTION_CURVE = [
    (BROWSE, 1, 3, 0.9667, 0.9013, 1.0, 100.0, 2, 5.0, 1, 1),
    (XSS, 2, 0, None, None, None, None, 0, None, 0, 0),
    (CART, 3, 3, 0.5167, 0.2051, 0.8283, 0.0, 1, 2.5, 2, 1),
    (BUY, 4, 1, 0.6, None, None, -100.0, 1, None, 0, 0),
]

# The journey_map mart (docs/marts.md) for all customers and one too-small persona whose name is markup; a
# touchpoint and a moment of truth are markup too. Surveys are configured, support is not.
JM = ("all", "all customers", 10, False)
JM_ADS = ("first_touch_channel", ADS, 4, True)
MOMENT = '<a href="https://example.com">chat</a>'


def _jm(who: tuple[Any, ...], stage: str | None, order: int | None, measure: str, value: float,
        label: str | None = None, rank: int | None = None, ci: tuple[float, float] | None = None,
        customers: int | None = None, stats: tuple[Any, ...] = (None,) * 5) -> tuple[Any, ...]:
    low, high = ci or (None, None)
    return (*who, stage, order, measure, rank, label, value, low, high, customers, None, *stats)


JOURNEY_MAP = [
    _jm(("all", "all customers", None, None), None, None, "surveys_configured", 1.0),
    _jm(("all", "all customers", None, None), None, None, "support_configured", 0.0),
    *[_jm(JM, stage, order, "reached", reached, customers=reached)
      for stage, order, reached, *_ in STAGE_FUNNEL],
    *[_jm(JM_ADS, stage, order, "reached", r, customers=r)
      for (stage, order, *_), r in zip(STAGE_FUNNEL, (4, 4, 3, 1), strict=True)],
    _jm(JM, BROWSE, 1, "conversion_to_next", 0.9, ci=(0.5958, 0.9821), customers=10),
    _jm(JM, CART, 3, "lost", 2, customers=7),
    _jm(JM, BUY, 4, "completed", 5, customers=5),
    _jm(JM_ADS, BUY, 4, "completed", 1, customers=1),
    _jm(JM, BROWSE, 1, "top_touchpoint", 0.8, label=IMG, rank=1, customers=10),
    _jm(JM, BROWSE, 1, "emotion_mean_score", 0.9667, ci=(0.9013, 1.0), customers=3),
    _jm(JM, CART, 3, "emotion_mean_score", 0.5167, ci=(0.2051, 0.8283), customers=3),
    _jm(JM_ADS, XSS, 2, "emotion_mean_score", 0.25, customers=1),
    _jm(JM, CART, 3, "moment_of_truth", 0.6, label=MOMENT, rank=1, ci=(0.1, 0.8), customers=7,
        stats=(0.8, 0.2, 0.01, 0.03, True)),
    _jm(JM, CART, 3, "opportunity", 1.2, label=MOMENT, rank=1, ci=(0.2, 1.6), customers=2,
        stats=(0.8, 0.2, 0.01, 0.03, True)),
    _jm(JM_ADS, BUY, 4, "persona_conversion", 0.25, ci=(0.0456, 0.6994), customers=4,
        stats=(0.25, 4 / 6, 0.5, 0.5, False)),
]

_RUN_COLUMNS = """run_id VARCHAR, run_started_at TIMESTAMP, events_read BIGINT, events_loaded BIGINT,
        events_rejected BIGINT, events_duplicate BIGINT, customers BIGINT, journey_customers BIGINT,
        sessions BIGINT, converted BIGINT, conversion_rate DOUBLE, worst_dropoff_stage VARCHAR,
        worst_dropoff_rate DOUBLE"""
_FUNNEL_COLUMNS = """stage VARCHAR, stage_order INTEGER, reached BIGINT, exited BIGINT, dropoff_rate DOUBLE,
        conversion_to_next DOUBLE, conversion_from_first DOUBLE, before_goal BOOLEAN, is_goal BOOLEAN"""
_LINK_COLUMNS = "from_step INTEGER, from_node VARCHAR, to_step INTEGER, to_node VARCHAR, customers BIGINT"
DDL = {
    "run_summary": _RUN_COLUMNS,
    "run_history": _RUN_COLUMNS,
    "stage_funnel": _FUNNEL_COLUMNS,
    "stage_funnel_by_segment": f"segment_type VARCHAR, segment VARCHAR, segment_size BIGINT, {_FUNNEL_COLUMNS}",
    "stage_transitions": """from_stage VARCHAR, to_stage VARCHAR, from_order INTEGER, to_order INTEGER,
        transitions BIGINT, customers BIGINT, probability DOUBLE, median_hours DOUBLE,
        converted_transitions BIGINT""",
    "sankey_links": _LINK_COLUMNS,
    "sankey_segment_links": f"segment_type VARCHAR, segment VARCHAR, {_LINK_COLUMNS}",
    "stage_conversion_daily": """cohort_date DATE, stage VARCHAR, stage_order INTEGER, reached BIGINT,
        exited BIGINT, dropoff_rate DOUBLE, before_goal BOOLEAN, is_goal BOOLEAN, matured BOOLEAN,
        p90_hours_to_convert DOUBLE""",
    "leaks": """rank BIGINT, stage VARCHAR, customers_lost BIGINT, share_of_reached DOUBLE,
        top_last_touchpoint VARCHAR, top_lift_touchpoint VARCHAR, support_share DOUBLE, low_score_share DOUBLE,
        loopers BIGINT, median_hours_since_last_event DOUBLE""",
    "channel_attribution": """channel VARCHAR, first_touch DOUBLE, last_touch DOUBLE, linear DOUBLE,
        markov DOUBLE, removal_effect DOUBLE""",
    "emotion_curve": """stage VARCHAR, stage_order INTEGER, responses BIGINT, mean_score DOUBLE, ci_low DOUBLE,
        ci_high DOUBLE, nps DOUBLE, nps_responses BIGINT, csat_mean DOUBLE, csat_responses BIGINT,
        invalid_responses BIGINT""",
    "journey_map": """persona_type VARCHAR, persona VARCHAR, persona_size BIGINT, too_small BOOLEAN, stage VARCHAR,
        stage_order INTEGER, measure VARCHAR, rank INTEGER, label VARCHAR, value DOUBLE, ci_low DOUBLE,
        ci_high DOUBLE, customers BIGINT, hits BIGINT, rate_with DOUBLE, rate_without DOUBLE, p_value DOUBLE,
        q_value DOUBLE, significant BOOLEAN""",
}


def make_warehouse(
    *,
    summary: dict[str, Any] | None = None,
    history: list[dict[str, Any]] | None = None,
    funnel: list[tuple[Any, ...]] = STAGE_FUNNEL,
    transitions: list[tuple[Any, ...]] = STAGE_TRANSITIONS,
    links: list[tuple[Any, ...]] = SANKEY_LINKS,
    segment_links: list[tuple[Any, ...]] = SANKEY_SEGMENT_LINKS,
    daily: list[tuple[Any, ...]] = STAGE_CONVERSION_DAILY,
    leaks: list[tuple[Any, ...]] = LEAKS,
    attribution: list[tuple[Any, ...]] = CHANNEL_ATTRIBUTION,
    emotion: list[tuple[Any, ...]] | None = EMOTION_CURVE,
) -> duckdb.DuckDBPyConnection:
    """An in-memory warehouse holding only the marts, as documented in docs/tables.md (emotion=None: no surveys)."""
    con = duckdb.connect()
    for table, columns in DDL.items():
        if table != "emotion_curve" or emotion is not None:
            con.execute(f"CREATE TABLE {table} ({columns})")
    row = summary if summary is not None else RUN_SUMMARY
    con.execute(f"INSERT INTO run_summary VALUES ({', '.join('?' * len(row))})", list(row.values()))
    runs = history if history is not None else RUN_HISTORY
    for run in runs:
        con.execute(f"INSERT INTO run_history VALUES ({', '.join('?' * len(run))})", list(run.values()))
    marts = {
        "stage_funnel": funnel,
        "stage_funnel_by_segment": STAGE_FUNNEL_BY_SEGMENT,
        "stage_transitions": transitions,
        "sankey_links": links,
        "sankey_segment_links": segment_links,
        "stage_conversion_daily": daily,
        "leaks": leaks,
        "channel_attribution": attribution,
        "emotion_curve": emotion or [],
        "journey_map": JOURNEY_MAP,
    }
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


def frame(rows: list[tuple[Any, ...]], columns: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(columns))


def table_cells(text: str, nth: int = 0) -> list[list[str]]:
    """The body cells of the page's nth table, unescaped."""
    body = text.split("<tbody>")[nth + 1].split("</tbody>")[0]
    rows = re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)
    return [[html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", r)] for r in rows]


# --- files -------------------------------------------------------------------------------------------


def test_writes_the_pages_and_one_plotly_js(tmp_path: Path) -> None:
    out = tmp_path / "reports" / "nested"
    written = build_report(make_warehouse(), out)
    assert [p.name for p in written] == [PLOTLY_JS, RUN_STATUS_JS, *PAGE_NAMES]
    assert PAGE_NAMES == (
        "index.html", "journey-map.html", "sankey.html", "funnel.html", "trends.html", "pain-points.html",
        "emotion.html", "attribution.html", "transitions.html",
    )  # fmt: skip
    assert all(p.parent == out and p.is_file() for p in written)
    assert sorted(p.name for p in out.iterdir()) == sorted([PLOTLY_JS, RUN_STATUS_JS, *PAGE_NAMES])  # no temp files
    assert (out / PLOTLY_JS).read_text(encoding="utf-8") == plotly.offline.get_plotlyjs()


def test_rebuild_overwrites_in_place(tmp_path: Path) -> None:
    build_report(make_warehouse(), tmp_path)
    first = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    build_report(make_warehouse(), tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == first  # deterministic, div ids too


@pytest.mark.parametrize("name", PAGE_NAMES)
def test_page_is_offline_and_small(site: Path, name: str) -> None:
    text = page(site, name)
    assert len(text.encode("utf-8")) < PAGE_BUDGET_BYTES
    srcs = re.findall(r"<script\b[^>]*\bsrc\s*=\s*[\"']?([^\"' >]+)", text, flags=re.I)
    # The overview reads the latest run's verdict from run_status.js (docs/checks.md); chart pages load plotly.
    assert srcs == ([PLOTLY_JS] if name in CHART_PAGES else [RUN_STATUS_JS] if name == "index.html" else [])
    assert "cdn" not in text.lower()
    assert not re.search(r"\b(src|href)\s*=\s*[\"']?(https?:)?//", text, flags=re.I)
    assert "<link" not in text.lower() and "@import" not in text and "@font-face" not in text
    # The page does not carry plotly.js itself.
    assert "plotly.js v" not in text.lower() and len(text) < len(plotly.offline.get_plotlyjs()) / 10


def test_pages_share_the_stylesheet_and_the_charts_colours(site: Path) -> None:
    styles = {re.findall(r"<style>(.*?)</style>", page(site, name), flags=re.S)[0] for name in PAGE_NAMES}
    assert len(styles) == 1
    css = styles.pop()
    assert "nav a[aria-current=\"page\"]" in css and "/*" not in css  # site.css, without its comments
    assert f"--muted: {MUTED_TEXT};" in css and f"--fg: {INK.lower()};" in css


@pytest.mark.parametrize("name", PAGE_NAMES)
def test_every_page_has_the_nav_and_says_what_and_when(site: Path, name: str) -> None:
    text = page(site, name)
    nav = re.findall(r"<nav\b[^>]*>.*?</nav>", text, flags=re.S)
    assert len(nav) == 1
    assert re.findall(r'href="([^"]+)"', nav[0]) == list(NAV_NAMES)
    assert nav[0].count('aria-current="page"') == 1 and f'href="{name}" aria-current="page"' in nav[0]
    title = re.search(r"<title>(.*?)</title>", text, flags=re.S)
    assert title is not None
    assert "Journeys &amp; &lt;more&gt;" in title.group(1) and "2024-03-05 02:00 UTC" in title.group(1)
    assert "Journeys & <more>" not in text
    # Every chart's title says what, and its subtitle when: the journeys' dates and the run's.
    for caption in re.findall(r"<figcaption>(.*?)</figcaption>", text, flags=re.S):
        assert re.search(r'<span class="chart-title">[^<]+</span>', caption), caption
        assert "20 Nov 2023 – 3 Mar 2024" in caption or "1–3 Mar 2024" in caption, caption


def test_each_chart_page_draws_its_charts(site: Path) -> None:
    expected = {
        "sankey.html": ["sankey-chart"],
        "funnel.html": ["funnel-chart"],
        "trends.html": ["trends-chart"],
        "pain-points.html": ["leaks-chart"],
        "emotion.html": ["emotion-chart"],
        "attribution.html": ["attribution-chart"],
        "transitions.html": ["network-chart", "transitions-chart"],
    }
    for name, ids in expected.items():
        text = page(site, name)
        assert re.findall(r'<div id="([a-z-]+-chart)"', text) == ids, name
        assert text.count("Plotly.newPlot(") == len(ids), name


# --- escaping ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PAGE_NAMES)
def test_names_from_data_never_appear_raw(site: Path, name: str) -> None:
    text = page(site, name)
    assert "alert(1)</script>" not in text and "<script>alert" not in text
    assert CART not in text and BROWSE not in text
    assert ADS not in text and IMG not in text and "/cart?a=1&b=2" not in text
    # Every <script> opened is closed exactly once by the page itself, never by data.
    assert len(re.findall(r"<script\b", text)) == text.count("</script>")


def test_names_from_data_appear_escaped(site: Path) -> None:
    for name in ("funnel.html", "transitions.html", "pain-points.html", "emotion.html"):
        text = page(site, name)
        for stage in (XSS, CART, BROWSE):
            assert f">{html.escape(stage)}</td>" in text, (name, stage)
    assert f">{html.escape(CART)}</span>" in page(site, "index.html")  # the worst drop-off stage
    assert f">{html.escape(IMG)}</td>" in page(site, "pain-points.html")
    assert f">{html.escape(ADS)}</td>" in page(site, "attribution.html")
    # In plotly's JSON, names are plotly text: markup escaped so that plotly.js shows it as text.
    assert "\\u003cb\\u003eads" not in page(site, "attribution.html")
    assert "&lt;b&gt;ads&lt;" in page(site, "attribution.html")


def test_script_json_cannot_close_its_tag(site: Path) -> None:
    for name in CHART_PAGES:
        text = page(site, name)
        scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", text, flags=re.S)
        assert len([s for s in scripts if "Plotly.newPlot" in s]) >= 1
        for script in scripts:
            assert "</" not in script and "<!--" not in script


def test_plotly_text_escapes_markup() -> None:
    assert plotly_text(XSS) == "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;"
    assert plotly_text("a & b <br>") == "a &amp; b &lt;br&gt;"
    assert plotly_text(CART) == CART  # plotly.js does not decode &quot;, so quotes stay


# --- figures (pure) ----------------------------------------------------------------------------------


def sankey_links_frame(rows: list[tuple[Any, ...]] = SANKEY_LINKS) -> pd.DataFrame:
    return frame(rows, SANKEY_LINKS_COLUMNS)


def test_sankey_nodes_and_links_are_the_mart_rows() -> None:
    fig = sankey_figure(sankey_links_frame(), 10, STAGES)
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
    assert [a.text for a in fig.layout.annotations] == ["step 1", "step 2", "step 3", "after step 3", SINKS_NOTE]
    assert fig.layout.updatemenus == ()  # one segment: no selector


def test_sankey_hover_shares_and_colours() -> None:
    trace = sankey_figure(sankey_links_frame(), 10, STAGES).data[0]
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
    assert len(drops) == 3 and all(trace.node.color[i] == VERMILLION for i in drops)  # sinks are red
    assert all(trace.node.color[i] != VERMILLION for i, label in enumerate(labels) if label != DROP)
    for t, colour in zip(trace.link.target, trace.link.color, strict=True):
        node = trace.node.color[t]
        r, g, b = (int(node[i : i + 2], 16) for i in (1, 3, 5))
        assert colour.startswith(f"rgba({r},{g},{b},") and not colour.endswith(",1)")  # target's, see-through


def test_sankey_without_journeys_is_a_message() -> None:
    fig = sankey_figure(sankey_links_frame().iloc[0:0], 0)
    assert len(fig.data) == 0 and "No journeys" in fig.layout.annotations[0].text


def segments() -> list[SankeySegment]:
    return [
        SankeySegment("all journeys", sankey_links_frame(), 10),
        SankeySegment("first touch: email", sankey_links_frame(EMAIL_LINKS), 4, "journeys first touched via email"),
        SankeySegment(f"first touch: {ADS}", sankey_links_frame(ADS_LINKS), 3, f"journeys first touched via {ADS}"),
    ]


def test_segment_selector_switches_between_pre_drawn_sankeys() -> None:
    fig = segment_sankey_figure(segments(), STAGES)
    assert [t.visible for t in fig.data] == [True, False, False]
    assert [len(t.node.label) for t in fig.data] == [10, 5, 4]
    assert Counter(fig.data[2].node.label) == Counter([plotly_text(XSS), plotly_text(CART), DROP, DROP])
    (menu,) = fig.layout.updatemenus
    assert [b.label for b in menu.buttons] == [
        "all journeys (10)",
        "first touch: email (4)",
        "first touch: &lt;b&gt;ads&lt;/b&gt; (3)",  # a channel's markup is shown, not obeyed
    ]
    for i, button in enumerate(menu.buttons):
        visible, layout = button.args
        assert button.method == "update" and visible == {"visible": [j == i for j in range(3)]}
        steps = sorted({s for link in (SANKEY_LINKS, EMAIL_LINKS, ADS_LINKS)[i] for s in (link[0], link[2])})
        assert [a["text"] for a in layout["annotations"]] == [
            *(f"step {s}" for s in steps[:-1]), f"after step {steps[-1] - 1}", SINKS_NOTE
        ]
    # Shares are of the segment's journeys; a stage keeps its colour in every segment.
    ads = fig.data[2]
    assert any("66.7% of journeys first touched via &lt;b&gt;ads&lt;/b&gt;" in h for h in ads.link.customdata)
    colour = {label: c for t in fig.data for label, c in zip(t.node.label, t.node.color, strict=True)}
    for t in fig.data:
        assert all(colour[label] == c for label, c in zip(t.node.label, t.node.color, strict=True))


def test_sankey_segments_come_from_the_segment_mart_largest_first() -> None:
    from cjm_analytics.report.pages.charts import sankey_segments

    marts = read_marts(make_warehouse())
    found = sankey_segments(marts)
    assert [(s.label, s.journeys) for s in found] == [
        ("all journeys", 10),
        ("first touch: email", 4),  # sizes from stage_funnel_by_segment
        (f"first touch: {ADS}", 3),
    ]
    assert [len(s.links) for s in found] == [len(SANKEY_LINKS), len(EMAIL_LINKS), len(ADS_LINKS)]


def test_funnel_figure_values_are_the_mart_rows() -> None:
    funnel, dropoff = funnel_figure(frame(STAGE_FUNNEL, STAGE_FUNNEL_COLUMNS)).data
    assert list(funnel.y) == [plotly_text(s[0]) for s in STAGE_FUNNEL]
    assert list(funnel.x) == [s[2] for s in STAGE_FUNNEL]
    assert list(funnel.text) == ["10 · 100.0%", "9 · 90.0%", "7 · 70.0%", "5 · 50.0%"]
    assert list(dropoff.x) == [s[4] for s in STAGE_FUNNEL]
    assert list(dropoff.text) == ["10.0%", "22.2%", "28.6%", "(last stage)"]
    # Red only before the goal: purchase is the goal, and stopping there is completing.
    assert list(dropoff.marker.color) == [VERMILLION, VERMILLION, VERMILLION, GREEN]


def test_transitions_figure_places_each_probability() -> None:
    heat = transitions_figure(frame(STAGE_TRANSITIONS, STAGE_TRANSITIONS_COLUMNS)).data[0]
    rows, cols = list(heat.y), list(heat.x)
    assert rows == [plotly_text(s) for s in (START, BROWSE, XSS, CART, BUY)]
    assert cols == [plotly_text(s) for s in (BROWSE, XSS, CART, BUY, END)]
    for f, t, _, _, _, _, p, *_ in STAGE_TRANSITIONS:
        assert heat.z[rows.index(plotly_text(f))][cols.index(plotly_text(t))] == p
    assert sum(v is not None for row in heat.z for v in row) == len(STAGE_TRANSITIONS)


def test_network_nodes_in_stage_order_edges_as_wide_as_their_transitions() -> None:
    fig = transition_network_figure(
        frame(STAGE_TRANSITIONS, STAGE_TRANSITIONS_COLUMNS), frame(STAGE_FUNNEL, STAGE_FUNNEL_COLUMNS)
    )
    nodes = next(t for t in fig.data if t.name == "stages")
    assert list(nodes.x) == [0, 1, 2, 3, 4, 5] and set(nodes.y) == {0}  # (start), the stages, (end)
    assert "reached: 9 customers" in nodes.customdata[2] and "exit probability: 28.6% (2 exits)" in nodes.customdata[2]
    labels = [a.text for a in fig.layout.annotations if a.xref != "paper"]
    assert labels == [
        "<b>(start)</b>",
        # The exit probability split: browse's 3 exits of 11 are 2 lost and 1 completed (a buyer who went back).
        "<b>browse &amp; search</b><br>lost 18%<br>completed 9%",
        f"<b>{plotly_text(XSS)}</b><br>lost 29%",
        f"<b>{CART}</b><br>lost 14%",
        "<b>purchase</b><br>completed 80%",  # every exit after the goal is a completion
        "<b>(end)</b>",
    ]
    # One arc per edge and two for browse's exit (lost, completed), the widest first; width ∝ transitions (the
    # busiest edge, 9, is 18 px).
    shapes = fig.layout.shapes
    arcs = [t[4] for t in STAGE_TRANSITIONS if t[0] != BROWSE or t[1] != END] + [2, 1]
    assert len(shapes) == len(STAGE_TRANSITIONS) + 1
    widths = sorted((s.line.width for s in shapes), reverse=True)
    expected = sorted((max(0.75, 18 * n / 9) for n in arcs), reverse=True)
    assert widths == pytest.approx(expected) and widths[0] == 18
    # Forward arcs above the line (blue, or red into (end)); arcs back to an earlier stage below (purple).
    edges = next(t for t in fig.data if t.name == "edges")
    by_hover = {h.split("<br>")[0]: (y, sym, c) for h, y, sym, c in zip(
        edges.customdata, edges.y, edges.marker.symbol, edges.marker.color, strict=True)}  # fmt: skip
    y, symbol, colour = by_hover[f"<b>{CART}</b> → <b>browse &amp; search</b>"]
    assert y < 0 and symbol == "triangle-left" and colour == PURPLE
    y, symbol, colour = by_hover["<b>purchase</b> → <b>(end)</b>"]
    assert y > 0 and symbol == "triangle-right" and colour == GREEN  # completed, never red
    y, symbol, colour = by_hover[f"<b>{CART}</b> → <b>(end)</b>"]
    assert y > 0 and symbol == "triangle-right" and colour == VERMILLION  # lost before the goal
    browse_exits = [(c, h) for h, c in zip(edges.customdata, edges.marker.color, strict=True)
                    if h.startswith("<b>browse &amp; search</b> → <b>(end)</b>")]
    assert sorted(c for c, _ in browse_exits) == sorted([VERMILLION, GREEN])
    assert all("probability: 27.3%" in h for _, h in browse_exits)  # the edge's own, unchanged
    assert any("2 of the exits, 18.2% of the transitions" in h for c, h in browse_exits if c == VERMILLION)
    y, symbol, colour = by_hover["<b>(start)</b> → <b>browse &amp; search</b>"]
    assert y > 0 and symbol == "triangle-right" and colour == BLUE


def test_network_edge_hover_has_the_mart_values() -> None:
    fig = transition_network_figure(frame(STAGE_TRANSITIONS, STAGE_TRANSITIONS_COLUMNS))
    edges = next(t for t in fig.data if t.name == "edges")
    hover = next(h for h in edges.customdata if h.startswith("<b>purchase</b> → <b>browse"))
    assert "transitions: 1 (1 customers)" in hover and "probability: 20.0%" in hover and "120.5" in hover


def test_trends_bin_the_whole_history_and_mark_the_cohorts_still_maturing() -> None:
    fig = trends_figure(frame(STAGE_CONVERSION_DAILY, STAGE_CONVERSION_DAILY_COLUMNS))
    bars, *lines = fig.data
    # 20 Nov 2023 – 3 Mar 2024 is 105 days (too long for days); its weeks hold a median of 5 journeys (too few):
    # months, and the old cohort is drawn, not cut off. March holds 3 Mar, which has not had 48 h: still maturing.
    assert [pd.Timestamp(d).date() for d in bars.x] == [date(2023, 11, 1), date(2024, 3, 1)] and list(bars.y) == [1, 9]
    assert list(bars.marker.color) == ["#9AA5B1", "#ffffff"]  # the maturing bar is hollow
    solid = [t for t in lines if t.meta == "matured"]
    dotted = [t for t in lines if t.meta == "maturing"]
    assert [t.name for t in solid] == [plotly_text(XSS), plotly_text(CART), BUY]
    assert [list(t.y) for t in solid] == [[0.0], [0.0], [0.0]]  # only the matured November cohort
    # The dotted part continues from the last matured bin to the maturing one: 9 of 9, 7 of 9, 5 of 9.
    assert [list(t.y) for t in dotted] == [[0.0, 1.0], [0.0, 7 / 9], [0.0, 5 / 9]]
    assert all(t.line.dash == "dot" and t.marker.color == "#ffffff" and not t.showlegend for t in dotted)
    assert "7 of 9 journeys reached it (77.8%)" in dotted[1].customdata[1]
    assert "still maturing" in dotted[1].customdata[1] and "still maturing" not in solid[1].customdata[0]
    (key,) = [t for t in lines if t.meta == "legend"]  # the legend says what dotted and hollow mean
    assert key.name == "still maturing" and key.line.dash == "dot" and key.showlegend is not False
    assert fig.layout.title.subtitle.text.endswith("by months, the whole history (5 months): 20 Nov 2023 – 3 Mar 2024")
    assert fig.layout.xaxis2.title.text == "cohort month" and fig.layout.yaxis2.tickformat == ".0%"


def _daily(first: date, days: int, per_day: int, matured_days: int | None = None) -> pd.DataFrame:
    """stage_conversion_daily of `days` cohort dates from `first`, per_day journeys each, half reaching stage 2; the
    last days from matured_days on still maturing."""
    rows = []
    for i in range(days):
        d = first + timedelta(days=i)
        matured = matured_days is None or i < matured_days
        rows += [(d, "a", 1, per_day, per_day - per_day // 2, None, True, False, matured, 24.0),
                 (d, "b", 2, per_day // 2, per_day // 2, None, False, True, matured, 24.0)]
    return frame(rows, STAGE_CONVERSION_DAILY_COLUMNS)


@pytest.mark.parametrize(
    ("days", "per_day", "grain", "bins", "history", "left_out"),
    [
        (14, 40, "day", 14, 14, 0),  # 2 weeks, 40 a day: days
        (14, 3, "week", 2, 2, 0),  # 2 weeks, 3 a day: too few a day; 2026-11-02 is a Monday, so 2 weeks
        (731, 3, "week", 106, 106, 0),  # 2 years (Sat 1 Jan 2000 – Mon 31 Dec 2001), 21 a week: weeks
        (731, 1, "month", 24, 24, 0),  # 2 years, 7 a week: months
        (1461, 40, "month", 48, 48, 0),  # 4 years: months, the whole history
        (13 * 365, 1, "month", 120, 156, None),  # 13 years: the latest 120 months, the rest left out and said
    ],
)
def test_trend_grain_fits_the_span_and_size(days: int, per_day: int, grain: str, bins: int, history: int,
                                            left_out: int | None) -> None:
    first = date(2026, 11, 2) if days == 14 else date(2000, 1, 1)
    binned = trend_bins(_daily(first, days, per_day))
    assert binned is not None
    assert (binned.grain, binned.bins_in_window, binned.bins_in_history) == (grain, bins, history)
    last = first + timedelta(days=days - 1)
    assert binned.last_day == last and len(binned.bins) == bins  # every bin of the window has cohorts here
    # Each bin's journeys are the exact sum of its days; nothing drawn is lost, what is not drawn is counted.
    journeys = binned.rows[binned.rows["stage_order"] == 1]["reached"].sum()
    assert journeys + binned.journeys_left_out == days * per_day
    if left_out is None:  # 13 years: Jan 2000 .. Dec 2012, the window starts 120 months before Dec 2012
        assert binned.bins[0] == date(2003, 1, 1) and binned.first_day == date(2003, 1, 1)
        assert binned.journeys_left_out == (date(2003, 1, 1) - first).days * per_day
        assert "the last 120 of 156 months of history" in binned.window_text()
    else:
        assert binned.journeys_left_out == left_out and binned.first_day == first
        assert f"the whole history ({history} " in binned.window_text()


@pytest.mark.parametrize(("hours", "text"), [(0.3, "18 minutes"), (18, "18 hours"), (84, "3.5 days"),
                                             (343 * 24, "343 days")])
def test_the_maturity_horizon_reads_in_minutes_hours_or_days(hours: float, text: str) -> None:
    from cjm_analytics.report.pages.charts import _duration

    assert _duration(hours) == text


def test_one_day_of_history_is_one_day() -> None:
    binned = trend_bins(_daily(date(2019, 10, 1), 1, 4_000))
    assert binned is not None and binned.window_text() == "by days, the whole history (1 day)"


def test_a_bin_matures_only_when_all_its_days_have() -> None:
    # 2 weeks of 3 a day are weeks: Mon 2 – Sun 8 and Mon 9 – Sun 15 Nov 2026; from the 12th on the days are still
    # maturing, so the second week is, although 9–11 Nov have matured.
    binned = trend_bins(_daily(date(2026, 11, 2), 14, 3, matured_days=10))
    assert binned is not None and binned.grain == "week"
    assert binned.maturing == [date(2026, 11, 9)] and binned.bins == [date(2026, 11, 2), date(2026, 11, 9)]


@pytest.mark.parametrize(
    ("start", "end", "text"),
    [
        (date(2026, 11, 1), date(2026, 11, 30), "1–30 Nov 2026"),
        (date(2026, 10, 28), date(2026, 11, 3), "28 Oct – 3 Nov 2026"),
        (date(2025, 12, 30), date(2026, 1, 2), "30 Dec 2025 – 2 Jan 2026"),
        (date(2026, 11, 5), date(2026, 11, 5), "5 Nov 2026"),
        (None, None, "no dates"),
    ],
)
def test_date_ranges_are_short(start: date | None, end: date | None, text: str) -> None:
    assert fmt_date_range(start, end) == text


def test_leak_bars_are_customers_lost_by_rank() -> None:
    bar = leaks_figure(frame(LEAKS, LEAKS_COLUMNS)).data[0]
    assert list(bar.y) == [plotly_text(XSS), CART, plotly_text(BROWSE)]
    assert list(bar.x) == [2, 2, 1] and list(bar.text) == ["2 · 22.2%", "2 · 28.6%", "1 · 10.0%"]
    assert bar.marker.color == VERMILLION
    assert plotly_text(IMG) in bar.customdata[0] and IMG not in bar.customdata[0]
    assert "/cart?a=1&amp;b=2" in bar.customdata[1] and "highest lift: —" in bar.customdata[0]


def test_emotion_curve_has_interval_bars_and_gaps() -> None:
    fig = emotion_figure(frame(EMOTION_CURVE, EMOTION_CURVE_COLUMNS))
    (trace,) = fig.data
    assert list(trace.x) == [plotly_text(s) for s in STAGES]
    assert list(trace.y) == [0.9667, None, 0.5167, 0.6] and trace.connectgaps is False
    assert list(trace.error_y.array) == pytest.approx([1.0 - 0.9667, None, 0.8283 - 0.5167, None])
    assert list(trace.error_y.arrayminus) == pytest.approx([0.9667 - 0.9013, None, 0.5167 - 0.2051, None])
    assert list(trace.text) == ["n=3", "", "n=3", "n=1"]
    assert "NPS -100 (1 answers)" in trace.customdata[3] and "CSAT 2.50 (2 answers)" in trace.customdata[2]
    (gap,) = fig.layout.annotations
    assert gap.text == "no answers" and gap.x == plotly_text(XSS)
    assert list(fig.layout.yaxis.range) == [0, 1.05]


def test_attribution_bars_one_trace_per_model_in_mart_order() -> None:
    fig = attribution_figure(frame(CHANNEL_ATTRIBUTION, CHANNEL_ATTRIBUTION_COLUMNS))
    assert [t.name for t in fig.data] == ["first touch", "last touch", "linear", "Markov chain"]
    assert fig.layout.barmode == "group"
    for i, trace in enumerate(fig.data):
        assert list(trace.x) == ["direct", "&lt;b&gt;ads&lt;/b&gt;", "email"]
        assert list(trace.y) == [row[1 + i] for row in CHANNEL_ATTRIBUTION]
        assert sum(trace.y) == pytest.approx(5)
    assert len({t.marker.color for t in fig.data}) == 4


@pytest.mark.parametrize(
    ("figure", "message"),
    [
        (lambda: leaks_figure(frame([], LEAKS_COLUMNS)), "nothing to lose"),
        (lambda: attribution_figure(frame([], CHANNEL_ATTRIBUTION_COLUMNS)), "No conversion has a channel"),
        (lambda: trends_figure(frame([], STAGE_CONVERSION_DAILY_COLUMNS)), "No journeys"),
        (lambda: transition_network_figure(frame([], STAGE_TRANSITIONS_COLUMNS)), "No transitions"),
        (lambda: emotion_figure(frame([], EMOTION_CURVE_COLUMNS)), "No stages"),
    ],
)
def test_empty_marts_draw_a_message(figure: Any, message: str) -> None:
    fig = figure()
    assert len(fig.data) == 0 and message in fig.layout.annotations[0].text and fig.layout.title.text


# --- tonight against earlier runs --------------------------------------------------------------------


def history_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(RUN_SUMMARY_COLUMNS))


@pytest.mark.parametrize(
    ("starts", "night", "week"),
    [
        # run ids are their start times; tonight started 2024-03-05 02:00.
        (["2024-03-04 02:00", "2024-02-27 02:00"], "2024-03-04 02:00", "2024-02-27 02:00"),
        (["2024-03-05 00:30"], None, None),  # a rerun the same day is not the previous night
        (["2024-03-04 23:59", "2024-03-04 02:00"], "2024-03-04 23:59", None),
        (["2024-02-27 02:00:01"], "2024-02-27 02:00:01", None),  # one second short of 7 days
        (["2024-02-20 02:00", "2024-02-26 02:00"], "2024-02-26 02:00", "2024-02-26 02:00"),
        (["2024-03-06 02:00"], None, None),  # a later run (clock skew) is neither
        ([], None, None),
    ],
)
def test_previous_night_and_week_ago(starts: list[str], night: str | None, week: str | None) -> None:
    rows = [history_row(s, datetime.fromisoformat(s)) for s in starts] + [dict(RUN_SUMMARY)]
    found = earlier_runs(history_frame(rows), RUN_SUMMARY)
    assert tuple(None if r is None else r["run_id"] for r in found) == (night, week)


def kpi(column: str) -> Any:
    return next(k for k in KPIS if k.column == column)


@pytest.mark.parametrize(
    ("column", "earlier", "direction", "verdict", "text"),
    [
        ("journey_customers", 8, "up", "better", "+2 (+25.0%)"),
        ("converted", 5, "same", "neutral", "no change"),
        ("conversion_rate", 0.625, "down", "worse", "−12.5 pp"),
        ("worst_dropoff_rate", 0.25, "up", "worse", "+3.6 pp"),
        ("worst_dropoff_rate", 0.5, "down", "better", "−21.4 pp"),
        ("customers", 11, "up", "neutral", "+1 (+9.1%)"),  # more customers is neither good nor bad
        ("events_rejected", 4, "down", "better", "−1 (−25.0%)"),
        ("conversion_rate", 0.50004, "same", "neutral", "no change"),  # rounds to 0.0 pp
        ("journey_customers", 0, "up", "better", "+10"),  # no relative change from 0
        ("journey_customers", None, "none", "none", "not comparable (a value is missing)"),
    ],
)
def test_kpi_change(column: str, earlier: Any, direction: str, verdict: str, text: str) -> None:
    c = change(kpi(column), RUN_SUMMARY, {column: earlier})
    assert (c.direction, c.verdict, c.text) == (direction, verdict, text)


def test_kpi_without_an_earlier_run() -> None:
    c = change(kpi("converted"), RUN_SUMMARY, None)
    assert (c.direction, c.verdict, c.text) == ("none", "none", "no earlier run")


def kpi_card(text: str, label: str) -> str:
    match = re.search(rf'<div class="card[^"]*"><dt>{label}</dt>(.*?)</div>', text, flags=re.S)
    assert match, label
    return match.group(1)


def deltas(card: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", li) for li in re.findall(r"<li class=\"delta [a-z]+\">(.*?)</li>", card)]


def test_index_compares_with_the_previous_night_and_7_days_ago(site: Path) -> None:
    text = page(site, "index.html")
    assert "Previous night: run <code>run-41</code>, started 2024-03-04 02:00 UTC" in text
    assert "7 days ago: run <code>run-35</code>, started 2024-02-27 02:00 UTC" in text
    expected = {
        "Journey customers": ["▲+2 (+25.0%) better vs previous night", "▲+6 (+150.0%) better vs 7 days ago"],
        "Converted": ["=no change vs previous night", "▲+4 (+400.0%) better vs 7 days ago"],
        "Conversion rate": ["▼−12.5 pp worse vs previous night", "▲+25.0 pp better vs 7 days ago"],
        "Worst drop-off": ["▲+3.6 pp worse vs previous night", "▼−21.4 pp better vs 7 days ago"],
        "Customers": ["▲+1 (+9.1%) vs previous night", "▲+7 (+140.0%) vs 7 days ago"],
        "Sessions": ["▲+2 (+13.3%) vs previous night", "▲+11 (+183.3%) vs 7 days ago"],
        "Events loaded": ["▲+5 (+10.0%) vs previous night", "▲+35 (+175.0%) vs 7 days ago"],
        "Events rejected": ["▼−1 (−25.0%) better vs previous night", "=no change vs 7 days ago"],
    }
    for label, lines in expected.items():
        assert deltas(kpi_card(text, label)) == lines, label
    # Colour follows the verdict, and never alone: the class, the arrow and the word agree.
    card = kpi_card(text, "Conversion rate")
    assert '<li class="delta worse"><span class="arrow" aria-hidden="true">▼</span>−12.5 pp' in card
    assert '<li class="delta better"><span class="arrow" aria-hidden="true">▲</span>+25.0 pp' in card
    assert f"7 days ago it was {html.escape(BROWSE)}" in kpi_card(text, "Worst drop-off")


def test_index_without_earlier_runs_says_so(tmp_path: Path) -> None:
    build_report(make_warehouse(history=[dict(RUN_SUMMARY)]), tmp_path)
    text = page(tmp_path, "index.html")
    assert "Previous night: no earlier run" in text and "7 days ago: no earlier run" in text
    for k in KPIS:
        assert deltas(kpi_card(text, CUSTOMERS.say(k.label))) == ["–no earlier run vs previous night",
                                                                  "–no earlier run vs 7 days ago"]


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
        ("Conversion rate", "50.0%"),
    ]:
        assert re.search(rf"<dt>{label}</dt><dd><span class=\"value\">{value}</span>", text), label
    assert "conversion rate 50.0%" in text and "28.6% of the customers reaching it" in text
    assert "run-42" in text
    assert f"Biggest leak: <b>{html.escape(XSS)}</b>, 2 customers lost." in text
    assert "Most credited by the Markov model: <b>direct</b> (2.2 conversions)." in text


def test_index_lists_every_other_page_of_the_nav(site: Path) -> None:
    listed = page(site, "index.html").split('<ul class="pages">')[1].split("</ul>")[0]
    links = re.findall(r'<li><a href="([^"]+)">([^<]+)</a>: ', listed)
    assert links == [(p.name, html.escape(p.label)) for p in NAV[1:]] and NAV[-1].name == "analyses.html"
    assert all(CUSTOMERS.say(p.description) in listed for p in NAV[1:])
    assert "the cohorts still maturing marked." in listed


def test_funnel_table_rows(site: Path) -> None:
    assert table_cells(page(site, "funnel.html")) == [
        [BROWSE, "1", "10", "1", "10.0%", "90.0%", "100.0%"],
        [XSS, "2", "9", "2", "22.2%", "77.8%", "90.0%"],
        [CART, "3", "7", "2", "28.6%", "71.4%", "70.0%"],
        [BUY, "4", "5", "5 completed", "—", "—", "50.0%"],  # the goal: stopping there is completing
    ]


def test_transition_table_sorted_by_from_order_then_transitions(site: Path) -> None:
    cells = table_cells(page(site, "transitions.html"))
    expected = sorted(STAGE_TRANSITIONS, key=lambda t: (t[2], -t[4], t[3]))
    assert [(c[0], c[1], int(c[2]), int(c[3])) for c in cells] == [(t[0], t[1], t[4], t[5]) for t in expected]
    assert cells[0][4:] == ["90.0%", "—"]  # probability as %, no median on a (start) edge
    assert [c[5] for c in cells if c[0] == BUY and c[1] == BROWSE] == ["120.5"]


def test_leak_table_rows(site: Path) -> None:
    assert table_cells(page(site, "pain-points.html")) == [
        ["1", XSS, "2", "22.2%", IMG, "—", "50.0%", "0.0%", "1", "12.2"],
        ["2", CART, "2", "28.6%", "/cart?a=1&b=2", "/help", "0.0%", "50.0%", "0", "30.0"],
        ["3", BROWSE, "1", "10.0%", "/", "—", "0.0%", "0.0%", "0", "48.0"],
    ]


def test_emotion_table_rows(site: Path) -> None:
    assert table_cells(page(site, "emotion.html")) == [
        [BROWSE, "3", "0.97", "0.90–1.00", "100", "2", "5.00", "1", "1"],
        [XSS, "0", "—", "—", "—", "0", "—", "0", "0"],
        [CART, "3", "0.52", "0.21–0.83", "0", "1", "2.50", "2", "1"],
        [BUY, "1", "0.60", "—", "-100", "1", "—", "0", "0"],
    ]


def test_attribution_table_rows(site: Path) -> None:
    assert table_cells(page(site, "attribution.html")) == [
        ["direct", "2.0", "1.0", "1.5", "2.2", "60.0%"],
        [ADS, "1.0", "2.0", "1.5", "1.8", "50.0%"],
        ["email", "2.0", "2.0", "2.0", "1.0", "30.0%"],
    ]


def test_trends_table_newest_first_whole_history(site: Path) -> None:
    text = page(site, "trends.html")
    assert table_cells(text) == [
        ["Mar 2024 (still maturing)", "9", "9 (100.0%)", "7 (77.8%)", "5 (55.6%)"],
        ["Nov 2023", "1", "0 (0.0%)", "0 (0.0%)", "0 (0.0%)"],
    ]
    # The rule and the maturity horizon are stated on the page.
    assert "by months, the whole history (5 months)" in text and "p90 time to convert" in text
    assert "is 2.0 days" in text and "(1 shown) are <b>still maturing</b>" in text


def test_without_surveys_the_emotion_page_says_so(tmp_path: Path) -> None:
    build_report(make_warehouse(emotion=None), tmp_path)
    text = page(tmp_path, "emotion.html")
    assert "No surveys configured" in text and "analysis.surveys" in text
    assert "<script" not in text  # no chart, no plotly.js


def test_empty_marts_still_build(tmp_path: Path) -> None:
    summary = dict(
        RUN_SUMMARY, journey_customers=0, converted=0, conversion_rate=None, worst_dropoff_stage=None,
        worst_dropoff_rate=None,
    )  # fmt: skip
    con = make_warehouse(
        summary=summary, history=[summary], funnel=[], transitions=[], links=[], segment_links=[], daily=[],
        leaks=[], attribution=[], emotion=[],
    )  # fmt: skip
    written = build_report(con, tmp_path)
    assert len(written) == 2 + len(PAGES)  # plotly.min.js, run_status.js
    index = page(tmp_path, "index.html")
    assert "conversion rate —" in index and "no stage before the goal" in index and "no journeys" in index
    assert "No journeys in this run." in page(tmp_path, "sankey.html")
    assert "No transitions in this run." in page(tmp_path, "transitions.html")


def test_run_summary_must_hold_one_row() -> None:
    # (make_warehouse holds only the marts, so every other test also shows nothing else is read.)
    con = make_warehouse()
    con.execute("DELETE FROM run_summary")
    with pytest.raises(MartMissingError, match="run_summary holds 0 rows"):
        read_marts(con)


def test_a_missing_mart_is_named() -> None:
    con = make_warehouse()
    con.execute("DROP TABLE leaks")
    with pytest.raises(MartMissingError, match="no mart leaks: run `cjm run`"):
        read_marts(con)


def test_marts_from_an_earlier_release_ask_for_a_run() -> None:
    # A warehouse whose marts predate before_goal: one line that says what to do, not a binder error.
    con = make_warehouse()
    con.execute("ALTER TABLE stage_funnel DROP COLUMN before_goal")
    message = "mart stage_funnel has no column(s) before_goal: run `cjm run`"
    with pytest.raises(MartMissingError, match=re.escape(message)):
        read_marts(con)


def test_analysis_pages_keep_the_nav_and_escape_cells() -> None:
    text = table_page(
        site_title="S", page_title="Paths", summary=RUN_SUMMARY, intro="Top <paths>",
        table=pd.DataFrame({"path": [XSS], "customers": [3]}),
    )  # fmt: skip
    assert "Top &lt;paths&gt;" in text and f">{html.escape(XSS)}</td>" in text
    nav = re.findall(r"<nav\b[^>]*>.*?</nav>", text, flags=re.S)[0]
    assert re.findall(r'href="([^"]+)"', nav) == list(NAV_NAMES) and "aria-current" not in nav


# --- in the browser ----------------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.parametrize("name", PAGE_NAMES)
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
    # The funnel and the drop-off bars each label every stage, the names as text.
    ticks = visit.page.eval_on_selector_all(".yaxislayer-above .ytick text, .yaxislayer-above .y2tick text", TEXTS)
    assert Counter(ticks) == Counter(s[0] for s in STAGE_FUNNEL for _ in range(2))
    rates = visit.page.locator(".barlayer .point path")
    drawn = [box for i in range(rates.count()) if (box := rates.nth(i).bounding_box()) and box["width"] > 0]
    assert len(drawn) == len(STAGE_FUNNEL) - 1  # the last stage has no drop-off rate
    visit.assert_clean()
    visit.page.close()


# --- the journey map ---------------------------------------------------------------------------------


def test_journey_map_escapes_every_name(site: Path) -> None:
    text = page(site, "journey-map.html")
    for name in (ADS, IMG, MOMENT, XSS, CART):
        assert name not in text, name
    assert html.escape(ADS) in text and html.escape(IMG) in text and html.escape(MOMENT) in text
    # A stage name in the curve's hover text is plotly text: entities, which plotly.js shows as text.
    assert r"\u003cb\u003e&lt;\u002fscript&gt;&lt;script&gt;alert(1)&lt;\u002fscript&gt;\u003c\u002fb\u003e" in text


def test_journey_map_says_not_configured_never_zero(site: Path) -> None:
    text = page(site, "journey-map.html")
    all_map = text.split('class="jm-map jm-p0"')[1].split('class="jm-map jm-p1"')[0]
    # Support is not configured: the lost customers' support share says so; surveys are, so the curve is drawn.
    assert "contacted support: <span class=\"jm-none\">not configured</span>" in all_map
    assert "contacted support: 0" not in all_map
    assert 'id="jm-curve-0"' in all_map
    # A persona too small to read is flagged and still drawn; after the goal journeys are completed, not lost.
    assert "too small to read" in text.split('class="jm-map jm-p1"')[1]
    assert "✓ 5 completed" in all_map and "▼ 2 lost" in all_map
    assert "<b>80%</b>" in all_map.split("Top actions")[1].split("</tr>")[0]
    assert "90.0% <span class=\"jm-ci\">[59.6%–98.2%]</span>" in all_map


def test_journey_map_without_the_mart_says_so(tmp_path: Path) -> None:
    con = make_warehouse()
    con.execute("DROP TABLE journey_map")
    build_report(con, tmp_path)
    text = page(tmp_path, "journey-map.html")
    assert "no journey map yet" in text and "<figure" not in text


@pytest.mark.browser
def test_journey_map_persona_selector_switches_the_whole_map(browser: Browser, site: Path) -> None:
    visit = Visit(browser, (site / "journey-map.html").as_uri())
    p = visit.page
    p.wait_for_selector("#jm-curve-0 .main-svg")
    shown = "els => els.filter(e => getComputedStyle(e).visibility === 'visible').map(e => e.className)"
    assert p.eval_on_selector_all(".jm-map", shown) == ["jm-map jm-p0"]
    p.click("label[for=jm-p1]")
    assert p.eval_on_selector_all(".jm-map", shown) == ["jm-map jm-p1"]
    # The persona's name is text, not markup, and its curve was drawn at the page's width while hidden.
    assert p.inner_text(".jm-p1 .jm-who b") == ADS
    width = p.eval_on_selector("#jm-curve-1 .main-svg", "e => e.getBoundingClientRect().width")
    cell = p.eval_on_selector(".jm-p1 td.jm-curve", "e => e.getBoundingClientRect().width")
    assert abs(width - cell) < 2
    assert p.eval_on_selector_all(".jm-p1 .jm-table a, .jm-p1 .jm-table img", "els => els.length") == 0
    visit.assert_clean()
    p.close()
