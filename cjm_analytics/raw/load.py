"""Loading source files into the raw layer: every row read is loaded, rejected with a reason, or a duplicate.

A run loads each source's new and changed files as one batch, written in one transaction together with its
manifest rows: a source's files of one run are either all loaded or none is. The files are read chunk by chunk,
in file order, each chunk's rows within the memory budget (`chunks`; a Parquet file larger than the budget is read
in pieces, `_stage_pieces`). A chunk's files are staged on a second connection outside the transaction (temp
objects only, so a file that cannot be read is refused alone and the others load), mapped to the canonical
columns (by the source's column map, or by a preset's SQL in sql/raw/presets/) and judged row by row
(sql/raw/append_file.sql); the transaction then appends the chunk (sql/raw/append_chunk.sql), reading its rows
as Arrow tables that are freed before the next chunk. Once every chunk is in, the batch's duplicates are found
in one pass over the ids (`dedupe`, sql/raw/dedupe_part.sql) and deleted (sql/raw/append_batch.sql).
"""

from __future__ import annotations

import csv
import math
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from cjm_analytics import progress
from cjm_analytics.config import PRESETS, ColumnMap, Engine, Source
from cjm_analytics.errors import SourceError
from cjm_analytics.presets import staged_as
from cjm_analytics.raw import project
from cjm_analytics.raw.lifecycle import LoadPlan, ManifestEntry, PresentFile, plan_files
from cjm_analytics.raw.project import create_staged_rows
from cjm_analytics.raw.text import (
    explain_refusal,
    limit_kept,
    record_column,
    stage_csv,
    stage_json_lines,
    stage_snowplow_text,
)
from cjm_analytics.sql_steps import quote_ident, quote_literal, run_sql
from cjm_analytics.warehouse import transaction, undone_after

# The staging connection's tables of one chunk (sql/raw/start_chunk.sql), as the transaction reads them.
_CHUNK_TABLES = ("batch_rows", "batch_parse_rejects", "batch_filtered")

# What a row of a chunk costs in memory while it is appended: its staged row, its Arrow copy, and the hash
# tables that de-duplicate it, with room for the pages DuckDB caches meanwhile (with the default budget, 600k
# rows a chunk, the load peaked at 903 MB of RSS at 10M events: docs/performance.md). A chunk's files hold at
# most memory_budget / BYTES_PER_STAGED_ROW rows, estimated before they are read (`_estimated_rows`).
BYTES_PER_STAGED_ROW = 1000
# What an id costs in the hash table that finds the batch's duplicates (`dedupe`): the batch's ids are split into
# parts of hash(event_id) that fit memory_budget at this many bytes each.
BYTES_PER_ID = 100
DEFAULT_MEMORY_BUDGET = Engine().memory_budget_bytes  # engine.memory_budget's default, said in config.py
# A text file's rows, estimated from its bytes (uncompressed): a short event line. Over-estimating only makes
# more, smaller chunks.
_TEXT_BYTES_PER_ROW = 100


@dataclass(frozen=True)
class FileLoad:
    """What happened to one file in one run."""

    source: str
    file: str
    # loaded | unchanged | refused (tried again next run) | renamed | retracted
    # (gone from the folder, its events removed) | missing (gone, its events kept: missing_files: keep)
    status: str
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    rows_duplicate: int = 0
    rows_filtered: int = 0  # left out by the source's where / where_not
    rows_removed: int = 0
    message: str = ""

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


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


# --- staging one file: temp view staged_rows, macro cjm_raw, table staged_parse_rejects -------------------


def _stage(con: duckdb.DuckDBPyConnection, source: Source, f: PresentFile) -> None:
    """One non-empty text or preset file as temp view staged_rows (see sql/raw/append_file.sql)."""
    con.execute("CREATE OR REPLACE TEMP TABLE staged_parse_rejects (row_number BIGINT, reason VARCHAR, raw VARCHAR)")
    if source.format in PRESETS:
        _stage_preset(con, source, f.path)
        create_staged_rows(con, project.preset(source, "preset_rows", str(f.index)))
        return
    if not isinstance(source.columns, ColumnMap):
        raise SourceError("no columns configured")  # the config requires them for csv, json and parquet
    if file_format(source, f.path) == "json":
        stage_json_lines(con, f.path)
        create_staged_rows(con, project.json_lines(source, source.columns, "staged_file", "line", str(f.index),
                                                   "_record"))
    else:
        names = stage_csv(con, f.path, source.delimiter)
        create_staged_rows(con, project.tabular(source, source.columns, "staged_file", dict.fromkeys(names, "VARCHAR"),
                                                str(f.index), quote_ident(record_column(names))))


