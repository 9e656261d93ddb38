"""The published marts through SQLAlchemy and duckdb-engine: what Superset (and any SQLAlchemy tool) connects with.

    pip install 'cjm-analytics[bi]'      # duckdb-engine, sqlalchemy
    python examples/dashboard/superset_sqlalchemy.py data/sample/marts

prints the SQLAlchemy URI to paste into Superset ("Connect a database" -> DuckDB) and the stage funnel read through
it. docs/dashboards.md says which Superset settings go with it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.pool import NullPool


def marts_uri(marts: Path) -> str:
    """`duckdb:////abs/marts/current/marts.duckdb?access_mode=read_only`.

    Absolute, because a BI server's working folder is not yours; through `current`, never resolved to
    `runs/<run_id>/`, so that each new connection opens the night published last. access_mode goes to
    duckdb.connect's config: a dashboard can't write, and never takes a write lock.
    """
    database = Path(os.path.abspath(marts)) / "current" / "marts.duckdb"  # abspath: keeps the `current` link
    # URL.create escapes what a path may hold and a URI may not (`?`, `#`, `%`).
    url = sa.URL.create("duckdb", database=database.as_posix(), query={"access_mode": "read_only"})
    return url.render_as_string(hide_password=False)


def marts_engine(marts: Path) -> sa.Engine:
    """An engine that opens the file per connection (NullPool, as Superset does by default).

    A pooled connection keeps reading the run it opened, after the nightly swap too, until it is closed.
    """
    return sa.create_engine(marts_uri(marts), poolclass=NullPool)


def main(marts: Path) -> None:
    if not (marts / "current" / "marts.duckdb").is_file():
        sys.exit(f"no published marts in {marts}: `cjm run` publishes them after a successful run")
    engine = marts_engine(marts)
    print(f"SQLAlchemy URI: {marts_uri(marts)}")
    with engine.connect() as con:
        print("tables:", ", ".join(sorted(sa.inspect(con).get_table_names())))
        rows = con.execute(sa.text(
            "SELECT run_id, stage, reached, dropoff_rate FROM stage_funnel ORDER BY stage_order")).fetchall()
    print(f"stage funnel of run {rows[0].run_id if rows else '-'}:")
    for row in rows:
        print(f"  {row.stage:<15} {row.reached:>7,}  drop-off "
              f"{'-' if row.dropoff_rate is None else f'{row.dropoff_rate:.1%}'}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "data/sample/marts"))
