"""Breakdowns and cohorts: which segment each customer is in, and the stage funnel per segment.

Definitions and a worked example: docs/analysis/segments.md. The SQL is sql/analysis/segments_*.sql and
sql/analysis/stage_funnel_by_segment.sql.
"""

from __future__ import annotations

import json

import duckdb
import pandas as pd

from cjm_analytics.config import Config
from cjm_analytics.errors import AnalysisError
from cjm_analytics.sql_steps import query_sql, run_sql

# Segments with their own definition; any other `by` is an event property (campaign, device, plan, ...).
CHANNEL_SEGMENTS = ("first_touch_channel", "last_touch_channel")
COHORT_SEGMENTS = ("cohort_week", "cohort_month")
SEGMENT_COLUMNS = ["segment", "segment_size", "too_small"]
# Each customer's segment, for the queries that take it as their $segments (a temp table: the breakdown is
# computed once per answer, and a property's values are read from raw_events only once).
SEGMENT_TABLE = "cjm_customer_segment"


def segment_table(con: duckdb.DuckDBPyConnection, by: str | None) -> str:
    """The name of a table of (customer_key, segment) for `by` (empty when None), for a query's $segments."""
    if by is None:
        run_sql(con, "analysis/segments_none")
    elif by in CHANNEL_SEGMENTS:
        run_sql(con, "analysis/segments_touch_channel", last_touch=by == "last_touch_channel")
    elif by in COHORT_SEGMENTS:
        run_sql(con, "analysis/segments_cohort", unit=by.removeprefix("cohort_"))
    elif not by.strip():
        raise AnalysisError("segment: give a segment name (e.g. first_touch_channel, campaign, cohort_week)")
    else:
        # json.dumps quotes the name as a JSON path key, whatever characters it holds.
        run_sql(con, "analysis/segments_property", path="$." + json.dumps(by))
        if query_sql(con, "analysis/segment_values", segments=SEGMENT_TABLE).customers_with_value[0] == 0:
            known = ", ".join((*CHANNEL_SEGMENTS, *COHORT_SEGMENTS))
            raise AnalysisError(f"segment: no event has a value for property {by!r} (or use one of {known})")
    return SEGMENT_TABLE


def customer_segments(con: duckdb.DuckDBPyConnection, by: str, cfg: Config | None = None) -> pd.DataFrame:
    """Each customer's segment: DataFrame(customer_key, segment); segment is None where it has no value."""
    # cfg is not needed (segments depend only on the warehouse); it keeps the toolkit's (con, by, cfg) shape.
    return query_sql(con, "analysis/customer_segment", segments=segment_table(con, by))


def stage_funnel_by_segment(con: duckdb.DuckDBPyConnection, by: str, cfg: Config) -> pd.DataFrame:
    """The stage funnel of each segment, with segment_size and too_small (columns: docs/analysis/segments.md)."""
    segments = segment_table(con, by)
    run_sql(con, "marts/stage_ladder")  # defines the cjm_stage_ladder macro
    return query_sql(con, "analysis/stage_funnel_by_segment", segments=segments,
                     min_segment_size=cfg.analysis.min_segment_size)
