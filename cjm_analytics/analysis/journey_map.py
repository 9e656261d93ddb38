"""The journey map: per persona and stage, who reaches it and moves on, how long they stay, what they do, how
they feel, where the lost ones leave, the moments of truth and the opportunities (the journey_map mart).

Definitions of every measure: docs/marts.md ("journey_map"). The counting is SQL (sql/marts/journey_map*.sql);
here the personas are chosen, and the moments of truth and persona comparisons are asked of the conversion
drivers (analysis.drivers) and the segment comparison (analysis.segments.compare_segments).
"""

from __future__ import annotations

from typing import Any, cast

import duckdb
import numpy as np
import pandas as pd

from cjm_analytics.analysis import stats
from cjm_analytics.analysis.drivers import DRIVER_COLUMNS, DRIVER_TABLES, driver_statistics
from cjm_analytics.analysis.emotion import survey_params
from cjm_analytics.analysis.segments import SEGMENT_TABLE, compare_segments, segment_table
from cjm_analytics.config import Config
from cjm_analytics.errors import AnalysisError
from cjm_analytics.sql_steps import query_sql, run_sql

ALL_TYPE = "all"
ALL_PERSONA = "all customers"
TOP_N = 5  # top touchpoints and channels per stage
MOMENTS_PER_STAGE = 3
# The persona types that are a function of the first-touch channel: their top touchpoints, channel mix and
# conversion drivers are read from the summaries the aggregate step maintains per dirty customer
# (cjm_analytics.marts.maintain_summaries); the others' are counted over their customers' rows.
SUMMARIZED_TYPES = (ALL_TYPE, "first_touch_channel")


def build_personas(con: duckdb.DuckDBPyConnection, cfg: Config) -> None:
    """Fill the temp table jm_personas(persona_type, persona, customer_key): everyone in ('all', 'all customers'),
    then each configured persona type."""
    con.execute("DROP TABLE IF EXISTS jm_personas")
    run_sql(con, "analysis/segments_none")
    run_sql(con, "marts/journey_map_personas", persona_type=ALL_TYPE, max_personas=1, segments=SEGMENT_TABLE)
    con.execute("UPDATE jm_personas SET persona = $p", {"p": ALL_PERSONA})
    for persona_type in cfg.journey_map.personas:
        segments = SEGMENT_TABLE
        if persona_type == "first_touch_channel":  # the default: journeys.first_channel, not a scan of every event
            run_sql(con, "marts/journey_map_first_touch")
        else:
            try:
                segments = segment_table(con, persona_type)
            except AnalysisError:  # no event has the property: every customer is "(none)", which the page shows
                run_sql(con, "analysis/segments_none")
        run_sql(con, "marts/journey_map_personas", persona_type=persona_type,
                max_personas=cfg.journey_map.max_personas, segments=segments)


def difference_interval(with_moved: Any, with_n: Any, without_moved: Any, without_n: Any) -> tuple[Any, Any]:
    """95% interval of with_moved/with_n - without_moved/without_n by Newcombe's hybrid score method (from the
    two Wilson intervals), elementwise."""
    p1, p2 = with_moved / with_n, without_moved / without_n
    l1, u1 = stats.wilson_interval(with_moved, with_n)
    l2, u2 = stats.wilson_interval(without_moved, without_n)
    d = p1 - p2
    return d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def stage_driver_counts(con: duckdb.DuckDBPyConnection, stage_order: int, touchpoints: list[str],
                        min_support: int) -> pd.DataFrame:
    """The 2x2 counts of the touchpoint drivers of reaching the stage after stage_order (analysis.drivers'
    population, no-leakage history and candidates), per persona, for the stage's own touchpoints. For all
    customers they are the counts of conversion_drivers(kinds=("touchpoint",)) for these touchpoints."""
    tables = {"population": DRIVER_TABLES["population"], "flags": DRIVER_TABLES["flags"]}
    run_sql(con, "analysis/drivers_population", from_order=stage_order, to_order=stage_order + 1)
    # The candidates from the per-customer touchpoint_firsts, not a scan of every event (collect_candidates).
    run_sql(con, "marts/journey_map_driver_flags", touchpoints=touchpoints, population=tables["population"])
    # One query for every persona: a customer's candidates do not depend on who else is in the population.
    return query_sql(con, "marts/journey_map_driver_counts", touchpoints=touchpoints, min_support=min_support,
                     **tables)


