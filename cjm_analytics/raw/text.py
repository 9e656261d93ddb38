"""Reading text files (CSV, JSON lines, Snowplow's TSV) into temp table staged_file, one row per record: the file's
columns as text, plus its record number (1-based, header excluded) in column `record_column(columns)`; rows the
reader cannot split go to staged_parse_rejects with their record number.

The dialect is fixed, never sniffed from the data, so one odd row is that row's reject and one unreadable file
raises SourceError (docs/lifecycle.md, "Odd files and odd rows").
"""

from __future__ import annotations

import csv
import gzip
import io
import mmap
import shutil
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np

from cjm_analytics.errors import SourceError
from cjm_analytics.presets import SNOWPLOW_TSV_COLUMNS
from cjm_analytics.raw.project import internal_name
from cjm_analytics.sql_steps import quote_ident, quote_literal
from cjm_analytics.warehouse import memory_limit_bytes

# Control characters are escaped inside valid JSON, so this delimiter keeps each JSON line one field.
_JSON_LINE_DELIM = "\x1e"
# read_csv's default max_line_size. A longer record is a reject, or, past its 32 MB buffer, silently dropped:
# a file with one is read with a larger limit (only such a file: the limit sizes the reader's buffers).
_DEFAULT_MAX_LINE = 2_000_000
_LINE_MARGIN = 1 << 16
_GZIP_MAX_LINE = 4_000_000
_CHUNK = 1 << 20  # bytes scanned at a time for line lengths
_HEADER_LIMIT = 1 << 20  # a first line longer than this is not a header
_CSV_LINE_CUT = 10_000  # the reader keeps this much of a refused record's text
# Each unterminated quote costs a read of the rest of the file: past this many the file is refused.
_MAX_BROKEN_QUOTES = 50
_INVALID_STATE = "state machine reached an invalid state"  # the CSV reader's words for a stray line break
_UNTERMINATED = "UNQUOTED VALUE: Value with unterminated quote found."  # the reader's words, in every case
_BOM = b"\xef\xbb\xbf"
_REJECTS = "store_rejects = true, rejects_table = 'cjm_reject_errors', rejects_scan = 'cjm_reject_scans'"


def record_column(columns: Iterable[str]) -> str:
    """staged_file's record-number column for a file with these columns: `_record`, lengthened until no column
    of the file has that name (DuckDB compares names without case)."""
    return internal_name("_record", columns)


@dataclass(frozen=True)
class _Text:
    """How one kind of text file is read: its columns (all text) and read_csv's dialect options."""

    columns: list[str]
    dialect: str
    header: bool
    quoted: bool  # a quote can hold line breaks: a record can span lines

    @property
    def record(self) -> str:
        return record_column(self.columns)

    def reader(self, path: Path, header: bool, max_line_size: int | None) -> str:
        struct = "{" + ", ".join(f"{quote_literal(c)}: 'VARCHAR'" for c in self.columns) + "}"
        limit = f", max_line_size = {max_line_size}" if max_line_size else ""
        return (f"read_csv({quote_literal(str(path))}, auto_detect = false, header = {str(header).lower()}, "
                f"columns = {struct}, {self.dialect}, {_REJECTS}{limit})")


