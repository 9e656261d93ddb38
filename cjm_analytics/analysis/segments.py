"""Breakdowns and cohorts: which segment each customer is in, and the stage funnel per segment.

Definitions and a worked example: docs/analysis/segments.md. The SQL is sql/analysis/segments_*.sql and
sql/analysis/stage_funnel_by_segment.sql.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import duckdb
import numpy as np
import pandas as pd

from cjm_analytics.analysis import stats
from cjm_analytics.config import Config
from cjm_analytics.errors import AnalysisError
from cjm_analytics.sql_steps import query_sql, quote_ident, run_sql

# Segments with their own definition; any other `by` is an event property (campaign, device, plan, ...).
CHANNEL_SEGMENTS = ("first_touch_channel", "last_touch_channel")
COHORT_SEGMENTS = ("cohort_week", "cohort_month")
NO_SEGMENT = "(none)"
SEGMENT_COLUMNS = ["segment", "segment_size", "too_small"]
ALPHA = 0.05  # the false discovery rate `differs` is read at
# What stage_funnel_by_segment (the analysis and the mart) adds to the stage funnel's columns: a Wilson interval
# for each rate, and each segment's conversion_to_next against the rest's at the same stage (docs/analysis/segments.md).
SIGNIFICANCE_COLUMNS = ["dropoff_ci_low", "dropoff_ci_high", "conversion_to_next_ci_low", "conversion_to_next_ci_high",
                        "conversion_from_first_ci_low", "conversion_from_first_ci_high", "rest_conversion_to_next",
                        "p_value", "test", "q_value", "differs"]
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
    funnel = query_sql(con, "analysis/stage_funnel_by_segment", min_segment_size=cfg.analysis.min_segment_size)
    return with_segment_significance(funnel, cfg.analysis.min_segment_size)


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


def with_segment_significance(funnel: pd.DataFrame, min_size: int, family: Sequence[str] = (), alpha: float = ALPHA,
                              confidence: float = 0.95) -> pd.DataFrame:
    """A stage funnel by segment with SIGNIFICANCE_COLUMNS added (too_small recomputed), rows in their order.

    `funnel` has segment, stage_order, reached, exited, segment_size (and the `family` columns, e.g. segment_type:
    each family is a separate question, compared and corrected on its own). At each stage, a segment's
    conversion_to_next = reached(k+1) / reached(k) is compared with the other segments' together (compare_segments);
    rows whose reached(k) is below min_size, and the last stage, are not tested. The Benjamini–Hochberg correction
    runs over every test of the family: all its segments at all its stages.
    """
    keys = [*family, "segment"]
    ordered = funnel.sort_values([*keys, "stage_order"], kind="stable")
    next_reached = ordered.groupby(keys, sort=False, dropna=False)["reached"].shift(-1).reindex(funnel.index)
    reached, exited = funnel["reached"], funnel["exited"]
    out = funnel.assign(too_small=funnel["segment_size"] < min_size)
    has_next = next_reached.notna()
    drop_low, drop_high = stats.wilson_interval(exited, reached, confidence)
    next_low, next_high = stats.wilson_interval(next_reached.fillna(0), reached, confidence)
    first_low, first_high = stats.wilson_interval(reached, funnel["segment_size"], confidence)
    out["dropoff_ci_low"] = np.where(has_next, drop_low, np.nan)
    out["dropoff_ci_high"] = np.where(has_next, drop_high, np.nan)
    out["conversion_to_next_ci_low"] = np.where(has_next, next_low, np.nan)
    out["conversion_to_next_ci_high"] = np.where(has_next, next_high, np.nan)
    out["conversion_from_first_ci_low"], out["conversion_from_first_ci_high"] = first_low, first_high
    tested = funnel[has_next].assign(converted=next_reached[has_next])
    parts = [compare_segments(group, min_size=min_size, within="stage_order", alpha=alpha, confidence=confidence)
             for _, group in (tested.groupby(list(family), sort=False, dropna=False) if family else [((), tested)])]
    compared = pd.concat(parts) if parts else pd.DataFrame(columns=COMPARISON_COLUMNS)
    out["rest_conversion_to_next"] = compared["rest_rate"].reindex(funnel.index)
    out["p_value"] = compared["p_value"].reindex(funnel.index)
    out["test"] = compared["test"].reindex(funnel.index).astype("str")  # a text column, as the mart reads back
    out["q_value"] = compared["q_value"].reindex(funnel.index)
    out["differs"] = compared["differs"].reindex(funnel.index, fill_value=False).astype(bool)
    return out


def add_significance_to_mart(con: duckdb.DuckDBPyConnection, min_size: int) -> None:
    """The stage_funnel_by_segment mart with too_small and SIGNIFICANCE_COLUMNS added, per segment_type."""
    mart = con.execute("SELECT segment_type, segment, stage_order, reached, exited, segment_size "
                       "FROM stage_funnel_by_segment").fetchdf()
    added = ["too_small", *SIGNIFICANCE_COLUMNS]
    frame = with_segment_significance(mart, min_size, family=["segment_type"])[
        ["segment_type", "segment", "stage_order", *added]]
    con.register("cjm_segment_significance", frame)
    try:
        # Joined onto the table as it is, so that columns another step added to the mart stay as they are.
        existing = {str(r[0]) for r in con.execute("DESCRIBE stage_funnel_by_segment").fetchall()}
        replaced = [quote_ident(c) for c in added if c in existing]
        keep = f"m.* EXCLUDE ({', '.join(replaced)})" if replaced else "m.*"
        con.execute(f"""
            CREATE OR REPLACE TABLE stage_funnel_by_segment AS
            SELECT {keep}, {", ".join(f"s.{quote_ident(c)}" for c in added)}
            FROM stage_funnel_by_segment AS m
            LEFT JOIN cjm_segment_significance AS s
                ON m.segment_type = s.segment_type AND m.segment = s.segment AND m.stage_order = s.stage_order
            ORDER BY m.segment_type, m.segment, m.stage_order
        """)
    finally:
        con.unregister("cjm_segment_significance")
