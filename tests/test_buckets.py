"""The local engine's buckets (core.bucket_count, core.in_buckets): a run split into several buckets of customers
gives exactly the tables of a run in one, on a full refresh and on incremental nights."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pytest

from cjm_analytics import core, nightly
from cjm_analytics.config import Config, load_config
from cjm_analytics.sql_steps import quote_literal, run_sql
from cjm_analytics.warehouse import memory_limit_bytes
from tests import test_incremental
from tests.conftest import SAMPLE_CONFIG, copy_sample
from tests.fixtures import RUN_STARTED, built_warehouse, make_config, rows, run_steps, write_csv
from tests.test_incremental import HEADER, differences, full_run_copy

# The derived tables of test_incremental (core tables and marts): the raw ones name each copy's own files.
DERIVED = [name for name in test_incremental.COMPARED if name not in ("raw_events", "rejects")]


def buckets_used(cfg: Config) -> list[tuple[str, int]]:
    """The bucket count each core step of the last run logged."""
    return [(step, int(n)) for step, n in rows(
        cfg, "SELECT step, counts->>'buckets' FROM run_log WHERE step IN ('sessionize', 'build_journeys') "
             "AND run_id = (SELECT max_by(run_id, started_at) FROM run_log) ORDER BY started_at")]


def test_bucket_count_follows_the_events_and_the_budget() -> None:
    per_bucket = 700 * 10**6 // core.BYTES_PER_EVENT
    assert core.bucket_count(0, 700 * 10**6) == 1
    assert core.bucket_count(per_bucket, 700 * 10**6) == 1
    assert core.bucket_count(per_bucket + 1, 700 * 10**6) == 2
    assert core.bucket_count(10 * per_bucket, 700 * 10**6) == 10
    assert core.bucket_count(10 * per_bucket, 1400 * 10**6) == 5


def test_the_sample_in_several_buckets_equals_one_bucket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one = load_config(copy_sample(tmp_path / "one") / SAMPLE_CONFIG.name)
    run_steps(one, run_started=RUN_STARTED)
    assert buckets_used(one) == [("sessionize", 1), ("build_journeys", 1)]

    # The sample's ~37k events at 100 kB each: the default budget (600MB) takes 6,000 a bucket.
    monkeypatch.setattr(core, "BYTES_PER_EVENT", 100_000)
    several = load_config(copy_sample(tmp_path / "several") / SAMPLE_CONFIG.name)
    run_steps(several, run_started=RUN_STARTED)
    used = dict(buckets_used(several))
    assert used["sessionize"] >= 4 and used["build_journeys"] >= 4
    monkeypatch.setattr(test_incremental, "COMPARED", DERIVED)
    assert differences(one.warehouse, several.warehouse) == {}


def test_incremental_nights_in_several_buckets_equal_one_full_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "nights"
    first = [f"e{c}-{i},a{c},{'u' + str(c) if c % 2 else ''},product_view,2026-11-01T09:{10 * c + i:02d}:00Z,ads"
             for c in range(6) for i in range(3)]
    # Night 2: anonymous visitors log in (their history moves to the customer), a late event, new customers.
    second = [f"l{c},a{c},u{c},login,2026-11-01T12:0{c}:00Z," for c in range(0, 6, 2)]
    second += ["late,a1,u1,add_to_cart,2026-11-01T09:15:00Z,", *(
        f"n{c},b{c},v{c},order,2026-11-02T10:0{c}:00Z,email" for c in range(4))]
    monkeypatch.setattr(core, "BYTES_PER_EVENT", core.DEFAULT_MEMORY_BUDGET // 3)  # three events a bucket
    monkeypatch.setattr(core, "DELETE_BYTES_PER_ROW", core.DEFAULT_MEMORY_BUDGET // 4)  # and the deletes by 4 rows
    write_csv(root / "web" / "night0.csv", "\n".join([HEADER, *first]))
    cfg = make_config(root)
    run_steps(cfg, run_started=RUN_STARTED)
    assert dict(buckets_used(cfg))["sessionize"] >= 4
    write_csv(root / "web" / "night1.csv", "\n".join([HEADER, *second]))
    run_steps(cfg, run_started=RUN_STARTED)
    night = dict(buckets_used(cfg))
    assert night["sessionize"] >= 2 and rows(cfg, "SELECT count(*) FROM run_log WHERE step = 'stitch_identities' "
                                                   "AND counts->>'full_refresh' = '0'") == [(1,)]
    # The night's deletes ran in ranges, each committed (core.clear_dirty): 18 events and 6 sessions, by 4 rows
    # (5 ranges and 2).
    assert rows(cfg, "SELECT step, CAST(counts->>'delete_ranges' AS INT) FROM run_log WHERE step IN "
                     "('sessionize', 'build_journeys') AND run_id = (SELECT max_by(run_id, started_at) FROM run_log) "
                     "ORDER BY started_at")[0] == ("sessionize", 7)

    monkeypatch.setattr(core, "BYTES_PER_EVENT", 1)  # the full run in one bucket
    full = full_run_copy(cfg)
    assert differences(cfg.warehouse, full) == {}


@pytest.mark.parametrize(("duckdb_section", "during"), [({}, "95.3 MiB"), ({"memory_limit": "2GB"}, "1.8 GiB")])
def test_the_load_the_core_steps_and_the_marts_run_within_the_budget_unless_a_memory_limit_is_set(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, duckdb_section: dict[str, str], during: str) -> None:
    seen: dict[str, str] = {}

    def spy(name: str, step: Any) -> Any:
        def wrapped(con: Any, *args: Any, **kwargs: Any) -> Any:
            row = con.execute("SELECT current_setting('memory_limit')").fetchone()
            seen[name] = row[0]
            return step(con, *args, **kwargs)
        return wrapped

    for name in ("load_source", "stitch_identities", "sessionize", "build_journeys", "build_marts"):
        monkeypatch.setattr(nightly, name, spy(name, getattr(nightly, name)))
    built_warehouse(tmp_path, "\n".join([HEADER, "e1,a1,u1,order,2026-11-01T09:00:00Z,ads"]),
                    engine={"memory_budget": "100MB"}, duckdb=duckdb_section)
    assert seen == {"load_source": during, "stitch_identities": during, "sessionize": during,
                    "build_journeys": during, "build_marts": during}


def test_the_load_checkpoints_its_batch_within_the_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Left to the connection's close, after the limit is reset, the checkpoint of a 10M-row batch took the load's
    # peak from 1.1 to 2.2 GB (docs/performance.md, "Within the budget").
    limits: list[str] = []
    opened = nightly.open_warehouse

    class Spy:
        def __init__(self, con: Any) -> None:
            self._con = con

        def __getattr__(self, name: str) -> Any:
            return getattr(self._con, name)

        def execute(self, sql: Any, *args: Any) -> Any:
            if isinstance(sql, str) and sql.strip().upper() == "CHECKPOINT":
                limits.append(self._con.execute("SELECT current_setting('memory_limit')").fetchone()[0])
            return self._con.execute(sql, *args)

    @contextmanager
    def spied(*args: Any, **kwargs: Any) -> Iterator[Any]:
        with opened(*args, **kwargs) as con:
            yield Spy(con)

    monkeypatch.setattr(nightly, "open_warehouse", spied)
    write_csv(tmp_path / "web" / "events.csv", "\n".join([HEADER, "e1,a1,u1,order,2026-11-01T09:00:00Z,ads"]))
    run_steps(make_config(tmp_path, engine={"memory_budget": "100MB"}), until="load_sources",
              run_started=RUN_STARTED)
    assert limits == ["95.3 MiB"]


def test_a_long_line_raises_only_the_budgets_limit_never_the_configs() -> None:
    # The load runs at the budget's limit, which a file with a very long line may exceed while it is read; a limit
    # the user set (duckdb.memory_limit, e.g. a container's memory) is theirs and stays.
    from cjm_analytics.raw.text import _room_for_reader

    def limit_after(is_budget: bool, max_line: int) -> str:
        with duckdb.connect() as con:
            con.execute("SET memory_limit = '100MB'")
            if is_budget:
                con.execute("SET VARIABLE cjm_limit_is_budget = true")
            _room_for_reader(con, max_line)
            row = con.execute("SELECT current_setting('memory_limit')").fetchone()
            return str(row[0]) if row else ""

    assert limit_after(is_budget=False, max_line=50_000_000) == "95.3 MiB"  # the config's: kept
    assert limit_after(is_budget=True, max_line=1_000_000) == "95.3 MiB"  # a short line: within any budget
    assert limit_after(is_budget=True, max_line=50_000_000) != "95.3 MiB"  # the budget's, for a long line: raised


def test_a_step_that_fails_within_the_budget_shows_its_own_error() -> None:
    # Found at 100M: the night failed with "Current transaction is aborted", the reset of the limit after the
    # failed statement, which hid the statement's own error.
    config = load_config(SAMPLE_CONFIG)
    with duckdb.connect() as con:
        default = con.execute("SELECT current_setting('memory_limit')").fetchone()
        con.execute("BEGIN")
        with pytest.raises(duckdb.InvalidInputException, match="the step's own error"), \
                nightly._within_budget(con, config):
            con.execute("SELECT error('the step''s own error')")
        # the limit is the database's, put back all the same
        assert con.cursor().execute("SELECT current_setting('memory_limit')").fetchone() == default
        con.execute("ROLLBACK")
        # and after a block that succeeded, the limit and the variable too
        with nightly._within_budget(con, config):
            assert con.execute("SELECT getvariable('cjm_limit_is_budget')").fetchone() == (True,)
        assert con.execute("SELECT current_setting('memory_limit'), getvariable('cjm_limit_is_budget')"
                           ).fetchone() == (default[0] if default else None, None)


def _scans(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The table scans of a DuckDB JSON profile."""
    for node in [*plan.get("operator", []), *plan.get("children", [])]:
        if node.get("type") == "TABLE_SCAN":
            yield node
        yield from _scans(node)


