"""A source's new files load as one batch: typed Parquet read in place, one de-duplication, one commit."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from cjm_analytics.config import Config
from tests.fixtures import RUN_STARTED, make_config, rows, run_steps, write_csv

HEADER = "event_id,anonymous_id,user_id,event,ts,channel"
COLUMNS = {"anonymous_id": "anonymous_id", "event_name": "event", "timestamp": "ts"}  # no event id: hashed


def _same_rows(left: Config, right: Config, table: str, columns: str) -> None:
    """The two warehouses hold the same rows of `table` (EXCEPT ALL both ways)."""
    con = duckdb.connect()
    con.execute(f"ATTACH '{left.warehouse}' AS l (READ_ONLY)")
    con.execute(f"ATTACH '{right.warehouse}' AS r (READ_ONLY)")
    for a, b in (("l", "r"), ("r", "l")):
        only = con.execute(f"SELECT {columns} FROM {a}.{table} EXCEPT ALL SELECT {columns} FROM {b}.{table}").fetchall()
        assert only == [], (table, f"only in {a}", only)
    con.close()


def _manifest(cfg: Config) -> list[tuple[Any, ...]]:
    found = rows(cfg, "SELECT file, status, rows_read, rows_loaded, rows_rejected, rows_duplicate FROM load_manifest "
                      "ORDER BY file")
    return [(Path(f).name, *rest) for f, *rest in found]


# --- typed Parquet columns are read as they are, with the result their text would give ---------------------

# Wall-clock times around Europe/Berlin's clock changes, NULL, both horizons (the source's starts in 1960),
# and the sub-microsecond digits a nanosecond column can hold (the text keeps six of them, also before 1970).
TIMES = [
    "2026-11-01 10:00:00", "2026-10-25 02:30:00", "2026-03-29 02:30:00", "2026-10-25 01:59:59.5", None,
    "1985-06-01 00:00:00", "2031-01-01 00:00:00", "1969-12-31 23:59:59.999999", "2026-11-22 23:59:59.123456",
]
TYPED = {
    "TIMESTAMP": "CAST(t AS TIMESTAMP)",
    "TIMESTAMP_NS": "CAST(t AS TIMESTAMP_NS)",
    "TIMESTAMP_NS_DIGITS": "make_timestamp_ns(epoch_ns(CAST(t AS TIMESTAMP_NS)) + 999)",
    "TIMESTAMPTZ": "CAST(t || '+05:30' AS TIMESTAMPTZ)",
    "DATE": "CAST(CAST(t AS TIMESTAMP) AS DATE)",
}


def _typed_and_text_parquet(folder: Path, ts_sql: str) -> tuple[Path, Path]:
    """The same rows as typed Parquet and as Parquet of their text (what the loader used to read)."""
    typed, text = folder / "typed" / "a.parquet", folder / "text" / "a.parquet"
    typed.parent.mkdir(parents=True)
    text.parent.mkdir(parents=True)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"""
        CREATE TABLE typed AS
        SELECT 'a' || i AS anonymous_id, 'landing' AS event, {ts_sql} AS ts, i AS n, i / 4 AS ratio,
               i % 2 = 0 AS flag, [i, i + 1] AS list, 'caf\u00e9 "q"' AS note
        FROM (SELECT unnest(range(len($times))) AS i, unnest(CAST($times AS VARCHAR[])) AS t)""",
                {"times": TIMES})
    con.execute(f"COPY typed TO '{typed}' (FORMAT parquet)")
    casts = ", ".join(f"CAST({c} AS VARCHAR) AS {c}" for c in ("anonymous_id", "event", "ts", "n", "ratio", "flag",
                                                                "list", "note"))
    con.execute(f"COPY (SELECT {casts} FROM typed) TO '{text}' (FORMAT parquet)")
    con.close()
    return typed, text


@pytest.mark.parametrize("kind", sorted(TYPED))
@pytest.mark.parametrize(("timezone", "ambiguous"), [("UTC", "reject"), ("Europe/Berlin", "reject"),
                                                     ("Europe/Berlin", "latest")])
def test_typed_parquet_loads_as_its_text_would(tmp_path: Path, kind: str, timezone: str, ambiguous: str) -> None:
    _typed_and_text_parquet(tmp_path, TYPED[kind])
    loaded = []
    for form in ("typed", "text"):
        source = {"name": "web", "kind": "clickstream", "path": f"{form}/*.parquet", "columns": COLUMNS,
                  "timezone": timezone, "ambiguous_times": ambiguous, "min_timestamp": "1960-01-01"}
        cfg = make_config(tmp_path, sources=[source], warehouse=f"{form}.duckdb")
        run_steps(cfg, until="load_sources", run_started=RUN_STARTED)
        loaded.append(cfg)
    typed, text = loaded
    assert rows(typed, "SELECT count(*) FROM raw_events") != [(0,)]
    # Same event ids (the hash of the row's text), times, properties (as text); same rejects and raw content.
    _same_rows(typed, text, "raw_events", "* EXCLUDE (file, run_id)")
    _same_rows(typed, text, "rejects", "* EXCLUDE (file, run_id)")
    assert rows(typed, "SELECT rows_read, rows_loaded, rows_rejected, rows_duplicate FROM load_manifest") == rows(
        text, "SELECT rows_read, rows_loaded, rows_rejected, rows_duplicate FROM load_manifest")


def test_hashed_ids_and_raw_content_of_typed_parquet_are_the_rows_text(tmp_path: Path) -> None:
    (tmp_path / "web").mkdir()
    con = duckdb.connect()
    con.execute(f"""COPY (SELECT 'a1' AS anonymous_id, 'landing' AS event, TIMESTAMP '2026-11-01 10:00:00' AS ts,
                         42 AS n, [1, 2] AS list
                   UNION ALL SELECT 'a1', NULL, TIMESTAMP '2026-11-01 10:00:00', 7, [])
                   TO '{tmp_path / "web" / "a.parquet"}' (FORMAT parquet)""")
    con.close()
    cfg = make_config(tmp_path, sources=[{"name": "web", "kind": "clickstream", "path": "web/*", "columns": COLUMNS}])
    run_steps(cfg, until="load_sources", run_started=RUN_STARTED)
    text = {"anonymous_id": "a1", "event": "landing", "ts": "2026-11-01 10:00:00", "n": "42", "list": "[1, 2]"}
    expected = hashlib.md5(("web" + chr(31) + json.dumps(text, separators=(",", ":"))).encode()).hexdigest()
    assert rows(cfg, "SELECT event_id, properties FROM raw_events") == [
        (expected, json.dumps({"n": "42", "list": "[1, 2]"}, separators=(",", ":")))]
    [(raw,)] = rows(cfg, "SELECT raw FROM rejects WHERE reason = 'missing event_name'")
    assert json.loads(raw) == {"anonymous_id": "a1", "event": None, "ts": "2026-11-01 10:00:00", "n": "7", "list": "[]"}


def test_parquet_files_of_one_schema_load_together_and_a_broken_one_is_refused_alone(tmp_path: Path) -> None:
    folder = tmp_path / "web"
    folder.mkdir()
    con = duckdb.connect()

    def write(name: str, first: int, n: int, extra: str = "") -> Path:
        con.execute(f"""COPY (SELECT 'e' || i AS event_id, 'a' || (i % 7) AS anonymous_id, 'landing' AS event,
                              TIMESTAMP '2026-11-01 10:00:00' + to_seconds(i) AS ts {extra}
                              FROM range({first}, {first + n}) AS r(i))
                        TO '{folder / name}' (FORMAT parquet, COMPRESSION snappy)""")
        return folder / name

    write("a.parquet", 0, 100)
    broken = write("b.parquet", 0, 20000)  # a data page overwritten: the footer reads, the rows do not
    data = bytearray(broken.read_bytes())
    data[len(data) // 20:len(data) // 20 + 64] = b"\xff" * 64
    broken.write_bytes(bytes(data))
    write("c.parquet", 90, 20, ", 'x' AS filename")  # another schema; e90-e99 repeat a.parquet's
    write("d.parquet", 95, 10)  # a's schema; every id is in a or c
    (folder / "e.parquet").write_bytes(b"not a parquet file")
    con.close()
    source = {"name": "web", "kind": "clickstream", "path": "web/*",
              "columns": {"event_id": "event_id", "anonymous_id": "anonymous_id", "event_name": "event",
                          "timestamp": "ts"}}
    cfg = make_config(tmp_path, sources=[source])
    run_steps(cfg, until="load_sources", run_started=RUN_STARTED)
    assert _manifest(cfg) == [("a.parquet", "loaded", 100, 100, 0, 0), ("b.parquet", "refused", 0, 0, 0, 0),
                              ("c.parquet", "loaded", 20, 10, 0, 10), ("d.parquet", "loaded", 10, 0, 0, 10),
                              ("e.parquet", "refused", 0, 0, 0, 0)]
    assert rows(cfg, "SELECT count(*), count(DISTINCT event_id), min(ts) FROM raw_events") == [
        (110, 110, datetime(2026, 11, 1, 10, 0))]
    assert rows(cfg, "SELECT DISTINCT properties FROM raw_events WHERE file LIKE '%c.parquet'") == [
        ('{"filename":"x"}',)]  # a file's own column named like the reader's file name column
    refused = rows(cfg, "SELECT regexp_extract(file, '[^/]+$'), reason FROM rejects ORDER BY 1")
    assert [name for name, _ in refused] == ["b.parquet", "e.parquet"]
    assert all(reason.startswith("file refused: ") for _, reason in refused)


# --- one batch per source and run -----------------------------------------------------------------------


def test_the_first_row_in_file_order_wins_within_a_batch_and_earlier_runs_win_over_it(tmp_path: Path) -> None:
    write_csv(tmp_path / "web" / "a.csv", f"""
        {HEADER}
        0,a0,,landing,2026-11-01T09:00:00Z,
    """)
    cfg = make_config(tmp_path)
    run_steps(cfg, until="load_sources", run_started=RUN_STARTED)
    write_csv(tmp_path / "web" / "b.csv", f"""
        {HEADER}
        1,a1,,landing,2026-11-01T10:00:00Z,b-first
        0,a0,,landing,2026-11-01T09:00:00Z,again
        1,a1,,landing,2026-11-01T10:00:00Z,b-second
    """)
    write_csv(tmp_path / "web" / "c.csv", f"""
        {HEADER}
        2,a2,,landing,2026-11-01T11:00:00Z,c
        1,a1,,landing,2026-11-01T10:00:00Z,c
    """)
    run_steps(cfg, until="load_sources", run_started=RUN_STARTED)
    assert rows(cfg, "SELECT event_id, regexp_extract(file, '[^/]+$'), row_number, channel FROM raw_events "
                     "ORDER BY event_id") == [("0", "a.csv", 1, None), ("1", "b.csv", 1, "b-first"),
                                              ("2", "c.csv", 1, "c")]
    assert _manifest(cfg) == [("a.csv", "loaded", 1, 1, 0, 0), ("b.csv", "loaded", 3, 1, 0, 2),
                              ("c.csv", "loaded", 2, 1, 0, 1)]


def test_a_new_file_before_a_changed_one_gives_what_a_full_run_gives(tmp_path: Path) -> None:
    write_csv(tmp_path / "web" / "b.csv", f"""
        {HEADER}
        1,a1,,landing,2026-11-01T10:00:00Z,b
        2,a1,,product_view,2026-11-01T10:01:00Z,b
    """)
    cfg = make_config(tmp_path)
    run_steps(cfg, until="load_sources", run_started=RUN_STARTED)
    # Tonight: a.csv (first in file order) repeats event 1, and b.csv is re-exported without event 2.
    write_csv(tmp_path / "web" / "a.csv", f"""
        {HEADER}
        1,a1,,landing,2026-11-01T10:00:00Z,a
    """)
    write_csv(tmp_path / "web" / "b.csv", f"""
        {HEADER}
        1,a1,,landing,2026-11-01T10:00:00Z,b
        3,a1,,add_to_cart,2026-11-01T10:02:00Z,b
    """)
    run_steps(cfg, until="load_sources", run_started=RUN_STARTED)
    full = cfg.model_copy(update={"warehouse": tmp_path / "full.duckdb"})
    run_steps(full, until="load_sources", run_started=RUN_STARTED)
    _same_rows(cfg, full, "raw_events", "* EXCLUDE (run_id)")
    assert _manifest(cfg) == _manifest(full) == [("a.csv", "loaded", 1, 1, 0, 0), ("b.csv", "loaded", 2, 1, 0, 1)]
    # The removed event's customer and the new ones are recomputed.
    assert rows(cfg, "SELECT DISTINCT anonymous_id FROM pending_changes") == [("a1",)]


def test_a_refused_file_leaves_the_batch_and_loses_its_earlier_rows(tmp_path: Path) -> None:
    write_csv(tmp_path / "web" / "a.csv", f"""
        {HEADER}
        1,a1,,landing,2026-11-01T10:00:00Z,
    """)
    write_csv(tmp_path / "web" / "b.csv", f"""
        {HEADER}
        2,a2,,landing,2026-11-01T10:00:00Z,
    """)
    cfg = make_config(tmp_path)
    run_steps(cfg, until="load_sources", run_started=RUN_STARTED)
    write_csv(tmp_path / "web" / "b.csv", """
        id,visitor,name,when
        3,a3,landing,2026-11-01T10:00:00Z
    """)
    write_csv(tmp_path / "web" / "c.csv", f"""
        {HEADER}
        5,a5,,landing,2026-11-01T10:00:00Z,
        5,a5,,landing,2026-11-01T10:00:00Z,
        6,,,landing,2026-11-01T10:00:00Z,
    """)
    run_steps(cfg, until="load_sources", run_started=RUN_STARTED)
    assert rows(cfg, "SELECT event_id FROM raw_events ORDER BY 1") == [("1",), ("5",)]
    assert _manifest(cfg) == [("a.csv", "loaded", 1, 1, 0, 0), ("b.csv", "refused", 0, 0, 0, 0),
                              ("c.csv", "loaded", 3, 1, 1, 1)]
    assert rows(cfg, "SELECT regexp_extract(file, '[^/]+$'), row_number, left(reason, 30) FROM rejects ORDER BY 1") == [
        ("b.csv", None, "file refused: columns missing "), ("c.csv", 3, "missing customer_id and anonym")]
    assert rows(cfg, "SELECT DISTINCT anonymous_id FROM pending_changes ORDER BY 1") == [("a1",), ("a2",), ("a5",)]


def test_the_manifest_counts_are_the_rows_in_the_tables(tmp_path: Path) -> None:
    for day in range(4):
        lines = [f"{day}-{i % 7},a{i % 3},,{'landing' if i % 5 else ''},2026-11-0{day + 1}T10:00:00Z,"
                 for i in range(20)]
        again = "0-1,a1,,landing,2026-11-01T10:00:00Z,"
        write_csv(tmp_path / "web" / f"day{day}.csv", "\n".join([HEADER, *lines, again]))
    cfg = make_config(tmp_path)
    run_steps(cfg, until="load_sources", run_started=RUN_STARTED)
    assert rows(cfg, """
        SELECT m.file, m.rows_read = m.rows_loaded + m.rows_rejected + m.rows_duplicate,
               m.rows_loaded = (SELECT count(*) FROM raw_events e WHERE e.file = m.file),
               m.rows_rejected = (SELECT count(*) FROM rejects r WHERE r.file = m.file),
               m.rows_read
        FROM load_manifest m ORDER BY m.file""") == [
        (str(tmp_path / "web" / f"day{day}.csv"), True, True, True, 21) for day in range(4)]
    # Each day: 7 ids among its 16 rows with an event name; its last row repeats day 0's event 0-1.
    assert rows(cfg, "SELECT count(*), count(DISTINCT event_id) FROM raw_events") == [(4 * 7, 4 * 7)]
    assert rows(cfg, "SELECT sum(rows_rejected), sum(rows_duplicate) FROM load_manifest") == [(4 * 4, 4 * (16 - 7 + 1))]


# --- a crash inside the batch's transaction --------------------------------------------------------------

# The nightly run in a child process that kills itself (SIGKILL: no cleanup, no commit) once the batch's SQL has
# run, before its transaction commits.
CRASHING_RUN = """
import os, signal, sys
from cjm_analytics.raw import load
from cjm_analytics.config import load_config
from cjm_analytics.nightly import run_nightly

