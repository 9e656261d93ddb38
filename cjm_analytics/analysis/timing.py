"""Time: how long customers take between stages and to convert (median, p90, histogram), per segment.

Definitions and a worked example: docs/analysis/timing.md. The SQL is sql/analysis/time_*.sql.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise

import duckdb
import pandas as pd

from cjm_analytics.analysis.segments import segment_table
from cjm_analytics.config import Config
from cjm_analytics.errors import AnalysisError
from cjm_analytics.sql_steps import query_sql

# Hours: within the hour, the session-ish day, the day, three days, a week, two weeks, longer.
DEFAULT_BINS: tuple[float, ...] = (0, 1, 6, 24, 72, 168, 336, math.inf)


def _query(con: duckdb.DuckDBPyConnection, step: str, segment: str | None, cfg: Config, **params: object
           ) -> pd.DataFrame:
    return query_sql(con, step, segments=segment_table(con, segment), min_segment_size=cfg.analysis.min_segment_size,
                     **params)


def _segmented(table: pd.DataFrame, segment: str | None) -> pd.DataFrame:
    # Without a breakdown every customer is in one segment, and its columns say nothing.
    return table if segment is not None else table.drop(columns=["segment", "too_small"])


def time_between_stages(con: duckdb.DuckDBPyConnection, segment: str | None, cfg: Config) -> pd.DataFrame:
    """Hours per transition of the collapsed stage paths: transitions, median, p90 and mean (per segment)."""
    return _segmented(_query(con, "analysis/time_between_stages", segment, cfg), segment)


def time_to_convert(con: duckdb.DuckDBPyConnection, segment: str | None, cfg: Config) -> pd.DataFrame:
    """Converted customers and the median and p90 of journeys.hours_to_convert (per segment)."""
    return _segmented(_query(con, "analysis/time_to_convert", segment, cfg), segment)


def time_to_convert_histogram(
    con: duckdb.DuckDBPyConnection, bins: Sequence[float], segment: str | None, cfg: Config
) -> pd.DataFrame:
    """Converted customers per [lower, upper) hours bin between consecutive edges (per segment)."""
    edges = [float(b) for b in bins]
    if len(edges) < 2 or any(not lo < hi for lo, hi in pairwise(edges)):
        raise AnalysisError(f"bins: give at least two increasing edges in hours (e.g. 0,1,24,inf), not {list(bins)}")
    return _segmented(_query(con, "analysis/time_to_convert_histogram", segment, cfg, edges=edges), segment)


def with_bin_columns(summary: pd.DataFrame, histogram: pd.DataFrame) -> pd.DataFrame:
    """time_to_convert's rows, each followed by one column per bin of time_to_convert_histogram (its converted
    customers), for one table per segment."""
    if "segment" not in summary.columns:  # no breakdown: one row, or none without journeys
        return summary.assign(**dict(zip(histogram["label"], histogram["converted"], strict=True)))
    counts = histogram.pivot(index="segment", columns="label", values="converted")
    counts = counts[list(dict.fromkeys(histogram["label"]))]
    return summary.merge(counts, left_on="segment", right_index=True, how="left")
