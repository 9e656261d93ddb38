"""Time: how long customers take between stages and to convert (median, p90, histogram), per segment.

Definitions and a worked example: docs/analysis/timing.md. The SQL is sql/analysis/time_*.sql.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from itertools import pairwise

import duckdb
import pandas as pd
import plotly.graph_objects as go

from cjm_analytics.analysis.commands import AddAnalysis, Answer
from cjm_analytics.analysis.output import plotly_names
from cjm_analytics.analysis.segments import build_segment_table, segment_label
from cjm_analytics.config import Config
from cjm_analytics.errors import ConfigError
from cjm_analytics.report import plotly_text
from cjm_analytics.sql_steps import query_sql

# Hours: within the hour, the session-ish day, the day, three days, a week, two weeks, longer.
DEFAULT_BINS: tuple[float, ...] = (0, 1, 6, 24, 72, 168, 336, math.inf)


def _query(con: duckdb.DuckDBPyConnection, step: str, segment: str | None, cfg: Config, **params: object
           ) -> pd.DataFrame:
    build_segment_table(con, segment)
    return query_sql(con, step, min_segment_size=cfg.analysis.min_segment_size, **params)


def _segmented(table: pd.DataFrame, segment: str | None) -> pd.DataFrame:
    # Without a breakdown every customer is in one segment, and its columns say nothing.
    return table if segment is not None else table.drop(columns=["segment", "too_small"])


def time_between_stages(con: duckdb.DuckDBPyConnection, segment: str | None, cfg: Config) -> pd.DataFrame:
    """Hours per transition of the collapsed stage paths: transitions, median, p90 and mean (per segment)."""
    return _segmented(_query(con, "analysis/time_between_stages", segment, cfg), segment)


def time_to_convert(con: duckdb.DuckDBPyConnection, segment: str | None, cfg: Config) -> pd.DataFrame:
    """Converted customers and the median and p90 of journeys.hours_to_convert (per segment)."""
    return _segmented(_query(con, "analysis/time_to_convert", segment, cfg), segment)


def _histogram(con: duckdb.DuckDBPyConnection, bins: Sequence[float], segment: str | None, cfg: Config
               ) -> pd.DataFrame:
    edges = [float(b) for b in bins]
    if len(edges) < 2 or any(not lo < hi for lo, hi in pairwise(edges)):
        raise ValueError(f"bins: give at least two increasing edges in hours (e.g. 0,1,24,inf), not {list(bins)}")
    return _query(con, "analysis/time_to_convert_histogram", segment, cfg, edges=edges)


def time_to_convert_histogram(
    con: duckdb.DuckDBPyConnection, bins: Sequence[float], segment: str | None, cfg: Config
) -> pd.DataFrame:
    """Converted customers per [lower, upper) hours bin between consecutive edges (per segment)."""
    return _segmented(_histogram(con, bins, segment, cfg), segment)


def _bins(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r} (e.g. 0,1,24,inf)") from None


def _segment_intro(segment: str | None, cfg: Config, counted: str) -> str:
    if segment is None:
        return ""
    return (f" Per {segment} (customers without a value are in (none)); too_small marks fewer than "
            f"{cfg.analysis.min_segment_size} {counted}.")


def _between_stages(con: duckdb.DuckDBPyConnection, cfg: Config, args: argparse.Namespace) -> Answer:
    try:
        table = time_between_stages(con, args.segment, cfg)
    except ValueError as e:
        raise ConfigError(f"analyze time-between-stages: {e}") from None
    transitions = plotly_names(table.from_stage) + " → " + plotly_names(table.to_stage)
    fig = go.Figure()
    if args.segment is None:
        fig.add_bar(x=transitions, y=table.median_hours, name="median")
        fig.add_bar(x=transitions, y=table.p90_hours, name="p90")
    else:
        for segment, rows in table.groupby("segment", sort=False):
            fig.add_bar(x=transitions[rows.index], y=rows.median_hours, name=f"{plotly_text(segment)} (median)")
    fig.update_layout(barmode="group", yaxis_title="hours", margin={"t": 30})
    intro = (
        "How long do customers take from one stage to the next? Every transition between consecutive stages of "
        "the collapsed stage paths (loops included, e.g. intent → consideration) is measured from the last "
        "event of the run at the first stage to the first event at the next, as in the transition graph; "
        "median and p90 use linear interpolation (numpy's default)."
        + _segment_intro(args.segment, cfg, "transitions")
    )
    return Answer(table, "Time between stages", intro, fig)


def _to_convert(con: duckdb.DuckDBPyConnection, cfg: Config, args: argparse.Namespace) -> Answer:
    try:
        summary = _query(con, "analysis/time_to_convert", args.segment, cfg)
        histogram = _histogram(con, args.bins, args.segment, cfg)
    except ValueError as e:
        raise ConfigError(f"analyze time-to-convert: {e}") from None
    # One row per segment: the summary, then one column per bin with its count of converted customers.
    counts = histogram.pivot(index="segment", columns="label", values="converted")
    counts = counts[list(dict.fromkeys(histogram.label))]
    table = _segmented(summary.merge(counts, left_on="segment", right_index=True, how="left"), args.segment)
    fig = go.Figure()
    for segment, rows in histogram.groupby("segment", sort=False):
        name = "converted" if args.segment is None else segment_label(
            str(segment), int(rows.converted.sum()), bool(rows.too_small.iloc[0]))
        fig.add_bar(x=plotly_names(rows.label), y=rows.share, name=name)
    fig.update_layout(barmode="group", xaxis_title="hours to convert", yaxis_title="share of converted",
                      margin={"t": 30})
    fig.update_yaxes(tickformat=".0%")
    intro = (
        "How long does conversion take? hours_to_convert runs from a converted customer's first mapped event to "
        "their first event at or beyond the goal stage; converted customers are counted per bin of "
        "[lower, upper) hours, with the median and p90 (linear interpolation, numpy's default)."
        + _segment_intro(args.segment, cfg, "converted customers")
    )
    return Answer(table, "Time to convert", intro, fig)


def register(add_analysis: AddAnalysis) -> None:
    """Add `cjm analyze time-between-stages` and `cjm analyze time-to-convert`."""
    between = add_analysis("time-between-stages", "hours from one stage to the next: median, p90, mean",
                           _between_stages)
    between.add_argument("--segment", help="break down by a segment (first_touch_channel, campaign, ...)")
    convert = add_analysis("time-to-convert", "hours from the first mapped event to conversion: median, p90, "
                           "histogram", _to_convert)
    convert.add_argument("--segment", help="break down by a segment (first_touch_channel, campaign, ...)")
    convert.add_argument("--bins", type=_bins, default=list(DEFAULT_BINS),
                         help="histogram bin edges in hours (default: 0,1,6,24,72,168,336,inf)")
