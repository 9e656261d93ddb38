"""The emotion curve: survey scores (NPS, CSAT, any rating) placed at the stage the customer was at, per stage.

Definitions and a worked example: docs/analysis/emotion.md. The SQL is sql/analysis/emotion_*.sql.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb
import pandas as pd

from cjm_analytics.config import Config
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
    nps_responses, csat_mean, csat_responses, invalid_responses); nps_responses (csat_responses) is null
    without an NPS (CSAT) survey configured."""
    run_sql(con, "analysis/emotion_survey_responses")  # defines the cjm_survey_responses macro
    kinds = {s.kind for s in cfg.analysis.surveys}
    return query_sql(con, "analysis/emotion_curve", surveys=survey_params(cfg), nps_configured="nps" in kinds,
                     csat_configured="csat" in kinds)
