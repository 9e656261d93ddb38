"""Loading source files into the raw layer: every row read is loaded, rejected with a reason, or a duplicate.

Each file is staged as text, mapped to the canonical columns (by the source's column map, or by a preset's
SQL in sql/raw/presets/), judged in SQL (sql/raw/) and appended in one transaction together with its manifest
row, so a file is either wholly loaded or not at all.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from cjm_analytics.config import PRESETS, Source
from cjm_analytics.errors import SourceError
from cjm_analytics.presets import SNOWPLOW_TSV_COLUMNS, staged_as
from cjm_analytics.sql_steps import quote_ident, quote_literal, run_sql
from cjm_analytics.warehouse import transaction

_CANONICAL = ("event_id", "customer_id", "anonymous_id", "event_name", "timestamp", "channel")
_STAGED_AS = {"event_id": "given_event_id", "timestamp": "ts_text"}
# Control characters are escaped inside valid JSON, so this delimiter keeps each JSON line one field.
_JSON_LINE_DELIM = "\x1e"


@dataclass(frozen=True)
class FileLoad:
    """What happened to one file in one run."""

    source: str
    file: str
    status: str  # loaded | unchanged | refused
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    rows_duplicate: int = 0
    message: str = ""

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def content_hash(path: Path) -> str:
    """sha256 of the file's bytes: what decides whether a file is new, unchanged or changed."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_format(source: Source, path: Path) -> str:
    """csv, parquet or json: the configured format, else from the file name."""
    return source.format if source.format != "auto" else file_format_of_name(path)


def file_format_of_name(path: Path) -> str:
    """csv, parquet or json, from the file name."""
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith((".json", ".ndjson", ".jsonl")):
        return "json"
    return "csv"


def _stage_file(con: duckdb.DuckDBPyConnection, source: Source, path: Path) -> list[str]:
    """Read one file as text into temp table staged_file (+ _record) and staged_parse_rejects; its columns."""
    fmt = file_format(source, path)
    con.execute("CREATE OR REPLACE TEMP TABLE staged_parse_rejects (row_number BIGINT, reason VARCHAR, raw VARCHAR)")
    if path.stat().st_size == 0:
        con.execute("CREATE OR REPLACE TEMP TABLE staged_file (_record BIGINT)")
        return []
    if fmt == "parquet":
        _stage_parquet(con, path)
        columns = _columns(con)
        casts = ", ".join(f"CAST({quote_ident(c)} AS VARCHAR) AS {quote_ident(c)}" for c in columns)
        con.execute(f"CREATE OR REPLACE TEMP TABLE staged_file AS SELECT {casts}, _record FROM staged_file")
        return columns
    if fmt == "json":
        _stage_json_lines(con, path)
        return ["line"]
    return _stage_csv(con, path, source.delimiter)


