"""Runs the named SQL steps in `sql/` with bound parameters; the only place that reads SQL files. Also the one
quoting helper of the repo (quote_ident, quote_literal).

Bind or quote (docs/adr/0001-bind-or-quote.md):
- a value is bound (`$name`) wherever DuckDB 1.4 and later take a parameter: in queries, SET's value, COPY ... TO's
  file, a table function's arguments (`read_parquet($files)`, `read_csv($path, columns = $types)`);
- a name from a file, the config or the command line (a column, a setting) goes through quote_ident: a parameter
  cannot name a thing;
- quote_literal only where DuckDB takes no parameter: ATTACH's path (DuckDB 1.4 cannot parse one), the body of a
  view or a macro, SQL handed as text to another library (Retentioneering).
Never format a value into SQL without one of them: a `'` or a `"` in a path or a name is data.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from cjm_analytics.names import SQL_NAMES

if TYPE_CHECKING:  # pandas only for query_sql's result: quoting and running steps must not load it
    import pandas as pd

# Installed wheels carry sql/ inside the package; a source checkout keeps it at the repo root.
_PACKAGED = Path(__file__).with_name("sql")
SQL_DIR = _PACKAGED if _PACKAGED.is_dir() else Path(__file__).resolve().parent.parent / "sql"


@cache
def sql_text(step: str) -> str:
    """The text of `sql/<step>.sql`, e.g. step='core/sessions'."""
    return (SQL_DIR / f"{step}.sql").read_text(encoding="utf-8")


def run_sql(con: duckdb.DuckDBPyConnection, step: str, **params: Any) -> duckdb.DuckDBPyConnection:
    """Execute every statement of a step, binding to each only the $parameters it names (and the names of
    cjm_analytics.names it uses, e.g. $no_segment)."""
    clash = SQL_NAMES.keys() & params.keys()
    if clash:
        raise ValueError(f"sql/{step}.sql: {sorted(clash)} name(s) cjm_analytics.names.SQL_NAMES binds")
    params = {**SQL_NAMES, **params}
    for statement in duckdb.extract_statements(sql_text(step)):
        used = {k: v for k, v in params.items() if k in statement.named_parameters}
        missing = statement.named_parameters - used.keys()
        if missing:
            raise ValueError(f"sql/{step}.sql needs parameter(s) {sorted(missing)}")
        con.execute(statement, used)
    return con


def query_sql(con: duckdb.DuckDBPyConnection, step: str, **params: Any) -> pd.DataFrame:
    """Run a step whose last statement is a query; its result as a DataFrame."""
    return run_sql(con, step, **params).fetchdf()


def quote_ident(name: str) -> str:
    """A SQL identifier for any name from a file, the config or the command line."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """A SQL string literal, for the few places DuckDB cannot take a bound parameter."""
    return "'" + text.replace("'", "''") + "'"
