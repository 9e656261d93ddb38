"""A staged file's rows projected onto the canonical columns: the contract between the readers and
sql/raw/append_file.sql.

Every reader ends in `create_staged_rows`, which defines two temp objects:
- view `staged_rows(file_index, row_number, given_event_id, customer_id, anonymous_id, event_name, ts_text,
  ts_read, channel, properties, record)`: the canonical columns as text, except `ts_read`, the reading of a typed
  timestamp column ({ts, is_local}, NULL for text); `record` is the row as read;
- macro `cjm_raw(record)`: that row as JSON text, kept for rejects and hashed for ids (only called where needed).

The output names are the projection's own; a file's columns are only ever referred to quoted, inside
expressions, so no column name of a file can collide with them. The readers name their own helper columns
(record number, file index) so that no column of the file has the same name (`internal_name`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import duckdb

from cjm_analytics.config import ColumnMap, Source
from cjm_analytics.errors import SourceError
from cjm_analytics.sql_steps import quote_ident, quote_literal

CANONICAL = ("event_id", "customer_id", "anonymous_id", "event_name", "timestamp", "channel")
# The canonical column -> its name in staged_rows, where the two differ.
_STAGED_AS = {"event_id": "given_event_id", "timestamp": "ts_text"}
# A typed timestamp column is read without a text round trip (with timestamp_format auto): its DuckDB type ->
# the macro of sql/raw/macros.sql that gives the same reading as its text would.
_TYPED_TIMESTAMPS = {
    "TIMESTAMP": "cjm_wall_clock_reading",
    "TIMESTAMP_S": "cjm_wall_clock_reading",
    "TIMESTAMP_MS": "cjm_wall_clock_reading",
    "DATE": "cjm_wall_clock_reading",
    "TIMESTAMP_NS": "cjm_wall_clock_ns_reading",
    "TIMESTAMP WITH TIME ZONE": "cjm_instant_reading",
}
_NO_TYPED_TIMESTAMP = "CAST(NULL AS STRUCT(ts TIMESTAMP, is_local BOOLEAN))"
_NULL_TEXT = "CAST(NULL AS VARCHAR)"


def internal_name(wanted: str, columns: Iterable[str]) -> str:
    """`wanted`, lengthened until no column of the file has that name (DuckDB compares names without case)."""
    taken = {c.lower() for c in columns}
    name = wanted
    while name.lower() in taken:
        name += "_"
    return name


@dataclass(frozen=True)
class Projection:
    """How to read one staged relation: the row's place, its canonical values, its properties and its raw form."""

    relation: str  # a FROM item
    file_index: str  # SQL expressions over the relation
    row_number: str
    values: dict[str, str]  # staged_rows column -> expression, for the canonical columns (as _STAGED_AS names them)
    ts_read: str
    properties: str
    record: str
    raw: str  # the body of cjm_raw(record)


def _canonical(source: Source, field: Callable[[str], str], mapped: dict[str, str],
               default: Callable[[str], str] = lambda _: _NULL_TEXT) -> dict[str, str]:
    """The canonical columns (as staged_rows names them) from a source's mapping: `field(name)` reads a mapped
    field as text, `default(column)` gives an unmapped one; a source-level event name replaces the column."""
    values = {_STAGED_AS.get(c, c): (field(mapped[c]) if c in mapped else default(_STAGED_AS.get(c, c)))
              for c in CANONICAL}
    if source.event_name is not None:
        values["event_name"] = quote_literal(source.event_name)
    return values


def tabular(source: Source, mapping: ColumnMap, relation: str, columns: dict[str, str], file_index: str,
            row_number: str) -> Projection:
    """CSV or Parquet columns (name -> DuckDB type) of `relation`: values are the columns' text, as the file's own
    text would be (CSV) or as DuckDB writes the typed value (Parquet), except a typed timestamp column, which is
    read as it is. The file's other columns are the properties."""
    mapped = mapping.mapped()
    missing = [c for c in mapped.values() if c not in columns]
    if columns and missing:
        raise SourceError(f"columns missing from the file: {', '.join(missing)} (it has: {', '.join(columns)})")

    def text(col: str) -> str:  # a no-op for a text column
        return f"CAST({quote_ident(col)} AS VARCHAR)" if col in columns else _NULL_TEXT

    values = _canonical(source, text, mapped)
    ts_column = mapped["timestamp"]
    reading = _TYPED_TIMESTAMPS.get(columns.get(ts_column, "")) if source.timestamp_format == "auto" else None
    ts_read = _NO_TYPED_TIMESTAMP
    if reading is not None:
        values["ts_text"], ts_read = _NULL_TEXT, f"{reading}({quote_ident(ts_column)})"
    rest = [c for c in columns if c not in mapped.values()]
    properties = (f"json_object({', '.join(f'{quote_literal(c)}, {text(c)}' for c in rest)})" if rest
                  else "CAST('{}' AS JSON)")
    # The row as read, bundled without copying; cjm_raw makes it JSON text where it is needed.
    names = list(columns)
    record = f"row({', '.join(quote_ident(c) for c in names)})" if names else "'{}'"
    raw = ("CAST(json_object(" + ", ".join(f"{quote_literal(c)}, CAST(struct_extract(record, {i}) AS VARCHAR)"
                                           for i, c in enumerate(names, start=1)) + ") AS VARCHAR)"
           if names else "record")
    return Projection(relation, file_index, row_number, values, ts_read, properties, record, raw)


def json_lines(source: Source, mapping: ColumnMap, relation: str, line: str, file_index: str,
               row_number: str) -> Projection:
    """JSON objects (the text column `line`): mapped keys are the canonical values, the other keys properties."""
    mapped = mapping.mapped()

    def key(name: str) -> str:
        return f"json_extract_string(CAST({line} AS JSON), {quote_literal('$.' + json.dumps(name))})"

    removed = json.dumps({c: None for c in mapped.values()})
    return Projection(relation, file_index, row_number, _canonical(source, key, mapped), _NO_TYPED_TIMESTAMP,
                      f"json_merge_patch(CAST({line} AS JSON), {quote_literal(removed)})", line, "record")


def preset(source: Source, relation: str, file_index: str) -> Projection:
    """A preset's rows (its SQL's canonical columns, properties and raw record); where the config names a field for
    a column, the record's own field, else one in properties, replaces the preset's choice."""
    overrides = source.columns.mapped() if source.columns is not None else {}

    def field(name: str) -> str:
        path = quote_literal("$." + json.dumps(name))
        return f"coalesce(json_extract_string(CAST(raw AS JSON), {path}), json_extract_string(properties, {path}))"

    values = _canonical(source, field, overrides, default=lambda column: column)  # the preset's own choice
    return Projection(relation, file_index, "row_number", values, _NO_TYPED_TIMESTAMP, "properties", "raw", "record")


def create_staged_rows(con: duckdb.DuckDBPyConnection, p: Projection) -> None:
    """The projection as temp view staged_rows and macro cjm_raw (the module's docstring)."""
    values = ", ".join(f"{expr} AS {name}" for name, expr in p.values.items())
    con.execute(f"CREATE OR REPLACE TEMP VIEW staged_rows AS SELECT {p.file_index} AS file_index, "
                f"{p.row_number} AS row_number, {values}, {p.ts_read} AS ts_read, {p.properties} AS properties, "
                f"{p.record} AS record FROM {p.relation}")
    con.execute(f"CREATE OR REPLACE TEMP MACRO cjm_raw(record) AS {p.raw}")
