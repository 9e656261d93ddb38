"""Published marts: equal to the warehouse's, readable by DuckDB 1.x and pyarrow, never half a night."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.dataset as ds
import pytest

from cjm_analytics.catalog import TABLES
from cjm_analytics.publish import LISTING, PUBLISHED, publish_marts
from cjm_analytics.warehouse import connect
from tests.conftest import REPO
from tests.fixtures import PUBLISH_EVENTS as EVENTS
from tests.fixtures import RUN_STARTED, make_config, run_steps, write_csv

DUCKDB1 = REPO / ".venv" / "duckdb1"


@pytest.fixture
def published(tmp_path: Path):  # type: ignore[no-untyped-def]
    write_csv(tmp_path / "web" / "a.csv", EVENTS)
    cfg = make_config(tmp_path)
    run_steps(cfg, until="publish_marts", run_started=RUN_STARTED)
    return cfg


def test_every_published_table_equals_its_mart(published) -> None:  # type: ignore[no-untyped-def]
    current = published.marts / "current"
    assert current.is_symlink()
    con = duckdb.connect()
    con.execute(f"ATTACH '{published.warehouse}' AS w (READ_ONLY)")
    con.execute(f"ATTACH '{current / 'marts.duckdb'}' AS m (READ_ONLY)")
    def columns(db: str, table: str, lists: bool = False) -> list[str]:
        return [r[0] for r in con.execute(f"SELECT column_name FROM duckdb_columns() WHERE database_name = '{db}' "
                                          f"AND table_name = '{table}' AND (NOT {lists} OR data_type LIKE '%[]') "
                                          "ORDER BY column_index").fetchall()]

    for table in PUBLISHED:
        if TABLES[table].optional and not columns("w", table):  # emotion_curve: the fixture has no surveys
            assert not columns("m", table) and not (current / "parquet" / table).exists()
            continue
        added = [c for c in columns("m", table) if c not in columns("w", table)]
        # Each list as text, then run_id (where the mart has none), run_date, and the partition column.
        assert added == [*(f"{c}_text" for c in columns("w", table, lists=True)),
                         *(["run_id"] if "run_id" not in columns("w", table) else []),
                         "run_date", *(["cohort_month"] if PUBLISHED[table] else [])], table
        assert ("stage_path_text" in added) == (table == "journeys"), table
        added = ", ".join(added)
        for a, b in (("w", "m"), ("m", "w")):
            cols = "*" if a == "w" else f"* EXCLUDE ({added})"
            other = "*" if b == "w" else f"* EXCLUDE ({added})"
            diff = con.execute(f"SELECT count(*) FROM (SELECT {cols} FROM {a}.{table} EXCEPT ALL "
                               f"SELECT {other} FROM {b}.{table})").fetchone()
            assert diff == (0,), table
        run_ids = con.execute(f"SELECT DISTINCT run_id, run_date FROM m.{table}").fetchall()
        assert len(run_ids) <= 1 and all(str(d) == "2026-11-23" for _, d in run_ids), table
        parquet = ds.dataset(current / "parquet" / table, format="parquet", partitioning="hive").to_table()
        assert parquet.num_rows == con.execute(f"SELECT count(*) FROM w.{table}").fetchone()[0], table
    months = sorted(p.name for p in (current / "parquet" / "journeys").iterdir())
    assert months == ["cohort_month=2026-10", "cohort_month=2026-11"]


def test_every_published_table_says_what_it_holds(published) -> None:  # type: ignore[no-untyped-def]
    """Its one-line description from the catalog, as a table comment a BI tool shows."""
    con = duckdb.connect(str(published.marts / "current" / "marts.duckdb"), read_only=True)
    try:
        comments = dict(con.execute("SELECT table_name, comment FROM duckdb_tables()").fetchall())
    finally:
        con.close()
    assert comments == {**{table: TABLES[table].description for table in PUBLISHED if table != "emotion_curve"},
                        LISTING: "The catalog's published tables: which this run published, with how many rows, "
                                 "and why any is absent."}  # the fixture has no surveys: no emotion_curve
    assert comments["journeys"].startswith("One row per journey customer")


def test_the_example_reads_the_marts_with_duckdb_1x_and_pyarrow(published) -> None:  # type: ignore[no-untyped-def]
    if not (DUCKDB1 / "duckdb").is_dir():
        if os.environ.get("CJM_REQUIRE_DUCKDB1") == "1":
            pytest.fail(f"{DUCKDB1} is missing (make test installs it)")
        pytest.skip(f"no DuckDB 1.x at {DUCKDB1}: `make test` installs it")
    done = subprocess.run(
        [sys.executable, str(REPO / "examples" / "dashboard" / "read_marts.py"), str(published.marts)],
        env={**os.environ, "PYTHONPATH": str(DUCKDB1)}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("duckdb 1.4.")
    assert "awareness" not in done.stdout  # the fixture's stages are browse, cart, buy
    assert "browse                3  drop-off 33.3%" in done.stdout  # a2 stops at browse: 1 of 3
    assert "latest cohort 2026-11-02: reached {'browse': 1, 'cart': 1, 'buy': 1}" in done.stdout


def test_the_warehouse_writer_never_blocks_a_dashboard(published) -> None:  # type: ignore[no-untyped-def]
    writer = connect(published.warehouse)  # the nightly run holds the warehouse open for writing
    try:
        con = duckdb.connect(str(published.marts / "current" / "marts.duckdb"), read_only=True)
        assert con.execute("SELECT sum(reached) FROM stage_funnel").fetchone() == (6,)
        con.close()
    finally:
        writer.close()


def test_a_reader_never_sees_half_a_night(published) -> None:  # type: ignore[no-untyped-def]
    """While runs are published one after another, every read of `current` is one whole run."""
    seen: list[tuple[str, str]] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                current = (published.marts / "current").resolve()
                con = duckdb.connect(str(current / "marts.duckdb"), read_only=True)
                in_duckdb = con.execute("SELECT run_id FROM run_summary").fetchone()[0]
                con.close()
                frame = pd.read_parquet(current / "parquet" / "run_summary")
                seen.append((in_duckdb, frame.run_id.iloc[0]))
            except BaseException as e:  # reported below, in the test's thread
                errors.append(e)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        with connect(published.warehouse) as con:
            for night in range(5):
                publish_marts(con, published.marts, f"run-{night}", RUN_STARTED)
    finally:
        stop.set()
        reader.join()
    assert errors == []
    assert seen and all(a == b for a, b in seen)
    runs = sorted(p.name for p in (published.marts / "runs").iterdir())
    assert runs == ["run-2", "run-3", "run-4"]  # three kept; older ones pruned
