"""A source's batch is read in chunks of files within engine.memory_budget (raw/load.py `chunks`): loading it in
several chunks gives exactly the raw layer of loading it in one, on a first load and on a night that changes,
re-exports and repeats files."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from cjm_analytics.config import load_config
from cjm_analytics.raw import load
from tests.conftest import SAMPLE_CONFIG, copy_sample
from tests.fixtures import RUN_STARTED, make_config, run_steps

# The raw layer, each table without what differs between two runs of the same load in two copies of a folder
# (run ids, load times, the copy's folder).
NAME = "regexp_extract(file, '[^/]+$') AS name"
RAW = {
    "raw_events": f"* EXCLUDE (run_id, file), {NAME}",
    "rejects": f"* EXCLUDE (run_id, file), {NAME}",
    "raw_duplicates": f"* EXCLUDE (file), {NAME}",
    "load_manifest": f"* EXCLUDE (run_id, loaded_at, file), {NAME}",
    "(SELECT DISTINCT customer_id, anonymous_id FROM pending_changes)": "*",  # a set of ids
}


def differences(left: Path, right: Path) -> dict[str, list[tuple[Any, ...]]]:
    """The rows of each raw table found in one warehouse and not the other (EXCEPT ALL both ways)."""
    con = duckdb.connect()
    con.execute(f"ATTACH '{left}' AS l (READ_ONLY)")
    con.execute(f"ATTACH '{right}' AS r (READ_ONLY)")
    found = {}
    for table, columns in RAW.items():
        for a, b in (("l", "r"), ("r", "l")):
            qualified = table.replace("FROM ", f"FROM {a}.") if table.startswith("(") else f"{a}.{table}"
            other = table.replace("FROM ", f"FROM {b}.") if table.startswith("(") else f"{b}.{table}"
            only = con.execute(f"SELECT {columns} FROM {qualified} EXCEPT ALL SELECT {columns} FROM {other}").fetchall()
            if only:
                found[f"{table} only in {a}"] = only[:5]
    con.close()
    return found


@pytest.fixture
def chunk_sizes(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """The rows estimated for each chunk's files, per batch, as load_source read them."""
    seen: list[list[int]] = []
    original = load.chunks

    def spy(con: duckdb.DuckDBPyConnection, source: Any, files: Any, budget: int) -> Any:
        seen.append([])
        for chunk in original(con, source, files, budget):
            seen[-1].append(len(chunk))
            yield chunk

    monkeypatch.setattr(load, "chunks", spy)
    return seen


def _night(root: Path) -> None:
    """A night on the sample's folder: a file re-exported with fewer rows and a changed row, a new file that repeats
    ids of it and of another file (and its own), a row without an event name, and a file that cannot be read."""
    web = root / "clickstream"
    first = (web / "web_events_2026-11-01.csv").read_text().splitlines()
    second = (web / "web_events_2026-11-08.csv").read_text().splitlines()
    (web / "web_events_2026-11-08.csv").write_text("\n".join([second[0], *second[1:4000],
                                                              second[4000].replace("product_view", "search")]) + "\n")
    repeats = [*first[200:260], *second[3990:4010], *second[5000:5010], first[201], "x1,a,,,2026-11-20T10:00:00Z,,,,"]
    (web / "web_events_2026-11-22.csv").write_text("\n".join([first[0], *repeats]) + "\n")
    (web / "web_events_2026-11-29.csv").write_text("id,when\n1,2026-11-29\n")  # no column the source maps
    for name in ("08", "22", "29"):  # the same times in both copies: the manifest keeps them
        os.utime(web / f"web_events_2026-11-{name}.csv", (1_796_000_000, 1_796_000_000))


