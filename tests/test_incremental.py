"""Nightly runs that never lose or double-count: incremental = full refresh, late data, crashes."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cjm_analytics.catalog import CUSTOMER_TABLES, TABLES, layer
from cjm_analytics.config import Config
from tests.fixtures import RUN_STARTED, make_config, rows, run_steps, table, write_csv

HEADER = "event_id,anonymous_id,user_id,event,ts,channel"
# Every derived table: the raw layer, the per-customer core tables and every mart the aggregate step rebuilds from
# them (the catalog's), without the tables and columns that name the run that wrote a row.
RUN_SPECIFIC = {"run_summary", "run_history", "conversion_change"}
COMPARED = ["raw_events", "rejects", *CUSTOMER_TABLES,
            *(t for t in (*layer("mart"), *layer("analysis-mart")) if t not in RUN_SPECIFIC)]


def _comparable(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """The table's columns as compared: run_id left out; a DOUBLE rounded to 9 decimals (DuckDB's parallel sums may
    differ in the last bit from one run to the next, with the same input)."""
    cols = con.execute("SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = 'l' "
                       "AND table_name = $t ORDER BY column_index", {"t": table}).fetchall()
    return ", ".join(f'round("{c}", 9)' if t == "DOUBLE" else f'"{c}"' for c, t in cols if c != "run_id")


def differences(left: Path, right: Path) -> dict[str, tuple[int, int]]:
    """Per table, rows only in left and rows only in right (EXCEPT ALL both ways); empty when equal. An optional
    mart (emotion_curve without surveys) must be absent from both."""
    con = duckdb.connect()
    con.execute(f"ATTACH '{left}' AS l (READ_ONLY)")
    con.execute(f"ATTACH '{right}' AS r (READ_ONLY)")
    present = {db: {str(t) for (t,) in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = $db", {"db": db}).fetchall()} for db in "lr"}
    out = {}
    for name in COMPARED:
        if name not in present["l"] | present["r"] and TABLES[name].optional:
            continue
        assert name in present["l"] and name in present["r"], name
        cols = _comparable(con, name)
        only_left = con.execute(f"SELECT count(*) FROM (SELECT {cols} FROM l.{name} EXCEPT ALL "
                                f"SELECT {cols} FROM r.{name})").fetchone()
        only_right = con.execute(f"SELECT count(*) FROM (SELECT {cols} FROM r.{name} EXCEPT ALL "
                                 f"SELECT {cols} FROM l.{name})").fetchone()
        assert only_left is not None and only_right is not None
        if only_left[0] or only_right[0]:
            out[name] = (only_left[0], only_right[0])
    con.close()
    return out


def full_run_copy(cfg: Config, name: str = "full.duckdb") -> Path:
    """The same files loaded in one run into a fresh warehouse beside the first."""
    full = cfg.model_copy(update={"warehouse": cfg.warehouse.with_name(name)})
    full.warehouse.unlink(missing_ok=True)
    run_steps(full, run_started=RUN_STARTED)
    return full.warehouse


def refreshed_in_full(cfg: Config, run_id: str) -> bool:
    """Whether the run recomputed every customer (as its stitch step logged)."""
    return rows(cfg, f"SELECT counts->>'full_refresh' FROM run_log WHERE run_id = '{run_id}' "
                     "AND step = 'stitch_identities'") == [("1",)]


# --- incremental = full refresh, for any split and order -----------------------------------------------

T0 = datetime(2026, 11, 1, 9, 0)
NAMES = ["landing", "product_view", "product_x", "add_to_cart", "order", "login", "page"]


@st.composite
def nights(draw: st.DrawFn) -> list[list[str]]:
    """Random customers' events as CSV rows, split into files that arrive on successive nights."""
    lines = []
    for c in range(draw(st.integers(1, 6))):
        anon = f"a{c}" if draw(st.booleans()) else f"a{draw(st.integers(0, 2))}"  # anonymous ids may be shared
        login_at = draw(st.integers(0, 6))
        t = T0 + timedelta(minutes=draw(st.integers(0, 3000)))
        for i in range(draw(st.integers(1, 6))):
            t += timedelta(minutes=draw(st.sampled_from([0, 1, 5, 30, 31, 90, 1500])))
            user = f"u{c}" if i >= login_at else ""
            name = "login" if i == login_at else draw(st.sampled_from(NAMES))
            lines.append(f"e{c}-{i},{anon},{user},{name},{t:%Y-%m-%dT%H:%M:%SZ},{draw(st.sampled_from(['', 'ads']))}")
    n_files = draw(st.integers(1, 4))
    files: list[list[str]] = [[] for _ in range(n_files)]
    for line in lines:
        files[draw(st.integers(0, n_files - 1))].append(line)
        if draw(st.integers(0, 9)) == 0:  # the same event exported again in another file
            files[draw(st.integers(0, n_files - 1))].append(line)
    return draw(st.permutations(files))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arrivals=nights())