original = load.run_sql
def run_sql(con, step, **params):
    result = original(con, step, **params)
    if step == "raw/append_batch":
        os.kill(os.getpid(), signal.SIGKILL)
    return result
load.run_sql = run_sql
run_nightly(load_config(sys.argv[1]))
"""


@pytest.mark.slow
def test_a_run_killed_inside_a_batch_then_rerun_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    write_csv(tmp_path / "web" / "a.csv", f"""
        {HEADER}
        1,a1,,landing,2026-11-01T10:00:00Z,ads
        2,a1,u1,product_view,2026-11-01T10:05:00Z,
    """)
    (tmp_path / "cjm.yaml").write_text(
        "warehouse: warehouse/cjm.duckdb\nreports: reports\nsources:\n"
        "  - {name: web, kind: clickstream, path: 'web/*.csv', columns: {event_id: event_id, customer_id: user_id,"
        " anonymous_id: anonymous_id, event_name: event, timestamp: ts, channel: channel}}\n"
        "stages:\n  - {name: browse, events: ['product_*', landing]}\n  - {name: cart, events: [add_to_cart]}\n"
        "  - {name: buy, events: [order]}\ngoal: buy\n")
    cli = [sys.executable, "-m", "cjm_analytics.cli", "run", "--no-prefect", "--config", str(tmp_path / "cjm.yaml")]
    subprocess.run(cli, check=True, capture_output=True, timeout=120)
    write_csv(tmp_path / "web" / "a.csv", f"""
        {HEADER}
        1,a1,,landing,2026-11-01T10:00:00Z,ads
        3,a1,u1,add_to_cart,2026-11-01T10:09:00Z,
    """)
    write_csv(tmp_path / "web" / "b.csv", f"""
        {HEADER}
        4,,u1,order,2026-11-02T10:00:00Z,
        1,a1,,landing,2026-11-01T10:00:00Z,ads
    """)
    before = rows(make_config(tmp_path), "SELECT * FROM raw_events ORDER BY event_id")
    crashed = subprocess.run([sys.executable, "-c", CRASHING_RUN, str(tmp_path / "cjm.yaml")], capture_output=True,
                             timeout=120)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr.decode()
    cfg = make_config(tmp_path)
    assert rows(cfg, "SELECT * FROM raw_events ORDER BY event_id") == before  # nothing of the batch committed
    subprocess.run(cli, check=True, capture_output=True, timeout=120)
    assert rows(cfg, "SELECT event_id FROM raw_events ORDER BY 1") == [("1",), ("3",), ("4",)]
    assert _manifest(cfg) == [("a.csv", "loaded", 2, 2, 0, 0), ("b.csv", "loaded", 2, 1, 0, 1)]
    assert rows(cfg, "SELECT customer_key, stage_path FROM journeys") == [("u1", ["browse", "cart", "buy"])]