def test_a_batch_in_chunks_equals_one_chunk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            chunk_sizes: list[list[int]]) -> None:
    one = load_config(copy_sample(tmp_path / "one") / SAMPLE_CONFIG.name)
    run_steps(one, until="load_sources", run_started=RUN_STARTED)
    assert chunk_sizes == [[3], [1]]  # the sample's ~37k rows: one chunk per source

    # Each file a chunk of its own: a budget of 64MB at 100 MB a row.
    monkeypatch.setattr(load, "BYTES_PER_STAGED_ROW", 100 * 10**6)
    several = load_config(copy_sample(tmp_path / "several") / SAMPLE_CONFIG.name)
    several = several.model_copy(update={"engine": several.engine.model_copy(update={"memory_budget": "64MB"})})
    chunk_sizes.clear()
    run_steps(several, until="load_sources", run_started=RUN_STARTED)
    assert chunk_sizes == [[1, 1, 1], [1]]
    assert differences(one.warehouse, several.warehouse) == {}

    # The night: the re-exported file's earlier rows go, its removed rows' duplicates in the new file load.
    for cfg in (one, several):
        _night(cfg.warehouse.parent.parent)
    monkeypatch.setattr(load, "BYTES_PER_STAGED_ROW", 1000)
    chunk_sizes.clear()
    run_steps(one, until="load_sources", run_started=RUN_STARTED)
    assert chunk_sizes == [[3]]  # the changed file and the two new ones
    monkeypatch.setattr(load, "BYTES_PER_STAGED_ROW", 100 * 10**6)
    chunk_sizes.clear()
    run_steps(several, until="load_sources", run_started=RUN_STARTED)
    assert chunk_sizes == [[1, 1, 1]]
    assert differences(one.warehouse, several.warehouse) == {}
    # What the night did, so that the comparison compares something. The new file's 92 rows: 60 + 1 of the first
    # file (duplicates), 11 kept in the re-exported file (duplicates), 9 + 10 that the re-export dropped (loaded
    # from here, as a first load of the folder would), one without an event name.
    con = duckdb.connect(str(several.warehouse), read_only=True)
    assert con.execute("SELECT regexp_extract(file, '[^/]+$'), status, rows_read, rows_loaded, rows_rejected, "
                       "rows_duplicate FROM load_manifest WHERE file LIKE '%2026-11-2%' ORDER BY 1").fetchall() == [
        ("web_events_2026-11-22.csv", "loaded", 92, 19, 1, 72),
        ("web_events_2026-11-29.csv", "refused", 0, 0, 0, 0)]
    con.close()


def test_chunks_hold_whole_files_in_file_order_within_the_budget(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "web"
    folder.mkdir()
    con = duckdb.connect()
    for name, n in (("a", 10), ("b", 20), ("c", 30), ("d", 5), ("e", 50), ("f", 1)):
        con.execute(f"COPY (SELECT 'e' || i AS event_id FROM range({n}) AS r(i)) TO '{folder / name}.parquet' "
                    "(FORMAT parquet)")
    (folder / "g.csv").write_text("event_id\n" + "x\n" * 999)  # 2,000 bytes: 21 rows estimated
    cfg = make_config(tmp_path, sources=[{"name": "web", "kind": "clickstream", "path": "web/*",
                                          "columns": {"event_id": "event_id", "anonymous_id": "event_id",
                                                      "event_name": "event_id", "timestamp": "event_id"}}])
    files = [load.PresentFile.of(i, p) for i, p in enumerate(cfg.sources[0].files())]
    monkeypatch.setattr(load, "BYTES_PER_STAGED_ROW", 1)
    sizes = [[f.path.stem for f in chunk] for chunk in load.chunks(con, cfg.sources[0], files, 40)]
    # 10 + 20; 30 + 5; 50 alone (larger than the budget); 1 + 21.
    assert sizes == [["a", "b"], ["c", "d"], ["e"], ["f", "g"]]


# The load in a child process that kills itself (SIGKILL: no cleanup, no commit) once the second chunk of a batch
# of several is appended, inside the batch's transaction.
CRASH_AFTER_THE_FIRST_CHUNK = """
import os, signal, sys
from pathlib import Path
from cjm_analytics.config import load_config
from cjm_analytics.nightly import RunContext, load_sources
from cjm_analytics.raw import load

load.BYTES_PER_STAGED_ROW = 10**12  # every file a chunk of its own
original = load.run_sql
appended = []
def run_sql(con, step, **params):
    result = original(con, step, **params)
    appended.extend([step] if step == "raw/append_chunk" else [])
    if len(appended) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return result
load.run_sql = run_sql
load_sources(RunContext.start(load_config(Path(sys.argv[1]))))
"""


@pytest.mark.slow
def test_a_load_killed_between_chunks_leaves_the_warehouse_as_it_was(tmp_path: Path) -> None:
    cfg = load_config(copy_sample(tmp_path / "crashed") / SAMPLE_CONFIG.name)
    run_steps(cfg, until="load_sources", run_started=RUN_STARTED)
    before = tmp_path / "before.duckdb"
    shutil.copy(cfg.warehouse, before)
    _night(cfg.warehouse.parent.parent)
    crashed = subprocess.run([sys.executable, "-c", CRASH_AFTER_THE_FIRST_CHUNK, str(cfg.warehouse.parent.parent /
                                                                                      SAMPLE_CONFIG.name)],
                             capture_output=True, timeout=120)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr.decode()
    assert differences(before, cfg.warehouse) == {}  # nothing of the night's chunks committed
    run_steps(cfg, until="load_sources", run_started=RUN_STARTED)
    uninterrupted = load_config(copy_sample(tmp_path / "uninterrupted") / SAMPLE_CONFIG.name)
    run_steps(uninterrupted, until="load_sources", run_started=RUN_STARTED)
    _night(uninterrupted.warehouse.parent.parent)
    run_steps(uninterrupted, until="load_sources", run_started=RUN_STARTED)
    assert differences(uninterrupted.warehouse, cfg.warehouse) == {}  # the rerun did the night's work
