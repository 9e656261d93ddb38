"""Conversion drivers: for customers who reached one stage, what they did or were that goes with reaching another.

Associations, not causes. Only what happened before a customer reached the target stage (or, for the rest, before
they were last seen) counts. Definitions and a worked example: docs/analysis/drivers.md. The counts are
sql/analysis/drivers_*.sql; the statistics are analysis/stats.py over one row per candidate.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import numpy as np
import pandas as pd

from cjm_analytics.analysis import stats
from cjm_analytics.errors import AnalysisError
from cjm_analytics.sql_steps import query_sql, run_sql

KINDS = ("event", "touchpoint", "channel", "property")
MIN_SUPPORT = 30  # as analysis.min_segment_size's default: fewer customers on either side is too noisy to test
MAX_PROPERTY_VALUES = 20  # a property with more distinct values is an id or an amount, not an attribute
ALPHA = 0.05  # the false discovery rate `significant` is read at

DRIVER_COLUMNS = [
    "kind", "candidate", "property", "value",
    "customers_with", "converted_with", "rate_with", "customers_without", "converted_without", "rate_without",
    "odds_ratio", "ci_low", "ci_high", "risk_ratio", "p_value", "test", "q_value", "significant",
    "population", "population_converted",
]


def stage_order(con: duckdb.DuckDBPyConnection, stage: str, role: str) -> int:
    """The order of a configured stage; an unknown name is an AnalysisError naming the stages."""
    stages = dict(con.execute("SELECT stage, stage_order FROM stage_list ORDER BY stage_order").fetchall())
    if stage not in stages:
        raise AnalysisError(f"{role}: {stage!r} is not a stage (stages: {', '.join(stages)})")
    return int(stages[stage])


def driver_statistics(counts: pd.DataFrame, confidence: float = 0.95, alpha: float = ALPHA) -> pd.DataFrame:
    """Rates, odds ratio with interval, risk ratio, p-value, BH q-value and `significant` for 2x2 count rows.

    `counts` has customers_with, converted_with, customers_without, converted_without; the family of the
    Benjamini–Hochberg correction is every row given.
    """
    a = counts["converted_with"].to_numpy(dtype=float)
    b = counts["customers_with"].to_numpy(dtype=float) - a
    c = counts["converted_without"].to_numpy(dtype=float)
    d = counts["customers_without"].to_numpy(dtype=float) - c
    odds, low, high = stats.odds_ratio(a, b, c, d, confidence)
    p, test = stats.table_2x2_test(a, b, c, d)
    q = stats.benjamini_hochberg(p)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate_with, rate_without = a / (a + b), c / (c + d)
    return counts.assign(
        rate_with=rate_with, rate_without=rate_without, odds_ratio=odds, ci_low=low, ci_high=high,
        risk_ratio=stats.risk_ratio(a, b, c, d, confidence)[0], p_value=p, test=test, q_value=q,
        # Also the drawn interval must exclude 1: the test (Fisher's exact for small counts) and Woolf's interval
        # can disagree at the margin, and a page must never call "significant" an effect whose interval says
        # "maybe none".
        significant=(np.nan_to_num(q, nan=1.0) < alpha) & ((np.nan_to_num(low, nan=0.0) > 1)
                                                          | (np.nan_to_num(high, nan=np.inf) < 1)),
    )


# The temp tables of one drivers question, each step given the ones before it by name (population -> history
# -> flags): the customers asked about, their events before the cutoff, their candidates.
DRIVER_TABLES = {"population": "cjm_driver_population", "history": "cjm_driver_history", "flags": "cjm_driver_flags"}


def collect_candidates(con: duckdb.DuckDBPyConnection, from_order: int, to_order: int, kinds: Sequence[str],
                       properties: Sequence[str] | None, max_property_values: int) -> dict[str, str]:
    """The population of stage from_order, its no-leakage history and candidates (docs/analysis/drivers.md), as
    temp tables; their names by role, for the queries that count them."""
    t = DRIVER_TABLES
    run_sql(con, "analysis/drivers_population", from_order=from_order, to_order=to_order)
    run_sql(con, "analysis/drivers_history", to_order=to_order, population=t["population"])
    run_sql(con, "analysis/drivers_candidates", kinds=list(kinds),
            properties=None if properties is None else list(properties), max_property_values=max_property_values,
            history=t["history"])
    return {"population": t["population"], "flags": t["flags"]}


def conversion_drivers(
    con: duckdb.DuckDBPyConnection,
    from_stage: str,
    to_stage: str,
    *,
    min_support: int = MIN_SUPPORT,
    kinds: Sequence[str] = KINDS,
    properties: Sequence[str] | None = None,
    max_property_values: int = MAX_PROPERTY_VALUES,
    confidence: float = 0.95,
    alpha: float = ALPHA,
) -> pd.DataFrame:
    """One row per candidate (DRIVER_COLUMNS) for the customers who reached from_stage, outcome: reached to_stage.

    Candidates are the event names, touchpoints, channels and customer property values (`properties`, default
    every event property with at most max_property_values values) seen before the cutoff, held by at least
    min_support customers and lacked by at least as many. Ordered by p-value; `significant` is q_value < alpha with
    an interval that excludes 1.
    """
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise AnalysisError(f"kinds: {', '.join(map(repr, unknown))} unknown (use {', '.join(KINDS)})")
    if min_support < 1:
        raise AnalysisError(f"min_support: use at least 1, not {min_support}")
    start, target = stage_order(con, from_stage, "from"), stage_order(con, to_stage, "to")
    if target <= start:
        raise AnalysisError(f"to: {to_stage!r} must come after {from_stage!r} in the stages")
    tables = collect_candidates(con, start, target, kinds, properties, max_property_values)
    counts = query_sql(con, "analysis/drivers_counts", min_support=min_support, **tables)
    out = driver_statistics(counts, confidence, alpha)
    out = out.sort_values(["p_value", "kind", "candidate"], kind="stable", na_position="last")
    return out[DRIVER_COLUMNS].reset_index(drop=True)