def stage_json_lines(con: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
    """One JSON object per line into staged_file(line, _record); a line that is not one is rejected. The
    staged columns: ['line']."""
    text = _Text(["line"], f"delim = {quote_literal(_JSON_LINE_DELIM)}, quote = '', escape = ''",
                 header=False, quoted=False)
    stray: dict[int, str] = {}
    try:
        _read_text_records(con, path, text)
    except duckdb.InvalidInputException as e:
        if _INVALID_STATE not in str(e):
            raise
        # The reader takes a carriage return inside a line for a line break of another kind and gives up on
        # the file: read a copy in which such a line cannot be JSON, and reject it as it is in the file.
        with tempfile.TemporaryDirectory(prefix="cjm-copy-", dir=_scratch_dir(con)) as scratch:
            copy = Path(scratch) / "lines.jsonl"
            stray = _mark_stray_carriage_returns(path, copy)
            _read_text_records(con, copy, text)
    record = quote_ident(text.record)
    con.execute(f"""
        INSERT INTO staged_parse_rejects
        SELECT {record}, 'not a JSON object', line FROM staged_file
        WHERE NOT coalesce(json_type(TRY_CAST(line AS JSON)) = 'OBJECT', false)""")
    con.execute("""
        DELETE FROM staged_file
        WHERE NOT coalesce(json_type(TRY_CAST(line AS JSON)) = 'OBJECT', false)""")
    if stray:
        con.executemany("UPDATE staged_parse_rejects SET raw = $2 WHERE row_number = $1", list(stray.items()))
    return text.columns


def _mark_stray_carriage_returns(path: Path, target: Path) -> dict[int, str]:
    """Copy the file's lines to `target`, a carriage return inside a line made a NUL (JSON allows neither
    there); those lines' numbers and text."""
    stray: dict[int, str] = {}
    with _reading(path) as f, target.open("wb") as out:
        for number, line in enumerate(f, start=1):
            body = line.removesuffix(b"\n").removesuffix(b"\r")
            if b"\r" in body:
                stray[number] = body.decode("utf-8", errors="replace")
                line = body.replace(b"\r", b"\0") + line[len(body):]
            out.write(line)
    return stray


def stage_csv(con: duckdb.DuckDBPyConnection, path: Path, delimiter: str) -> list[str]:
    """A CSV file with a header into staged_file, every column as text; the header's names (csv_header)."""
    header = csv_header(path, delimiter)
    # The columns come from the header: nothing is sniffed from the data, so a broken row (e.g. an unclosed
    # quote) is that row's reject, not a reason to misread the whole file.
    _read_text_records(con, path, _Text(header, f"delim = {quote_literal(delimiter)}, quote = '\"', escape = '\"'",
                                        header=True, quoted=True))
    return header


def stage_snowplow_text(con: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
    """Snowplow enriched events as text; the staged columns (lower case, as the canonical event names them).

    Snowplow's own output is TSV without a header: the 131 canonical columns in order, no quoting (values hold
    no tabs). Exports from a warehouse table (Snowflake, BigQuery, Redshift, Databricks) carry a header row, in
    any order, any case and with any subset of the columns, as TSV or as quoted CSV. The first line tells them
    apart: a tab makes it TSV, and it is a header when it names both event_id and collector_tstamp (values a
    real event cannot hold in those places).
    """
    first = _head_of_first_line(path).decode("utf-8-sig", errors="replace")
    delimiter = "\t" if "\t" in first else ","
    quoting = "quote = '', escape = ''" if delimiter == "\t" else "quote = '\"', escape = '\"'"
    dialect = f"delim = {quote_literal(delimiter)}, {quoting}"
    named = {n.strip().lower() for n in first.split(delimiter)}
    if {"event_id", "collector_tstamp"} <= named:
        columns = [c.lower() for c in csv_header(path, delimiter)]
        _read_text_records(con, path, _Text(columns, dialect, header=True, quoted=delimiter != "\t"))
        return columns
    text = _Text(list(SNOWPLOW_TSV_COLUMNS), dialect, header=False, quoted=delimiter != "\t")
    _read_text_records(con, path, text)
    return text.columns


# --- the header -----------------------------------------------------------------------------------------------


def csv_header(path: Path, delimiter: str) -> list[str]:
    """The column names on a CSV file's first line (gzip and a UTF-8 BOM allowed), as the file's columns are
    named in staged_file: an empty name is column<n> (n its place from 1), and a name equal to an earlier one
    without case gets _2, _3... SourceError if the first line cannot be read as names."""
    first = _first_record(path)
    if b"\0" in first:
        raise SourceError("NUL bytes in the first line: not a UTF-8 text file (UTF-16, or binary?)")
    text = first.decode("utf-8-sig", errors="replace")
    if not text.strip("\r\n"):
        raise SourceError("the first line holds no column names")
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, len(text) + 1))  # Python's default (128 KiB) is for any field, not a header
    try:
        names = next(csv.reader([text], delimiter=delimiter, strict=False), [])
    except csv.Error as e:
        raise SourceError(f"the first line cannot be read as column names: {e}") from None
    finally:
        csv.field_size_limit(limit)
    unique: list[str] = []
    taken: set[str] = set()
    for place, name in enumerate(names, start=1):
        base = name or f"column{place}"
        candidate, n = base, 1
        while candidate.lower() in taken:
            n += 1
            candidate = f"{base}_{n}"
        taken.add(candidate.lower())
        unique.append(candidate)
    return unique