def summary_driver_counts(con: duckdb.DuckDBPyConnection, stage_order: int, touchpoints: list[str],
                          min_support: int) -> pd.DataFrame:
    """stage_driver_counts for the personas of SUMMARIZED_TYPES, summed from the maintained summaries over the
    first-touch channels in each persona (jm_segment_personas) instead of counted over every customer."""
    return query_sql(con, "marts/journey_map_driver_summary_counts", from_order=stage_order,
                     touchpoints=touchpoints, min_support=min_support)


Row = dict[str, Any]


def _base(head: Row) -> Row:
    return {k: head[k] for k in ("persona_type", "persona", "persona_size", "too_small", "stage", "stage_order")}


def moment_rows(head: Row, drivers: pd.DataFrame, lost: int) -> list[Row]:
    """A stage's moments of truth (its MOMENTS_PER_STAGE strongest touchpoints) and its opportunity (unranked)."""
    if drivers.empty:
        return []
    # Strongest first: significant ones, then by the end of the odds ratio's interval nearest 1 (on the log
    # scale), so that an effect seen in few customers ranks below an equal one seen in many.
    log_low, log_high = np.log(drivers["ci_low"]), np.log(drivers["ci_high"])
    sure = np.where(log_low > 0, log_low, np.where(log_high < 0, -log_high, 0.0))
    ranked = drivers.assign(sure=sure, strength=np.abs(np.log(drivers["odds_ratio"]))).sort_values(
        ["significant", "sure", "strength", "candidate"], ascending=[False, False, False, True], kind="stable")
    out = []
    for rank, d in enumerate(ranked.head(MOMENTS_PER_STAGE).to_dict("records"), 1):
        out.append({**_base(head), "measure": "moment_of_truth", "rank": rank, "label": d["value"],
                    "value": d["odds_ratio"], "ci_low": d["ci_low"], "ci_high": d["ci_high"],
                    "customers": d["population"], "hits": d["customers_with"], "rate_with": d["rate_with"],
                    "rate_without": d["rate_without"], "p_value": d["p_value"], "q_value": d["q_value"],
                    "significant": bool(d["significant"])})
    helping = ranked[ranked["significant"] & (ranked["odds_ratio"] > 1)]
    if helping.empty or not lost:
        return out
    best = helping.iloc[0]  # the strongest by `sure`
    low, high = difference_interval(best["converted_with"], best["customers_with"], best["converted_without"],
                                    best["customers_without"])
    out.append({**_base(head), "measure": "opportunity", "label": best["value"],
                "value": lost * (best["rate_with"] - best["rate_without"]),
                "ci_low": lost * max(float(low[0]), 0.0), "ci_high": lost * float(high[0]), "customers": lost,
                "hits": best["customers_with"], "rate_with": best["rate_with"], "rate_without": best["rate_without"],
                "p_value": best["p_value"], "q_value": best["q_value"], "significant": True})
    return out


def driver_rows(con: duckdb.DuckDBPyConnection, map_rows: pd.DataFrame, goal_order: int,
                min_support: int) -> list[Row]:
    """moment_of_truth and opportunity rows, per persona large enough to read and stage before the goal."""
    # A stage's candidates: the touchpoints some customer had there before moving on (the maintained summary of
    # stage_touchpoints, not a scan of it).
    placed = con.execute("SELECT DISTINCT stage_order, touchpoint FROM summary_stage_touchpoints "
                         "WHERE before_moving_on > 0 ORDER BY ALL").fetchall()
    touchpoints: dict[int, list[str]] = {}
    for order, touchpoint in placed:
        touchpoints.setdefault(int(order), []).append(str(touchpoint))
    # A candidate needs min_support customers with it and as many without: smaller stages have none to test.
    heads = map_rows[(map_rows["measure"] == "lost") & ~map_rows["too_small"].astype(bool)
                     & (map_rows["customers"] >= 2 * min_support)]
    out: list[Row] = []
    others = set(heads["persona_type"]) - set(SUMMARIZED_TYPES)  # personas of event properties: counted here
    # Only stages with a persona large enough to test cost a query (a small warehouse costs none).
    for order in sorted(o for o in touchpoints if o < goal_order and (heads["stage_order"] == o).any()):
        counts = summary_driver_counts(con, order, touchpoints[order], min_support)
        if others:
            counted = stage_driver_counts(con, order, touchpoints[order], min_support)
            counts = pd.concat([counts, counted[counted["persona_type"].isin(others)]], ignore_index=True)
        per_persona = dict(iter(counts.groupby(["persona_type", "persona"])))
        for head in cast(list[Row], heads[heads["stage_order"] == order].to_dict("records")):
            found = per_persona.get((head["persona_type"], head["persona"]))
            if found is not None:
                # The Benjamini–Hochberg family: the stage's touchpoints tested in this persona.
                drivers = driver_statistics(found.reset_index(drop=True))[DRIVER_COLUMNS]
                out += moment_rows(head, drivers, int(head["value"]))
    # Opportunities ranked within a persona by the low end of their interval: a big lift seen in few customers
    # is a weak promise.
    chances = sorted((r for r in out if r["measure"] == "opportunity"),
                     key=lambda r: (r["persona_type"], r["persona"], -r["ci_low"], r["stage_order"]))
    rank: dict[tuple[str, str], int] = {}
    for r in chances:
        key = (r["persona_type"], r["persona"])
        rank[key] = r["rank"] = rank.get(key, 0) + 1
    return out


