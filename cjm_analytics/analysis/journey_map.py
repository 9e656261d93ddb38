"""The journey map: per persona and stage, who reaches it and moves on, how long they stay, what they do, how
they feel, where the lost ones leave, the moments of truth and the opportunities (the journey_map mart).

Definitions of every measure: docs/marts.md ("journey_map"). The counting is SQL (sql/marts/journey_map*.sql);
here only the personas are chosen and the per-touchpoint tests are run (Fisher's exact test, Benjamini-Hochberg).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd

from cjm_analytics.analysis.emotion import survey_params
from cjm_analytics.analysis.segments import build_segment_table
from cjm_analytics.config import Config
from cjm_analytics.errors import AnalysisError
from cjm_analytics.sql_steps import query_sql, run_sql

ALL_TYPE = "all"
ALL_PERSONA = "all customers"
TOP_N = 5  # top touchpoints and channels per stage
MOMENTS_PER_STAGE = 3
# A touchpoint is tested only when at least this many customers at the stage had it and did not have it: below
# that, no 2x2 table can reach significance after correction, and its rate is noise.
MIN_EXPOSED = 5
ALPHA = 0.05
Z = 1.959964


def build_personas(con: duckdb.DuckDBPyConnection, cfg: Config) -> None:
    """Fill the temp table jm_personas(persona_type, persona, customer_key): everyone in ('all', 'all customers'),
    then each configured persona type."""
    con.execute("DROP TABLE IF EXISTS jm_personas")
    run_sql(con, "analysis/segments_none")
    run_sql(con, "marts/journey_map_personas", persona_type=ALL_TYPE, max_personas=1)
    con.execute("UPDATE jm_personas SET persona = $p", {"p": ALL_PERSONA})
    for persona_type in cfg.journey_map.personas:
        try:
            build_segment_table(con, persona_type)
        except AnalysisError:  # no event has the property: every customer is "(none)", which the page shows
            run_sql(con, "analysis/segments_none")
        run_sql(con, "marts/journey_map_personas", persona_type=persona_type,
                max_personas=cfg.journey_map.max_personas)


def fisher_exact(a: int, b: int, c: int, d: int) -> float:
    """Two-sided p-value of Fisher's exact test of the 2x2 table [[a, b], [c, d]]: the probability, with the
    margins fixed, of a table at most as likely as the observed one."""
    row1, col1, n = a + b, a + c, a + b + c + d

    def log_p(x: int) -> float:
        return (_log_comb(col1, x) + _log_comb(n - col1, row1 - x)) - _log_comb(n, row1)

    observed = log_p(a)
    lo, hi = max(0, row1 + col1 - n), min(row1, col1)
    # The relative tolerance keeps tables exactly as likely as the observed one (floating noise aside).
    total = sum(math.exp(lp) for x in range(lo, hi + 1) if (lp := log_p(x)) <= observed + 1e-7)
    return min(1.0, total)


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def bh_adjust(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (q-values), in the order given."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    q = [0.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, p_values[i] * m / rank)
        q[i] = running
    return q


def wilson(hits: int, n: int) -> tuple[float, float]:
    """95% Wilson score interval of hits / n."""
    p = hits / n
    centre = (p + Z**2 / (2 * n)) / (1 + Z**2 / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2)) / (1 + Z**2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def difference_interval(h1: int, n1: int, h2: int, n2: int) -> tuple[float, float]:
    """95% interval of h1/n1 - h2/n2 by Newcombe's hybrid score method (from the two Wilson intervals)."""
    p1, p2 = h1 / n1, h2 / n2
    (l1, u1), (l2, u2) = wilson(h1, n1), wilson(h2, n2)
    d = p1 - p2
    return d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


