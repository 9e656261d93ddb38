"""What a dashboard gets besides the figures: every published table and column described (DuckDB comments, Parquet
key-value metadata), list columns also as text, and a listing that tells a table not built from an empty one."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from cjm_analytics.catalog import PUBLISHED, TABLES
from cjm_analytics.config import Config
from cjm_analytics.errors import PublishError
from cjm_analytics.publish import LISTING, publish_marts
from cjm_analytics.warehouse import connect
from tests.fixtures import PUBLISH_EVENTS, RUN_STARTED, make_config, run_steps, write_csv
from tests.test_publish import DUCKDB1

SAMPLE_RUN = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def sample_marts(sample: Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample's warehouse (surveys configured: every published table is there) published once."""
    root = tmp_path_factory.mktemp("sample-marts")
    # A copy: the sample is shared read-only, and publishing attaches the new file from a writable connection.
    warehouse = shutil.copy(sample.warehouse, root / "cjm.duckdb")
    with connect(Path(warehouse)) as con:
        publish_marts(con, root / "marts", "sample-run", SAMPLE_RUN)
    return root / "marts" / "current"


@pytest.fixture
def small(tmp_path: Path) -> Config:
    """Four events, built up to the aggregate step (no surveys: no emotion_curve), not published yet."""
    write_csv(tmp_path / "web" / "a.csv", PUBLISH_EVENTS)
    cfg = make_config(tmp_path)
    run_steps(cfg, run_started=RUN_STARTED)
    return cfg


def _comments(marts_db: Path) -> tuple[dict[str, str], dict[str, dict[str, str | None]]]:
    con = duckdb.connect(str(marts_db), read_only=True)
    try:
        tables = {str(t): str(c) for t, c in con.execute("SELECT table_name, comment FROM duckdb_tables()").fetchall()}
        columns: dict[str, dict[str, str | None]] = {}
        for t, c, comment in con.execute("SELECT table_name, column_name, comment FROM duckdb_columns() "
                                         "WHERE NOT internal ORDER BY table_name, column_index").fetchall():
            columns.setdefault(str(t), {})[str(c)] = comment
    finally:
        con.close()
    return tables, columns


def test_every_published_table_and_column_is_described_in_duckdb_and_parquet(sample_marts: Path) -> None:
    tables, columns = _comments(sample_marts / "marts.duckdb")
    assert set(tables) == {*PUBLISHED, LISTING}  # the sample configures surveys: emotion_curve too
    for table, docs in columns.items():
        undescribed = [c for c, doc in docs.items() if not doc]
        assert undescribed == [], f"{table}: describe these columns in cjm_analytics/catalog.py"
        assert all("\n" not in doc for doc in docs.values() if doc), table  # one line each
        files = sorted((sample_marts / "parquet" / table).rglob("*.parquet"))
        assert files, table
        for file in files:
            meta = pq.read_schema(file).metadata
            assert meta[b"description"].decode() == tables[table], file
            assert json.loads(meta[b"column_descriptions"]) == docs, file
    # The catalog's words, and the catalog's own entry wins over the shared one.
    assert columns["journeys"]["customer_key"] == TABLES["journeys"].column_docs["customer_key"]
    assert columns["stage_funnel"]["dropoff_rate"] == "exited / reached; null for the last stage and where reached = 0"
    assert columns["emotion_curve"]["stage_order"] == "the stage's order; 0 for (before first stage)"
    assert columns["journeys"]["stage_path_text"].endswith("as text, the elements joined by ' > '")


