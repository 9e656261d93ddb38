"""A Parquet file larger than engine.memory_budget is read in pieces (raw/load.py `_stage_pieces`), and a batch's
duplicates are found once its chunks are in (sql/raw/dedupe_part.sql): loading such a file in pieces gives exactly
the raw layer of loading it whole, on a first load, on a re-export, when a piece cannot be read and when the load
is killed between two pieces."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cjm_analytics.config import Config
from cjm_analytics.raw import load
from tests.fixtures import RUN_STARTED, make_config, run_steps
from tests.test_load_chunks import differences

COLUMNS = {"event_id": "event_id", "anonymous_id": "anonymous_id", "customer_id": "user_id", "event_name": "event",
           "timestamp": "ts", "channel": "channel"}
PIECE_ROWS = 50  # the split load's budget, in rows: the big file's 120 rows in three pieces
REJECTED = (10, 60, 105)  # a row without an event name in each piece
REPEATS = {30: 5, 70: 5, 110: 5, 99: 60, 50: 49}  # row -> the earlier row whose id it repeats, across pieces


def _write(table: pa.Table, path: Path, **options: Any) -> None:
    pq.write_table(table, path, **options)
    os.utime(path, (1_796_000_000, 1_796_000_000))  # the same in every copy of the folder: the manifest keeps it


def _rows(numbers: range, repeats: dict[int, int]) -> pa.Table:
    ids = [f"e{repeats.get(i, i)}" for i in numbers]
    return pa.table({"event_id": ids, "anonymous_id": [f"a{i % 7}" for i in numbers],
                     "user_id": [f"u{i % 5}" if i % 3 else None for i in numbers],
                     "event": ["" if i in REJECTED else "landing" for i in numbers],
                     "ts": [f"2026-11-01T10:{i % 60:02d}:00Z" for i in numbers],
                     "channel": ["ads" if i % 2 else None for i in numbers]})


def _folder(root: Path) -> Config:
    """web/a.parquet (5 rows; e119 is its own, repeated by the big file) and web/big.parquet: 120 rows in three
    row groups of 40, so that its pieces of 50 rows do not follow the row groups."""
    (root / "web").mkdir(parents=True)
    _write(pa.table({"event_id": ["x1", "x2", "e119", "x3", "x1"], "anonymous_id": ["b"] * 5,
                             "user_id": [None] * 5, "event": ["landing"] * 5, "ts": ["2026-11-01T09:00:00Z"] * 5,
                     "channel": [None] * 5}), root / "web" / "a.parquet")
    _write(_rows(range(120), REPEATS), root / "web" / "big.parquet", row_group_size=40)
    return make_config(root, sources=[{"name": "web", "kind": "clickstream", "path": "web/*.parquet",
                                       "columns": COLUMNS}])


@pytest.fixture
def pieces(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The rows of every piece or chunk appended, in order."""
    seen: list[int] = []
    original = load.run_sql

    def spy(con: duckdb.DuckDBPyConnection, step: str, **params: Any) -> duckdb.DuckDBPyConnection:
        if step == "raw/append_chunk":
            seen.append(int(con.execute("SELECT count(*) FROM batch_rows").fetchone()[0]))  # type: ignore[index]
        return original(con, step, **params)

    monkeypatch.setattr(load, "run_sql", spy)
    return seen


def _split(monkeypatch: pytest.MonkeyPatch, cfg: Config) -> None:
    """The budget of PIECE_ROWS rows."""
    monkeypatch.setattr(load, "BYTES_PER_STAGED_ROW", cfg.engine.memory_budget_bytes // PIECE_ROWS)


def _whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(load, "BYTES_PER_STAGED_ROW", 1000)  # the default: every file fits


def _in_pieces(rows: list[int]) -> None:
    """big.parquet's 120 rows in at least three pieces within the budget (DuckDB's stream ends a piece where it
    ends a row group too)."""
    assert len(rows) >= 3 and max(rows) <= PIECE_ROWS and sum(rows) == 120, rows


def _manifest(cfg: Config) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(cfg.warehouse), read_only=True)
    try:
        return con.execute("SELECT regexp_extract(file, '[^/]+$'), status, rows_read, rows_loaded, rows_rejected, "
                           "rows_duplicate FROM load_manifest ORDER BY 1").fetchall()
    finally:
        con.close()


def _re_export(root: Path) -> None:
    """big.parquet again, rows 20 to 139: row 5 (e5's first row) is gone, so row 30 is now e5's first."""
    _write(_rows(range(20, 140), REPEATS), root / "web" / "big.parquet", row_group_size=40)


