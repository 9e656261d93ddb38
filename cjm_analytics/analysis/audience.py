"""Audiences, the people behind a number: the customers who dropped out at a stage, and the customers stalled at
a stage for longer than most who moved on, with what a CRM or marketing team needs to reach them.

Definitions and a worked example: docs/analysis/audience.md. The SQL is sql/analysis/audience*.sql,
stalled*.sql and customer_marks.sql, over the spells of sql/analysis/stage_spells.sql.
"""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd

from cjm_analytics.analysis.emotion import survey_params
from cjm_analytics.analysis.segments import segment_table
from cjm_analytics.analysis.survival import build_stage_spells
from cjm_analytics.config import Config
from cjm_analytics.errors import AnalysisError
from cjm_analytics.sql_steps import query_sql, run_sql

# A stalled customer has left for good once unseen for more than this many times the stage's p90 dwell.
REACH_FACTOR = 3.0


# The temp tables of an audience, each step given the ones before it by name: the people (audience_people.sql
# or stalled_people.sql) and their support and low-score marks (customer_marks.sql).
PEOPLE, MARKS = "cjm_people", "cjm_customer_marks"


def _mark_people(con: duckdb.DuckDBPyConnection, cfg: Config) -> dict[str, str]:
    """The marks of the customers in PEOPLE; both tables' names, for the query that reads them."""
    run_sql(con, "analysis/emotion_survey_responses")  # defines the cjm_survey_responses macro
    run_sql(con, "analysis/customer_marks", support_events=list(cfg.analysis.support_events),
            surveys=survey_params(cfg), support_configured=bool(cfg.analysis.support_events),
            surveys_configured=bool(cfg.analysis.surveys), people=PEOPLE)
    return {"people": PEOPLE, "marks": MARKS}


def dropped_at(con: duckdb.DuckDBPyConnection, cfg: Config, stage: str, segment: str | None = None,
               value: str | None = None, since: date | None = None) -> pd.DataFrame:
    """The customers whose journey stopped at `stage` (before the goal), optionally in one segment value and last
    seen on or after `since`: DataFrame(customer_id, identified, dropped_at, reached_at, last_seen,
    days_since_last_seen, last_touchpoint, last_channel, contacted_support, low_score)."""
    if stage not in cfg.stage_names:
        raise AnalysisError(f"dropped-at: {stage!r} is not a stage (stages: {', '.join(cfg.stage_names)})")
    order = cfg.stage_names.index(stage) + 1
    if order >= cfg.goal_order:
        raise AnalysisError(f"dropped-at: {stage!r} is at or after the goal {cfg.goal!r}: {cfg.entity.plural} who "
                            "stop there have completed, nobody drops out there")
    if (segment is None) != (value is None):
        raise AnalysisError("segment: give both the segment and its value (e.g. persona=student)")
    segments = segment_table(con, segment)
    spells = build_stage_spells(con, cfg)
    run_sql(con, "analysis/audience_people", stage_order=order, segment_value=value, since=since,
            segments=segments, spells=spells)
    return query_sql(con, "analysis/audience", stage_order=order, **_mark_people(con, cfg))


def stalled_customers(con: duckdb.DuckDBPyConnection, cfg: Config, reach_factor: float = REACH_FACTOR,
                      spells: str | None = None) -> pd.DataFrame:
    """Customers sitting at a stage before the goal longer than its p90 dwell who have not left for good (columns:
    docs/analysis/audience.md). `spells`: as in survival.time_to_next."""
    spells = spells or build_stage_spells(con, cfg)
    run_sql(con, "analysis/stalled_people", goal_order=cfg.goal_order, reach_factor=reach_factor,
            min_movers=cfg.analysis.min_segment_size, spells=spells)
    return query_sql(con, "analysis/stalled", **_mark_people(con, cfg))