def _parquet_columns(con: duckdb.DuckDBPyConnection, path: Path) -> dict[str, str]:
    """A Parquet file's columns and their DuckDB types, from its footer."""
    described = con.execute("DESCRIBE SELECT * FROM read_parquet($path)", {"path": str(path)}).fetchall()
    return {str(name): str(kind) for name, kind, *_ in described}


def _stage_parquet_files(con: duckdb.DuckDBPyConnection, source: Source, files: list[PresentFile],
                         columns: dict[str, str]) -> None:
    """Parquet files of one schema as one temp view staged_rows, read in place and typed: nothing is copied
    or cast to text before the rows are judged, and one statement judges them all."""
    if not isinstance(source.columns, ColumnMap):
        raise SourceError("no columns configured")
    con.execute("CREATE OR REPLACE TEMP TABLE staged_parse_rejects (row_number BIGINT, reason VARCHAR, raw VARCHAR)")
    record, index = project.internal_name("cjm_record", columns), project.internal_name("cjm_file_index", columns)
    selected = ", ".join(quote_ident(c) for c in columns)
    if {c.lower() for c in columns} & {"file_row_number", "file_index"}:
        # The file's own column hides the reader's virtual one: number the rows in scan order, file by file.
        relation = "(" + " UNION ALL ".join(
            f"(SELECT {selected}, row_number() OVER () AS {record}, {f.index} AS {index} "
            f"FROM read_parquet({quote_literal(str(f.path))}))" for f in files) + ")"
    else:
        paths = ", ".join(quote_literal(str(f.path)) for f in files)
        indexes = ", ".join(str(f.index) for f in files)
        relation = (f"(SELECT {selected}, file_row_number + 1 AS {record}, "
                    f"[{indexes}][CAST(file_index AS BIGINT) + 1] AS {index} FROM read_parquet([{paths}]))")
    create_staged_rows(con, project.tabular(source, source.columns, relation, columns, index, record))


def _stage_parquet_piece(con: duckdb.DuckDBPyConnection, source: Source, f: PresentFile,
                         columns: dict[str, str], record: str) -> None:
    """A piece of a Parquet file, the Arrow table piece_rows (`_stage_pieces`), as temp view staged_rows: its
    columns cast back to the types DuckDB reads from the file, so a piece is judged as the whole file would be."""
    if not isinstance(source.columns, ColumnMap):
        raise SourceError("no columns configured")
    con.execute("CREATE OR REPLACE TEMP TABLE staged_parse_rejects (row_number BIGINT, reason VARCHAR, raw VARCHAR)")
    index = project.internal_name("cjm_file_index", columns)
    typed = ", ".join(f"CAST({quote_ident(c)} AS {kind}) AS {quote_ident(c)}" for c, kind in columns.items())
    relation = f"(SELECT {typed}, {quote_ident(record)}, {f.index} AS {index} FROM piece_rows)"
    create_staged_rows(con, project.tabular(source, source.columns, relation, columns, index, quote_ident(record)))