def test_any_split_in_any_order_equals_one_full_run(tmp_path: Path, arrivals: list[list[str]]) -> None:
    root = tmp_path / "split"
    shutil.rmtree(root, ignore_errors=True)
    for night, lines in enumerate(arrivals):
        write_csv(root / "web" / f"night{night}.csv", "\n".join([HEADER, *lines]))
        cfg = make_config(root)
        run_steps(cfg, run_started=RUN_STARTED)
    assert differences(cfg.warehouse, full_run_copy(cfg)) == {}


# --- named cases -----------------------------------------------------------------------------------------


def test_a_late_event_lands_in_the_right_session_and_journey(tmp_path: Path) -> None:
    write_csv(tmp_path / "web" / "night1.csv", f"""
        {HEADER}
        1,a1,u1,landing,2026-11-01T10:00:00Z,
        2,a1,u1,order,2026-11-03T10:00:00Z,
    """)
    cfg = make_config(tmp_path)
    run_steps(cfg, run_started=RUN_STARTED)
    assert rows(cfg, "SELECT count(*) FROM sessions") == [(2,)]
    # Last week's cart event arrives tonight: ten minutes after the landing, so in its session.
    write_csv(tmp_path / "web" / "night2.csv", f"""
        {HEADER}
        3,a1,u1,add_to_cart,2026-11-01T10:10:00Z,
    """)
    ctx = run_steps(cfg, run_started=RUN_STARTED)
    assert rows(cfg, "SELECT session_number, n_events, last_event FROM sessions ORDER BY 1") == [
        (1, 2, "add_to_cart"), (2, 1, "order")]
    assert rows(cfg, "SELECT stage_path FROM journeys") == [(["browse", "cart", "buy"],)]
    log = rows(cfg, f"SELECT counts->>'dirty_customers' FROM run_log WHERE run_id = '{ctx.run_id}' "
                    "AND step = 'stitch_identities'")
    assert log == [("1",)]  # only u1 was recomputed
    assert differences(cfg.warehouse, full_run_copy(cfg)) == {}


def test_a_login_moves_earlier_anonymous_history_to_the_customer(tmp_path: Path) -> None:
    write_csv(tmp_path / "web" / "night1.csv", f"""
        {HEADER}
        1,a1,,landing,2026-11-01T10:00:00Z,ads
        2,a1,,product_view,2026-11-01T10:05:00Z,
        3,a2,u2,order,2026-11-01T11:00:00Z,
    """)
    cfg = make_config(tmp_path)
    run_steps(cfg, run_started=RUN_STARTED)
    assert rows(cfg, "SELECT customer_key FROM journeys ORDER BY 1") == [("a1",), ("u2",)]
    write_csv(tmp_path / "web" / "night2.csv", f"""
        {HEADER}
        4,a1,u2,login,2026-11-02T09:00:00Z,
    """)
    run_steps(cfg, run_started=RUN_STARTED)
    assert rows(cfg, "SELECT customer_key, stage_path, first_channel FROM journeys") == [
        ("u2", ["browse", "buy"], "ads")]
    assert differences(cfg.warehouse, full_run_copy(cfg)) == {}