@pytest.mark.parametrize("table", ["events", "sessions", "journey_steps"])
def test_a_bucket_reads_only_its_own_row_groups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, table: str) -> None:
    """events, sessions and journey_steps are written bucket by bucket with the stored hash of their key, and a
    bucket is a range of that hash: each bucket's read skips the other buckets' row groups (at 100M events, 84
    buckets each read all 100M rows several times). Small row groups (2,048 rows) make the sample span many."""
    cfg = load_config(copy_sample(tmp_path / "sample") / SAMPLE_CONFIG.name)
    run_steps(cfg, until="stitch_identities", run_started=RUN_STARTED)
    con = duckdb.connect()
    con.execute(f"ATTACH {quote_literal(str(tmp_path / 'small.duckdb'))} AS small (ROW_GROUP_SIZE 2048)")
    con.execute("USE small")
    run_sql(con, "raw/schema")
    run_sql(con, "core/schema")
    con.execute(f"ATTACH {quote_literal(str(cfg.warehouse))} AS built (READ_ONLY)")
    for name in ("raw_events", "identities", *core.RULE_TABLES):
        con.execute(f"INSERT INTO {name} SELECT * FROM built.{name}")
    monkeypatch.setattr(core, "BYTES_PER_EVENT", 100_000)  # the sample's ~37k events: 6,000 a bucket
    counts = core.sessionize(con, cfg.sessions.inactivity, cfg.touchpoints.field, session_field=cfg.sessions.from_)
    buckets, events = counts["buckets"], counts["events_recomputed"]
    assert buckets >= 4 and events == con.execute("SELECT count(*) FROM raw_events").fetchall()[0][0]
    assert core.build_journeys(con, cfg.goal_order)["buckets"] == buckets

    # Each customer's rows by the hash of its key, counted once for every bucket's check below.
    per_hash = con.execute(f"SELECT hash(customer_key), count(*) FROM {table} GROUP BY ALL").fetchall()
    profile = tmp_path / "profile.json"
    con.execute("PRAGMA enable_profiling = 'json'")
    con.execute(f"PRAGMA profiling_output = {quote_literal(str(profile))}")
    seen = 0
    for bucket in core.in_buckets(con, buckets):
        low, high = bucket * 2**64 // buckets, (bucket + 1) * 2**64 // buckets  # computed apart from core's
        in_bucket = con.execute(f"SELECT count(*) FROM scope_{table}").fetchall()[0][0]
        (scan,) = [s for s in _scans(json.loads(profile.read_text()))
                   if s["extra_info"]["Table"].rsplit(".", 1)[-1] == table]
        assert in_bucket == sum(n for key_hash, n in per_hash if low <= key_hash < high)
        # This bucket's share of the row groups, and one more at each end that it shares with a neighbour.
        assert scan["row_groups_scanned"] <= scan["total_row_groups_to_scan"] // buckets + 2, scan
        seen += in_bucket
    assert seen == sum(n for _, n in per_hash)
    # The bound is below reading every row group: a bucket that skipped none would fail it.
    assert scan["total_row_groups_to_scan"] > scan["total_row_groups_to_scan"] // buckets + 2