def _stage_parquet(con: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
    """A preset's Parquet file as staged_file: its columns and the record number (named as no column of it is)."""
    names = list(_parquet_columns(con, path))
    record = "file_row_number + 1" if "file_row_number" not in {n.lower() for n in names} else "row_number() OVER ()"
    con.execute(f"CREATE OR REPLACE TEMP TABLE staged_file AS SELECT {', '.join(quote_ident(n) for n in names)}, "
                f"{record} AS {quote_ident(record_column(names))} FROM read_parquet($path)", {"path": str(path)})
    return names


def _stage_preset(con: duckdb.DuckDBPyConnection, source: Source, path: Path) -> None:
    """Stage a preset's file as one JSON object text per record, staged_file(line); its SQL maps the records."""
    how = staged_as(source.format, path)
    header: list[str] = []
    if how == "json_lines":
        stage_json_lines(con, path)
    else:
        if how == "parquet":
            names = _stage_parquet(con, path)
        elif how == "csv":
            names = header = stage_csv(con, path, source.delimiter)
        else:
            names = stage_snowplow_text(con, path)
        # Each record as a JSON object; typed values (GA4's nested event_params in Parquet) stay typed.
        pairs = ", ".join(f"{quote_literal(c)}, {quote_ident(c)}" for c in names)
        con.execute(f"CREATE OR REPLACE TEMP TABLE staged_file AS SELECT CAST(json_object({pairs}) AS VARCHAR) "
                    f"AS line, {quote_ident(record_column(names))} AS _record FROM staged_file")
    try:
        run_sql(con, f"raw/presets/{source.format}", header=header)
    except duckdb.InvalidInputException as e:  # the preset's own check of the file (SQL error())
        raise SourceError(str(e).splitlines()[0].removeprefix("Invalid Input Error: ")) from None



# --- one source's batch -------------------------------------------------------------------------------------


def _holding_duplicates_of_removed(con: duckdb.DuckDBPyConnection, source: Source, plan: LoadPlan,
                                   files: list[PresentFile]) -> list[PresentFile]:
    """Unchanged files that hold a duplicate of an event whose loaded row goes (its file changed, is read again or
    is retracted): read again with the batch, so the event is loaded from them (as a full refresh would)."""
    removed = sorted(plan.known | {e.file for e in plan.retracted})
    if not removed:
        return []
    holders = {str(file) for (file,) in con.execute(
        "SELECT DISTINCT file FROM raw_duplicates WHERE source = $source AND event_id IN "
        "(SELECT event_id FROM raw_events WHERE source = $source AND list_contains($removed, file))",
        {"source": source.name, "removed": removed}).fetchall()}
    return [f for f in files if str(f.path) in holders and f not in plan.read]


def _manifest(con: duckdb.DuckDBPyConnection, source: Source) -> list[ManifestEntry]:
    rows = con.execute("SELECT file, content_hash, status, reading_fingerprint, rows_loaded FROM load_manifest "
                       "WHERE source = $source", {"source": source.name}).fetchall()
    return [ManifestEntry(file, digest, status, fingerprint, loaded) for file, digest, status, fingerprint, loaded
            in rows]


def load_source(con: duckdb.DuckDBPyConnection, source: Source, run_id: str, run_started: datetime,
                reload: bool = False, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> list[FileLoad]:
    """Carry out the source's LoadPlan (raw/lifecycle.py) in one transaction: what happened to each file.

    A file whose content was loaded with tonight's settings loads nothing; the others are staged (temp tables
    only), chunk by chunk within memory_budget (bytes), and written together with renames, retractions and their
    manifest rows.
    """
    run_sql(con, "raw/macros")
    files = [PresentFile.of(index, path) for index, path in enumerate(source.files())]
    fingerprint = source.reading_fingerprint()
    plan = plan_files(_manifest(con, source), files, fingerprint, source.missing_files, reload)
    holders = _holding_duplicates_of_removed(con, source, plan, files)
    plan.read = sorted(plan.read + holders, key=lambda f: f.index)
    plan.known |= {str(f.path) for f in holders}
    plan.unchanged = [f for f in plan.unchanged if f not in holders]
    loads = {str(f.path): FileLoad(source.name, str(f.path), "unchanged") for f in plan.unchanged}
    loads |= {str(f.path): FileLoad(source.name, str(f.path), "renamed", message=f"renamed from {old.file}")
              for old, f in plan.renamed}
    if plan.writes:
        loads |= _load_batch(con, source, plan, fingerprint, run_id, run_started, memory_budget)
    gone = [FileLoad(source.name, e.file, "retracted", rows_removed=e.rows_loaded,
                     message=f"gone from the folder: its {e.rows_loaded:,} event(s) retracted")
            for e in plan.retracted]
    gone += [FileLoad(source.name, e.file, "missing", message=f"gone from the folder: its {e.rows_loaded:,} "
                      "event(s) kept (missing_files: keep)") for e in plan.kept]
    return [loads[str(f.path)] for f in files] + gone


def _load_batch(con: duckdb.DuckDBPyConnection, source: Source, plan: LoadPlan, fingerprint: str, run_id: str,
                run_started: datetime, memory_budget: int) -> dict[str, FileLoad]:
    """Write the plan in one transaction, reading the files chunk by chunk (`chunks`); what each file got."""
    run_sql(con, "raw/start_batch")
    if plan.read:
        con.executemany(
            "INSERT INTO batch_files VALUES ($1, $2, $3, $4, $5, $6, 'loaded', NULL)",
            [[f.index, str(f.path), f.size, datetime.fromtimestamp(f.mtime, UTC).replace(tzinfo=None), f.digest,
              str(f.path) in plan.known] for f in plan.read],
        )
    if plan.renamed:
        con.executemany("INSERT INTO batch_renamed VALUES ($1, $2, $3, $4)",
                        [[old.file, str(f.path), f.size, datetime.fromtimestamp(f.mtime, UTC).replace(tzinfo=None)]
                         for old, f in plan.renamed])
    if plan.retracted:
        con.executemany("INSERT INTO batch_retracted VALUES ($1)", [[e.file] for e in plan.retracted])
    if plan.cleared_refusals:
        con.executemany("INSERT INTO batch_cleared_refusals VALUES ($1)", [[f] for f in plan.cleared_refusals])
    to_read = [f for f in plan.read if f.size > 0]  # an empty file loads with no rows
    reporter = progress.current()
    reporter.files(len(to_read), sum(f.size for f in to_read))
    # preserve_insertion_order off: raw_events' row order means nothing, and DuckDB then compresses and writes the
    # batch's row groups in parallel as it inserts them (keeping the order leaves them to be compressed again at the
    # next checkpoint: 5-7 CPU s more at 10M events). arrow_lossless_conversion on: a chunk's Arrow tables keep
    # DuckDB's types (JSON as JSON), so its properties reach raw_events without being parsed again.
    with _staging_connection(con) as stage, _setting(con, "preserve_insertion_order", False), \
            _setting(con, "arrow_lossless_conversion", True):
        run_sql(stage, "raw/start_chunk")
        empty = {name: _arrow(stage, name) for name in _CHUNK_TABLES}
        staged = {name: _ChunkTable(arrow) for name, arrow in empty.items()}
        for name, view in staged.items():
            con.register(name, view)  # before the transaction (the class says why)
        try:
            with transaction(con):
                run_sql(con, "raw/forget_files", source=source.name, run_id=run_id)
                for chunk in chunks(stage, source, to_read, memory_budget):
                    for _ in _staged(stage, con, source, chunk, run_started, memory_budget, run_id):
                        for name, view in staged.items():
                            view.table = _arrow(stage, name)
                        run_sql(stage, "raw/start_chunk")  # the staging connection's copy is freed first
                        run_sql(con, "raw/append_chunk", source=source.name, source_kind=source.kind,
                                run_id=run_id)
                        for name, view in staged.items():
                            view.table = empty[name]  # and the chunk once appended
                dedupe(con, source, run_id, memory_budget)
                run_sql(con, "raw/append_batch", source=source.name, run_id=run_id,
                        reading_fingerprint=fingerprint, loaded_at=datetime.now(UTC).replace(tzinfo=None))
        finally:
            for name in staged:
                con.unregister(name)
    counts = con.execute("SELECT file, status, rows_read, rows_loaded, rows_rejected, rows_duplicate, "
                         "rows_filtered, coalesce(message, '') FROM batch_counts").fetchall()
    for table in ("batch_duplicates", "batch_file_counts", "batch_counts", "batch_files", "batch_renamed",
                  "batch_retracted", "batch_cleared_refusals", "batch_forgotten", "batch_refusals_done"):
        con.execute(f"DROP TABLE IF EXISTS {table}")
    sizes = {str(f.path): f.size for f in plan.read}
    return {file: FileLoad(source.name, file, status, read, loaded, rejected, duplicate, rows_filtered=filtered,
                           message=message or _nothing_read(status, read, sizes.get(file)))
            for file, status, read, loaded, rejected, duplicate, filtered, message in counts}


class _ChunkTable:
    """One of a chunk's staged tables as the writing connection reads it: an Arrow table (JSON stays JSON) behind
    a name registered once, before the batch's transaction, and pointed at each chunk's table in turn. A name
    registered or dropped inside the transaction would keep its Arrow table alive until the commit: every chunk
    at once (measured)."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def __arrow_c_stream__(self, requested_schema: object = None) -> object:
        return self.table.__arrow_c_stream__(requested_schema)


def _arrow(con: duckdb.DuckDBPyConnection, table: str) -> Any:
    return con.sql(f"SELECT * FROM {table}").to_arrow_table()


def chunks(con: duckdb.DuckDBPyConnection, source: Source, files: list[PresentFile],
           memory_budget: int) -> Iterator[list[PresentFile]]:
    """The files in file order, in runs whose estimated rows fit memory_budget; a file larger than the budget is a
    chunk of its own (read in pieces if it is Parquet: `_staged`)."""
    most = _rows_per_chunk(memory_budget)
    chunk: list[PresentFile] = []
    rows = 0
    for f in files:
        estimate = _estimated_rows(con, source, f)
        if chunk and rows + estimate > most:
            yield chunk
            chunk, rows = [], 0
        chunk.append(f)
        rows += estimate
    if chunk:
        yield chunk


def _rows_per_chunk(memory_budget: int) -> int:
    return max(1, memory_budget // BYTES_PER_STAGED_ROW)


def _staged(stage: duckdb.DuckDBPyConnection, writer: duckdb.DuckDBPyConnection, source: Source,
            chunk: list[PresentFile], run_started: datetime, memory_budget: int, run_id: str) -> Iterator[None]:
    """Stage the chunk into the staging connection's chunk tables, and yield each time they hold a part of it to
    append: once, or once per piece of a Parquet file larger than the budget."""
    most = _rows_per_chunk(memory_budget)
    f = chunk[0]
    if (len(chunk) == 1 and source.format not in PRESETS and file_format(source, f.path) == "parquet"
            and _estimated_rows(stage, source, f) > most):
        yield from _stage_pieces(stage, writer, source, f, most, run_started, run_id)
    else:
        _stage_chunk(stage, writer, source, chunk, run_started)
        yield


def _stage_pieces(stage: duckdb.DuckDBPyConnection, writer: duckdb.DuckDBPyConnection, source: Source,
                  f: PresentFile, most: int, run_started: datetime, run_id: str) -> Iterator[None]:
    """A Parquet file larger than the budget, staged and judged in pieces of at most `most` rows, each yielded to be
    appended before the next is read. One query streams the file (DuckDB reads it once, a row group at a time)
    on a connection of its own, so that staging a piece does not end it. If a piece cannot be read, the file is
    refused whole and what its earlier pieces appended goes (sql/raw/unappend_file.sql)."""
    try:
        columns = _parquet_columns(stage, f.path)
    except duckdb.Error as e:
        _refuse(writer, f, str(e))
        return
    if {c.lower() for c in columns} & {"file_row_number", "file_index"}:
        # The file's own column hides the reader's row number, which a piece needs: read whole.
        _stage_chunk(stage, writer, source, [f], run_started)
        yield
        return
    record = project.internal_name("cjm_record", columns)
    selected = ", ".join(quote_ident(c) for c in columns)
    reader = writer.cursor()
    appended = refused = False
    try:
        reader.execute("SET TimeZone = 'UTC'")
        pieces = reader.sql(f"SELECT {selected}, file_row_number + 1 AS {quote_ident(record)} "
                            f"FROM read_parquet({quote_literal(str(f.path))}, file_row_number = true)"
                            ).to_arrow_reader(most)
        while not refused:
            try:
                piece = pa.Table.from_batches([pieces.read_next_batch()])
            except StopIteration:
                break
            run_sql(stage, "raw/start_chunk")
            stage.register("piece_rows", piece)
            try:
                refused = not _append_files(stage, writer, source, [f], columns, run_started, piece_record=record)
            finally:
                stage.unregister("piece_rows")
            del piece
            if not refused:
                yield
                appended = True
    except (duckdb.Error, pa.ArrowException, OSError) as e:  # the stream could not start or go on
        _refuse(writer, f, _reading_error(stage, f.path) or str(e))
        refused = True
    finally:
        reader.close()
    if refused and appended:
        run_sql(writer, "raw/unappend_file", source=source.name, run_id=run_id, file=str(f.path), file_index=f.index)
    progress.current().file_read(f.size)


def _reading_error(con: duckdb.DuckDBPyConnection, path: Path) -> str | None:
    """The error DuckDB gives reading every value of a Parquet file (as the whole file's staging would), if any:
    through a stream the same error reads differently. The file is read again, on failure only."""
    try:
        con.execute("SELECT max(hash(t)) FROM read_parquet($path) AS t", {"path": str(path)}).fetchall()
    except duckdb.Error as e:
        return str(e)
    return None


def dedupe(con: duckdb.DuckDBPyConnection, source: Source, run_id: str, memory_budget: int) -> None:
    """Find the batch's duplicates (batch_duplicates) once its chunks are appended, in parts of the ids' hashes
    whose hash table fits memory_budget: each id is compared once, however many chunks the batch had."""
    row = con.execute("SELECT coalesce(sum(rows_judged - rows_rejected), 0) FROM batch_file_counts").fetchone()
    parts = max(1, math.ceil((int(row[0]) if row else 0) * BYTES_PER_ID / memory_budget))
    for part in range(parts):
        run_sql(con, "raw/dedupe_part", source=source.name, run_id=run_id, parts=parts, part=part)


def _estimated_rows(con: duckdb.DuckDBPyConnection, source: Source, f: PresentFile) -> int:
    """A Parquet file's rows from its footer; a text file's from its size (a .gz file's from the size its
    trailer gives). 0 when unknown: the file's reading will say what is wrong with it."""
    name = f.path.name.lower()
    try:
        if name.removesuffix(".gz").endswith(".parquet"):
            row = con.execute("SELECT sum(num_rows) FROM parquet_file_metadata($path)",
                              {"path": str(f.path)}).fetchone()
            return int(row[0]) if row and row[0] is not None else 0
        size = f.size
        if name.endswith(".gz") and size >= 4:
            with f.path.open("rb") as handle:  # ISIZE: the uncompressed size modulo 2**32 (RFC 1952)
                handle.seek(-4, 2)
                size = max(size, int.from_bytes(handle.read(4), "little"))
        return size // _TEXT_BYTES_PER_ROW + 1
    except (duckdb.Error, OSError):
        return 0


def _stage_chunk(stage: duckdb.DuckDBPyConnection, writer: duckdb.DuckDBPyConnection, source: Source,
                 chunk: list[PresentFile], run_started: datetime) -> None:
    """The chunk's files staged and judged into the staging connection's chunk tables; a file that cannot be
    read is refused in the writer's batch_files."""
    run_sql(stage, "raw/start_chunk")
    reporter = progress.current()
    parquet = [f for f in chunk if source.format not in PRESETS and file_format(source, f.path) == "parquet"]
    for f in chunk:
        if f not in parquet:
            _append_files(stage, writer, source, [f], None, run_started)
            reporter.file_read(f.size)
    for group, columns in _by_schema(stage, writer, parquet):
        # One statement for the group; if one of its files cannot be read, each file on its own.
        if not _append_files(stage, writer, source, group, columns, run_started) and len(group) > 1:
            for f in group:
                _append_files(stage, writer, source, [f], columns, run_started)
        for f in group:
            reporter.file_read(f.size)


def _nothing_read(status: str, rows_read: int, size: int | None) -> str:
    """Why a file that loaded read no row: said, so that an empty export is not mistaken for a quiet day."""
    if status != "loaded" or rows_read:
        return ""
    return "the file is empty: 0 rows" if size == 0 else "no data row (only a header?): 0 rows"


def _by_schema(con: duckdb.DuckDBPyConnection, writer: duckdb.DuckDBPyConnection,
               files: list[PresentFile]) -> list[tuple[list[PresentFile], dict[str, str]]]:
    """Parquet files grouped by their columns and types; a file whose footer cannot be read is refused."""
    groups: dict[tuple[tuple[str, str], ...], list[PresentFile]] = {}
    for f in files:
        try:
            columns = _parquet_columns(con, f.path)
        except duckdb.Error as e:
            _refuse(writer, f, str(e))
            continue
        groups.setdefault(tuple(columns.items()), []).append(f)
    return [(group, dict(schema)) for schema, group in groups.items()]


def _append_files(con: duckdb.DuckDBPyConnection, writer: duckdb.DuckDBPyConnection, source: Source,
                  files: list[PresentFile], parquet_columns: dict[str, str] | None, run_started: datetime,
                  piece_record: str | None = None) -> bool:
    """Stage files (several only for Parquet of one schema; a piece of one, piece_rows, with piece_record) and add
    their judged rows to the chunk (on the staging connection `con`).

    False if they could not be read; a single file is then refused (in the `writer`'s batch_files).
    """
    try:
        with limit_kept(con):  # raised for a text file with a long line while it is read and judged (text.py)
            if parquet_columns is None:
                _stage(con, source, files[0])
            elif piece_record is not None:
                _stage_parquet_piece(con, source, files[0], parquet_columns, piece_record)
            else:
                _stage_parquet_files(con, source, files, parquet_columns)
            run_sql(
                con,
                "raw/append_file",
                file_index=files[0].index,  # for the reader's rejects, which only a single text file has
                source=source.name,
                ts_format=source.timestamp_format,
                timezone=source.timezone,
                ambiguous_times=source.ambiguous_times,
                has_zone="%z" in source.timestamp_format or "%Z" in source.timestamp_format,
                min_timestamp=source.min_timestamp,
                run_started=run_started.replace(tzinfo=None),
                max_future_us=int(source.max_future_hours * 3_600_000_000),
                max_future_hours=f"{source.max_future_hours:g}",
                filters=source.row_filters(),
            )
    except (duckdb.Error, SourceError, OSError, EOFError, zlib.error, csv.Error, UnicodeError) as e:
        # Any failure to read refuses this file alone (the others load, the next run tries it again).
        # Each statement adds all of its rows or none, but the reader's rejects may be in already.
        con.execute("DELETE FROM batch_parse_rejects WHERE file_index = $index", {"index": files[0].index})
        if len(files) == 1:
            _refuse(writer, files[0], str(e))
        return False
    return True


def _refuse(con: duckdb.DuckDBPyConnection, f: PresentFile, error: str) -> None:
    """The whole file goes into the batch as refused, with the reader's error and its likely cause."""
    con.execute("UPDATE batch_files SET status = 'refused', message = $message WHERE file_index = $index",
                {"message": explain_refusal(f.path, error.splitlines()[0]), "index": f.index})


@contextmanager
def _staging_connection(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """A second connection to the warehouse's database, for staging files outside the batch's transaction: a
    failed read there fails one statement, where in the transaction it would abort the whole batch; and its temp
    tables are freed chunk by chunk, where a transaction's are kept until it ends. The session's own settings
    are copied (the database's, such as memory_limit, are shared)."""
    stage = con.cursor()
    try:
        stage.execute("SET TimeZone = 'UTC'")  # as warehouse.connect: every cast means the same everywhere
        # A variable is the session's: whether the limit is the budget's, which a long line may raise (text.py).
        stage.execute("SET VARIABLE cjm_limit_is_budget = $v",
                      {"v": con.execute("SELECT getvariable('cjm_limit_is_budget')").fetchone() == (True,)})
        run_sql(stage, "raw/macros")
        yield stage
    finally:
        stage.close()


@contextmanager
def _setting(con: duckdb.DuckDBPyConnection, name: str, value: bool) -> Iterator[None]:
    """A boolean DuckDB setting for the length of the block, then back to what it was."""
    before = con.execute("SELECT current_setting($name)", {"name": name}).fetchone()
    con.execute(f"SET {name} = {value}")
    with undone_after(lambda: con.execute(f"SET {name} = {bool(before and before[0])}")):
        yield

