"""Pain points: where customers drop out of the stage funnel before the goal, what they did last, and what marks them.

Definitions and worked examples: docs/analysis/pain-points.md. The SQL is sql/analysis/pain_*.sql.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from cjm_analytics.analysis.emotion import survey_params
from cjm_analytics.catalog import columns
from cjm_analytics.config import Config
from cjm_analytics.sql_steps import query_sql, run_sql

LOOP_THRESHOLD = 3  # more than this many moves between two stages is a loop (browse, cart, browse, cart, browse)

LEAK_COLUMNS = list(columns("leaks"))


def last_touchpoints(con: duckdb.DuckDBPyConnection, goal_order: int, min_customers: int = 30) -> pd.DataFrame:
    """Droppers' last touchpoints per stage before the goal (`Config.goal_order`), by count and by lift against
    the customers who went on.

    DataFrame(stage, stage_order, touchpoint, droppers, dropper_share, continuers, continuer_share, lift,
    rank_by_count, rank_by_lift); rank_by_lift is null for touchpoints with fewer than min_customers droppers.
    """
    return query_sql(con, "analysis/pain_last_touchpoints", min_customers=min_customers, goal_order=goal_order)


def exit_rates(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Per touchpoint, customers whose last event is there / customers who had it: DataFrame(touchpoint,
    customers, exits, exit_rate)."""
    return query_sql(con, "analysis/pain_exit_rates")


def stage_loops(con: duckdb.DuckDBPyConnection, loop_threshold: int = LOOP_THRESHOLD) -> pd.DataFrame:
    """Pairs of stages customers go back and forth between: DataFrame(stage_a, stage_b, loopers, converted,
    conversion_rate)."""
    run_sql(con, "analysis/stage_pair_moves")  # defines the cjm_stage_pair_moves macro
    return query_sql(con, "analysis/pain_stage_loops", loop_threshold=loop_threshold)


def leak_profile(con: duckdb.DuckDBPyConnection, cfg: Config, loop_threshold: int = LOOP_THRESHOLD) -> pd.DataFrame:
    """Per stage before the goal: DataFrame(stage, stage_order, reached, customers_lost, share_of_reached,
    support_share, low_score_share, loopers, median_hours_since_last_event). support_share is null without
    analysis.support_events, low_score_share without analysis.surveys: not configured is not 0."""
    run_sql(con, "analysis/emotion_survey_responses")  # defines the cjm_survey_responses macro
    run_sql(con, "analysis/stage_pair_moves")  # defines the cjm_stage_pair_moves macro
    return query_sql(con, "analysis/pain_leak_profile", surveys=survey_params(cfg), loop_threshold=loop_threshold,
                     support_events=list(cfg.analysis.support_events), goal_order=cfg.goal_order,
                     support_configured=bool(cfg.analysis.support_events),
                     surveys_configured=bool(cfg.analysis.surveys))


def leaks(con: duckdb.DuckDBPyConnection, cfg: Config, loop_threshold: int = LOOP_THRESHOLD,
          min_customers: int | None = None) -> pd.DataFrame:
    """The stages before the goal ranked by customers lost, with what marks the customers lost there (LEAK_COLUMNS).

    Stages at and after the goal are not leaks: a customer who stops there has completed (retention, see
    stage_funnel's before_goal)."""
    profile = leak_profile(con, cfg, loop_threshold)
    touch = last_touchpoints(con, cfg.goal_order,
                             cfg.analysis.min_segment_size if min_customers is None else min_customers)
    top_count = touch[touch["rank_by_count"] == 1].set_index("stage_order")["touchpoint"]
    top_lift = touch[touch["rank_by_lift"] == 1].set_index("stage_order")["touchpoint"]
    out = profile.assign(top_last_touchpoint=profile["stage_order"].map(top_count),
                         top_lift_touchpoint=profile["stage_order"].map(top_lift))
    # Biggest leak first; equal losses keep journey order.
    out = out.sort_values(["customers_lost", "stage_order"], ascending=[False, True], kind="stable")
    out.insert(0, "rank", range(1, len(out) + 1))
    return out[LEAK_COLUMNS].reset_index(drop=True)
