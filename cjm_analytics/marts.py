"""The marts layer: funnel, transitions, daily conversion, Sankey links and the run headline (sql/marts/), and
three of the analyst's answers (cjm_analytics.analysis), all read from the core tables; and the summaries the
journey map reads, maintained per dirty customer (maintain_summaries)."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pandas as pd

from cjm_analytics.analysis.attribution import channel_attribution
from cjm_analytics.analysis.audience import stalled_customers
from cjm_analytics.analysis.changes import COHORT_DAYS_KEPT, conversion_change, has_previous_run
from cjm_analytics.analysis.emotion import emotion_curve
from cjm_analytics.analysis.journey_map import build_journey_map
from cjm_analytics.analysis.pain_points import leaks
from cjm_analytics.analysis.segments import add_significance_to_mart
from cjm_analytics.analysis.survival import build_stage_spells, time_to_next
from cjm_analytics.catalog import TABLES, layer
from cjm_analytics.config import Config
from cjm_analytics.sql_steps import run_sql

# The Sankey's segment selector offers this many of the largest first-touch channels.
SANKEY_TOP_SEGMENTS = 5


def _store(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame | None) -> None:
    """A computed answer as a table (dropped when there is no answer, e.g. no surveys configured)."""
    # Through pandas: the same function answers `cjm analyze`, the Markov chain is solved with numpy, and an answer
    # is a few rows per stage or channel.
    con.execute(f"DROP TABLE IF EXISTS {table}")
    if frame is not None:
        con.register("answer_frame", frame)
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM answer_frame")
        con.unregister("answer_frame")


def build_analysis_marts(con: duckdb.DuckDBPyConnection, config: Config) -> None:
    """The analyst's answers the report shows every night (catalog layer analysis-mart), stored so that pages and
    dashboards read one number: the leak table, channel attribution, (with surveys configured) the emotion
    curve, the time-to-next curves with their projections, the stalled customers and what changed since the
    last good run."""
    _store(con, "leaks", leaks(con, config))
    _store(con, "channel_attribution", channel_attribution(con))
    _store(con, "emotion_curve", emotion_curve(con, config) if config.analysis.surveys else None)
    spells = build_stage_spells(con, config)  # once for both (18 of the marts' 95 CPU s at 100M when twice)
    survival = time_to_next(con, config, spells=spells)
    _store(con, "stage_time_to_next", survival.curve)
    _store(con, "stage_eventual_conversion", survival.eventual)
    _store(con, "stalled_customers", stalled_customers(con, config, spells=spells))
    _store(con, "conversion_change", conversion_change(con, config) if has_previous_run(con) else None)


# What maintain_summaries keeps: additive counts per first-touch channel (sql/marts/summary_start.sql).
SUMMARIES = ("summary_driver_population", "summary_driver_touchpoints", "summary_stage_touchpoints",
             "summary_stage_customers", "summary_stage_channels")
# The core rows of a night's dirty customers as the summaries counted them (sql/core/retire_dirty.sql).
RETIRED = ("retired_customers", "retired_journeys", "retired_stage_entries", "retired_touchpoint_firsts",
           "retired_stage_touchpoints", "retired_stage_channels")


def maintain_summaries(con: duckdb.DuckDBPyConnection, goal_order: int, full: bool) -> bool:
    """The summaries the journey map reads (its top touchpoints, channel mix and conversion drivers), kept per dirty
    customer: a night adds its dirty customers' new rows and subtracts their retired rows, so it reads those
    customers only; a full refresh (or a warehouse without them yet) counts every customer with the same SQL.
    Returns whether they were rebuilt."""
    present = {str(r[0]) for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    rebuild = full or not set(SUMMARIES) <= present
    if rebuild:  # recreated: a new version's core columns reach the retired tables too
        for table in (*SUMMARIES, *RETIRED):
            con.execute(f"DROP TABLE IF EXISTS {table}")
    run_sql(con, "core/retired_tables")
    run_sql(con, "marts/summary_start")
    if rebuild:
        run_sql(con, "marts/summary_add", journeys="journeys", entries="stage_entries", firsts="touchpoint_firsts",
                touchpoints="stage_touchpoints", channels="stage_channels", sign=1, goal_order=goal_order)
    else:
        run_sql(con, "marts/summary_dirty")
        run_sql(con, "marts/summary_add", journeys="summary_new_journeys", entries="summary_new_stage_entries",
                firsts="summary_new_touchpoint_firsts", touchpoints="summary_new_stage_touchpoints",
                channels="summary_new_stage_channels", sign=1, goal_order=goal_order)
        run_sql(con, "marts/summary_add", journeys="retired_journeys", entries="retired_stage_entries",
                firsts="retired_touchpoint_firsts", touchpoints="retired_stage_touchpoints",
                channels="retired_stage_channels", sign=-1, goal_order=goal_order)
    run_sql(con, "marts/summary_merge")
    return rebuild


def build_marts(
    con: duckdb.DuckDBPyConnection, config: Config, run_id: str, run_started: datetime, full: bool = True
) -> dict[str, int]:
    """Rebuild every mart from the core tables, and maintain the summaries (maintain_summaries: per dirty customer
    unless full); returns the row count of each."""
    report = config.report
    maintain_summaries(con, config.goal_order, full)
    run_sql(con, "marts/stage_ladder")
    run_sql(con, "marts/stage_conversion_daily", goal_order=config.goal_order)
    run_sql(con, "marts/stage_funnel", goal_order=config.goal_order)
    run_sql(con, "marts/stage_funnel_by_segment", goal_order=config.goal_order)
    add_significance_to_mart(con, config.analysis.min_segment_size)  # Wilson intervals and tests: numpy, not SQL
    run_sql(con, "marts/stage_transitions")
    run_sql(con, "marts/sankey_links", max_steps=report.sankey_steps, min_share=report.sankey_min_share,
            top_segments=SANKEY_TOP_SEGMENTS)
    run_sql(con, "marts/run_summary", run_id=run_id, run_started=run_started.replace(tzinfo=None),
            sessions_off=config.sessions.off)
    run_sql(con, "marts/run_segment_cohorts", run_id=run_id, run_started=run_started.replace(tzinfo=None),
            cohort_days=COHORT_DAYS_KEPT)
    build_analysis_marts(con, config)
    build_journey_map(con, config)
    counts = {}
    present = {str(r[0]) for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    for table in (t for t in (*layer("mart"), *layer("analysis-mart")) if t in present or not TABLES[t].optional):
        row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
        counts[table] = int(row[0]) if row else 0
    return counts
