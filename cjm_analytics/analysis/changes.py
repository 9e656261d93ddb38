"""What changed between two runs, and why: each stage's conversion change split into mix (the segments' sizes moved)
and rate (the segments' own conversion moved) per first-touch channel, over the same cohort days.

Definitions and a worked example: docs/analysis/what-changed.md. The SQL is sql/marts/run_segment_cohorts.sql (what
each run keeps) and sql/analysis/conversion_change*.sql.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from cjm_analytics.config import Config
from cjm_analytics.errors import AnalysisError
from cjm_analytics.sql_steps import query_sql

# Each run keeps its last this many cohort days: the previous night and the night a week before overlap them.
COHORT_DAYS_KEPT = 35


def comparable_runs(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The runs kept for comparison, newest first: DataFrame(run_id, run_started_at, data_end, failed)."""
    kept = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'run_segment_cohorts'").fetchone()
    if not kept or not kept[0]:  # a warehouse whose last run predates the history
        return pd.DataFrame({"run_id": [], "run_started_at": [], "data_end": [], "failed": []})
    return query_sql(con, "analysis/conversion_change_runs")


def _previous_good_run(runs: pd.DataFrame, run_id: str) -> str | None:
    started = runs.loc[runs.run_id == run_id, "run_started_at"].iloc[0]
    earlier = runs[(runs.run_started_at < started) & ~runs.failed.astype(bool)]
    return None if earlier.empty else str(earlier.run_id.iloc[0])


def has_previous_run(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the latest run has an earlier good run to be compared with."""
    runs = comparable_runs(con)
    return not runs.empty and _previous_good_run(runs, str(runs.run_id.iloc[0])) is not None


def conversion_change(con: duckdb.DuckDBPyConnection, cfg: Config, against: str | None = None,
                      run_id: str | None = None) -> pd.DataFrame:
    """The latest run (or `run_id`) against the previous run without a failed error-level check (or `against`):
    per stage and segment, the mix and rate effects (columns: docs/analysis/what-changed.md)."""
    runs = comparable_runs(con)
    known = set(runs.run_id)
    for given in (run_id, against):
        if given is not None and given not in known:
            raise AnalysisError(f"run {given!r} is not kept for comparison (runs: {', '.join(runs.run_id[:5])}, …)")
    if run_id is None:
        if runs.empty:
            raise AnalysisError("no run is kept for comparison yet: run `cjm run` twice")
        run_id = str(runs.run_id.iloc[0])
    if against is None:
        against = _previous_good_run(runs, run_id)
        if against is None:
            raise AnalysisError(f"no earlier good run to compare run {run_id!r} with: run `cjm run` again tomorrow")
    return query_sql(con, "analysis/conversion_change", run_id=run_id, against_run_id=against,
                     goal_order=cfg.goal_order)
