"""The core layer: identities, stage-mapped and sessionized events, sessions, journeys (sql/core/).

The customer is the unit of reprocessing: each step deletes and recomputes the customers in scope, either
every customer (a full refresh) or those in dirty_customers, with the same SQL. So an incremental night
and a full refresh give the same tables by construction.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator

import duckdb

from cjm_analytics.catalog import CUSTOMER_TABLES as _CUSTOMER_TABLES
from cjm_analytics.config import Config, Engine, Stage, Touchpoints
from cjm_analytics.sql_steps import run_sql, sql_text
from cjm_analytics.warehouse import memory_limit_bytes, transaction

# The config's rules as tables (sql/core/schema.sql), written by write_rules.
RULE_TABLES = ("stage_list", "stage_rules", "touchpoint_rules")


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
        "sessions": config.sessions.fingerprint(),
        "touchpoints": config.touchpoints.model_dump(),
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def _state(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return {str(k): str(v) for k, v in con.execute("SELECT key, value FROM pipeline_state").fetchall()}


def _set_state(con: duckdb.DuckDBPyConnection, key: str, value: str | None) -> None:
    con.execute("DELETE FROM pipeline_state WHERE key = $key", {"key": key})
    if value is not None:
        con.execute("INSERT INTO pipeline_state VALUES ($key, $value)", {"key": key, "value": value})


def decide_refresh(con: duckdb.DuckDBPyConnection, fingerprint: str, requested: bool) -> bool:
    """Whether this run recomputes every customer: when asked, when the config changed since the last build, or
    when a full refresh did not finish. Decided once per run, by its first core step; a full run is recorded as
    pending until its marts commit (finish_core), which is how the later steps read the decision (decided_full)
    and how a run killed half-way resumes as a full refresh."""
    state = _state(con)
    full = requested or state.get("full_refresh") == "pending" or state.get("built_with") != fingerprint
    if full:
        _set_state(con, "full_refresh", "pending")
    return full


def decided_full(con: duckdb.DuckDBPyConnection) -> bool:
    """This run's decision (decide_refresh), for the steps after the one that made it."""
    return _state(con).get("full_refresh") == "pending"


def scope(con: duckdb.DuckDBPyConnection, full: bool) -> None:
    """The scope_* views of the customers in scope (every customer, or the dirty ones), one bucket of them."""
    run_sql(con, "core/scope_bucket")
    run_sql(con, "core/scope_full" if full else "core/scope_dirty")


# What a bucket costs in memory per event, within the budget: sessionize's window sorts (the largest) and the
# pages DuckDB keeps. Measured at 10M events: 8 buckets of 1.25M events ran within a 700MB limit without
# spilling (the process peaked at 1.01 GB); the default budget is below that (docs/performance.md).
BYTES_PER_EVENT = 500
DEFAULT_MEMORY_BUDGET = Engine().memory_budget_bytes  # engine.memory_budget's default, said in config.py


def bucket_count(events: int, memory_budget: int) -> int:
    """How many buckets the customers in scope are split into so that a bucket's events fit the budget (bytes):
    ceil(events * BYTES_PER_EVENT / memory_budget), at least 1. A night with few dirty customers is one bucket."""
    return max(1, math.ceil(events * BYTES_PER_EVENT / memory_budget))


def bucket_bounds(bucket: int, buckets: int) -> tuple[int, int]:
    """The range of hash(customer_key) (UBIGINT) that is bucket `bucket` of `buckets`, bounds included: the
    buckets split 0 .. 2**64 - 1 into consecutive ranges of (nearly) equal width."""
    return (bucket << 64) // buckets, ((bucket + 1) << 64) // buckets - 1


def in_buckets(con: duckdb.DuckDBPyConnection, buckets: int) -> Iterator[int]:
    """Point the scope_* views at each bucket in turn (a range of hash(customer_key), sql/core/scope_bucket.sql);
    after the last, at every customer in scope again. (A step that fails half-way rolls back and closes its
    connection, and the temporary macro with it.)"""
    for bucket in range(buckets):
        low, high = bucket_bounds(bucket, buckets)
        # Formatted, not bound: a macro's body takes no parameter, and both are ints. Typed, so that the
        # comparison is the column's own and DuckDB evaluates it in the scan.
        con.execute(f"CREATE OR REPLACE TEMP MACRO cjm_in_scope_bucket(customer_hash) AS "
                    f"customer_hash BETWEEN CAST({int(low)} AS UBIGINT) AND CAST({int(high)} AS UBIGINT)")
        yield bucket
    con.execute("CREATE OR REPLACE TEMP MACRO cjm_in_scope_bucket(customer_hash) AS true")


