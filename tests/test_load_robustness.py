"""Odd files and odd rows (docs/lifecycle.md): one bad row is that row's reject, one unreadable file is one refused
file, and every count equals the file's true number of records: read = loaded + rejected + duplicate."""

from __future__ import annotations

import gzip
import json
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


# --- an unterminated quote is one row's reject, not the rest of the file ---------------------------------------


@pytest.mark.parametrize(
    ("name", "eol", "broken"),
    [
        ("a.csv", "\n", [11]),
        ("a.csv.gz", "\n", [11]),
        ("a.csv", "\r\n", [11]),
        ("a.csv", "\n", [11, 12, 30_000, 50_011]),  # two in a row, and the very last record
    ],
)
def test_an_unterminated_quote_is_that_rows_reject_and_every_later_row_loads(
        tmp_path: Path, name: str, eol: str, broken: list[int]) -> None:
    n = 50_011
    records = [_broken(i) if i in broken else _row(i) for i in range(1, n + 1)]
    _write(tmp_path / "web" / name, eol.join([HEADER, *records]) + eol)
    cfg, manifest, rejects = _load(tmp_path)
    assert manifest == [(name, "loaded", n, n - len(broken), len(broken), 0)]
    # The reject is the broken record's first line, as it is in the file.
    assert [(row, reason.split(":")[0], raw) for _, row, reason, raw in rejects] == [
        (i, "UNQUOTED VALUE", _broken(i)) for i in broken]
    assert _misnumbered(cfg) == []


@pytest.mark.parametrize("name", ["a.csv", "a.csv.gz"])
def test_an_unterminated_quote_in_a_file_read_in_parallel(tmp_path: Path, name: str) -> None:
    # Over the reader's 32 MB buffer the file is read in parallel, where such a row used to lose the rows after
    # it up to the next buffer (93,046 of them in a 263 MB file) and its reject showed the row before it.
    n, broken = 1_000_011, [11, 700_000]
    records = [_broken(i) if i in broken else _row(i) for i in range(1, n + 1)]
    _write(tmp_path / "web" / name, "\n".join([HEADER, *records]) + "\n")
    cfg, manifest, rejects = _load(tmp_path)
    assert manifest == [(name, "loaded", n, n - len(broken), len(broken), 0)]
    assert [(row, reason.split(":")[0], raw) for _, row, reason, raw in rejects] == [
        (i, "UNQUOTED VALUE", _broken(i)) for i in broken]
    assert _misnumbered(cfg) == []


def test_a_quote_closed_lines_later_rejects_only_the_row_that_opened_it(tmp_path: Path) -> None:
    # The reader reads records 11 to 15 as one (the quote of 11 closes inside 15, before 'ing'): the lines
    # after record 11's first are read again on their own. A quote inside a field is a character (record 15).
    records = [_row(i) for i in range(1, 21)]
    records[10], records[14] = _broken(11), '15,a1,,land"ing,2026-11-01T10:00:00Z,x'
    _write(tmp_path / "web" / "a.csv", "\n".join([HEADER, *records]) + "\n")
    cfg, manifest, rejects = _load(tmp_path)
    assert manifest == [("a.csv", "loaded", 20, 19, 1, 0)]
    assert [(row, raw) for _, row, _, raw in rejects] == [(11, _broken(11))]
    assert _misnumbered(cfg) == []


# --- a long field is read, whatever the reader's line limit -----------------------------------------------------


BIG = 50_000_000  # bytes: more than the CSV reader's default line limit (2 MB) and its buffer (32 MB)


