"""The core layer: identities, stage-mapped and sessionized events, sessions, journeys (sql/core/)."""

from __future__ import annotations

import json

import duckdb

from cjm_analytics.config import Stage, Touchpoints
from cjm_analytics.sql_steps import run_sql


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def write_stage_rules(con: duckdb.DuckDBPyConnection, stages: list[Stage]) -> None:
    """The configured stages as tables stage_list and stage_rules (rule order = config order)."""
    con.execute("CREATE OR REPLACE TABLE stage_list (stage VARCHAR NOT NULL, stage_order INTEGER NOT NULL)")
    con.execute(
        "CREATE OR REPLACE TABLE stage_rules (rule_order INTEGER, stage VARCHAR, stage_order INTEGER, "
        "pattern VARCHAR, conditions JSON)"
    )
    con.executemany("INSERT INTO stage_list VALUES (?, ?)", [(s.name, i) for i, s in enumerate(stages, 1)])
    rules = [
        (stage_order, rule.name, json.dumps(rule.where) if rule.where else None, stage.name)
        for stage_order, stage in enumerate(stages, 1)
        for rule in stage.events
    ]
    con.executemany(
        "INSERT INTO stage_rules VALUES (?, ?, ?, ?, ?)",
        [(i, stage, order, pattern, cond) for i, (order, pattern, cond, stage) in enumerate(rules, 1)],
    )


def write_touchpoint_rules(con: duckdb.DuckDBPyConnection, touchpoints: Touchpoints) -> None:
    """The touchpoint cleaning rules as table touchpoint_rules (rule order = config order)."""
    con.execute("CREATE OR REPLACE TABLE touchpoint_rules (rule_order INTEGER, pattern VARCHAR, alias VARCHAR)")
    rules = [(i, rule.pattern, rule.alias) for i, rule in enumerate(touchpoints.clean, 1)]
    if rules:  # executemany refuses an empty list
        con.executemany("INSERT INTO touchpoint_rules VALUES (?, ?, ?)", rules)


def stitch_identities(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Map each anonymous_id to the last customer_id seen together with it."""
    run_sql(con, "core/identities")
    return {"stitched_anonymous_ids": _count(con, "identities")}


def sessionize(
    con: duckdb.DuckDBPyConnection,
    stages: list[Stage],
    inactivity_minutes: float,
    touchpoints: Touchpoints | None = None,
) -> dict[str, int]:
    """Events with customer_key, stage, touchpoint and session; and the sessions table."""
    touchpoints = touchpoints or Touchpoints()
    write_stage_rules(con, stages)
    write_touchpoint_rules(con, touchpoints)
    run_sql(
        con,
        "core/events",
        inactivity_us=round(inactivity_minutes * 60_000_000),
        touchpoint_field=touchpoints.field,
        touchpoint_path="$." + json.dumps(touchpoints.field),
    )
    run_sql(con, "core/sessions")
    row = con.execute(
        "SELECT count(*), count(stage), count(DISTINCT customer_key) FROM events"
    ).fetchone()
    events, mapped, customers = row if row else (0, 0, 0)
    return {"events": events, "mapped_events": mapped, "customers": customers, "sessions": _count(con, "sessions")}


def build_journeys(con: duckdb.DuckDBPyConnection, goal_order: int) -> dict[str, int]:
    """Collapsed stage paths (journey_steps) and one journeys row per journey customer."""
    run_sql(con, "core/journey_steps")
    run_sql(con, "core/journeys", goal_order=goal_order)
    row = con.execute("SELECT count(*), count(*) FILTER (WHERE converted) FROM journeys").fetchone()
    journeys, converted = row if row else (0, 0)
    return {"journeys": journeys, "converted": converted}