def test_a_file_larger_than_the_budget_loads_in_pieces_as_it_loads_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pieces: list[int]) -> None:
    whole, split = _folder(tmp_path / "whole"), _folder(tmp_path / "split")
    _whole(monkeypatch)
    run_steps(whole, until="load_sources", run_started=RUN_STARTED)
    assert pieces == [125]  # both files, one chunk
    pieces.clear()
    _split(monkeypatch, split)
    run_steps(split, until="load_sources", run_started=RUN_STARTED)
    _in_pieces(pieces[1:])  # after a.parquet's 5 rows
    assert differences(whole.warehouse, split.warehouse) == {}
    # Every row of big.parquet loaded, rejected or a duplicate, by hand: 3 rejects; 5 duplicates: e5 three times,
    # e49, and e119 of a.parquet. e60's first row is a reject, so its repeat in the second piece loads.
    assert _manifest(split) == [("a.parquet", "loaded", 5, 4, 0, 1), ("big.parquet", "loaded", 120, 112, 3, 5)]
    con = duckdb.connect(str(split.warehouse), read_only=True)
    assert con.execute("SELECT regexp_extract(file, '[^/]+$'), row_number FROM raw_events WHERE event_id IN "
                       "('e5', 'e60', 'e49', 'e119', 'x1') ORDER BY 2").fetchall() == [
        ("a.parquet", 1), ("a.parquet", 3), ("big.parquet", 6), ("big.parquet", 50), ("big.parquet", 100)]
    assert con.execute("SELECT row_number FROM rejects ORDER BY 1").fetchall() == [(11,), (61,), (106,)]
    con.close()

    # The night: big.parquet re-exported (its earlier rows go; e5 now loads from its old row 30). By hand: 2 rejects,
    # 4 duplicates (e5 twice, e49, e119).
    for cfg in (whole, split):
        _re_export(cfg.warehouse.parent.parent)
    pieces.clear()
    _whole(monkeypatch)
    run_steps(whole, until="load_sources", run_started=RUN_STARTED)
    _split(monkeypatch, split)
    run_steps(split, until="load_sources", run_started=RUN_STARTED)
    assert pieces[0] == 120  # the whole load: big.parquet in one chunk
    _in_pieces(pieces[1:])
    assert differences(whole.warehouse, split.warehouse) == {}
    assert _manifest(split) == [("a.parquet", "loaded", 5, 4, 0, 1), ("big.parquet", "loaded", 120, 114, 2, 4)]


def _corrupt_last_row_group(path: Path) -> None:
    """Overwrite the data of the file's last row group; its footer stays readable."""
    meta = pq.ParquetFile(path).metadata
    last = meta.row_group(meta.num_row_groups - 1)
    start = min(last.column(i).data_page_offset for i in range(last.num_columns))
    data = bytearray(path.read_bytes())
    data[start:start + 200] = b"\xff" * 200
    path.write_bytes(bytes(data))
    os.utime(path, (1_796_000_000, 1_796_000_000))


def test_a_file_with_a_row_group_that_cannot_be_read_is_refused_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    whole, split = _folder(tmp_path / "whole"), _folder(tmp_path / "split")
    for cfg in (whole, split):
        _corrupt_last_row_group(cfg.warehouse.parent.parent / "web" / "big.parquet")
    _whole(monkeypatch)
    run_steps(whole, until="load_sources", run_started=RUN_STARTED)
    _split(monkeypatch, split)
    errors: list[str | None] = []
    reading_error = load._reading_error
    monkeypatch.setattr(load, "_reading_error", lambda *args: errors.append(reading_error(*args)) or errors[-1])
    run_steps(split, until="load_sources", run_started=RUN_STARTED)
    assert len(errors) == 1 and errors[0]  # the stream of pieces met the damage, refused in the reader's own words
    assert differences(whole.warehouse, split.warehouse) == {}  # as the whole file is
    assert _manifest(split) == [("a.parquet", "loaded", 5, 4, 0, 1), ("big.parquet", "refused", 0, 0, 0, 0)]


def test_a_file_whose_later_piece_cannot_be_read_is_refused_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pieces: list[int]) -> None:
    """When a piece fails after others were appended (here the second: injected, where a damaged file fails
    depends on how far DuckDB's stream has read ahead), what they appended goes."""
    whole, split = _folder(tmp_path / "whole"), _folder(tmp_path / "split")

    def failure() -> duckdb.Error:  # a new one each time: a raised one keeps its frames, and their connections
        return duckdb.IOException("IO Error: the second piece of big.parquet")

    stage_files, stage_piece = load._stage_parquet_files, load._stage_parquet_piece
    staged: list[int] = []

    def files_failing(con: duckdb.DuckDBPyConnection, source: Any, files: list[Any], *args: Any) -> None:
        if any(f.path.name == "big.parquet" for f in files):
            raise failure()
        stage_files(con, source, files, *args)

    def piece_failing(*args: Any) -> None:
        staged.append(1)
        if len(staged) == 2:
            raise failure()
        stage_piece(*args)

    monkeypatch.setattr(load, "_stage_parquet_files", files_failing)
    _whole(monkeypatch)
    run_steps(whole, until="load_sources", run_started=RUN_STARTED)
    monkeypatch.setattr(load, "_stage_parquet_files", stage_files)
    monkeypatch.setattr(load, "_stage_parquet_piece", piece_failing)
    pieces.clear()
    _split(monkeypatch, split)
    run_steps(split, until="load_sources", run_started=RUN_STARTED)
    assert len(pieces) == 2 and len(staged) == 2  # a.parquet and big.parquet's first piece, then the failure
    assert differences(whole.warehouse, split.warehouse) == {}  # the piece's rows are gone: the file refused alone
    assert _manifest(split) == [("a.parquet", "loaded", 5, 4, 0, 1), ("big.parquet", "refused", 0, 0, 0, 0)]