def clear_scope(con: duckdb.DuckDBPyConnection, table: str, full: bool) -> None:
    """Make room for the customers in scope. On a full refresh the table is recreated (cheaper than emptying it,
    and a warehouse from an older version gets new columns). On a night there is nothing left to do: the step
    deleted the dirty customers' rows before its transaction (clear_dirty, called by nightly.run_step); deleting
    them in the step's transaction held memory in proportion to the table until the step committed (1.1 GB of
    `events` at 100M events), and scanning again for rows already gone would only cost time."""
    if table not in _CUSTOMER_TABLES:
        raise ValueError(table)
    if full:
        con.execute(f"DROP TABLE IF EXISTS {table}")
        run_sql(con, "core/schema")


# What deleting rows holds in memory until its transaction commits and a checkpoint writes the deletes out: DuckDB
# keeps 16 KiB of version info for every 2048-row vector a delete touches, however few of its rows go. A night's
# dirty customers are spread over every vector of a table, so their delete holds about 8 bytes per row of the whole
# table, 12 with its undo log (measured: 303 MB for a quarter of 100M events). Per row, with room to spare.
DELETE_BYTES_PER_ROW = 16


def clear_dirty(con: duckdb.DuckDBPyConnection, tables: tuple[str, ...], memory_budget: int) -> int:
    """Delete the dirty customers' rows of `tables` ahead of the step that recomputes them: table by table, range
    by range of hash(customer_key), each range's delete committed and checkpointed before the next, the ranges of
    a table as many as what its delete holds (DELETE_BYTES_PER_ROW per row of it) needs to fit memory_budget.
    Called outside a transaction. A run that dies between two ranges leaves those customers dirty
    (dirty_customers is kept until the marts commit), and the next run deletes the rest and recomputes them all.
    Returns the number of ranges (of transactions)."""
    for table in tables:
        if table not in _CUSTOMER_TABLES:
            raise ValueError(table)
    if not _count(con, "SELECT count(*) FROM dirty_customers"):
        return 0
    # What a delete holds cannot spill: a duckdb.memory_limit below the budget bounds the ranges instead.
    room = min(memory_budget, memory_limit_bytes(con) or memory_budget)
    done = 0
    for table in tables:
        # Ranges of its own: a range's delete then reads that table alone (a table without the stored hash
        # whole, in every range), and a small table is one range.
        ranges = math.ceil(_count(con, f"SELECT count(*) FROM {table}") * DELETE_BYTES_PER_ROW / room)
        # Where the table stores the hash, a range skips the other ranges' row groups (sql/core/schema.sql).
        key = "customer_hash" if table in HASHED_TABLES else "hash(customer_key)"
        for part in range(ranges):
            low, high = bucket_bounds(part, ranges)
            with transaction(con):
                # Formatted, not bound, as in in_buckets: ints, compared in the scan.
                con.execute(f"DELETE FROM {table} WHERE {key} BETWEEN CAST({int(low)} AS UBIGINT) "
                            f"AND CAST({int(high)} AS UBIGINT) "
                            "AND customer_key IN (SELECT customer_key FROM dirty_customers)")
            con.execute("CHECKPOINT")  # only a checkpoint lets go of what the delete held
        done += ranges
    return done


def write_rules(con: duckdb.DuckDBPyConnection, stages: list[Stage], touchpoints: Touchpoints) -> None:
    """The config's stages and touchpoint cleaning rules as the rows of stage_list, stage_rules and
    touchpoint_rules (sql/core/schema.sql); rule order = config order."""
    for table in RULE_TABLES:
        con.execute(f"DELETE FROM {table}")
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
    cleaning = [(i, rule.pattern, rule.alias) for i, rule in enumerate(touchpoints.clean, 1)]
    if cleaning:  # executemany refuses an empty list
        con.executemany("INSERT INTO touchpoint_rules VALUES (?, ?, ?)", cleaning)


def stitch_identities(con: duckdb.DuckDBPyConnection, full: bool) -> dict[str, int]:
    """Re-stitch the anonymous ids with new or removed rows; mark the customers they touch as dirty."""
    scope(con, full)
    if full:
        clear_scope(con, "identities", full)
    else:
        con.execute("DELETE FROM identities WHERE anonymous_id IN (SELECT anonymous_id FROM scope_anonymous_ids)")
    run_sql(con, "core/identities")
    if not full:
        run_sql(con, "core/dirty_customers")
        run_sql(con, "core/retired_tables")
        run_sql(con, "core/retire_dirty")  # what the marts' summaries counted of them, before it is replaced
    return {
        "full_refresh": int(full),
        "stitched_anonymous_ids": _count(con, "SELECT count(*) FROM identities"),
        "dirty_customers": -1 if full else _count(con, "SELECT count(*) FROM dirty_customers"),
    }


