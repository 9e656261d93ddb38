"""The emotion curve: survey scores (NPS, CSAT, any rating) placed at the stage the customer was at, per stage.

Definitions and a worked example: docs/analysis/emotion.md. The SQL is sql/analysis/emotion_*.sql.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import duckdb
import pandas as pd
import plotly.graph_objects as go

from cjm_analytics.analysis.commands import AddAnalysis, Answer
from cjm_analytics.analysis.output import plotly_names
from cjm_analytics.config import Config
from cjm_analytics.errors import ConfigError
from cjm_analytics.sql_steps import query_sql, run_sql


def survey_params(cfg: Config) -> list[dict[str, Any]]:
    """The configured surveys as the list the cjm_survey_responses macro takes (config order decides ties)."""
    return [
        {"survey_order": i, "event": s.event, "score_path": "$." + json.dumps(s.score), "kind": s.kind,
         "scale_min": s.min, "scale_max": s.max, "low_below": s.low_below}
        for i, s in enumerate(cfg.analysis.surveys, 1)
    ]


def emotion_curve(con: duckdb.DuckDBPyConnection, cfg: Config) -> pd.DataFrame:
    """Per stage in journey order: DataFrame(stage, stage_order, responses, mean_score, ci_low, ci_high, nps,
    nps_responses, csat_mean, csat_responses, invalid_responses)."""
    run_sql(con, "analysis/emotion_survey_responses")  # defines the cjm_survey_responses macro
    return query_sql(con, "analysis/emotion_curve", surveys=survey_params(cfg))


# ---- `cjm analyze emotion-curve` -----------------------------------------------------------------------------

def _curve_figure(df: pd.DataFrame) -> go.Figure:
    """Mean normalized score per stage as a line, with its 95% interval as error bars."""
    fig = go.Figure(go.Scatter(
        x=plotly_names(df["stage"]), y=df["mean_score"], mode="lines+markers", name="mean score (0..1)",
        connectgaps=False,  # a stage without answers is unknown, not in between its neighbours
        error_y={"type": "data", "symmetric": False, "array": (df["ci_high"] - df["mean_score"]).tolist(),
                 "arrayminus": (df["mean_score"] - df["ci_low"]).tolist()},
        customdata=df[["responses"]].to_numpy(),
        hovertemplate="%{x}: %{y:.2f} (%{customdata[0]} responses)<extra></extra>",
    ))
    fig.update_layout(title="Emotion curve", xaxis_title="stage (journey order)",
                      yaxis={"title": "mean normalized score", "range": [0, 1.05]})
    return fig


def _emotion(con: duckdb.DuckDBPyConnection, cfg: Config, args: argparse.Namespace) -> Answer:
    if not cfg.analysis.surveys:
        raise ConfigError("analysis.surveys: no survey is configured, so there is no score to show")
    df = emotion_curve(con, cfg)
    answered = df[df["responses"] > 0]
    intro = (f"{int(df['responses'].sum()):,} survey answers placed at the stage each customer was at when "
             f"answering (their latest stage event at or before the answer); scores are normalized to 0..1, with a "
             f"95% confidence interval of the mean. ")
    if len(answered):
        low = answered.sort_values("mean_score", kind="stable").iloc[0]
        intro += f"Customers feel worst at {low['stage']} (mean {float(low['mean_score']):.2f})."
    invalid = int(df["invalid_responses"].sum())
    if invalid:
        intro += f" {invalid:,} answers had no valid score and are left out."
    return Answer(df, "Emotion curve", intro, _curve_figure(df))


def register(add_analysis: AddAnalysis) -> None:
    """Add the command emotion-curve."""
    add_analysis("emotion-curve", "survey scores per journey stage: mean, confidence interval, NPS, CSAT", _emotion)