def _head_of_first_line(path: Path, size: int = 1 << 16) -> bytes:
    """The start of the file's first line, at most `size` bytes: enough to tell a header (short) from data (a
    first row may hold a field of any length)."""
    with _reading(path) as f:
        head = f.read(size)
    return head.split(b"\n", 1)[0]


def _first_record(path: Path) -> bytes:
    """The bytes of the file's first record: up to the first line break outside quotes (read no further, so a
    file damaged later is refused by the reader, in its words)."""
    head, quotes, scanned = b"", 0, 0
    with _reading(path) as f:
        while piece := f.read(1 << 13):  # small: a gzip read fails whole where the data ends early
            head += piece
            for i in range(scanned, len(head)):
                if head[i] == 0x22:
                    quotes += 1
                elif head[i] in (0x0A, 0x0D) and quotes % 2 == 0:
                    return head[:i]
            scanned = len(head)
            if scanned > _HEADER_LIMIT:
                raise SourceError(f"the first line is longer than {_HEADER_LIMIT >> 20} MiB: "
                                  "not a row of column names")
    return head


@contextmanager
def _reading(path: Path) -> Iterator[gzip.GzipFile | io.BufferedReader]:
    """The file's bytes (decompressed if its name ends in .gz); read errors as SourceError."""
    try:
        with gzip.open(path, "rb") if _gzipped(path) else path.open("rb") as f:
            yield f
    except gzip.BadGzipFile:
        raise SourceError("not gzip: the name ends in .gz, the content is not gzip-compressed") from None
    except EOFError:
        raise SourceError("the gzip data ends early (a truncated file?)") from None
    except zlib.error as e:
        raise SourceError(f"corrupt gzip data ({e})") from None
    except OSError as e:  # also a failure to write the copy of a file's rest (_copy_after_line)
        raise SourceError(f"{e.strerror or e}: {e.filename or 'the file'}") from None


def _gzipped(path: Path) -> bool:
    return path.name.lower().endswith(".gz")


# --- the records ----------------------------------------------------------------------------------------------


def _read_text_records(con: duckdb.DuckDBPyConnection, path: Path, text: _Text) -> None:
    """Stage a text file; rows the reader refuses go to staged_parse_rejects with their record number.

    An unterminated quote makes the reader read the rest of the file as one record: that record's first line is
    rejected and the lines after it are read again, from a copy of them, their record numbers following on.
    """
    file, header, offset = path, text.header, 0
    scratch: tempfile.TemporaryDirectory[str] | None = None
    try:
        for n in range(_MAX_BROKEN_QUOTES + 1):
            broken = _read_pass(con, text, file, header, offset, "staged_file" if n == 0 else "staged_more")
            if broken is None:
                return
            record, position, reason = broken
            scratch = scratch or tempfile.TemporaryDirectory(prefix="cjm-rest-", dir=_scratch_dir(con))
            rest = Path(scratch.name) / f"rest{n % 2}.txt"  # the one before is still being read from
            line, more = _copy_after_line(file, position, rest)
            con.execute("INSERT INTO staged_parse_rejects VALUES ($row, $reason, $raw)",
                        {"row": offset + record, "reason": reason, "raw": line})
            if not more:
                return
            file, header, offset = rest, False, offset + record
    finally:
        if scratch is not None:
            scratch.cleanup()
    raise SourceError(f"more than {_MAX_BROKEN_QUOTES} rows with an unterminated quote: is '\"' the file's "
                      f"quote character?")


