"""The core layer: identities, stage-mapped and sessionized events, sessions, journeys (sql/core/).

The customer is the unit of reprocessing: each step deletes and recomputes the customers in scope, either
every customer (a full refresh) or those in dirty_customers, with the same SQL. So an incremental night
and a full refresh give the same tables by construction.
"""

from __future__ import annotations

import hashlib
import json

import duckdb

from cjm_analytics.catalog import CUSTOMER_TABLES as _CUSTOMER_TABLES
from cjm_analytics.config import Config, Stage, Touchpoints
from cjm_analytics.sql_steps import run_sql, sql_text


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row else 0


def derivation_fingerprint(config: Config) -> str:
    """What the core tables depend on besides the raw events: a change means a full refresh."""
    settings = {
        # A new version of the tables' columns too: a full refresh recreates them (see clear_scope).
        "core_schema": hashlib.sha256(sql_text("core/schema").encode()).hexdigest(),
        "stages": [s.model_dump() for s in config.stages],
        "goal": config.goal,
        "sessions": config.sessions.model_dump(),
        "touchpoints": config.touchpoints.model_dump(),
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def _state(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return {str(k): str(v) for k, v in con.execute("SELECT key, value FROM pipeline_state").fetchall()}


def _set_state(con: duckdb.DuckDBPyConnection, key: str, value: str | None) -> None:
    con.execute("DELETE FROM pipeline_state WHERE key = $key", {"key": key})
    if value is not None:
        con.execute("INSERT INTO pipeline_state VALUES ($key, $value)", {"key": key, "value": value})


def needs_full_refresh(con: duckdb.DuckDBPyConnection, fingerprint: str, requested: bool) -> bool:
    """Full when asked, when the config changed since the last build, or when a refresh did not finish."""
    state = _state(con)
    return requested or state.get("full_refresh") == "pending" or state.get("built_with") != fingerprint


def _scope(con: duckdb.DuckDBPyConnection, full: bool) -> None:
    run_sql(con, "core/scope_full" if full else "core/scope_dirty")


def clear_scope(con: duckdb.DuckDBPyConnection, table: str, full: bool) -> None:
    """Remove the rows of the customers in scope: all of them (the table is recreated), or the dirty ones."""
    if table not in _CUSTOMER_TABLES:
        raise ValueError(table)
    if full:  # recreated rather than emptied: cheaper, and a warehouse from an older version gets new columns
        con.execute(f"DROP TABLE IF EXISTS {table}")
        run_sql(con, "core/schema")
    else:
        con.execute(f"DELETE FROM {table} WHERE customer_key IN (SELECT customer_key FROM dirty_customers)")


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


def stitch_identities(con: duckdb.DuckDBPyConnection, full: bool) -> dict[str, int]:
    """Re-stitch the anonymous ids with new or removed rows; mark the customers they touch as dirty."""
    if full:  # remembered until the marts commit, so a crash half-way resumes as a full refresh
        _set_state(con, "full_refresh", "pending")
    _scope(con, full)
    if full:
        clear_scope(con, "identities", full)
    else:
        con.execute("DELETE FROM identities WHERE anonymous_id IN (SELECT anonymous_id FROM scope_anonymous_ids)")
    run_sql(con, "core/identities")
    if not full:
        run_sql(con, "core/dirty_customers")
    return {
        "full_refresh": int(full),
        "stitched_anonymous_ids": _count(con, "SELECT count(*) FROM identities"),
        "dirty_customers": -1 if full else _count(con, "SELECT count(*) FROM dirty_customers"),
    }


def sessionize(
    con: duckdb.DuckDBPyConnection,
    stages: list[Stage],
    inactivity_minutes: float,
    touchpoints: Touchpoints | None = None,
    full: bool = True,
) -> dict[str, int]:
    """Events with customer_key, stage, touchpoint and session; and the sessions table."""
    touchpoints = touchpoints or Touchpoints()
    write_stage_rules(con, stages)
    write_touchpoint_rules(con, touchpoints)
    _scope(con, full)
    clear_scope(con, "events", full)
    run_sql(
        con,
        "core/events",
        inactivity_us=round(inactivity_minutes * 60_000_000),
        touchpoint_field=touchpoints.field,
        touchpoint_path="$." + json.dumps(touchpoints.field),
    )
    clear_scope(con, "sessions", full)
    run_sql(con, "core/sessions")
    # A customer's first event is event_number 1: counting those avoids a distinct count of 10M strings.
    row = con.execute("SELECT count(*), count(stage), count(*) FILTER (WHERE event_number = 1) FROM scope_events"
                      ).fetchone()
    events, mapped, customers = row if row else (0, 0, 0)
    sessions = _count(con, "SELECT count(*) FROM sessions")
    return {"events_recomputed": events, "mapped_events": mapped, "customers_recomputed": customers,
            "sessions": sessions}


def build_journeys(con: duckdb.DuckDBPyConnection, goal_order: int, full: bool = True) -> dict[str, int]:
    """Collapsed stage paths (journey_steps), one journeys row per journey customer, and the per-customer
    inputs of the nightly analyses (stage_entries, channel_touches): the marts then aggregate small tables."""
    _scope(con, full)
    clear_scope(con, "journey_steps", full)
    run_sql(con, "core/journey_steps")
    clear_scope(con, "journeys", full)
    run_sql(con, "core/journeys", goal_order=goal_order)
    clear_scope(con, "stage_entries", full)
    run_sql(con, "core/stage_entries")
    clear_scope(con, "channel_touches", full)
    run_sql(con, "core/channel_touches")
    row = con.execute("SELECT count(*), count(*) FILTER (WHERE converted) FROM journeys").fetchone()
    journeys, converted = row if row else (0, 0)
    return {"journeys": journeys, "converted": converted}


def finish_core(con: duckdb.DuckDBPyConnection, fingerprint: str) -> None:
    """The core tables now reflect every raw row under this config: forget what was pending."""
    con.execute("DELETE FROM pending_changes")
    con.execute("DELETE FROM dirty_customers")
    _set_state(con, "built_with", fingerprint)
    _set_state(con, "full_refresh", None)
