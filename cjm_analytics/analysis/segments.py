"""Breakdowns and cohorts: which segment each customer is in, and the stage funnel per segment.

Definitions and a worked example: docs/analysis/segments.md. The SQL is sql/analysis/segments_*.sql and
sql/analysis/stage_funnel_by_segment.sql.
"""

from __future__ import annotations

import argparse
import json

import duckdb
import pandas as pd
import plotly.graph_objects as go

from cjm_analytics.analysis.commands import AddAnalysis, Answer
from cjm_analytics.analysis.output import plotly_names
from cjm_analytics.config import Config
from cjm_analytics.errors import ConfigError
from cjm_analytics.report import plotly_text
from cjm_analytics.sql_steps import query_sql, run_sql

# Segments with their own definition; any other `by` is an event property (campaign, device, plan, ...).
CHANNEL_SEGMENTS = ("first_touch_channel", "last_touch_channel")
COHORT_SEGMENTS = ("cohort_week", "cohort_month")
NO_SEGMENT = "(none)"
SEGMENT_COLUMNS = ["segment", "segment_size", "too_small"]


def build_segment_table(con: duckdb.DuckDBPyConnection, by: str | None) -> None:
    """Fill the temp table cjm_customer_segment(customer_key, segment) for `by` (empty when None)."""
    if by is None:
        run_sql(con, "analysis/segments_none")
    elif by in CHANNEL_SEGMENTS:
        run_sql(con, "analysis/segments_touch_channel", last_touch=by == "last_touch_channel")
    elif by in COHORT_SEGMENTS:
        run_sql(con, "analysis/segments_cohort", unit=by.removeprefix("cohort_"))
    elif not by.strip():
        raise ValueError("segment: give a segment name (e.g. first_touch_channel, campaign, cohort_week)")
    else:
        # json.dumps quotes the name as a JSON path key, whatever characters it holds.
        run_sql(con, "analysis/segments_property", path="$." + json.dumps(by))
        if query_sql(con, "analysis/segment_values").customers_with_value[0] == 0:
            known = ", ".join((*CHANNEL_SEGMENTS, *COHORT_SEGMENTS))
            raise ValueError(f"segment: no event has a value for property {by!r} (or use one of {known})")


def customer_segments(con: duckdb.DuckDBPyConnection, by: str, cfg: Config | None = None) -> pd.DataFrame:
    """Each customer's segment: DataFrame(customer_key, segment); segment is None where it has no value."""
    # cfg is not needed (segments depend only on the warehouse); it keeps the toolkit's (con, by, cfg) shape.
    build_segment_table(con, by)
    return query_sql(con, "analysis/customer_segment")


def stage_funnel_by_segment(con: duckdb.DuckDBPyConnection, by: str, cfg: Config) -> pd.DataFrame:
    """The stage funnel of each segment, with segment_size and too_small (columns: docs/analysis/segments.md)."""
    build_segment_table(con, by)
    run_sql(con, "marts/stage_ladder")
    return query_sql(con, "analysis/stage_funnel_by_segment", min_segment_size=cfg.analysis.min_segment_size)


def segment_label(segment: str, size: int, too_small: bool) -> str:
    """A legend entry (plotly text): the segment, its size, and a warning when it is too small to trust."""
    return f"{plotly_text(segment)} (n={size:,}{', too small' if too_small else ''})"


def grouped_bars(table: pd.DataFrame, x: str, y: str, y_title: str, percent: bool = True) -> go.Figure:
    """One bar per x and segment (too-small segments faded), e.g. conversion per stage and channel."""
    fig = go.Figure()
    for segment, rows in table.groupby("segment", sort=False):
        size, too_small = int(rows.segment_size.iloc[0]), bool(rows.too_small.iloc[0])
        fig.add_bar(x=plotly_names(rows[x]), y=rows[y], name=segment_label(str(segment), size, too_small),
                    opacity=0.4 if too_small else 1.0)
    fig.update_layout(barmode="group", yaxis_title=y_title, legend_title="segment", margin={"t": 30})
    if percent:
        fig.update_yaxes(tickformat=".0%")
    return fig


def _funnel_by_segment(con: duckdb.DuckDBPyConnection, cfg: Config, args: argparse.Namespace) -> Answer:
    try:
        table = stage_funnel_by_segment(con, args.by, cfg)
    except ValueError as e:
        raise ConfigError(f"analyze funnel-by-segment: {e}") from None
    intro = (
        f"Where do customers drop out, by {args.by}? The stage funnel of each segment, with the stage funnel's "
        "definitions: reached(k) = the segment's journey customers whose furthest stage is k or beyond, "
        "exited(k) = those whose furthest stage is k, dropoff_rate = exited / reached, conversion_from_first = "
        "reached(k) / reached(1). segment_size is the segment's journey customers; segments are summed to the "
        f"stage funnel exactly. Customers without a value are in {NO_SEGMENT}. too_small marks segments of fewer "
        f"than {cfg.analysis.min_segment_size} customers (analysis.min_segment_size): read them with care."
    )
    return Answer(table, f"Stage funnel by {args.by}", intro,
                  grouped_bars(table, "stage", "conversion_from_first", "share of the segment reaching the stage"))


def register(add_analysis: AddAnalysis) -> None:
    """Add `cjm analyze funnel-by-segment`."""
    parser = add_analysis("funnel-by-segment", "the stage funnel per segment (channel, campaign, cohort, ...)",
                          _funnel_by_segment)
    parser.add_argument("--by", required=True,
                        help="first_touch_channel, last_touch_channel, cohort_week, cohort_month, or an event "
                             "property such as campaign, device, persona, plan, region")
