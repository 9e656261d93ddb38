"""Odd files and odd rows (docs/lifecycle.md): one bad row is that row's reject, one unreadable file is one refused
file, and every count equals the file's true number of records: read = loaded + rejected + duplicate."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import duckdb
import pytest

from cjm_analytics.config import Config
from tests.fixtures import RUN_STARTED, make_config, rows, run_steps

HEADER = "event_id,anonymous_id,user_id,event,ts,channel"
PRESETS = Path(__file__).with_name("presets")


def _row(i: int, channel: str = "x") -> str:
    return f"{i},a1,,landing,2026-11-01T10:00:00Z,{channel}"


def _broken(i: int) -> str:
    """A row whose quote never closes: the reader would read every later line as part of it."""
    return f'{i},a1,,"landing,2026-11-01T10:00:00Z,x'


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode()
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)


def _load(root: Path, sources: list[dict[str, Any]] | None = None,
          ) -> tuple[Config, list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Load the files below root: (config, manifest rows, rejects), after checking every file reconciles."""
    cfg = make_config(root, sources)
    run_steps(cfg, until="load_sources", run_started=RUN_STARTED)
    manifest = rows(cfg, "SELECT regexp_extract(file, '[^/]+$'), status, rows_read, rows_loaded, rows_rejected, "
                         "rows_duplicate FROM load_manifest ORDER BY file")
    for _, _, read, loaded, rejected, duplicate in manifest:
        assert read == loaded + rejected + duplicate, manifest
    rejects = rows(cfg, "SELECT regexp_extract(file, '[^/]+$'), row_number, reason, raw FROM rejects "
                        "ORDER BY file, row_number")
    return cfg, manifest, rejects


def _misnumbered(cfg: Config) -> list[tuple[Any, ...]]:
    """Loaded rows whose row_number is not their event_id (the tests number their records 1, 2, ...)."""
    return rows(cfg, "SELECT event_id, row_number FROM raw_events "
                     "WHERE event_id <> CAST(row_number AS VARCHAR) ORDER BY row_number LIMIT 5")


# --- a timestamp no reading can represent is that row's reject ----------------------------------------------


ODD_TIMESTAMPS = ["12345678901234567890123", "1e300", "-1e30", "NaN", "inf", "-inf", "infinity", "-infinity",
                  "99999-01-01", "2020-13-45", "294247-01-10 04:00:54", "-290308-12-22 00:00:00",
                  "9223372036854775807", "-9223372036854775808", "99999999999999999999", "0001-01-01 00:00:00",
                  "5881580-07-10"]


@pytest.mark.parametrize("fmt", ["auto", "epoch_s", "epoch_ms", "epoch_us", "%Y-%m-%d %H:%M:%S",
                                 "%Y-%m-%d %H:%M:%S%z"])
@pytest.mark.parametrize("timezone", ["UTC", "America/New_York", "Pacific/Kiritimati"])
def test_each_odd_timestamp_is_one_reject_and_the_rest_loads(tmp_path: Path, fmt: str, timezone: str) -> None:
    good = {"auto": "2026-11-01 10:00:00", "epoch_s": "1761991200", "epoch_ms": "1761991200000",
            "epoch_us": "1761991200000000", "%Y-%m-%d %H:%M:%S": "2026-11-01 10:00:00",
            "%Y-%m-%d %H:%M:%S%z": "2026-11-01 10:00:00+0000"}[fmt]
    texts = [good, *ODD_TIMESTAMPS, *(f"{t}+0000" for t in ODD_TIMESTAMPS if fmt.endswith("%z")), good]
    lines = [f"{i},a1,,landing,{t},x" for i, t in enumerate(texts, start=1)]
    _write(tmp_path / "web" / "a.csv", "\n".join([HEADER, *lines]) + "\n")
    source = {"name": "web", "kind": "clickstream", "path": "web/*", "timestamp_format": fmt, "timezone": timezone,
              "columns": {"event_id": "event_id", "anonymous_id": "anonymous_id", "event_name": "event",
                          "timestamp": "ts"}}
    cfg, manifest, rejects = _load(tmp_path, [source])
    n = len(texts)
    assert manifest == [("a.csv", "loaded", n, 2, n - 2, 0)]
    assert [row for _, row, _, _ in rejects] == list(range(2, n))
    assert _misnumbered(cfg) == []


TYPED_ODD = ["TIMESTAMP '294247-01-10 04:00:54'", "TIMESTAMP '-290308-12-22 00:00:00'", "TIMESTAMP 'infinity'",
             "TIMESTAMP '-infinity'", "TIMESTAMPTZ '294247-01-10 04:00:54+00'", "TIMESTAMPTZ 'infinity'",
             "DATE '5881580-07-10'", "DATE '-5877641-06-25'", "DATE 'infinity'"]


@pytest.mark.parametrize("kind", ["TIMESTAMP", "TIMESTAMPTZ", "DATE"])
@pytest.mark.parametrize("timezone", ["UTC", "America/New_York", "Pacific/Kiritimati"])
def test_each_odd_typed_timestamp_is_one_reject_and_the_rest_loads(tmp_path: Path, kind: str, timezone: str) -> None:
    odd = [t for t in TYPED_ODD if t.startswith(kind + " ")]
    values = [f"{kind} '2026-11-01 10:00:00'", *odd, f"{kind} '2026-11-01 10:00:00'"]
    (tmp_path / "web").mkdir()
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS " + " UNION ALL ".join(
        f"SELECT '{i}' AS event_id, 'a1' AS anonymous_id, 'landing' AS event, {v} AS ts"
        for i, v in enumerate(values, start=1)))
    con.execute(f"COPY t TO '{tmp_path / 'web' / 'a.parquet'}' (FORMAT parquet)")
    con.close()
    source = {"name": "web", "kind": "clickstream", "path": "web/*", "timezone": timezone,
              "columns": {"event_id": "event_id", "anonymous_id": "anonymous_id", "event_name": "event",
                          "timestamp": "ts"}}
    _, manifest, rejects = _load(tmp_path, [source])
    n = len(values)
    assert manifest == [("a.parquet", "loaded", n, 2, n - 2, 0)]
    assert [row for _, row, _, _ in rejects] == list(range(2, n))