def test_a_night_that_moves_a_customer_on_places_their_events_again(tmp_path: Path) -> None:
    # The journey map's per-customer rows are kept by the core layer: a night that adds a later stage changes when
    # the customer moved on, and where tonight's events are placed (at the stage of the latest mapped event).
    write_csv(tmp_path / "web" / "night1.csv", f"""
        {HEADER}
        1,,u1,landing,2026-11-01T10:00:00Z,ads
        2,,u1,page,2026-11-01T10:05:00Z,
    """)
    cfg = make_config(tmp_path)
    run_steps(cfg, run_started=RUN_STARTED)
    assert rows(cfg, "SELECT stage_order, touchpoint, before_moving_on FROM stage_touchpoints ORDER BY ALL") == [
        (1, "landing", True), (1, "page", True)]
    write_csv(tmp_path / "web" / "night2.csv", f"""
        {HEADER}
        3,,u1,add_to_cart,2026-11-01T10:10:00Z,
        4,,u1,page,2026-11-01T12:00:00Z,email
        5,,u1,product_view,2026-11-01T12:05:00Z,
    """)
    run_steps(cfg, run_started=RUN_STARTED)
    at = datetime(2026, 11, 1, 10, 0)
    assert rows(cfg, "SELECT stage_order, ts, moved_ts FROM stage_entries ORDER BY ALL") == [
        (1, at, at + timedelta(minutes=10)), (2, at + timedelta(minutes=10), None)]
    # product_view came back to browse after the customer had moved on to the cart: placed at browse, too late
    # to count for moving on.
    assert rows(cfg, "SELECT stage_order, touchpoint, before_moving_on FROM stage_touchpoints ORDER BY ALL") == [
        (1, "landing", True), (1, "page", True), (1, "product_view", False), (2, "add_to_cart", True),
        (2, "page", True)]
    # Two sessions (ads: events 1-3; email: events 4-5), each with events at both stages.
    assert rows(cfg, "SELECT stage_order, channel, sessions FROM stage_channels ORDER BY ALL") == [
        (1, "ads", 1), (1, "email", 1), (2, "ads", 1), (2, "email", 1)]
    assert differences(cfg.warehouse, full_run_copy(cfg)) == {}


def test_a_reexported_file_replaces_its_rows(tmp_path: Path) -> None:
    day = write_csv(tmp_path / "web" / "day.csv", f"""
        {HEADER}
        1,a1,u1,landing,2026-11-01T10:00:00Z,
        2,a2,u2,order,2026-11-01T10:00:00Z,
    """)
    cfg = make_config(tmp_path)
    run_steps(cfg, run_started=RUN_STARTED)
    write_csv(day, f"""
        {HEADER}
        1,a1,u1,landing,2026-11-01T10:00:00Z,
        5,a1,u1,order,2026-11-01T10:20:00Z,
    """)
    run_steps(cfg, run_started=RUN_STARTED)
    assert rows(cfg, "SELECT customer_key, converted FROM journeys ORDER BY 1") == [("u1", True)]
    assert differences(cfg.warehouse, full_run_copy(cfg)) == {}


def test_an_event_a_changed_file_drops_is_loaded_from_another_file_that_has_it(tmp_path: Path) -> None:
    first = write_csv(tmp_path / "web" / "a.csv", f"""
        {HEADER}
        1,a1,u1,landing,2026-11-01T10:00:00Z,
        2,a1,u1,order,2026-11-01T10:20:00Z,
    """)
    write_csv(tmp_path / "web" / "b.csv", f"""
        {HEADER}
        2,a1,u1,order,2026-11-01T10:20:00Z,
        3,a2,u2,landing,2026-11-01T11:00:00Z,
    """)
    cfg = make_config(tmp_path)
    run_steps(cfg, run_started=RUN_STARTED)
    assert rows(cfg, "SELECT file LIKE '%a.csv' FROM raw_events WHERE event_id = '2'") == [(True,)]
    write_csv(first, f"""
        {HEADER}
        1,a1,u1,landing,2026-11-01T10:00:00Z,
    """)  # re-exported without event 2, which b.csv (unchanged, its duplicate until now) still has
    run_steps(cfg, run_started=RUN_STARTED)
    assert rows(cfg, "SELECT file LIKE '%b.csv' FROM raw_events WHERE event_id = '2'") == [(True,)]
    assert rows(cfg, "SELECT customer_key, converted FROM journeys ORDER BY 1") == [("u1", True), ("u2", False)]
    assert differences(cfg.warehouse, full_run_copy(cfg)) == {}
    assert rows(cfg, "SELECT file LIKE '%b.csv', rows_read, rows_loaded, rows_duplicate FROM load_manifest "
                     "ORDER BY file") == [(False, 1, 1, 0), (True, 2, 2, 0)]