def _stage_json_lines(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """One JSON object per line into staged_file(line); a line that is not one is rejected."""
    _read_text_records(con, path, "read_csv($path, header = false, columns = {'line': 'VARCHAR'}, "
                       f"delim = {quote_literal(_JSON_LINE_DELIM)}, quote = '', escape = '', "
                       "store_rejects = true, rejects_table = 'cjm_reject_errors', "
                       "rejects_scan = 'cjm_reject_scans')", header_lines=0)
    con.execute("""
        INSERT INTO staged_parse_rejects
        SELECT _record, 'not a JSON object', line FROM staged_file
        WHERE NOT coalesce(json_type(TRY_CAST(line AS JSON)) = 'OBJECT', false)""")
    con.execute("""
        DELETE FROM staged_file
        WHERE NOT coalesce(json_type(TRY_CAST(line AS JSON)) = 'OBJECT', false)""")


def _stage_csv(con: duckdb.DuckDBPyConnection, path: Path, delimiter: str) -> list[str]:
    """A CSV file with a header into staged_file, every column as text; the header's names."""
    header = csv_header(path, delimiter)
    if not header:
        raise SourceError("the first line holds no column names")
    columns = "{" + ", ".join(f"{quote_literal(c)}: 'VARCHAR'" for c in header) + "}"
    # The dialect is fixed and the columns come from the header: nothing is sniffed from the data, so a
    # broken row (e.g. an unclosed quote) is that row's reject, not a reason to misread the whole file.
    _read_text_records(con, path, f"read_csv($path, auto_detect = false, header = true, columns = {columns}, "
                       f"delim = {quote_literal(delimiter)}, quote = '\"', escape = '\"', "
                       "store_rejects = true, rejects_table = 'cjm_reject_errors', "
                       "rejects_scan = 'cjm_reject_scans')", header_lines=1)
    return header


def _stage_parquet(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    con.execute(
        "CREATE OR REPLACE TEMP TABLE staged_file AS "
        "SELECT * EXCLUDE (file_row_number), file_row_number + 1 AS _record "
        "FROM read_parquet($path, file_row_number = true)",
        {"path": str(path)},
    )


def _stage_preset(con: duckdb.DuckDBPyConnection, source: Source, path: Path) -> None:
    """Stage a preset's file as one JSON object text per record, staged_file(line); its SQL builds staged_rows."""
    con.execute("CREATE OR REPLACE TEMP TABLE staged_parse_rejects (row_number BIGINT, reason VARCHAR, raw VARCHAR)")
    how = staged_as(source.format, path)
    header: list[str] = []
    if path.stat().st_size == 0:
        con.execute("CREATE OR REPLACE TEMP TABLE staged_file (line VARCHAR, _record BIGINT)")
    elif how == "json_lines":
        _stage_json_lines(con, path)
    else:
        if how == "parquet":
            _stage_parquet(con, path)
        elif how == "csv":
            header = _stage_csv(con, path, source.delimiter)
        else:
            _stage_snowplow_tsv(con, path)
        # Each record as a JSON object; typed values (GA4's nested event_params in Parquet) stay typed.
        pairs = ", ".join(f"{quote_literal(c)}, {quote_ident(c)}" for c in _columns(con))
        con.execute(f"CREATE OR REPLACE TEMP TABLE staged_file AS "
                    f"SELECT CAST(json_object({pairs}) AS VARCHAR) AS line, _record FROM staged_file")
    try:
        run_sql(con, f"raw/presets/{source.format}", header=header)
    except duckdb.InvalidInputException as e:  # the preset's own check of the file (SQL error())
        raise SourceError(str(e).splitlines()[0].removeprefix("Invalid Input Error: ")) from None
    _override_columns(con, source)


def _stage_snowplow_tsv(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Snowplow's enriched TSV: no header, the canonical columns in order, no quoting (values hold no tabs)."""
    names = "{" + ", ".join(f"{quote_literal(c)}: 'VARCHAR'" for c in SNOWPLOW_TSV_COLUMNS) + "}"
    _read_text_records(con, path, f"read_csv($path, auto_detect = false, header = false, columns = {names}, "
                       "delim = '\\t', quote = '', escape = '', store_rejects = true, "
                       "rejects_table = 'cjm_reject_errors', rejects_scan = 'cjm_reject_scans')", header_lines=0)


def _override_columns(con: duckdb.DuckDBPyConnection, source: Source) -> None:
    """A preset's columns replaced where the config names a field: the record's own, else one in properties."""
    overrides = source.columns.mapped() if source.columns is not None else {}
    if not overrides and source.event_name is None:
        return
    select = [_STAGED_AS.get(c, c) for c in _CANONICAL]
    for c, key in overrides.items():
        path = quote_literal("$." + json.dumps(key))
        select[_CANONICAL.index(c)] = (f"coalesce(json_extract_string(CAST(raw AS JSON), {path}), "
                                       f"json_extract_string(properties, {path})) AS {_STAGED_AS.get(c, c)}")
    if source.event_name is not None:
        select[_CANONICAL.index("event_name")] = f"{quote_literal(source.event_name)} AS event_name"
    con.execute("CREATE OR REPLACE TEMP TABLE preset_rows AS SELECT * FROM staged_rows")
    con.execute(f"CREATE OR REPLACE TEMP VIEW staged_rows AS "
                f"SELECT row_number, {', '.join(select)}, properties, raw FROM preset_rows")


def csv_header(path: Path, delimiter: str) -> list[str]:
    """The column names on a CSV file's first line (gzip and a UTF-8 BOM allowed), made unique."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8-sig", errors="replace", newline="") as f:
        names = next(csv.reader(f, delimiter=delimiter), [])
    unique: list[str] = []
    for name in names:
        candidate, n = name, 1
        while candidate in unique:
            n += 1
            candidate = f"{name}_{n}"
        unique.append(candidate)
    return unique


def _read_text_records(con: duckdb.DuckDBPyConnection, path: Path, reader: str, header_lines: int) -> None:
    """Stage a text file; rows the CSV reader refuses go to staged_parse_rejects with their record number."""
    con.execute("DROP TABLE IF EXISTS cjm_reject_errors")
    con.execute("DROP TABLE IF EXISTS cjm_reject_scans")
    # row_number() OVER () streams in scan order: the accepted rows' order in the file.
    con.execute(f"CREATE OR REPLACE TEMP TABLE staged_file AS SELECT *, row_number() OVER () AS _ordinal FROM {reader}",
                {"path": str(path)})
    # The reader reports a refused row's record number (counting the header); accepted rows keep file order,
    # so the i-th accepted row is record i + (refused rows before it).
    con.execute(
        """
        INSERT INTO staged_parse_rejects  -- one row per record: a short row is reported once per missing column
        SELECT line - $header_lines, arg_min(error_type || ': ' || error_message, column_idx), any_value(csv_line)
        FROM cjm_reject_errors GROUP BY line""",
        {"header_lines": header_lines},
    )
    con.execute("""
        CREATE OR REPLACE TEMP TABLE staged_file AS
        WITH refused AS (
            SELECT row_number AS record, row_number() OVER (ORDER BY row_number) AS refused_so_far
            FROM staged_parse_rejects
        ),
        accepted_before AS (  -- accepted rows before each refused one
            SELECT record - refused_so_far AS accepted_before, max(refused_so_far) AS refused_so_far
            FROM refused GROUP BY ALL
        )
        SELECT a.* EXCLUDE (_ordinal), a._ordinal + coalesce(r.refused_so_far, 0) AS _record
        FROM staged_file AS a ASOF LEFT JOIN accepted_before AS r ON a._ordinal > r.accepted_before
        ORDER BY _record
        """)


def _columns(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [str(r[0]) for r in con.execute("DESCRIBE staged_file").fetchall() if r[0] != "_record"]


def _map_columns(con: duckdb.DuckDBPyConnection, source: Source, columns: list[str], is_json: bool) -> None:
    """Project staged_file onto the canonical columns as temp view staged_rows (identifiers quoted)."""
    if source.columns is None:
        raise SourceError("no columns configured")  # the config requires them for csv, json and parquet
    mapped = source.columns.mapped()
    if is_json:
        def value(col: str) -> str:
            return f"json_extract_string(CAST(line AS JSON), {quote_literal('$.' + json.dumps(col))})"

        removed = json.dumps({c: None for c in mapped.values()})
        properties = f"json_merge_patch(CAST(line AS JSON), {quote_literal(removed)})"
        raw = "line"
    else:
        missing = [c for c in mapped.values() if c not in columns]
        if columns and missing:
            raise SourceError(f"columns missing from the file: {', '.join(missing)} (it has: {', '.join(columns)})")

        def value(col: str) -> str:
            return quote_ident(col) if col in columns else "NULL"

        def as_json(cols: list[str]) -> str:
            pairs = ", ".join(f"{quote_literal(c)}, {quote_ident(c)}" for c in cols)
            return f"json_object({pairs})" if cols else "CAST('{}' AS JSON)"

        properties = as_json([c for c in columns if c not in mapped.values()])
        raw = f"CAST({as_json(columns)} AS VARCHAR)"
    select = [f"{value(mapped[c]) if c in mapped else 'NULL'} AS {_STAGED_AS.get(c, c)}" for c in _CANONICAL]
    if source.event_name is not None:
        select[_CANONICAL.index("event_name")] = f"{quote_literal(source.event_name)} AS event_name"
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW staged_rows AS SELECT _record AS row_number, {', '.join(select)}, "
        f"{properties} AS properties, {raw} AS raw FROM staged_file"
    )


def _scalar(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object] | None = None) -> int:
    row = con.execute(sql, params or {}).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def load_file(
    con: duckdb.DuckDBPyConnection, source: Source, path: Path, run_id: str, run_started: datetime
) -> FileLoad:
    """Load one file unless the manifest already holds its exact content; a changed file replaces its rows."""
    file = str(path)
    stat = path.stat()
    digest = content_hash(path)
    known = con.execute(
        "SELECT content_hash FROM load_manifest WHERE source = $source AND file = $file",
        {"source": source.name, "file": file},
    ).fetchall()
    if any(h == digest for (h,) in known):
        return FileLoad(source.name, file, "unchanged")
    try:  # staging writes temp tables only: a file that cannot be read leaves the warehouse untouched
        if source.format in PRESETS:
            _stage_preset(con, source, path)
        else:
            columns = _stage_file(con, source, path)
            _map_columns(con, source, columns, is_json=file_format(source, path) == "json")
        run_sql(
            con,
            "raw/classify_rows",
            source=source.name,
            ts_format=source.timestamp_format,
            timezone=source.timezone,
            ambiguous_times=source.ambiguous_times,
            has_zone="%z" in source.timestamp_format or "%Z" in source.timestamp_format,
            min_timestamp=source.min_timestamp,
            run_started=run_started.replace(tzinfo=None),
            max_future_us=int(source.max_future_hours * 3_600_000_000),
            max_future_hours=f"{source.max_future_hours:g}",
        )
    except (duckdb.Error, SourceError) as e:
        message = _explain(path, str(e).splitlines()[0])
        with transaction(con):
            _forget_file(con, source, file, known=bool(known), run_id=run_id)
            _record_manifest(con, source, path, stat.st_size, stat.st_mtime, digest, run_id, (0, 0, 0, 0), "refused")
            con.execute(
                "INSERT INTO rejects VALUES ($source, $file, NULL, $reason, NULL, $run_id)",
                {"source": source.name, "file": file, "reason": f"file refused: {message}", "run_id": run_id},
            )
        return FileLoad(source.name, file, "refused", message=message)
    with transaction(con):
        _forget_file(con, source, file, known=bool(known), run_id=run_id)
        run_sql(con, "raw/append_file", source=source.name, source_kind=source.kind, file=file, run_id=run_id)
        parse_rejects = _scalar(con, "SELECT count(*) FROM staged_parse_rejects")
        staged = _scalar(con, "SELECT count(*) FROM classified_rows")
        row_rejects = _scalar(con, "SELECT count(*) FROM classified_rows WHERE reject_reason IS NOT NULL")
        loaded = _scalar(con, "SELECT count(*) FROM appended_events")
        counts = (staged + parse_rejects, loaded, parse_rejects + row_rejects, staged - row_rejects - loaded)
        _record_manifest(con, source, path, stat.st_size, stat.st_mtime, digest, run_id, counts)
    return FileLoad(source.name, file, "loaded", *counts)


def _explain(path: Path, message: str) -> str:
    """The reader's error, with the likely cause where the reader's own words don't say it."""
    if "state machine reached an invalid state" in message and file_format_of_name(path) == "csv":
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        with opener(path, "rb") as f:
            head = f.read(1 << 24)
        crlf = head.count(b"\r\n")
        if crlf and head.count(b"\n") > crlf:
            return "mixed line endings (some lines end in LF, others in CRLF): normalize the file, e.g. dos2unix"
    return message


def _forget_file(con: duckdb.DuckDBPyConnection, source: Source, file: str, known: bool, run_id: str) -> None:
    """A changed file's earlier rows, rejects and manifest entry go: its new content replaces them."""
    if known:
        # The customers of the removed rows are recomputed too.
        con.execute(
            "INSERT INTO pending_changes SELECT DISTINCT customer_id, anonymous_id, $run_id FROM raw_events "
            "WHERE source = $source AND file = $file",
            {"source": source.name, "file": file, "run_id": run_id},
        )
        for table in ("raw_events", "rejects", "load_manifest"):
            con.execute(f"DELETE FROM {table} WHERE source = $source AND file = $file",
                        {"source": source.name, "file": file})


def _record_manifest(
    con: duckdb.DuckDBPyConnection, source: Source, path: Path, size: int, mtime: float, digest: str,
    run_id: str, counts: tuple[int, int, int, int], status: str = "loaded",
) -> None:
    con.execute(
        "INSERT INTO load_manifest VALUES ($source, $file, $size, $mtime, $hash, $status, $read, $loaded, $rejected, "
        "$duplicate, $run_id, $now)",
        {
            "source": source.name, "file": str(path), "size": size,
            "mtime": datetime.fromtimestamp(mtime, UTC).replace(tzinfo=None), "hash": digest, "status": status,
            "read": counts[0], "loaded": counts[1], "rejected": counts[2], "duplicate": counts[3],
            "run_id": run_id, "now": datetime.now(UTC).replace(tzinfo=None),
        },
    )


def load_source(
    con: duckdb.DuckDBPyConnection, source: Source, run_id: str, run_started: datetime
) -> list[FileLoad]:
    """Load every file the source's glob matches, each in its own transaction."""
    run_sql(con, "raw/macros")
    return [load_file(con, source, path, run_id, run_started) for path in source.files()]