def _customers_events(path: Path, events: int) -> None:
    """A warehouse whose events are `events` rows of 20 per customer stored in the order of their hash, as the
    core steps write them, and every 20th customer dirty: a night's deletes touch every vector of the table."""
    with duckdb.connect(str(path)) as con:
        run_sql(con, "raw/schema")
        run_sql(con, "core/schema")
        con.execute(f"""
            INSERT INTO events
            SELECT 'e' || i, 'web', 'c' || i // 20, hash('c' || i // 20), NULL, 'view', NULL,
                   TIMESTAMP '2026-11-01' + INTERVAL (i % 20) MINUTE, NULL, NULL, NULL, 1, i % 20 + 1
            FROM range({events}) AS r(i) ORDER BY hash('c' || i // 20)""")
        con.execute(f"INSERT INTO dirty_customers SELECT 'c' || c FROM range(0, {events // 20}, 20) AS r(c)")


def test_a_nights_deletes_fit_the_budget_range_by_range(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # DuckDB holds 16 KiB for every 2048-row vector a delete touches until a checkpoint after its commit: deleting
    # the dirty customers' events at once held 1.1 GB at 100M events and failed within a 600MB budget (exit 6).
    _customers_events(tmp_path / "w.duckdb", 2_000_000)
    dirty = 100_000  # 5,000 of the 100,000 customers
    limit = 16 * 2**20  # what deleting all of them at once would hold is ~16 MB more than the table's pages

    def cleared(budget: int) -> tuple[int, list[tuple[Any, ...]]]:
        copy = tmp_path / f"copy-{budget}.duckdb"
        copy.write_bytes((tmp_path / "w.duckdb").read_bytes())
        with duckdb.connect(str(copy)) as con:
            con.execute("SET threads = 1")
            con.execute(f"SET memory_limit = '{limit}B'")
            # Reading the dirty customers' events fits the limit; it is deleting them that holds memory.
            assert con.execute("SELECT count(*) FROM events WHERE customer_key IN "
                               "(SELECT customer_key FROM dirty_customers)").fetchall() == [(dirty,)]
            ranges = core.clear_dirty(con, ("events",), budget)
            return ranges, con.execute("SELECT count(*), count(*) FILTER (WHERE customer_key IN "
                                       "(SELECT customer_key FROM dirty_customers)) FROM events").fetchall()

    with monkeypatch.context() as m:  # one range: all at once
        m.setattr(core, "memory_limit_bytes", lambda con: 0)
        with pytest.raises(duckdb.OutOfMemoryException):
            cleared(2**40)
    ranges, left = cleared(limit // 2)
    assert ranges == -(-2_000_000 * core.DELETE_BYTES_PER_ROW // (limit // 2)) == 4
    assert left == [(2_000_000 - dirty, 0)]
    # A budget above DuckDB's limit (a config's duckdb.memory_limit below engine.memory_budget): the limit
    # sizes the ranges, since what a delete holds cannot spill.
    assert cleared(2**40 + 1) == (-(-2_000_000 * core.DELETE_BYTES_PER_ROW // limit), left) == (2, left)


@pytest.mark.parametrize(("setting", "expected"), [("16MiB", 16 * 2**20), ("600MB", 600 * 10**6), ("4GB", 4 * 10**9)])
def test_duckdbs_memory_limit_is_read_in_bytes(setting: str, expected: int) -> None:
    with duckdb.connect() as con:
        con.execute(f"SET memory_limit = '{setting}'")
        limit = memory_limit_bytes(con)
    # DuckDB shows one decimal of its unit (4GB is "3.7 GiB"): within 5%, which the 16 bytes per row allow for.
    assert abs(limit - expected) <= expected * 0.05