def test_a_config_change_rebuilds_everything(tmp_path: Path) -> None:
    write_csv(tmp_path / "web" / "a.csv", f"""
        {HEADER}
        1,a1,u1,landing,2026-11-01T10:00:00Z,
        2,a1,u1,add_to_cart,2026-11-01T10:50:00Z,
    """)
    run_steps(make_config(tmp_path), run_started=RUN_STARTED)
    changed = make_config(tmp_path, sessions={"inactivity_minutes": 60},
                          stages=[{"name": "browse", "events": ["landing"]}, {"name": "buy", "events": ["add_*"]}])
    ctx = run_steps(changed, run_started=RUN_STARTED)
    assert refreshed_in_full(changed, ctx.run_id)
    assert rows(changed, "SELECT count(*), any_value(converted) FROM journeys") == [(1, True)]
    assert rows(changed, "SELECT count(*) FROM sessions") == [(1,)]
    assert differences(changed.warehouse, full_run_copy(changed)) == {}


def test_a_warehouse_from_an_older_version_gets_the_new_core_tables(tmp_path: Path) -> None:
    """Core tables with other columns (an older release's) are recreated by the automatic full refresh."""
    write_csv(tmp_path / "web" / "a.csv", f"""
        {HEADER}
        1,a1,,landing,2026-11-01T10:00:00Z,
        2,a1,u1,order,2026-11-01T10:50:00Z,
    """)
    cfg = make_config(tmp_path)
    run_steps(cfg, run_started=RUN_STARTED)
    shutil.copy(cfg.warehouse, tmp_path / "current.duckdb")
    con = duckdb.connect(str(cfg.warehouse))
    try:  # an older release's events: the raw row's columns copied in, which the new SQL does not write
        con.execute("CREATE TABLE old_events AS SELECT e.*, r.properties, r.file FROM events AS e "
                    "JOIN raw_events AS r USING (source, event_id)")
        con.execute("DROP TABLE events")
        con.execute("CREATE TABLE events AS SELECT * FROM old_events")
        con.execute("ALTER TABLE events ALTER COLUMN file SET NOT NULL")
        con.execute("DROP TABLE old_events")
        con.execute("UPDATE pipeline_state SET value = 'an older release' WHERE key = 'built_with'")
    finally:
        con.close()
    ctx = run_steps(cfg, run_started=RUN_STARTED)
    assert refreshed_in_full(cfg, ctx.run_id)
    assert "file" not in table(cfg, "SELECT * FROM events LIMIT 0").columns
    assert differences(cfg.warehouse, tmp_path / "current.duckdb") == {}


def test_full_refresh_on_request_gives_the_same_tables(tmp_path: Path) -> None:
    write_csv(tmp_path / "web" / "a.csv", f"""
        {HEADER}
        1,a1,,landing,2026-11-01T10:00:00Z,
        2,a1,u1,order,2026-11-01T10:50:00Z,
    """)
    cfg = make_config(tmp_path)
    run_steps(cfg, run_started=RUN_STARTED)
    shutil.copy(cfg.warehouse, tmp_path / "before.duckdb")
    ctx = run_steps(cfg, run_started=RUN_STARTED, full_refresh=True)
    assert refreshed_in_full(cfg, ctx.run_id)
    assert differences(cfg.warehouse, tmp_path / "before.duckdb") == {}


def test_a_full_refresh_that_died_before_its_marts_resumes_as_a_full_refresh(tmp_path: Path) -> None:
    """The run decides once whether it is full, and a full run's decision outlives it until its marts commit."""
    write_csv(tmp_path / "web" / "a.csv", f"""
        {HEADER}
        1,a1,,landing,2026-11-01T10:00:00Z,
        2,a1,u1,order,2026-11-01T10:50:00Z,
    """)
    cfg = make_config(tmp_path)
    run_steps(cfg, run_started=RUN_STARTED)
    run_steps(cfg, until="sessionize", run_started=RUN_STARTED, full_refresh=True)  # then it died
    ctx = run_steps(cfg, run_started=RUN_STARTED)  # not asked for, nothing new: full all the same
    assert refreshed_in_full(cfg, ctx.run_id)
    again = run_steps(cfg, until="stitch_identities", run_started=RUN_STARTED)  # done with: incremental again
    assert not refreshed_in_full(cfg, again.run_id)


# --- crashes --------------------------------------------------------------------------------------------

