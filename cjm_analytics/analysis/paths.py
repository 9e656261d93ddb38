"""Paths: the most common stage or touchpoint paths, paths around an anchor step, and paths between two steps.

Definitions and worked examples: docs/analysis/paths.md. The SQL is sql/analysis/paths_*.sql.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Literal

import duckdb
import pandas as pd
import plotly.graph_objects as go

from cjm_analytics.analysis.commands import AddAnalysis, Answer
from cjm_analytics.analysis.output import plotly_names
from cjm_analytics.config import Config
from cjm_analytics.report import plotly_text
from cjm_analytics.sql_steps import query_sql, run_sql

Level = Literal["stage", "touchpoint"]
LEVELS: tuple[Level, ...] = ("stage", "touchpoint")


def _query(con: duckdb.DuckDBPyConnection, step: str, level: Level, collapse_loops: bool, **params: object
           ) -> pd.DataFrame:
    if level not in LEVELS:
        raise ValueError(f"level: use one of {', '.join(LEVELS)}, not {level!r}")
    run_sql(con, "analysis/paths_steps")  # defines the cjm_paths and cjm_timed_paths macros
    # Stage paths are always collapsed (DEFINITIONS.md); only touchpoint paths may keep repeats.
    return query_sql(con, step, level=level, collapse_loops=collapse_loops or level == "stage", **params)


def _positive(name: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise ValueError(f"{name}: use a whole number of at least 1, not {value}")


def top_paths(
    con: duckdb.DuckDBPyConnection,
    level: Level,
    n: int | None = 20,
    max_length: int | None = None,
    collapse_loops: bool = True,
) -> pd.DataFrame:
    """The n most common whole paths: DataFrame(rank, path, customers, share, cumulative_share)."""
    _positive("n", n)
    _positive("max_length", max_length)
    return _query(con, "analysis/paths_top", level, collapse_loops, n=n, max_length=max_length)


def paths_around(
    con: duckdb.DuckDBPyConnection,
    anchor: str,
    before: int,
    after: int,
    level: Level,
    n: int | None = 20,
    collapse_loops: bool = True,
) -> pd.DataFrame:
    """The steps around each customer's first `anchor`: DataFrame(path, customers, share)."""
    if before < 0 or after < 0:
        raise ValueError(f"before, after: use whole numbers of at least 0, not {before}, {after}")
    _positive("n", n)
    return _query(con, "analysis/paths_around", level, collapse_loops, anchor=anchor, before=before, after=after,
                  n=n)


def paths_between(
    con: duckdb.DuckDBPyConnection,
    start: str,
    end: str,
    level: Level,
    n: int | None = 20,
    collapse_loops: bool = True,
) -> pd.DataFrame:
    """Sub-paths from the first `start` to the first `end` after it: DataFrame(path, customers, share, median_hours)."""
    _positive("n", n)
    return _query(con, "analysis/paths_between", level, collapse_loops, start=start, end=end, n=n)


# ---- `cjm analyze paths | paths-around | paths-between` ------------------------------------------------------

def whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least `minimum` (argparse reports anything else in one line)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"use at least {minimum}, not {value}")
        return value
    return parse


def _path_bars(df: pd.DataFrame, title: str, coverage: bool = False) -> go.Figure:
    """Horizontal bars of customers per path (most common on top), with the cumulative coverage as a line.

    The title is plain text (it may hold a step from the command line): it is escaped here.
    """
    shown = df.iloc[::-1]
    paths = plotly_names(shown["path"])
    fig = go.Figure(go.Bar(x=shown["customers"], y=paths, orientation="h", name="customers"))
    if coverage:
        fig.add_trace(go.Scatter(x=shown["cumulative_share"], y=paths, mode="lines+markers",
                                 name="cumulative share of all paths", xaxis="x2"))
        # Its own ticks: by default an overlaying axis syncs its ticks to the customer axis' grid.
        fig.update_layout(xaxis2={"overlaying": "x", "side": "top", "range": [0, 1], "tickformat": ".0%",
                                  "tickmode": "linear", "tick0": 0, "dtick": 0.2, "showgrid": False,
                                  "title": "cumulative share"})
    fig.update_layout(title=plotly_text(title), xaxis_title="customers", yaxis={"automargin": True},
                      height=max(320, 28 * len(df) + 160), legend={"orientation": "h"})
    return fig


def _add_level_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--level", choices=LEVELS, default="stage", help="stage paths or touchpoint paths")
    parser.add_argument("--n", type=whole_number(1), default=20, help="how many paths to list (default 20)")
    parser.add_argument("--keep-repeats", action="store_true",
                        help="touchpoint paths: keep consecutive repeats (stage paths always collapse them)")


def _paths(con: duckdb.DuckDBPyConnection, cfg: Config, args: argparse.Namespace) -> Answer:
    df = top_paths(con, args.level, n=args.n, max_length=args.max_length, collapse_loops=not args.keep_repeats)
    population = "journeys" if args.level == "stage" else "customers with events"
    covered = float(df["cumulative_share"].iloc[-1]) if len(df) else 0.0
    intro = (f"The {len(df)} most common {args.level} paths and how many customers followed each; together "
             f"they cover {covered:.1%} of all {population}.")
    return Answer(df, f"Top {args.level} paths", intro, _path_bars(df, f"Top {args.level} paths", coverage=True))


def _paths_around(con: duckdb.DuckDBPyConnection, cfg: Config, args: argparse.Namespace) -> Answer:
    df = paths_around(con, args.anchor, args.before, args.after, args.level, n=args.n,
                      collapse_loops=not args.keep_repeats)
    intro = (f"The {args.before} {args.level} step(s) before and {args.after} after each customer's first "
             f"{args.anchor!r}; share is of the customers who ever had {args.anchor!r}. (start) and (end) mark "
             f"a path that begins or ends inside the window.")
    return Answer(df, f"Paths around {args.anchor}", intro, _path_bars(df, f"Paths around {args.anchor}"))


def _paths_between(con: duckdb.DuckDBPyConnection, cfg: Config, args: argparse.Namespace) -> Answer:
    df = paths_between(con, args.start, args.end, args.level, n=args.n, collapse_loops=not args.keep_repeats)
    intro = (f"How customers get from their first {args.start!r} to the first {args.end!r} after it: the "
             f"{args.level} steps in between, with the median hours it took; share is of the customers who made it.")
    title = f"Paths from {args.start} to {args.end}"
    return Answer(df, title, intro, _path_bars(df, title))


def register(add_analysis: AddAnalysis) -> None:
    """Add the commands paths, paths-around and paths-between."""
    p = add_analysis("paths", "the most common stage or touchpoint paths and the share of journeys they cover",
                     _paths)
    _add_level_options(p)
    p.add_argument("--max-length", type=whole_number(1), default=None,
                   help="cut paths after this many steps (a cut path ends in '…')")
    p = add_analysis("paths-around", "the steps before and after each customer's first occurrence of an anchor",
                     _paths_around)
    p.add_argument("--anchor", required=True, help="a stage name or touchpoint")
    p.add_argument("--before", type=whole_number(0), default=2, help="steps before the anchor (default 2)")
    p.add_argument("--after", type=whole_number(0), default=2, help="steps after the anchor (default 2)")
    _add_level_options(p)
    p = add_analysis("paths-between", "the paths from a first start step to the first end step after it",
                     _paths_between)
    p.add_argument("--start", required=True, help="a stage name or touchpoint")
    p.add_argument("--end", required=True, help="a stage name or touchpoint")
    _add_level_options(p)