def _read_pass(con: duckdb.DuckDBPyConnection, text: _Text, file: Path, header: bool, offset: int,
               table: str) -> tuple[int, int, str] | None:
    """Read `file` into staged_file (its records numbered from offset + 1) and its refused rows into
    staged_parse_rejects; the first record whose quote ran on past its line, if any: (record number in this
    file, its byte position, the reason). Only the rows before it are kept: the lines after it are read again."""
    header_lines = 1 if header else 0
    ordinal = internal_name("_ordinal", [*text.columns, text.record])
    max_line = _max_line_size(_longest_line(file), _gzipped(file))
    _scan(con, text, file, header, max_line, table, ordinal)
    if _rejected(con):
        # A record longer than the limit is refused or, past the reader's buffer, splits into bogus rows: read
        # it again with a limit it fits (quoted line breaks hide such a record from the line scan).
        needed = max(_longest_record(file) if text.quoted else 0, _reported_line_size(con))
        if needed + _LINE_MARGIN > (max_line or _DEFAULT_MAX_LINE):
            max_line = needed + _LINE_MARGIN
            _scan(con, text, file, header, max_line, table, ordinal)
    if not _rejected(con):
        _number_rows(con, text, table, ordinal, offset, None, refused=False)
        return None
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE pass_rejects AS  -- one row per record: a short row is reported per column
        SELECT
            line - {header_lines} AS record,
            arg_min(error_type || ': ' || error_message, column_idx) AS reason,
            -- without line breaks at its ends: the reader can include one (after a CRLF; an open quote's last)
            trim(any_value(csv_line), chr(13) || chr(10)) AS raw,
            min(line_byte_position) AS position,
            bool_or(error_type = 'UNQUOTED VALUE') AS quote_trouble
        FROM cjm_reject_errors GROUP BY line
        """)
    broken = _quote_running_on(con, text, file, max_line) if text.quoted else None
    before = broken[0] if broken else None
    _number_rows(con, text, table, ordinal, offset, before, refused=True)
    con.execute(f"INSERT INTO staged_parse_rejects SELECT record + {offset}, reason, raw FROM pass_rejects "
                f"WHERE {f'record < {before}' if before else 'true'} ORDER BY record")
    return (broken[0], broken[1], _UNTERMINATED) if broken else None


def _quote_running_on(con: duckdb.DuckDBPyConnection, text: _Text, file: Path,
                      max_line: int | None) -> tuple[int, int] | None:
    """The first record of pass_rejects whose quote runs on past its line: (its record number, the byte where
    it starts). The reader's own report cannot tell: over several buffers (a file over 32 MB) it gives such a
    record the text and the position of the row before it, and loses the rows after it up to its next buffer
    (with parallel = false it drops the rest of the file without any reject). So the lines around each record
    it rejected for a quote are read again on their own, within one buffer, where its report is exact; that
    record's text is corrected on the way."""
    candidates = con.execute("SELECT record, position FROM pass_rejects WHERE quote_trouble ORDER BY record "
                             f"LIMIT {_MAX_BROKEN_QUOTES}").fetchall()
    reach = max(max_line or _DEFAULT_MAX_LINE, _CHUNK)  # any record the pass read fits in it
    with tempfile.TemporaryDirectory(prefix="cjm-window-", dir=_scratch_dir(con)) as scratch, ExitStack() as files:
        window_file = Path(scratch) / "window.txt"
        f, at = None, 0  # one stream, read forward: a gzip stream seeks back by reading again from its start
        for record, hint in candidates:
            base = max(int(hint) - reach, 0)
            if f is None or base < at:
                f = files.enter_context(_reading(file))
            f.seek(base)
            data = f.read(int(hint) - base + 2 * reach)
            at = base + len(data)
            # The line holding the reported byte starts the window: that record's or the one before it.
            start = max(data.rfind(b"\n", 0, int(hint) - base), data.rfind(b"\r", 0, int(hint) - base)) + 1
            end = max(data.rfind(b"\n"), data.rfind(b"\r"))
            if (start == 0 and base > 0) or end < start:
                continue  # a line longer than any the pass read: not this case
            window_file.write_bytes(data[start:end + 1])
            con.execute("DROP TABLE IF EXISTS cjm_reject_errors")
            con.execute("DROP TABLE IF EXISTS cjm_reject_scans")
            # In one buffer the reader's report is exact (parallel = false would drop an open quote's rest
            # silently), and with a limit over the window's size an open quote is reported, not dropped.
            window_line = _max_line_size(end + 1 - start, False)
            _room_for_reader(con, window_line)
            con.execute(f"CREATE OR REPLACE TEMP TABLE cjm_window AS SELECT * FROM "
                        f"{text.reader(window_file, False, window_line)}")
            found = con.execute(
                f"""
                SELECT line, min(line_byte_position), any_value(csv_line),
                       length(any_value(csv_line)) >= {_CSV_LINE_CUT}
                       OR regexp_matches(trim(any_value(csv_line), chr(13) || chr(10)), '[\\r\\n]')
                FROM cjm_reject_errors WHERE error_type = 'UNQUOTED VALUE' AND line <= 2
                GROUP BY line ORDER BY line LIMIT 1
                """).fetchone()
            con.execute("DROP TABLE cjm_window")
            if found is None:
                continue
            _, position, line, runs_on = found
            if runs_on:
                return int(record), base + start + _line_start(data[start:], 0, int(position))
            con.execute("UPDATE pass_rejects SET raw = trim($raw, chr(13) || chr(10)) WHERE record = $record",
                        {"raw": line, "record": record})
    return None


def _scan(con: duckdb.DuckDBPyConnection, text: _Text, file: Path, header: bool, max_line: int | None,
          table: str, ordinal: str) -> None:
    con.execute("DROP TABLE IF EXISTS cjm_reject_errors")
    con.execute("DROP TABLE IF EXISTS cjm_reject_scans")
    # row_number() OVER () streams in scan order: the accepted rows' order in the file.
    _room_for_reader(con, max_line)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT *, row_number() OVER () AS {quote_ident(ordinal)} "
                f"FROM {text.reader(file, header, max_line)}")