# Runs the nightly steps in a child process that kills itself (SIGKILL: no cleanup, no commit) at one point.
CRASHING_RUN = """
import os, signal, sys
from cjm_analytics import core, nightly
from cjm_analytics.raw import load
from cjm_analytics.config import load_config

point = sys.argv[2]
def die():
    os.kill(os.getpid(), signal.SIGKILL)

def killing(module, step_name, after_calls):
    original, calls = module.run_sql, []
    def run_sql(con, step, **params):
        result = original(con, step, **params)
        if step == step_name:
            calls.append(step)
            if len(calls) == after_calls:
                die()  # inside the step's transaction, after its SQL ran
        return result
    module.run_sql = run_sql

if point == "mid-staging":
    killing(load, "raw/append_file", 2)  # the second file staged: nothing written yet
elif point == "mid-load":
    killing(load, "raw/append_batch", 1)  # the source's batch written, not committed
elif point == "mid-recompute":
    killing(core, "core/journeys", 1)
elif point == "mid-delete":
    # A night's deletes run range by range, each committed (core.clear_dirty): a range per row or so here, and the
    # run dies as its first delete starts on its last range, every other range committed.
    core.DELETE_BYTES_PER_ROW = 10**9
    real_bounds = core.bucket_bounds
    def bounds(part, parts):
        if part == parts - 1 and parts > 1 and sys._getframe(1).f_code.co_name == "clear_dirty":
            die()
        return real_bounds(part, parts)
    core.bucket_bounds = bounds
elif point == "between-steps":
    nightly.NIGHTLY_STEPS = nightly.NIGHTLY_STEPS[:3] + (("die", lambda ctx: die()),)
nightly.run_nightly(load_config(sys.argv[1]))
"""


@pytest.mark.slow
@pytest.mark.parametrize("point", ["mid-staging", "mid-load", "mid-delete", "mid-recompute", "between-steps"])
def test_a_run_killed_at_any_point_then_rerun_equals_an_uninterrupted_run(tmp_path: Path, point: str) -> None:
    write_csv(tmp_path / "web" / "a.csv", f"""
        {HEADER}
        1,a1,,landing,2026-11-01T10:00:00Z,ads
        2,a1,u1,product_view,2026-11-01T10:05:00Z,
        3,a3,,product_view,2026-11-01T11:00:00Z,
    """)
    config_text = (
        "warehouse: warehouse/cjm.duckdb\nreports: reports\nsources:\n"
        "  - {name: web, kind: clickstream, path: 'web/*.csv', columns: {event_id: event_id, customer_id: user_id,"
        " anonymous_id: anonymous_id, event_name: event, timestamp: ts, channel: channel}}\n"
        "stages:\n  - {name: browse, events: ['product_*', landing]}\n  - {name: cart, events: [add_to_cart]}\n"
        "  - {name: buy, events: [order]}\ngoal: buy\n"
    )
    (tmp_path / "cjm.yaml").write_text(config_text)
    cfg = make_config(tmp_path)
    subprocess.run([sys.executable, "-m", "cjm_analytics.cli", "run", "--no-prefect", "--config",
                    str(tmp_path / "cjm.yaml")], check=True, capture_output=True, timeout=120)
    # The next night brings two files (one of them moves a3 to u3, a late event joins u1's session).
    write_csv(tmp_path / "web" / "b.csv", f"""
        {HEADER}
        4,a3,u3,login,2026-11-02T09:00:00Z,
        5,a1,u1,add_to_cart,2026-11-01T10:09:00Z,
    """)
    write_csv(tmp_path / "web" / "c.csv", f"""
        {HEADER}
        6,,u1,order,2026-11-02T10:00:00Z,
    """)
    crashed = subprocess.run([sys.executable, "-c", CRASHING_RUN, str(tmp_path / "cjm.yaml"), point],
                             capture_output=True, timeout=120)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr.decode()
    if point == "mid-delete":  # it died with dirty customers' events deleted and committed (3 events before)
        assert rows(cfg, "SELECT count(*) FROM events") < [(3,)]
    # The next run takes over the dead run's lock and finishes its work.
    subprocess.run([sys.executable, "-m", "cjm_analytics.cli", "run", "--no-prefect", "--config",
                    str(tmp_path / "cjm.yaml")], check=True, capture_output=True, timeout=120)
    assert rows(cfg, "SELECT customer_key, stage_path FROM journeys ORDER BY 1") == [
        ("u1", ["browse", "cart", "buy"]), ("u3", ["browse"])]
    assert rows(cfg, "SELECT count(*) FROM raw_events") == [(6,)]
    assert differences(cfg.warehouse, full_run_copy(cfg)) == {}


