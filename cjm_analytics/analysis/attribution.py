"""Channel attribution: first-touch, last-touch, linear and Markov-chain (removal effect) credit per channel.

Definitions and the worked example: docs/analysis/attribution.md. Paths, credits and transition counts are
aggregated in SQL (sql/analysis/attribution_*.sql); only the tiny absorbing chain is solved here, with numpy.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from cjm_analytics.names import CONVERSION, NULL_STATE, START
from cjm_analytics.sql_steps import query_sql, run_sql


def channel_paths(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Distinct channel paths as ChannelAttribution takes them: DataFrame(path, conversions, non_conversions)."""
    run_sql(con, "analysis/attribution_touches")  # defines the cjm_channel_touches macro
    return query_sql(con, "analysis/attribution_paths")


def channel_transitions(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Transition counts of the first-order chain: DataFrame(from_state, to_state, transitions)."""
    run_sql(con, "analysis/attribution_touches")
    return query_sql(con, "analysis/attribution_transitions")


def _conversion_probability(q: np.ndarray, r: np.ndarray) -> float:
    """Probability of absorption in (conversion) from (start) (row 0): solves (I - Q) a = r."""
    a = np.linalg.solve(np.eye(len(q)) - q, r)
    return float(a[0])


def markov_attribution(transitions: pd.DataFrame) -> pd.DataFrame:
    """Removal effects and Markov credit from transition counts: DataFrame(channel, markov, removal_effect).

    Removing channel c sends every path that reaches c to (null); its removal effect is
    1 - P(conversion | c removed) / P(conversion), and its credit is conversions x effect / sum of effects.
    """
    channels = sorted(set(transitions["from_state"]) - {START})
    transient = [START, *channels]
    index = {s: i for i, s in enumerate([*transient, CONVERSION, NULL_STATE])}
    counts = np.zeros((len(transient), len(index)))
    np.add.at(counts, (transitions["from_state"].map(index).to_numpy(dtype=int),
                       transitions["to_state"].map(index).to_numpy(dtype=int)),
              transitions["transitions"].to_numpy(dtype=float))
    out = counts.sum(axis=1, keepdims=True)
    probs = np.divide(counts, out, out=np.zeros_like(counts), where=out > 0)
    q, r = probs[:, : len(transient)], probs[:, index[CONVERSION]]
    conversions = float(transitions.loc[transitions["to_state"] == CONVERSION, "transitions"].sum())
    if conversions == 0:  # nothing to attribute; a removal effect is undefined
        # object dtype even when there is no channel at all, so the merge with the other models still works
        return pd.DataFrame({"channel": pd.Series(channels, dtype=object), "markov": 0.0, "removal_effect": np.nan})
    p_conversion = _conversion_probability(q, r)
    effects = []
    for i in range(1, len(transient)):  # one tiny solve per channel, not per customer
        q_removed, r_removed = q.copy(), r.copy()
        q_removed[i, :], r_removed[i] = 0.0, 0.0
        effects.append(1.0 - _conversion_probability(q_removed, r_removed) / p_conversion)
    effect = np.array(effects)
    return pd.DataFrame({"channel": channels, "markov": conversions * effect / effect.sum(),
                         "removal_effect": effect})


def channel_attribution(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Conversions credited to each channel by each model: DataFrame(channel, first_touch, last_touch, linear,
    markov, removal_effect); every model's column sums to the conversions with a channel path."""
    run_sql(con, "analysis/attribution_touches")
    credit = query_sql(con, "analysis/attribution_credit")
    markov = markov_attribution(query_sql(con, "analysis/attribution_transitions"))
    out = credit.merge(markov, on="channel", how="left")
    return out.sort_values(["markov", "channel"], ascending=[False, True], kind="stable").reset_index(drop=True)