def persona_rows(map_rows: pd.DataFrame, goal: str, min_customers: int) -> list[Row]:
    """persona_conversion: each persona's share reaching the goal, and whether it differs from the rest of its
    persona type (analysis.segments.compare_segments: BH over every persona tested)."""
    reached = map_rows[(map_rows["measure"] == "reached") & (map_rows["stage"] == goal)
                       & (map_rows["persona_type"] != ALL_TYPE)]
    if reached.empty:
        return []
    frame = pd.DataFrame({"segment": reached["persona"], "persona_type": reached["persona_type"],
                          "reached": reached["persona_size"].astype(int), "converted": reached["value"].astype(int)})
    compared = compare_segments(frame, min_size=min_customers, within="persona_type")
    out = []
    for head, c in zip(cast(list[Row], reached.to_dict("records")), compared.to_dict("records"), strict=True):
        out.append({**_base(head), "measure": "persona_conversion", "value": c["rate"], "ci_low": c["ci_low"],
                    "ci_high": c["ci_high"], "customers": c["reached"], "hits": c["converted"],
                    "rate_with": c["rate"], "rate_without": c["rest_rate"], "p_value": c["p_value"],
                    "q_value": c["q_value"], "significant": bool(c["differs"])})
    return out


def build_journey_map(con: duckdb.DuckDBPyConnection, cfg: Config) -> None:
    """(Re)build the journey_map mart from the core tables."""
    build_personas(con, cfg)
    surveys = survey_params(cfg)
    run_sql(con, "analysis/emotion_survey_responses")  # defines the cjm_survey_responses macro
    run_sql(con, "marts/journey_map_prepare")
    run_sql(con, "marts/journey_map_segment_personas", persona_types=list(SUMMARIZED_TYPES))
    run_sql(con, "marts/journey_map", goal_order=cfg.goal_order, surveys=surveys, has_surveys=bool(surveys),
            support_events=list(cfg.analysis.support_events), has_support=bool(cfg.analysis.support_events),
            top_n=TOP_N, min_customers=cfg.journey_map.min_customers, summarized_types=list(SUMMARIZED_TYPES),
            has_counted=bool(set(cfg.journey_map.personas) - set(SUMMARIZED_TYPES)))
    map_rows = con.execute("SELECT * FROM journey_map").fetchdf()
    # Whether the inputs of emotion and support were configured: without them those rows are absent, which a
    # reader must tell from "configured, no answers at this stage" (never shown as 0).
    inputs = [{"persona_type": ALL_TYPE, "persona": ALL_PERSONA, "measure": f"{name}_configured",
               "value": float(configured)}
              for name, configured in (("surveys", bool(surveys)), ("support", bool(cfg.analysis.support_events)))]
    min_customers = cfg.journey_map.min_customers
    extra = pd.DataFrame(driver_rows(con, map_rows, cfg.goal_order, min_customers)
                         + persona_rows(map_rows, cfg.goal, min_customers) + inputs,
                         columns=list(map_rows.columns))
    if not extra.empty:
        con.register("jm_extra", extra)
        con.execute("INSERT INTO journey_map BY NAME SELECT * FROM jm_extra")
        con.unregister("jm_extra")
    for temp in ("jm_personas", "jm_customers", "jm_segment_personas", "cjm_driver_population", "cjm_driver_history",
                 "cjm_driver_flags"):
        con.execute(f"DROP TABLE IF EXISTS {temp}")