@pytest.mark.parametrize(
    ("name", "size", "field"),
    [
        ("a.csv", BIG, lambda size: "y" * size),
        ("a.csv.gz", BIG, lambda size: "y" * size),
        ("a.csv", 3_000_000, lambda size: "y" * size),  # over the line limit, within one buffer
        # A quoted field of many short lines: the record, not any line, is long.
        ("a.csv", 3_000_000, lambda size: '"' + ("y" * 99 + "\n") * (size // 100) + '"'),
        ("a.csv", BIG, lambda size: '"' + ("y" * 99 + "\n") * (size // 100) + '"'),
    ],
)
def test_a_long_field_is_read_and_its_row_kept(tmp_path: Path, name: str, size: int, field: Any) -> None:
    records = [_row(i) for i in range(1, 8)]
    records[3] = _row(4, field(size))
    _write(tmp_path / "web" / name, "\n".join([HEADER, *records]) + "\n")
    cfg, manifest, rejects = _load(tmp_path)
    assert manifest == [(name, "loaded", 7, 7, 0, 0)]
    assert rejects == []
    assert rows(cfg, "SELECT row_number, length(channel) FROM raw_events WHERE length(channel) > 1") == [
        (4, size if field(1) == "y" else size // 100 * 100)]
    assert _misnumbered(cfg) == []


def test_a_long_json_line_is_read_and_its_row_kept(tmp_path: Path) -> None:
    lines = [json.dumps({"event_id": str(i), "anonymous_id": "a1", "event": "landing", "ts": "2026-11-01T10:00:00Z",
                         "note": "y" * (BIG if i == 4 else 1)}) for i in range(1, 8)]
    _write(tmp_path / "web" / "a.jsonl", "\n".join(lines) + "\n")
    cfg, manifest, rejects = _load(tmp_path)
    assert (manifest, rejects) == ([("a.jsonl", "loaded", 7, 7, 0, 0)], [])
    assert rows(cfg, "SELECT row_number, length(properties ->> 'note') FROM raw_events "
                     "WHERE length(properties ->> 'note') > 1") == [(4, BIG)]
    assert _misnumbered(cfg) == []


def test_a_long_snowplow_tsv_field_is_read_and_its_row_kept(tmp_path: Path) -> None:
    lines = (PRESETS / "snowplow_tsv_enriched_2026-11-04.tsv").read_text().splitlines()
    fields = lines[0].split("\t")
    fields[30] = "y" * BIG  # page_title
    lines[0] = "\t".join(fields)
    _write(tmp_path / "s" / "a.tsv", "\n".join(lines) + "\n")
    cfg, manifest, _ = _load(tmp_path, [{"name": "s", "kind": "clickstream", "path": "s/*", "format": "snowplow"}])
    # As the fixture file loads (tests/test_presets.py), without the JSON file its line 4 duplicates.
    assert manifest == [("a.tsv", "loaded", 4, 3, 1, 0)]
    assert rows(cfg, "SELECT row_number, length(properties ->> 'page_title') FROM raw_events "
                     "WHERE length(properties ->> 'page_title') > 1") == [(1, BIG)]


# --- a file whose first line cannot be read is refused alone, with the cause ---------------------------------


@pytest.mark.parametrize(
    ("name", "content", "cause"),
    [
        ("a.csv", b"y" * BIG, "the first line is longer than"),  # one 50 MB line: no header
        ("a.csv", b"\0" * 1_000_000, "NUL bytes"),
        ("a.csv", b"\0" * 100 + b"\n" + f"{HEADER}\n{_row(1)}\n".encode(), "NUL bytes"),
        ("a.csv.gz", f"{HEADER}\n{_row(1)}\n".encode(), "not gzip"),  # named .gz, not compressed
        ("a.csv.gz", gzip.compress(f"{HEADER}\n{_row(1)}\n".encode(), mtime=0)[:12], "gzip"),  # cut inside the header
        ("a.csv", b"\n" + f"{HEADER}\n{_row(1)}\n".encode(), "the first line holds no column names"),
    ],
)
def test_a_file_whose_header_cannot_be_read_is_refused_and_the_others_load(
        tmp_path: Path, name: str, content: bytes, cause: str) -> None:
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / name).write_bytes(content)
    _write(tmp_path / "web" / "b.csv", f"{HEADER}\n{_row(1)}\n")
    _, manifest, rejects = _load(tmp_path)
    assert manifest == [(name, "refused", 0, 0, 0, 0), ("b.csv", "loaded", 1, 1, 0, 0)]
    [(_, row, reason, _)] = rejects
    assert row is None and reason.startswith("file refused: ") and cause in reason, reason
    assert len(reason) < 300  # one line a user can read, not the file's content


def test_a_header_field_over_128_kib_is_a_column_name(tmp_path: Path) -> None:
    long_name = "n" * 200_000  # over the 128 KiB field limit of Python's csv module
    _write(tmp_path / "web" / "a.csv", f"{HEADER},{long_name}\n{_row(1)},v\n")
    cfg, manifest, _ = _load(tmp_path)
    assert manifest == [("a.csv", "loaded", 1, 1, 0, 0)]
    assert json.loads(rows(cfg, "SELECT properties FROM raw_events")[0][0]) == {long_name: "v"}


# --- JSON lines: a bad line is that line's reject ------------------------------------------------------------


@pytest.mark.parametrize("control", ["\x1e", "\x01", "\x00", "\x1f", "\r"])
@pytest.mark.parametrize("bad_line", [1, 2])
@pytest.mark.parametrize("eol", ["\n", "\r\n"])
def test_a_json_line_with_a_raw_control_character_is_that_lines_reject(
        tmp_path: Path, control: str, bad_line: int, eol: str) -> None:
    lines = [json.dumps({"event_id": str(i), "anonymous_id": "a1", "event": "landing",
                         "ts": "2026-11-01T10:00:00Z"}) for i in range(1, 5)]
    lines[bad_line - 1] = lines[bad_line - 1].replace('"landing"', f'"land{control}ing"')
    _write(tmp_path / "web" / "a.jsonl", eol.join(lines) + eol)
    cfg, manifest, rejects = _load(tmp_path)
    assert manifest == [("a.jsonl", "loaded", 4, 3, 1, 0)]
    assert [(row, raw) for _, row, _, raw in rejects] == [(bad_line, lines[bad_line - 1])]
    assert _misnumbered(cfg) == []


# --- CSV column names are the file's, whatever they are ---------------------------------------------------------


# raw/load.py is to read a text file's record numbers from the column `record_column(names)` names (it reads
# `_record`, which is then the file's own column): these fail until it does, then pass (strict).


@pytest.mark.parametrize(
    ("extra", "properties"),
    [
        pytest.param("_record", {"_record": "v"}),
        ("_ordinal", {"_ordinal": "v"}),
        ("file_row_number", {"file_row_number": "v"}),
        pytest.param("_record_,_RECORD", {"_record_": "v", "_RECORD": "w"}),
        ("", {"column7": "v"}),  # an empty name: column<n>, n its place counting from 1
        ("Channel", {"Channel_2": "v"}),  # `channel` is a column of the file too: names are unique without case
        ("a,A", {"a": "v", "A_2": "w"}),
        ("a,a", {"a": "v", "a_2": "w"}),
        ('"x,\ny"', {"x,\ny": "v"}),  # a quoted name with a delimiter and a line break
    ],
)
def test_any_header_names_load(tmp_path: Path, extra: str, properties: dict[str, str]) -> None:
    values = ",".join("vw"[: len(properties)])
    _write(tmp_path / "web" / "a.csv", f"{HEADER},{extra}\n{_row(1)},{values}\n{_row(2)},{values}\n")
    cfg, manifest, rejects = _load(tmp_path)
    assert (manifest, rejects) == ([("a.csv", "loaded", 2, 2, 0, 0)], [])
    assert [json.loads(p) for (p,) in rows(cfg, "SELECT properties FROM raw_events ORDER BY row_number")] == [
        properties, properties]
    assert _misnumbered(cfg) == []


def test_a_mapped_column_may_have_an_internal_looking_name(tmp_path: Path) -> None:
    _write(tmp_path / "web" / "a.csv", "_record,_ordinal,event,ts\nc1,a1,landing,2026-11-01T10:00:00Z\n"
                                       "c2,a2,landing,2026-11-01T10:00:00Z\n")
    source = {"name": "web", "kind": "clickstream", "path": "web/*", "columns": {
        "customer_id": "_record", "anonymous_id": "_ordinal", "event_name": "event", "timestamp": "ts"}}
    cfg, manifest, _ = _load(tmp_path, [source])
    assert manifest == [("a.csv", "loaded", 2, 2, 0, 0)]
    assert rows(cfg, "SELECT row_number, customer_id, anonymous_id FROM raw_events ORDER BY row_number") == [
        (1, "c1", "a1"), (2, "c2", "a2")]


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
