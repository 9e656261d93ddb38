"""Views over the published Parquet, one per mart: the init SQL for a BI tool's in-memory DuckDB (Metabase, Evidence).

    python examples/dashboard/parquet_views.py /srv/cjm/marts > init.sql

A view reads `<marts>/current/parquet/<table>/` again at every query, so a connection that stays open (a BI tool's
pool) shows the new night right after the swap; a connection to marts.duckdb keeps the night it opened. The tables are
the folders published today: run it again when a release publishes more marts.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def parquet_views(marts: Path) -> str:
    """`CREATE OR REPLACE VIEW <table> AS SELECT * FROM read_parquet(...)` for every published table."""
    current = Path(os.path.abspath(marts)) / "current"  # abspath: keeps the `current` link, resolved per query
    tables = sorted(p.name for p in (current / "parquet").iterdir() if p.is_dir())
    return "".join(
        f"CREATE OR REPLACE VIEW {_ident(table)} AS SELECT * FROM read_parquet("
        f"{_literal((current / 'parquet' / table / '**' / '*.parquet').as_posix())}, hive_partitioning = true);\n"
        for table in tables
    )


if __name__ == "__main__":
    marts = Path(sys.argv[1] if len(sys.argv) > 1 else "data/sample/marts")
    if not (marts / "current" / "parquet").is_dir():
        sys.exit(f"no published marts in {marts}: `cjm run` publishes them after a successful run")
    sys.stdout.write(parquet_views(marts))