@dataclass(frozen=True)
class Driver:
    """One touchpoint tested at one stage of one persona."""

    touchpoint: str
    exposed: int
    exposed_moved: int
    unexposed: int
    unexposed_moved: int
    p_value: float
    q_value: float = 1.0

    @property
    def rate_with(self) -> float:
        return self.exposed_moved / self.exposed

    @property
    def rate_without(self) -> float:
        return self.unexposed_moved / self.unexposed

    @property
    def effect(self) -> float:
        return self.rate_with - self.rate_without

    @property
    def significant(self) -> bool:
        return self.q_value < ALPHA

    @property
    def interval(self) -> tuple[float, float]:
        return difference_interval(self.exposed_moved, self.exposed, self.unexposed_moved, self.unexposed)

    @property
    def sure_effect(self) -> float:
        """The end of the effect's interval nearest zero (0 when the interval spans it): an effect seen in few
        customers ranks below an equal one seen in many."""
        low, high = self.interval
        return low if low > 0 else -high if high < 0 else 0.0


def stage_drivers(exposure: pd.DataFrame) -> list[Driver]:
    """The tested touchpoints of one persona's stage (rows of jm_exposure), with BH q-values over them."""
    tested = []
    for r in exposure.to_dict("records"):
        exposed, moved, n, n_moved = int(r["exposed"]), int(r["exposed_moved"]), int(r["n"]), int(r["n_moved"])
        unexposed, unexposed_moved = n - exposed, n_moved - moved
        if exposed < MIN_EXPOSED or unexposed < MIN_EXPOSED:
            continue
        p = fisher_exact(moved, exposed - moved, unexposed_moved, unexposed - unexposed_moved)
        tested.append(Driver(str(r["touchpoint"]), exposed, moved, unexposed, unexposed_moved, p))
    q = bh_adjust([d.p_value for d in tested])
    return [Driver(d.touchpoint, d.exposed, d.exposed_moved, d.unexposed, d.unexposed_moved, d.p_value, qi)
            for d, qi in zip(tested, q, strict=True)]


Row = dict[str, Any]


def _row(base: Row, measure: str, **values: Any) -> Row:
    return {**base, "measure": measure, **values}


def driver_rows(map_rows: pd.DataFrame, exposure: pd.DataFrame) -> list[Row]:
    """moment_of_truth and opportunity rows, per persona and stage before the goal."""
    heads = {(str(r["persona_type"]), str(r["persona"]), int(r["stage_order"])): r
             for r in map_rows[map_rows["measure"] == "lost"].to_dict("records")}
    out: list[Row] = []
    opportunities: dict[tuple[str, str], list[Row]] = {}
    group_key: Any
    for group_key, group in exposure.groupby(["persona_type", "persona", "stage_order"]):
        key = (str(group_key[0]), str(group_key[1]), int(group_key[2]))
        if key not in heads:
            continue
        head = heads[key]
        base = {"persona_type": key[0], "persona": key[1], "persona_size": head["persona_size"],
                "too_small": head["too_small"], "stage": head["stage"], "stage_order": key[2]}
        drivers = stage_drivers(group)
        # Significant first, then by how much the touchpoint moves the chance of going on.
        ranked = sorted(drivers, key=lambda d: (not d.significant, -abs(d.sure_effect), -abs(d.effect), d.touchpoint))
        for rank, d in enumerate(ranked[:MOMENTS_PER_STAGE], 1):
            low, high = d.interval
            out.append(_row(base, "moment_of_truth", rank=rank, label=d.touchpoint, value=d.effect, ci_low=low,
                            ci_high=high, customers=d.exposed + d.unexposed, hits=d.exposed, rate_with=d.rate_with,
                            rate_without=d.rate_without, p_value=d.p_value, q_value=d.q_value,
                            significant=d.significant))
        helping = [d for d in drivers if d.significant and d.effect > 0]
        if helping:
            best = min(helping, key=lambda d: (-d.sure_effect, d.touchpoint))
            lost = int(head["value"])
            low, high = best.interval
            opportunities.setdefault(key[:2], []).append(
                _row(base, "opportunity", label=best.touchpoint, value=lost * best.effect,
                     ci_low=lost * max(low, 0.0), ci_high=lost * high, customers=lost, hits=best.exposed,
                     rate_with=best.rate_with, rate_without=best.rate_without, p_value=best.p_value,
                     q_value=best.q_value, significant=True))
    for rows in opportunities.values():
        # Ranked by the low end of the interval: a big effect seen in few customers is a weak promise.
        rows.sort(key=lambda r: (-float(r["ci_low"]), int(r["stage_order"])))
        out += [{**r, "rank": i} for i, r in enumerate(rows, 1)]
    return out


