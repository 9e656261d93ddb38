"""The marts layer: funnel, transitions, daily conversion, Sankey links and the run headline (sql/marts/)."""

from __future__ import annotations

from datetime import datetime

import duckdb

from cjm_analytics.config import Report
from cjm_analytics.sql_steps import run_sql

MART_TABLES = (
    "stage_conversion_daily", "stage_funnel", "stage_funnel_by_segment", "stage_transitions", "sankey_links",
    "sankey_segment_links", "run_summary", "run_history",
)
# The Sankey's segment selector offers this many of the largest first-touch channels.
SANKEY_TOP_SEGMENTS = 5


def build_marts(
    con: duckdb.DuckDBPyConnection, report: Report, run_id: str, run_started: datetime
) -> dict[str, int]:
    """Rebuild every mart from the core tables; returns the row count of each."""
    run_sql(con, "marts/stage_conversion_daily")
    run_sql(con, "marts/stage_funnel")
    run_sql(con, "marts/stage_funnel_by_segment")
    run_sql(con, "marts/stage_transitions")
    run_sql(con, "marts/sankey_links", max_steps=report.sankey_steps, min_share=report.sankey_min_share,
            top_segments=SANKEY_TOP_SEGMENTS)
    run_sql(con, "marts/run_summary", run_id=run_id, run_started=run_started.replace(tzinfo=None))
    counts = {}
    for table in MART_TABLES:
        row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
        counts[table] = int(row[0]) if row else 0
    return counts