# The per-customer tables that store customer_hash (the others are filtered on the hash of their key).
HASHED_TABLES = ("events", "sessions", "journey_steps")
# The per-customer tables each step replaces the rows of, for the customers in scope.
SESSIONIZE_TABLES = ("events", "sessions")
JOURNEY_TABLES = ("journey_steps", "journeys", "stage_entries", "stage_touchpoints", "stage_channels",
                  "touchpoint_firsts", "channel_touches")


def sessionize(
    con: duckdb.DuckDBPyConnection, inactivity_minutes: float | None, touchpoint_field: str = "event_name",
    full: bool = True, session_field: str | None = None, memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> dict[str, int]:
    """Events with customer_key, stage, touchpoint and session; and the sessions table. Reads the rule tables
    (write_rules). With session_field (the tracker's session id, a property), a session starts where it changes
    (sessions.from); with inactivity_minutes None (sessions: off), a customer's events are one session. Bucket by
    bucket of customers, each within memory_budget (bucket_count). On a night, the dirty customers' rows of
    SESSIONIZE_TABLES are deleted first (clear_dirty, outside the transaction)."""
    scope(con, full)
    if not full:
        run_sql(con, "core/scope_dirty_raw_cached")
    # A full refresh reads every raw row: its count is the table's, without evaluating the scope.
    buckets = bucket_count(_count(con, f"SELECT count(*) FROM {'raw_events' if full else 'scope_raw_events'}"),
                           memory_budget)
    for table in SESSIONIZE_TABLES:
        clear_scope(con, table, full)
    run_sql(
        con,
        "core/keyed_events",
        touchpoint_field=touchpoint_field,
        touchpoint_path="$." + json.dumps(touchpoint_field),
        session_path=None if session_field is None else "$." + json.dumps(session_field),
    )
    for _ in in_buckets(con, buckets):
        run_sql(con, "core/events",
                inactivity_us=None if inactivity_minutes is None else round(inactivity_minutes * 60_000_000))
        run_sql(con, "core/sessions")
    con.execute("DROP TABLE keyed_events")
    if not full:  # the view over raw_events again, then the copy goes
        scope(con, full)
        con.execute("DROP TABLE dirty_raw_events")
    # A customer's first event is event_number 1: counting those avoids a distinct count of 10M strings.
    row = con.execute("SELECT count(*), count(stage), count(*) FILTER (WHERE event_number = 1) FROM scope_events"
                      ).fetchone()
    events, mapped, customers = row if row else (0, 0, 0)
    sessions = _count(con, "SELECT count(*) FROM sessions")
    return {"events_recomputed": events, "mapped_events": mapped, "customers_recomputed": customers,
            "sessions": sessions, "buckets": buckets}


def build_journeys(
    con: duckdb.DuckDBPyConnection, goal_order: int, full: bool = True, memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> dict[str, int]:
    """Collapsed stage paths (journey_steps), one journeys row per journey customer, and the per-customer
    inputs of the nightly analyses (stage_entries, stage_touchpoints, stage_channels, touchpoint_firsts,
    channel_touches): the marts then aggregate small tables, and a night recomputes only its dirty customers'
    rows of them.
    Bucket by bucket of customers, as sessionize; on a night, after clear_dirty on JOURNEY_TABLES."""
    scope(con, full)
    if not full:
        run_sql(con, "core/scope_dirty_cached")
    buckets = bucket_count(_count(con, f"SELECT count(*) FROM {'events' if full else 'scope_events'}"), memory_budget)
    for table in JOURNEY_TABLES:
        clear_scope(con, table, full)
    for _ in in_buckets(con, buckets):
        run_sql(con, "core/journey_steps")
        run_sql(con, "core/journeys", goal_order=goal_order)
        run_sql(con, "core/stage_entries")
        run_sql(con, "core/stage_placements")
        run_sql(con, "core/channel_touches")
    if not full:  # the views over the tables again, then the copies go
        scope(con, full)
        con.execute("DROP TABLE dirty_events")
        con.execute("DROP TABLE dirty_sessions")
    row = con.execute("SELECT count(*), count(*) FILTER (WHERE converted) FROM journeys").fetchone()
    journeys, converted = row if row else (0, 0)
    return {"journeys": journeys, "converted": converted, "buckets": buckets}


def finish_core(con: duckdb.DuckDBPyConnection, fingerprint: str) -> None:
    """The core tables now reflect every raw row under this config: forget what was pending."""
    con.execute("DELETE FROM pending_changes")
    con.execute("DELETE FROM dirty_customers")
    _set_state(con, "built_with", fingerprint)
    _set_state(con, "full_refresh", None)
