"""Drop-off as time to event: for each stage before the goal, how soon customers reach the next one, and for the
goal, how soon a journey reaches it, as Kaplan–Meier curves where customers still within reach are censored.

Definitions, the censoring rule and a worked example: docs/analysis/time-to-next.md. The SQL is
sql/analysis/stage_spells.sql and sql/analysis/time_to_next_*.sql: an exact product-limit estimator with
Greenwood's variance, checked against statsmodels in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pandas as pd

from cjm_analytics.config import Config
from cjm_analytics.errors import AnalysisError
from cjm_analytics.sql_steps import query_sql, run_sql


@dataclass(frozen=True)
class TimeToNext:
    """curve: per stage and whole day (stage, stage_order, from_stage, to_stage, day, at_risk, events, censored,
    km_conversion, ci_low, ci_high); eventual: per stage, the curve at its longest spell with the observed share."""

    curve: pd.DataFrame
    eventual: pd.DataFrame


def measured_stages(cfg: Config) -> list[str]:
    """The stages with a curve: every stage before the goal (to the next), and the goal (from the first stage)."""
    return cfg.stage_names[: cfg.goal_order] if cfg.goal_order > 1 else []


SPELLS, CURVE = "cjm_stage_spells", "cjm_time_to_next"  # temp tables, given to the queries that read them


def build_stage_spells(con: duckdb.DuckDBPyConnection, cfg: Config) -> str:
    """Each journey customer's spell at each measured stage, as a temp table; its name."""
    run_sql(con, "analysis/stage_spells", goal_order=cfg.goal_order)
    return SPELLS


def time_to_next(con: duckdb.DuckDBPyConnection, cfg: Config, stage: str | None = None,
                 spells: str | None = None) -> TimeToNext:
    """The Kaplan–Meier curves and projected eventual conversions, of every measured stage or of `stage`. `spells`:
    the table build_stage_spells made, when the caller made it already (the nightly marts, once for two users)."""
    stages = measured_stages(cfg)
    if stage is not None and stage not in stages:
        after = (f" (it is at or after the goal: {cfg.entity.plural} there have completed)"
                 if stage in cfg.stage_names else "")
        raise AnalysisError(f"stage: {stage!r} has no time to next{after}; use one of {', '.join(stages) or 'none'}")
    spells = spells or build_stage_spells(con, cfg)
    curve = query_sql(con, "analysis/time_to_next_curve", goal_order=cfg.goal_order, spells=spells)
    eventual = query_sql(con, "analysis/time_to_next_eventual", spells=spells, curve_table=CURVE)
    if stage is not None:
        curve = curve[curve["stage"] == stage].reset_index(drop=True)
        eventual = eventual[eventual["stage"] == stage].reset_index(drop=True)
    return TimeToNext(curve, eventual)
