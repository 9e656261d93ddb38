"""The site's pages: PAGES, the one list that makes the navigation bar, the overview's list of pages and the
files build_report writes; NAV, PAGES and the index of the analysis pages; and the page of one analysis
(`cjm analyze`), in the same shell.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from cjm_analytics.report.formatting import esc, missing
from cjm_analytics.report.html import Page, chart_html, page_html, table_html
from cjm_analytics.report.marts import Marts
from cjm_analytics.report.pages.charts import (
    attribution_body,
    emotion_body,
    funnel_body,
    pain_points_body,
    sankey_body,
    transitions_body,
    trends_body,
)
from cjm_analytics.report.pages.journey_map import journey_map_body
from cjm_analytics.report.pages.overview import overview_body


def _overview(marts: Marts) -> str:
    return overview_body(marts, NAV[1:])


# In the order of the navigation bar: file, label, the overview's line on it (its line breaks keep the overview's
# HTML lines short; {plural} is the entity's word, Entity.say), body, the marts it is drawn from.
PAGES = (
    Page("index.html", "Overview", "", _overview,  # the overview lists the other pages
         ("run_summary", "run_history", "stage_conversion_daily", "leaks", "channel_attribution")),
    Page("journey-map.html", "Journey map",
         "per stage and persona: {plural}, conversion, time, actions, channels,\n"
         "emotion, pain points, moments of truth and opportunities.", journey_map_body, ("journey_map",)),
    Page("sankey.html", "Journeys by step",
         "where journey {plural} go at each step of their stage path, and\n"
         "where they drop off, for all journeys and for the largest first-touch channels.",
         sankey_body, ("sankey_links", "sankey_segment_links", "stage_funnel_by_segment", "run_summary")),
    Page("funnel.html", "Stage funnel", "{plural} reaching each stage and the drop-off rate of each stage.",
         funnel_body, ("stage_funnel",)),
    Page("trends.html", "Trends",
         "new journeys per cohort (day, week or month, over the whole history) and the\nshare of each cohort "
         "reaching each stage, with the cohorts still maturing marked.",
         trends_body, ("stage_conversion_daily",)),
    Page("pain-points.html", "Pain points",
         "the ranked leak table: where {plural} are lost before the goal and what\nthey did last.",
         pain_points_body, ("leaks", "stage_funnel")),
    Page("emotion.html", "Emotion curve", "survey scores (NPS, CSAT) at each stage of the journey.",
         emotion_body, ("emotion_curve",)),
    Page("attribution.html", "Channel attribution",
         "conversions credited to channels by first touch, last touch,\nlinear and Markov models.",
         attribution_body, ("channel_attribution",)),
    Page("transitions.html", "Stage transitions",
         "the stage graph as a network, a matrix of transition\n"
         "probabilities and a table, with exit probabilities and the median time between stages.",
         transitions_body, ("stage_transitions", "stage_funnel")),
)  # fmt: skip


def _not_from_marts(marts: Marts) -> str:
    raise NotImplementedError("analyses.html is written by report.analysis_pages.write_analyses_index")


# The index of the `cjm analyze` pages: beside the published site in reports/, not in a version of it (the pages it
# lists are written between nights), so build_report does not write it and a nightly publish keeps it
# (report/analysis_pages.py).
ANALYSES = Page("analyses.html", "Analyses", "every page <code>cjm analyze</code> wrote, one per analysis and\n"
                "parameters, newest first.", _not_from_marts, ())
NAV = (*PAGES, ANALYSES)


def site_page(page: Page, marts: Marts, title: str) -> str:
    """One page of PAGES, whole: headed by its label, of the marts' run, its footer naming the marts it is drawn
    from that this warehouse has."""
    return page_html(
        nav=NAV,
        active=page.name,
        site_title=title,
        page_title=page.label,
        summary=marts.run_summary,
        body=page.body(marts),
        sources=[s for s in page.sources if s not in marts.absent],
    )


# --- analysis pages (`cjm analyze`) -------------------------------------------------------------------

MAX_TABLE_ROWS = 500


def _cell(value: Any) -> str:
    if missing(value):
        return ""
    if isinstance(value, float):
        return f"{value:,.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table_page(
    *,
    site_title: str,
    page_title: str,
    summary: Mapping[str, Any],
    intro: str,
    table: pd.DataFrame,
    figure: go.Figure | None = None,
    formats: Mapping[str, Callable[[Any], str]] | None = None,
    extra: str = "",
) -> str:
    """A page of one analysis: its question in words, `extra` (HTML, escaped by the caller), an optional chart and
    its table (every cell escaped; a column of `formats` written by its function)."""
    shown = table.head(MAX_TABLE_ROWS)
    headers = [(str(c), pd.api.types.is_numeric_dtype(table[c])) for c in table.columns]
    cell = [(formats or {}).get(str(c), _cell) for c in table.columns]
    rows = ([f(v) for f, v in zip(cell, record, strict=True)] for record in shown.itertuples(index=False))
    note = (
        f"<p>First {MAX_TABLE_ROWS:,} of {len(table):,} rows; the full table is in the CSV/Parquet output.</p>"
        if len(table) > MAX_TABLE_ROWS
        else ""
    )
    chart = chart_html(figure, "analysis-chart") if figure is not None else ""
    body = f"<p>{esc(intro)}</p>\n{extra}{chart}\n{table_html(headers, rows)}\n{note}"
    return page_html(nav=NAV, active="", site_title=site_title, page_title=page_title, summary=summary, body=body)
