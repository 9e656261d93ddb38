"""Pain points: where customers drop out of the stage funnel, what they did last, and what marks them.

Definitions and worked examples: docs/analysis/pain-points.md. The SQL is sql/analysis/pain_*.sql.
"""

from __future__ import annotations

import argparse

import duckdb
import pandas as pd
import plotly.graph_objects as go

from cjm_analytics.analysis.commands import AddAnalysis, Answer
from cjm_analytics.analysis.emotion import survey_params
from cjm_analytics.analysis.output import plotly_names
from cjm_analytics.analysis.paths import whole_number
from cjm_analytics.config import Config
from cjm_analytics.sql_steps import query_sql, run_sql

LOOP_THRESHOLD = 3  # more than this many moves between two stages is a loop (browse, cart, browse, cart, browse)

LEAK_COLUMNS = ["rank", "stage", "customers_lost", "share_of_reached", "top_last_touchpoint", "top_lift_touchpoint",
                "support_share", "low_score_share", "loopers", "median_hours_since_last_event"]


def last_touchpoints(con: duckdb.DuckDBPyConnection, min_customers: int = 30) -> pd.DataFrame:
    """Droppers' last touchpoints per stage, by count and by lift against the customers who went on.

    DataFrame(stage, stage_order, touchpoint, droppers, dropper_share, continuers, continuer_share, lift,
    rank_by_count, rank_by_lift); rank_by_lift is null for touchpoints with fewer than min_customers droppers.
    """
    return query_sql(con, "analysis/pain_last_touchpoints", min_customers=min_customers)


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
    """Per stage before the last: DataFrame(stage, stage_order, reached, customers_lost, share_of_reached,
    support_share, low_score_share, loopers, median_hours_since_last_event)."""
    run_sql(con, "analysis/emotion_survey_responses")  # defines the cjm_survey_responses macro
    run_sql(con, "analysis/stage_pair_moves")  # defines the cjm_stage_pair_moves macro
    return query_sql(con, "analysis/pain_leak_profile", surveys=survey_params(cfg), loop_threshold=loop_threshold,
                     support_events=list(cfg.analysis.support_events))


def leaks(con: duckdb.DuckDBPyConnection, cfg: Config, loop_threshold: int = LOOP_THRESHOLD,
          min_customers: int | None = None) -> pd.DataFrame:
    """The stages ranked by customers lost, with what marks the customers lost there (LEAK_COLUMNS)."""
    profile = leak_profile(con, cfg, loop_threshold)
    touch = last_touchpoints(con, cfg.analysis.min_segment_size if min_customers is None else min_customers)
    top_count = touch[touch["rank_by_count"] == 1].set_index("stage_order")["touchpoint"]
    top_lift = touch[touch["rank_by_lift"] == 1].set_index("stage_order")["touchpoint"]
    out = profile.assign(top_last_touchpoint=profile["stage_order"].map(top_count),
                         top_lift_touchpoint=profile["stage_order"].map(top_lift))
    # Biggest leak first; equal losses keep journey order.
    out = out.sort_values(["customers_lost", "stage_order"], ascending=[False, True], kind="stable")
    out.insert(0, "rank", range(1, len(out) + 1))
    return out[LEAK_COLUMNS].reset_index(drop=True)


# ---- `cjm analyze pain-points` -------------------------------------------------------------------------------

def _leak_bars(df: pd.DataFrame) -> go.Figure:
    """Customers lost per stage, biggest leak first, labelled with the share of those who reached it."""
    fig = go.Figure(go.Bar(
        x=plotly_names(df["stage"]), y=df["customers_lost"], name="customers lost",
        text=[f"{s:.0%} of reached" if pd.notna(s) else "" for s in df["share_of_reached"]],
        # Substituted into the hover template as they are: plotly text, like every name.
        customdata=df[["top_last_touchpoint", "top_lift_touchpoint"]].fillna("-").apply(plotly_names).to_numpy(),
        hovertemplate="%{x}: %{y} lost<br>last touchpoint: %{customdata[0]}<br>"
                      "highest lift: %{customdata[1]}<extra></extra>",
    ))
    fig.update_layout(title="Where customers leave the funnel", xaxis_title="stage (biggest leak first)",
                      yaxis_title="customers lost")
    return fig


def _pain_points(con: duckdb.DuckDBPyConnection, cfg: Config, args: argparse.Namespace) -> Answer:
    df = leaks(con, cfg, loop_threshold=args.loop_threshold, min_customers=args.min_customers)
    if len(df):
        top = df.iloc[0]
        intro = (f"The biggest leak is {top['stage']}: {int(top['customers_lost']):,} customers "
                 f"({float(top['share_of_reached']):.1%} of those who reached it) went no further. Per stage: the "
                 f"touchpoint droppers most often ended on, the one most over-represented against customers who "
                 f"went on (lift), and the shares who contacted support, gave a low survey score or looped "
                 f"between two stages more than {args.loop_threshold} times.")
    else:
        intro = "There is only one stage, so nobody can drop out before the last one."
    return Answer(df, "Pain points: the biggest leaks", intro, _leak_bars(df))


def register(add_analysis: AddAnalysis) -> None:
    """Add the command pain-points."""
    p = add_analysis("pain-points", "the stages ranked by customers lost, with what the lost customers did last",
                     _pain_points)
    p.add_argument("--loop-threshold", type=whole_number(0), default=LOOP_THRESHOLD,
                   help=f"a looper moves between two stages more than this many times (default {LOOP_THRESHOLD})")
    p.add_argument("--min-customers", type=whole_number(1), default=None,
                   help="fewest droppers for a touchpoint's lift to be ranked (default: analysis.min_segment_size)")