def _room_for_reader(con: duckdb.DuckDBPyConnection, max_line: int | None) -> None:
    """DuckDB's memory_limit raised, if below it, to DuckDB's default (80% of RAM) for a file read with a
    max_line_size over the reader's default.

    The load runs with DuckDB's limit at engine.memory_budget (nightly.load_sources), but a file with a very long
    line needs far more than its bytes: the reader holds two buffers of 16 times max_line_size (a gzip file's
    50 MB line: two blocks of 763.9 MiB), and judging the line copies it again and again (a JSON line of 50 MB
    was refused for memory at 48 times its size, a Snowplow field at 2.2 GiB). No multiple of the line is safe,
    so the rule is: such a file is staged and judged under DuckDB's default limit, as before the load ran within
    the budget, and the load puts the limit back once it is judged (`limit_kept`). A file of short lines never
    raises it, nor a gzip file's larger reading (_GZIP_MAX_LINE). Only the budget's limit is raised
    (nightly._within_budget says so in a variable): a limit the config sets is the user's bound (a container's
    memory), so there such a file is refused for memory with DuckDB's reason, as it always was."""
    if not max_line or max_line <= _GZIP_MAX_LINE:  # buffers of 128 MB at most: within any budget
        return
    row = con.execute("SELECT getvariable('cjm_limit_is_budget')").fetchone()
    if not (row and row[0]):
        return
    with duckdb.connect() as fresh:
        default = memory_limit_bytes(fresh)
    if default > memory_limit_bytes(con):
        con.execute("SET memory_limit = $limit", {"limit": f"{int(default)}B"})


