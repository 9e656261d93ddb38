"""Publishing the marts for dashboards, after a run has succeeded.

Each run writes `<marts>/runs/<run_id>/` (a read-only `marts.duckdb` in a storage format DuckDB 1.4+ can
open, and Hive-partitioned Parquet), then swaps the `<marts>/current` link to it in one rename. A dashboard
reading `current/` sees the previous night or this one, never half of one, and never touches the warehouse
(so the nightly writer's lock can't block it).
"""

from __future__ import annotations

import os
import shutil
from datetime import datetime
from pathlib import Path

import duckdb

from cjm_analytics.sql_steps import quote_ident, quote_literal

# Published table -> its Parquet partition column (None: one file). cohort_month is added on publishing.
PUBLISHED: dict[str, str | None] = {
    "stage_conversion_daily": "cohort_month",
    "stage_funnel": None,
    "stage_funnel_by_segment": None,
    "stage_transitions": None,
    "journeys": "cohort_month",
    "sankey_links": None,
    "run_summary": None,
}
# BI tools bundle DuckDB 1.x, which can't open files in DuckDB 2's default storage format.
STORAGE_VERSION = "v1.4.0"
KEEP_RUNS = 3


def _select(con: duckdb.DuckDBPyConnection, table: str, run_id: str, run_date: str) -> str:
    """The mart with run_id and run_date (where it has none), and its partition column."""
    has = {str(row[0]) for row in con.execute(f"DESCRIBE {quote_ident(table)}").fetchall()}
    extra = "" if "run_id" in has else f", {quote_literal(run_id)} AS run_id"
    extra += f", DATE {quote_literal(run_date)} AS run_date"
    if PUBLISHED[table] == "cohort_month":
        extra += ", strftime(cohort_date, '%Y-%m') AS cohort_month"
    return f"SELECT *{extra} FROM {quote_ident(table)}"


def publish_marts(
    con: duckdb.DuckDBPyConnection, marts_dir: Path, run_id: str, run_started: datetime, keep: int = KEEP_RUNS
) -> Path:
    """Write this run's marts beside the warehouse and make them `current`; returns the run's folder."""
    runs = marts_dir / "runs"
    partial = runs / f".{run_id}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    (partial / "parquet").mkdir(parents=True)
    run_date = f"{run_started:%Y-%m-%d}"
    con.execute(f"ATTACH {quote_literal(str(partial / 'marts.duckdb'))} AS published "
                f"(STORAGE_VERSION {quote_literal(STORAGE_VERSION)})")
    try:
        for table, partition in PUBLISHED.items():
            select = _select(con, table, run_id, run_date)
            con.execute(f"CREATE TABLE published.{quote_ident(table)} AS {select}")
            target = partial / "parquet" / table
            if partition:
                con.execute(f"COPY ({select}) TO {quote_literal(str(target))} "
                            f"(FORMAT parquet, PARTITION_BY ({quote_ident(partition)}), WRITE_PARTITION_COLUMNS false)")
            else:
                target.mkdir()
                con.execute(f"COPY ({select}) TO {quote_literal(str(target / 'data.parquet'))} (FORMAT parquet)")
    finally:
        con.execute("DETACH published")
    final = runs / run_id
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)
    _point_current(marts_dir, final)
    _prune(runs, keep, final)
    return final


def _point_current(marts_dir: Path, run_dir: Path) -> None:
    # A new link renamed over the old one: readers resolve either the old target or the new, never neither.
    link = marts_dir / "current"
    tmp = marts_dir / f".current.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(run_dir.relative_to(marts_dir), target_is_directory=True)
    os.replace(tmp, link)


def _prune(runs: Path, keep: int, current: Path) -> None:
    """Keep the newest `keep` runs (a dashboard may still be reading the one before current)."""
    done = sorted((p for p in runs.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)
    for old in done[:-keep]:
        if old != current:
            shutil.rmtree(old, ignore_errors=True)