def test_duckdb_1_4_reads_the_descriptions(sample_marts: Path) -> None:
    if not (DUCKDB1 / "duckdb").is_dir():
        if os.environ.get("CJM_REQUIRE_DUCKDB1") == "1":
            pytest.fail(f"{DUCKDB1} is missing (make test installs it)")
        pytest.skip(f"no DuckDB 1.x at {DUCKDB1}: `make test` installs it")
    script = ("import duckdb, sys; con = duckdb.connect(sys.argv[1], read_only=True); print(duckdb.__version__); "
              "print(con.execute(\"SELECT comment FROM duckdb_columns() WHERE table_name = 'journeys' "
              "AND column_name = 'stage_path_text'\").fetchone()[0])")
    done = subprocess.run([sys.executable, "-c", script, str(sample_marts / "marts.duckdb")],
                          env={**os.environ, "PYTHONPATH": str(DUCKDB1)}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("1.4.")
    assert "as text, the elements joined by ' > '" in done.stdout


def test_a_list_column_is_also_published_as_text(sample_marts: Path) -> None:
    con = duckdb.connect(str(sample_marts / "marts.duckdb"), read_only=True)
    try:
        rows = con.execute("SELECT stage_path, stage_path_text FROM journeys").fetchall()
    finally:
        con.close()
    assert len(rows) > 100
    assert all(text == " > ".join(path) for path, text in rows)  # joined in Python, independently of DuckDB
    assert any(" > " in text for _, text in rows)
    parquet = pq.read_table(sample_marts / "parquet" / "journeys", columns=["stage_path", "stage_path_text"])
    assert parquet.column("stage_path_text").to_pylist() == [" > ".join(p) for p in parquet.column("stage_path")
                                                              .to_pylist()]


def _listing(current: Path) -> dict[str, tuple[bool, int | None, str | None]]:
    con = duckdb.connect(str(current / "marts.duckdb"), read_only=True)
    try:
        return {str(t): (p, n, r) for t, p, n, r in con.execute(
            f"SELECT table_name, published, row_count, reason FROM {LISTING}").fetchall()}
    finally:
        con.close()


def test_an_optional_table_not_built_tonight_is_absent_and_the_listing_says_why(small: Config) -> None:
    """Last night had an emotion curve (empty: surveys configured, no answers yet), tonight has none."""
    with connect(small.warehouse) as con:
        con.execute("CREATE TABLE emotion_curve (stage VARCHAR, stage_order INTEGER, responses BIGINT)")
        publish_marts(con, small.marts, "night-1", RUN_STARTED)
        con.execute("DROP TABLE emotion_curve")
        publish_marts(con, small.marts, "night-2", RUN_STARTED)
    night1, night2 = _listing(small.marts / "runs" / "night-1"), _listing(small.marts / "runs" / "night-2")
    assert set(night1) == set(night2) == set(PUBLISHED)
    assert night1["emotion_curve"] == (True, 0, None)  # empty: configured, nothing to show yet
    published, rows, reason = night2["emotion_curve"]
    assert (published, rows) == (False, None) and reason and reason.startswith("not built by this run")
    assert night2["journeys"] == (True, 3, None)  # a1, a2, u3
    tables, _ = _comments(small.marts / "current" / "marts.duckdb")
    assert "emotion_curve" not in tables
    assert not (small.marts / "current" / "parquet" / "emotion_curve").exists()
    assert (small.marts / "runs" / "night-1" / "parquet" / "emotion_curve" / "data.parquet").is_file()


def test_run_history_holds_only_the_nights_whose_checks_passed(small: Config) -> None:
    """A failed night published nothing, so it is no history for a trend dashboard; its checks stay visible."""
    with connect(small.warehouse) as con:
        good = con.execute("SELECT run_id FROM run_history").fetchall()
        con.execute("INSERT INTO run_history SELECT * REPLACE ('failed-night' AS run_id) FROM run_summary")
        con.execute("INSERT INTO run_checks VALUES ('failed-night', TIMESTAMP '2026-11-22 02:00', 'source_empty', "
                    "'web', 'error', 'error', 0, '> 0', 'source web holds 0 events')")
        publish_marts(con, small.marts, "night", RUN_STARTED)
    con2 = duckdb.connect(str(small.marts / "current" / "marts.duckdb"), read_only=True)
    try:
        assert con2.execute("SELECT run_id FROM run_history").fetchall() == good
        assert con2.execute("SELECT count(*) FROM run_checks WHERE run_id = 'failed-night'").fetchone() == (1,)
    finally:
        con2.close()


def test_a_missing_table_that_is_not_optional_stops_publishing(small: Config) -> None:
    with connect(small.warehouse) as con:
        con.execute("DROP TABLE leaks")
        with pytest.raises(PublishError, match=re.escape("lacks the published table(s) leaks:")):
            publish_marts(con, small.marts, "night", RUN_STARTED)