@contextmanager
def limit_kept(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """DuckDB's memory_limit as it was before the block, whatever a long line's reading raised it to in it (the
    limit is the database's, shared by its connections: read and set on a cursor, which a result left pending on
    `con` does not block)."""
    with con.cursor() as setting:
        row = setting.execute("SELECT current_setting('memory_limit')").fetchone()
        before = str(row[0]) if row else ""
        try:
            yield
        finally:
            row = setting.execute("SELECT current_setting('memory_limit')").fetchone()
            if row and str(row[0]) != before:
                setting.execute("SET memory_limit = $limit", {"limit": before})


def _rejected(con: duckdb.DuckDBPyConnection) -> bool:
    return con.execute("SELECT EXISTS (SELECT 1 FROM cjm_reject_errors)").fetchone() == (True,)


def _reported_line_size(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute("SELECT max(TRY_CAST(regexp_extract(error_message, 'Actual Size:\\s*([0-9]+)', 1) AS BIGINT)) "
                      "FROM cjm_reject_errors WHERE error_type = 'LINE SIZE OVER MAXIMUM'").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _number_rows(con: duckdb.DuckDBPyConnection, text: _Text, table: str, ordinal: str, offset: int,
                 before: int | None, refused: bool) -> None:
    """Give the accepted rows of `table` their record numbers (after `offset`) and add them to staged_file; with
    `before`, only the rows before that record (of this pass) are kept. `refused`: pass_rejects holds the
    records the reader refused."""
    record, place = quote_ident(text.record), quote_ident(ordinal)
    if not refused and offset == 0 and table == "staged_file":
        # Nothing refused: every record number is the row's place among the accepted ones (no copy).
        con.execute(f"ALTER TABLE staged_file RENAME COLUMN {place} TO {record}")
        return
    # The reader reports a refused row's record number; accepted rows keep file order, so the i-th accepted
    # row is record i + (refused rows before it).
    refused_records = "SELECT record FROM pass_rejects" if refused else "SELECT 0 AS record WHERE false"
    keep = f"WHERE a.{place} + coalesce(r.refused_so_far, 0) < {before}" if before else ""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {table} AS
        WITH refused AS (
            SELECT record, row_number() OVER (ORDER BY record) AS refused_so_far FROM ({refused_records})
        ),
        accepted_before AS (  -- accepted rows before each refused one
            SELECT record - refused_so_far AS accepted_before, max(refused_so_far) AS refused_so_far
            FROM refused GROUP BY ALL
        )
        SELECT a.* EXCLUDE ({place}), a.{place} + coalesce(r.refused_so_far, 0) + {offset} AS {record}
        FROM {table} AS a ASOF LEFT JOIN accepted_before AS r ON a.{place} > r.accepted_before
        {keep}
        ORDER BY {record}
        """)
    if table != "staged_file":
        con.execute(f"INSERT INTO staged_file SELECT * FROM {table}")
        con.execute(f"DROP TABLE {table}")


# --- line lengths ----------------------------------------------------------------------------------------------


def _max_line_size(longest: int, gzipped: bool) -> int | None:
    """The reader's max_line_size for a file whose longest line is this long; None: its default will do.

    A gzip file gets at least _GZIP_MAX_LINE: the reader then reads it in larger buffers, which more than pays
    for decompressing it once more to measure its lines (3M rows, 263 MB: 2.1 s before, 1.7 s + 0.45 s now).
    """
    floor = _GZIP_MAX_LINE if gzipped else 0
    needed = longest + _LINE_MARGIN
    return max(needed, floor) if max(needed, floor) > _DEFAULT_MAX_LINE else None


def _chunks(path: Path, size: int) -> Iterator[bytes]:
    """The file's bytes (decompressed) in pieces; a file that stops decompressing ends there (the reader then
    says why)."""
    try:
        with gzip.open(path, "rb") if _gzipped(path) else path.open("rb") as f:
            while piece := f.read(size):
                yield piece
    except (OSError, EOFError, zlib.error):
        return


def _longest_line(path: Path) -> int:
    """The length in bytes of the file's longest line where it is over _CHUNK (shorter lines count as _CHUNK at
    most). Only a line break near each end of every chunk is looked for: of an uncompressed file (mapped, not
    read) this touches little more than two pages per MiB."""
    if _gzipped(path):
        return _longest_gap((piece, 0, len(piece)) for piece in _chunks(path, _CHUNK))
    size = path.stat().st_size
    if size == 0:
        return 0
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        return _longest_gap((m, start, min(start + _CHUNK, size)) for start in range(0, size, _CHUNK))


def _longest_gap(pieces: Iterable[tuple[bytes | mmap.mmap, int, int]]) -> int:
    """Over consecutive pieces data[start:end] of a file: the longest distance between line breaks that lie in
    different pieces (and to the file's ends)."""
    last, position, longest = -1, 0, 0
    for data, start, end in pieces:
        first = _find_break(data, start, end)
        if first >= 0:
            longest = max(longest, position + first - start - last)
            last = position + _rfind_break(data, start, end) - start
        position += end - start
    return max(longest, position - last - 1)


def _find_break(data: bytes | mmap.mmap, start: int, end: int) -> int:
    found = data.find(b"\n", start, end)
    return found if found >= 0 else data.find(b"\r", start, end)


def _rfind_break(data: bytes | mmap.mmap, start: int, end: int) -> int:
    found = data.rfind(b"\n", start, end)
    return found if found >= 0 else data.rfind(b"\r", start, end)


def _longest_record(path: Path) -> int:
    """The length in bytes of the file's longest record where it is over _CHUNK (shorter ones count as _CHUNK at
    most): a line break ends a record only outside quotes. A record still open at the end of the file (an
    unterminated quote) does not count: the reader rejects it."""
    last, position, longest, parity = -1, 0, 0, 0
    for piece in _chunks(path, _CHUNK):
        first, final = _record_ends(piece, parity)
        if first >= 0:
            longest = max(longest, position + first - last)
            last = position + final
        parity = (parity + piece.count(b'"')) % 2
        position += len(piece)
    return max(longest, position - last - 1) if parity == 0 else longest


def _record_ends(piece: bytes, parity: int) -> tuple[int, int]:
    """The first and the last line break of `piece` that end a record (an even number of quotes before it, the
    piece's own and `parity` of those before the piece); -1, -1 if none does. Rows are short: a few breaks
    from either end decide it, numpy only when they do not."""
    if b'"' not in piece:
        return (-1, -1) if parity else (_find_break(piece, 0, len(piece)), _rfind_break(piece, 0, len(piece)))
    first = final = -2  # undecided
    quotes, at = parity, 0
    for _ in range(64):
        i = _find_break(piece, at, len(piece))
        if i < 0:
            return -1, -1
        quotes += piece.count(b'"', at, i)
        if quotes % 2 == 0:
            first = i
            break
        at = i + 1
    quotes, at = parity + piece.count(b'"'), len(piece)  # the quotes before `at`
    for _ in range(64):
        i = _rfind_break(piece, 0, at)
        quotes -= piece.count(b'"', i + 1, at)
        if quotes % 2 == 0:
            final = i
            break
        at = i
    if first == -2 or final == -2:
        a = np.frombuffer(piece, dtype=np.uint8)
        before = np.cumsum(a == 0x22, dtype=np.uint8) + parity  # uint8 wraps, the parity does not
        ends = np.flatnonzero(((a == 0x0A) | (a == 0x0D)) & (before % 2 == 0))
        return (int(ends[0]), int(ends[-1])) if ends.size else (-1, -1)
    return first, final


# --- the rest of a file after a broken line ---------------------------------------------------------------------


def _copy_after_line(path: Path, start: int, target: Path) -> tuple[str, bool]:
    """The line starting at byte `start` (decompressed) as text, and whether anything follows it; what follows
    its line break is copied to `target`."""
    with _reading(path) as f, target.open("wb") as out:
        f.seek(start)
        line = bytearray()
        while piece := f.read(_CHUNK):
            ends = [i for i in (piece.find(b"\n"), piece.find(b"\r")) if i >= 0]
            if not ends:
                line += piece
                continue
            end = min(ends)
            line += piece[:end]
            rest = piece[end + 1:]
            if piece[end:end + 1] == b"\r":  # CRLF: one line break
                rest = (rest or f.read(1)).removeprefix(b"\n")
            out.write(rest)
            shutil.copyfileobj(f, out, _CHUNK)
            return line.decode("utf-8", errors="replace"), out.tell() > 0
    return line.decode("utf-8", errors="replace"), False


def _line_start(window: bytes, base: int, reported: int) -> int:
    """Where the record the reader reports at `reported` starts (read in order): its line_byte_position is one
    past the start after an LF or a CR, exact after a CRLF. `window` holds the file's bytes from `base` on."""
    for start in (reported - 1, reported):
        i = start - base
        if i < 0:
            continue
        after_break = start == 0 or window[i - 1:i] in (b"\n", b"\r") or (start == 3 and window[:3] == _BOM)
        if after_break and window[i:i + 1] != b"\n":
            return start
    return reported


def _scratch_dir(con: duckdb.DuckDBPyConnection) -> str | None:
    """DuckDB's temp_directory (where the warehouse's config puts spill files), else the system's."""
    row = con.execute("SELECT current_setting('temp_directory')").fetchone()
    folder = Path(str(row[0])) if row and row[0] else None
    if folder is None or not folder.is_absolute():
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return str(folder)


# --- helpers for raw/load.py ------------------------------------------------------------------------------------


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object] | None = None) -> int:
    row = con.execute(sql, params or {}).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def explain_refusal(path: Path, message: str) -> str:
    """The reader's error, with the likely cause where the reader's own words don't say it."""
    if _INVALID_STATE in message:
        try:
            with _reading(path) as f:
                head = f.read(1 << 24)
        except SourceError:
            return message
        crlf = head.count(b"\r\n")
        if crlf and head.count(b"\n") > crlf:
            return "mixed line endings (some lines end in LF, others in CRLF): normalize the file, e.g. dos2unix"
    return message
