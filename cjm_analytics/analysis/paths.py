"""Paths: the most common stage or touchpoint paths, paths around an anchor step, and paths between two steps.

Definitions and worked examples: docs/analysis/paths.md. The SQL is sql/analysis/paths_*.sql.
"""

from __future__ import annotations

from typing import Literal

import duckdb
import pandas as pd

from cjm_analytics.errors import AnalysisError
from cjm_analytics.sql_steps import query_sql, run_sql
from cjm_analytics.suggest import did_you_mean

Level = Literal["stage", "touchpoint"]
LEVELS: tuple[Level, ...] = ("stage", "touchpoint")


def _query(con: duckdb.DuckDBPyConnection, step: str, level: Level, collapse_loops: bool, **params: object
           ) -> pd.DataFrame:
    if level not in LEVELS:
        raise AnalysisError(f"level: use one of {', '.join(LEVELS)}, not {level!r}")
    run_sql(con, "analysis/paths_steps")  # defines the cjm_paths and cjm_timed_paths macros
    # Stage paths are always collapsed (DEFINITIONS.md); only touchpoint paths may keep repeats.
    return query_sql(con, step, level=level, collapse_loops=collapse_loops or level == "stage", **params)


def _check_names(con: duckdb.DuckDBPyConnection, level: Level, **names: str) -> None:
    """A step name that no stage (or no event's touchpoint) has is a typo, not an empty answer."""
    known = set(query_sql(con, "analysis/path_step_names", level=level)["name"])
    for what, name in names.items():
        if name not in known:
            kind = "stage" if level == "stage" else "touchpoint of any event"
            hint = did_you_mean(name, known)
            other = "" if hint else f" (--level {'touchpoint' if level == 'stage' else 'stage'}?)"
            raise AnalysisError(f"{what}: {name!r} is no {kind}{hint or other}")


def _positive(name: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise AnalysisError(f"{name}: use a whole number of at least 1, not {value}")


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
        raise AnalysisError(f"before, after: use whole numbers of at least 0, not {before}, {after}")
    _positive("n", n)
    _check_names(con, level, anchor=anchor)
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
    _check_names(con, level, start=start, end=end)
    return _query(con, "analysis/paths_between", level, collapse_loops, start=start, end=end, n=n)