# The load in a child process that kills itself (SIGKILL: no cleanup, no commit) once the second piece of the big
# file is appended, inside the batch's transaction.
CRASH_BETWEEN_PIECES = """
import os, signal, sys
from pathlib import Path
from cjm_analytics.config import load_config
from cjm_analytics.nightly import RunContext, load_sources
from cjm_analytics.raw import load

load.BYTES_PER_STAGED_ROW = int(sys.argv[2])
original = load.run_sql
appended = []
def run_sql(con, step, **params):
    if step == "raw/append_chunk":  # the files of the chunk, said before the kill
        print(con.execute("SELECT list(DISTINCT file_index) FROM batch_rows").fetchone()[0], flush=True)
    result = original(con, step, **params)
    appended.extend([step] if step == "raw/append_chunk" else [])
    if len(appended) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return result
load.run_sql = run_sql
load_sources(RunContext.start(load_config(Path(sys.argv[1]))))
"""


def test_a_load_killed_between_the_pieces_of_a_file_leaves_the_warehouse_as_it_was(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, uninterrupted = _folder(tmp_path / "crashed"), _folder(tmp_path / "uninterrupted")
    _split(monkeypatch, cfg)
    for c in (cfg, uninterrupted):
        run_steps(c, until="load_sources", run_started=RUN_STARTED)
        _re_export(c.warehouse.parent.parent)
        shutil.copy2(c.warehouse.parent.parent / "web" / "big.parquet", c.warehouse.parent.parent / "web" / "c.parquet")
    before = tmp_path / "before.duckdb"
    shutil.copy(cfg.warehouse, before)
    config = cfg.warehouse.parent.parent / "cjm.yaml"
    config.write_text(f"warehouse: {cfg.warehouse}\nreports: reports\nsources:\n- name: web\n  kind: clickstream\n"
                      f"  path: web/*.parquet\n  columns: {COLUMNS}\nstages:\n- name: land\n  events: [landing]\n"
                      "goal: land\n")
    crashed = subprocess.run([sys.executable, "-c", CRASH_BETWEEN_PIECES, str(config), str(load.BYTES_PER_STAGED_ROW)],
                             capture_output=True, timeout=120)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr.decode()
    assert crashed.stdout.decode().split("\n")[:2] == ["[1]", "[1]"]  # killed between two pieces of big.parquet
    assert differences(before, cfg.warehouse) == {}  # nothing of the night's pieces committed
    run_steps(cfg, until="load_sources", run_started=RUN_STARTED)
    run_steps(uninterrupted, until="load_sources", run_started=RUN_STARTED)
    assert differences(uninterrupted.warehouse, cfg.warehouse) == {}  # the rerun did the night's work
    # big.parquet's new rows (and c.parquet, its copy: every row a duplicate) are in.
    assert _manifest(cfg)[1:] == [("big.parquet", "loaded", 120, 114, 2, 4), ("c.parquet", "loaded", 120, 0, 2, 118)]


def test_duplicates_found_in_parts_of_the_ids_as_in_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The batch's ids are compared once, in parts of their hashes sized by the budget (raw/load.py `dedupe`): in
    four parts the raw layer is the one of a single part, and the duplicates are the ones counted by hand above."""
    one, parts = _folder(tmp_path / "one"), _folder(tmp_path / "parts")
    run_steps(one, until="load_sources", run_started=RUN_STARTED)
    seen: list[dict[str, Any]] = []
    original = load.run_sql

    def spy(con: duckdb.DuckDBPyConnection, step: str, **params: Any) -> duckdb.DuckDBPyConnection:
        seen.extend([params] if step == "raw/dedupe_part" else [])
        return original(con, step, **params)

    monkeypatch.setattr(load, "run_sql", spy)
    monkeypatch.setattr(load, "BYTES_PER_ID", parts.engine.memory_budget_bytes // 40)  # 40 ids a part
    run_steps(parts, until="load_sources", run_started=RUN_STARTED)
    assert [(p["parts"], p["part"]) for p in seen] == [(4, 0), (4, 1), (4, 2), (4, 3)]  # 122 accepted rows
    assert differences(one.warehouse, parts.warehouse) == {}
    assert _manifest(parts) == [("a.parquet", "loaded", 5, 4, 0, 1), ("big.parquet", "loaded", 120, 112, 3, 5)]
