"""Breakdowns and cohorts: which segment each customer is in, and the stage funnel per segment.

Definitions and a worked example: docs/analysis/segments.md. The SQL is sql/analysis/segments_*.sql and
sql/analysis/stage_funnel_by_segment.sql.
"""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd

from cjm_analytics.analysis import stats
from cjm_analytics.config import Config
from cjm_analytics.errors import AnalysisError
from cjm_analytics.sql_steps import query_sql, run_sql

# Segments with their own definition; any other `by` is an event property (campaign, device, plan, ...).
CHANNEL_SEGMENTS = ("first_touch_channel", "last_touch_channel")
COHORT_SEGMENTS = ("cohort_week", "cohort_month")
NO_SEGMENT = "(none)"
SEGMENT_COLUMNS = ["segment", "segment_size", "too_small"]
ALPHA = 0.05  # the false discovery rate `differs` is read at
COMPARISON_COLUMNS = ["rate", "ci_low", "ci_high", "rest_reached", "rest_converted", "rest_rate", "p_value", "test",
                      "q_value", "differs", "too_small"]


def build_segment_table(con: duckdb.DuckDBPyConnection, by: str | None) -> None:
    """Fill the temp table cjm_customer_segment(customer_key, segment) for `by` (empty when None)."""
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
        if query_sql(con, "analysis/segment_values").customers_with_value[0] == 0:
            known = ", ".join((*CHANNEL_SEGMENTS, *COHORT_SEGMENTS))
            raise AnalysisError(f"segment: no event has a value for property {by!r} (or use one of {known})")


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


def compare_segments(frame: pd.DataFrame, *, min_size: int = 30, within: str | None = None, alpha: float = ALPHA,
                     confidence: float = 0.95) -> pd.DataFrame:
    """Each segment's rate converted / reached against the rest of the population, beyond chance or not.

    `frame` has one row per segment with columns segment, reached, converted (and `within`, e.g. stage, when it
    holds several comparisons: the rest is then the other segments of the same `within` value). Adds
    COMPARISON_COLUMNS: the rate with its Wilson interval, the rest's counts and rate, the p-value of the 2x2 test
    (stats.table_2x2_test: Fisher's exact for small expected counts, else chi-square = the two-proportion z-test),
    its Benjamini–Hochberg q-value across every row tested, and differs = q_value < alpha. A segment with fewer
    than min_size customers reached is too_small: it keeps its rate and interval but is never tested (p and q NaN,
    differs False), so it cannot be flagged; rows keep the frame's order, nothing is ranked.
    """
    reached = frame["reached"].to_numpy(dtype=float)
    converted = frame["converted"].to_numpy(dtype=float)
    if within is None:
        total_reached, total_converted = reached.sum(), converted.sum()
    else:
        groups = frame.groupby(within, sort=False, dropna=False)
        total_reached = groups["reached"].transform("sum").to_numpy(dtype=float)
        total_converted = groups["converted"].transform("sum").to_numpy(dtype=float)
    rest_reached, rest_converted = total_reached - reached, total_converted - converted
    too_small = reached < min_size
    low, high = stats.wilson_interval(converted, reached, confidence)
    a, b, c, d = converted, reached - converted, rest_converted, rest_reached - rest_converted
    p, test = stats.table_2x2_test(a, b, c, d)
    p[too_small], test[too_small] = np.nan, None
    q = stats.benjamini_hochberg(p)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate, rest_rate = converted / reached, rest_converted / rest_reached
    return frame.assign(
        rate=rate, ci_low=low, ci_high=high, rest_reached=rest_reached.astype(np.int64),
        rest_converted=rest_converted.astype(np.int64), rest_rate=rest_rate, p_value=p, test=test, q_value=q,
        differs=np.nan_to_num(q, nan=1.0) < alpha, too_small=too_small,
    )