def persona_rows(map_rows: pd.DataFrame, goal: str) -> list[Row]:
    """persona_conversion: each persona's share reaching the goal, and whether it differs from the rest of its
    persona type (Fisher's exact test, BH over the personas of the type)."""
    reached = map_rows[(map_rows["measure"] == "reached") & (map_rows["stage"] == goal)]
    out: list[Row] = []
    for _, group in reached[reached["persona_type"] != ALL_TYPE].groupby("persona_type"):
        sizes = group["persona_size"].astype(int)
        converted = group["value"].astype(int)
        total, total_converted = int(sizes.sum()), int(converted.sum())
        tests = []
        for size, conv in zip(sizes, converted, strict=True):
            rest, rest_converted = total - size, total_converted - conv
            p = fisher_exact(conv, size - conv, rest_converted, rest - rest_converted) if rest else 1.0
            tests.append((size, conv, rest, rest_converted, p))
        q = bh_adjust([t[-1] for t in tests])
        for (_, r), (size, conv, rest, rest_converted, p), qi in zip(group.iterrows(), tests, q, strict=True):
            low, high = wilson(conv, size)
            out.append({
                "persona_type": r["persona_type"], "persona": r["persona"], "persona_size": size,
                "too_small": r["too_small"], "stage": r["stage"], "stage_order": r["stage_order"],
                "measure": "persona_conversion", "value": conv / size, "ci_low": low, "ci_high": high,
                "customers": size, "hits": conv, "rate_with": conv / size,
                "rate_without": rest_converted / rest if rest else None, "p_value": p, "q_value": qi,
                "significant": bool(rest) and qi < ALPHA,
            })
    return out


def build_journey_map(con: duckdb.DuckDBPyConnection, cfg: Config) -> None:
    """(Re)build the journey_map mart from the core tables."""
    build_personas(con, cfg)
    surveys = survey_params(cfg)
    run_sql(con, "analysis/emotion_survey_responses")  # defines the cjm_survey_responses macro
    run_sql(con, "marts/journey_map_prepare")
    run_sql(con, "marts/journey_map", goal_order=cfg.goal_order, surveys=surveys, has_surveys=bool(surveys),
            support_events=list(cfg.analysis.support_events), has_support=bool(cfg.analysis.support_events),
            top_n=TOP_N, min_customers=cfg.journey_map.min_customers)
    map_rows = con.execute("SELECT * FROM journey_map").fetchdf()
    exposure = query_sql(con, "marts/journey_map_exposure", goal_order=cfg.goal_order)
    # Whether the inputs of emotion and support were configured: without them those rows are absent, which a
    # reader must tell from "configured, no answers at this stage" (never shown as 0).
    inputs = [{"persona_type": ALL_TYPE, "persona": ALL_PERSONA, "measure": f"{name}_configured",
               "value": float(configured)}
              for name, configured in (("surveys", bool(surveys)), ("support", bool(cfg.analysis.support_events)))]
    extra = pd.DataFrame(driver_rows(map_rows, exposure) + persona_rows(map_rows, cfg.goal) + inputs,
                         columns=list(map_rows.columns))
    if not extra.empty:
        con.register("jm_extra", extra)
        con.execute("INSERT INTO journey_map BY NAME SELECT * FROM jm_extra")
        con.unregister("jm_extra")
    for temp in ("jm_personas", "jm_customers", "jm_stage_moments", "jm_entries", "jm_placed"):
        con.execute(f"DROP TABLE IF EXISTS {temp}")
