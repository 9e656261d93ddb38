"""Reading text files (CSV, JSON lines, Snowplow's TSV) into temp table staged_file, one row per record, with
`_record` (the 1-based record number, header excluded); rows the reader cannot split go to staged_parse_rejects."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import duckdb

from cjm_analytics.errors import SourceError
from cjm_analytics.presets import SNOWPLOW_TSV_COLUMNS
from cjm_analytics.sql_steps import quote_literal

# Control characters are escaped inside valid JSON, so this delimiter keeps each JSON line one field.
_JSON_LINE_DELIM = "\x1e"


def stage_json_lines(con: duckdb.DuckDBPyConnection, path: Path) -> None:
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


def stage_csv(con: duckdb.DuckDBPyConnection, path: Path, delimiter: str) -> list[str]:
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



def stage_snowplow_tsv(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Snowplow's enriched TSV: no header, the canonical columns in order, no quoting (values hold no tabs)."""
    names = "{" + ", ".join(f"{quote_literal(c)}: 'VARCHAR'" for c in SNOWPLOW_TSV_COLUMNS) + "}"
    _read_text_records(con, path, f"read_csv($path, auto_detect = false, header = false, columns = {names}, "
                       "delim = '\\t', quote = '', escape = '', store_rejects = true, "
                       "rejects_table = 'cjm_reject_errors', rejects_scan = 'cjm_reject_scans')", header_lines=0)



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
    if scalar(con, "SELECT count(*) FROM staged_parse_rejects") == 0:
        # Nothing refused: every record number is the row's place among the accepted ones.
        con.execute("ALTER TABLE staged_file RENAME COLUMN _ordinal TO _record")
        return
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



def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object] | None = None) -> int:
    row = con.execute(sql, params or {}).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def explain_refusal(path: Path, message: str) -> str:
    """The reader's error, with the likely cause where the reader's own words don't say it."""
    if "state machine reached an invalid state" in message:  # the CSV reader's words
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        with opener(path, "rb") as f:
            head = f.read(1 << 24)
        crlf = head.count(b"\r\n")
        if crlf and head.count(b"\n") > crlf:
            return "mixed line endings (some lines end in LF, others in CRLF): normalize the file, e.g. dos2unix"
    return message