# --- the marts' summaries, maintained per dirty customer ------------------------------------------------------


def test_summaries_kept_over_nights_with_moves_deletions_and_a_crash_equal_a_full_refresh(tmp_path: Path) -> None:
    """The summaries (marts.maintain_summaries) subtract what they counted of each dirty customer and add their new
    rows: customers change first-touch channel (a late first event), stage (a re-export drops an order), identity
    (a login), and a night dies after its core steps, before its marts; each night equals a full refresh."""
    day = write_csv(tmp_path / "web" / "day1.csv", f"""
        {HEADER}
        1,,u1,landing,2026-11-01T10:00:00Z,ads
        2,,u1,product_view,2026-11-01T10:05:00Z,
        3,,u1,add_to_cart,2026-11-01T10:10:00Z,
        4,,u1,order,2026-11-01T10:20:00Z,
        5,,u2,landing,2026-11-01T11:00:00Z,email
        6,,u2,page,2026-11-01T11:05:00Z,
        7,,u2,add_to_cart,2026-11-01T11:10:00Z,
        8,a3,,product_view,2026-11-01T12:00:00Z,ads
        9,a3,,add_to_cart,2026-11-01T12:05:00Z,
        10,,u4,landing,2026-11-01T13:00:00Z,
        11,,u4,page,2026-11-01T13:01:00Z,
    """)
    cfg = make_config(tmp_path)
    run_steps(cfg, run_started=RUN_STARTED)
    summary = "SELECT * FROM summary_driver_touchpoints ORDER BY ALL"
    first = rows(cfg, summary)
    # u1 (ads) converted from browse having landed; u4 (no channel) did not, u2 (email) did, both after a page.
    assert {("ads", 1, "landing", 1, 1), (None, 1, "page", 1, 0), ("email", 1, "page", 1, 1)} <= set(first)
    # Night 2: u1's order is re-exported away (buy -> cart), u2's late first event moves them from email to
    # social, a3 logs in as u4 (u4 gains a cart).
    write_csv(day, f"""
        {HEADER}
        1,,u1,landing,2026-11-01T10:00:00Z,ads
        2,,u1,product_view,2026-11-01T10:05:00Z,
        3,,u1,add_to_cart,2026-11-01T10:10:00Z,
        5,,u2,landing,2026-11-01T11:00:00Z,email
        6,,u2,page,2026-11-01T11:05:00Z,
        7,,u2,add_to_cart,2026-11-01T11:10:00Z,
        8,a3,,product_view,2026-11-01T12:00:00Z,ads
        9,a3,,add_to_cart,2026-11-01T12:05:00Z,
        10,,u4,landing,2026-11-01T13:00:00Z,
        11,,u4,page,2026-11-01T13:01:00Z,
    """)
    write_csv(tmp_path / "web" / "day2.csv", f"""
        {HEADER}
        12,,u2,page,2026-11-01T08:00:00Z,social
        13,a3,u4,login,2026-11-02T09:00:00Z,
    """)
    run_steps(cfg, run_started=RUN_STARTED)
    assert rows(cfg, summary) != first
    assert differences(cfg.warehouse, full_run_copy(cfg)) == {}
    # Night 3 dies after its core steps: the summaries still count the customers' rows of night 2.
    write_csv(tmp_path / "web" / "day3.csv", f"""
        {HEADER}
        14,,u2,order,2026-11-02T11:00:00Z,
        15,,u5,landing,2026-11-02T12:00:00Z,ads
    """)
    run_steps(cfg, until="build_journeys", run_started=RUN_STARTED)
    assert rows(cfg, "SELECT customer_key FROM retired_customers ORDER BY 1") == [("u2",), ("u5",)]
    # Night 4 touches u2 again (and u1): u2's retired rows stay those the summaries counted.
    write_csv(tmp_path / "web" / "day4.csv", f"""
        {HEADER}
        16,,u2,product_x,2026-11-01T07:00:00Z,
        17,,u1,order,2026-11-03T10:00:00Z,
    """)
    run_steps(cfg, run_started=RUN_STARTED)
    assert rows(cfg, "SELECT count(*) FROM retired_customers") == [(0,)]
    assert rows(cfg, "SELECT count(*) FROM retired_touchpoint_firsts") == [(0,)]
    assert differences(cfg.warehouse, full_run_copy(cfg)) == {}
