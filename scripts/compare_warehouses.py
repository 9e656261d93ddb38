"""Before/after proof for a refactoring: build the same data with two versions of the package, compare everything.

    PYTHONPATH=<old checkout> python scripts/compare_warehouses.py build <cjm.yaml> <out-old>
    PYTHONPATH=<new checkout> python scripts/compare_warehouses.py build <cjm.yaml> <out-new>
    python scripts/compare_warehouses.py compare <out-old> <out-new>

`build` runs every nightly step with a fixed run id and start and one DuckDB thread, the warehouse, marts and
reports under <out> (the config's own folders are never written). `compare` prints, for every table of the
warehouse and of the published marts.duckdb, its rows and the rows only in one build (EXCEPT ALL both ways,
without the columns that hold wall-clock times), and whether every page of the report site is byte-identical;
it exits 1 on any difference.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

RUN_ID = "20261203T000000Z-compare"
RUN_STARTED = datetime(2026, 12, 3, tzinfo=UTC)
# When a step ran and how long it took: the only columns two builds of the same data may differ in. run_log's
# counts hold the published folders' paths and timings.
WALL_CLOCK = {"loaded_at", "started_at", "finished_at", "seconds", "counts"}


def build(config: Path, out: Path) -> None:
    import yaml

    import cjm_analytics
    from cjm_analytics.config import parse_config
    from cjm_analytics.nightly import NIGHTLY_STEPS, RunContext

    cfg = parse_config(yaml.safe_load(config.read_text(encoding="utf-8")), config.parent, origin=str(config))
    # One thread: DuckDB then adds floating-point numbers in the same order every time (with more, a mean or a sum
    # may differ in its last bits from one build to the next, and so would the pages that print it).
    cfg = cfg.model_copy(update={"warehouse": out / "cjm.duckdb", "reports": out / "reports", "marts": out / "marts",
                                 "duckdb": cfg.duckdb.model_copy(update={"threads": 1})})
    ctx = RunContext(cfg, RUN_ID, RUN_STARTED)
    print(f"package {Path(cjm_analytics.__file__).parent}")
    for name, step in NIGHTLY_STEPS:
        step(ctx)
        print(f"  {name} done")


def compare_files(left: Path, right: Path) -> int:
    """Rows only in one of two DuckDB files, per table (and tables only in one), printed; the total."""
    import duckdb

    from cjm_analytics.sql_steps import quote_ident, quote_literal

    con = duckdb.connect()
    con.execute(f"ATTACH {quote_literal(str(left))} AS l (READ_ONLY)")
    con.execute(f"ATTACH {quote_literal(str(right))} AS r (READ_ONLY)")
    tables = {db: {str(t) for (t,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = $db",
                                                  {"db": db}).fetchall()} for db in ("l", "r")}
    differences = 0
    for name in sorted(tables["l"] ^ tables["r"]):
        print(f"  {name}: only in {'old' if name in tables['l'] else 'new'}")
        differences += 1
    for name in sorted(tables["l"] & tables["r"]):
        cols = [[str(c[0]) for c in con.execute(f"DESCRIBE {db}.{quote_ident(name)}").fetchall()] for db in "lr"]
        if cols[0] != cols[1]:
            print(f"  {name}: columns differ: {cols[0]} vs {cols[1]}")
            differences += 1
            continue
        picked = ", ".join(quote_ident(c) for c in cols[0] if c not in WALL_CLOCK)
        only = [con.execute(f"SELECT count(*) FROM (SELECT {picked} FROM {a}.{quote_ident(name)} EXCEPT ALL "
                            f"SELECT {picked} FROM {b}.{quote_ident(name)})").fetchall()[0][0]
                for a, b in (("l", "r"), ("r", "l"))]
        rows = con.execute(f"SELECT count(*) FROM l.{quote_ident(name)}").fetchall()[0][0]
        skipped = sorted(WALL_CLOCK & set(cols[0]))
        print(f"  {name}: {rows} rows, only old {only[0]}, only new {only[1]}"
              + (f" (without {', '.join(skipped)})" if skipped else ""))
        differences += only[0] + only[1]
    con.close()
    return differences


def compare_pages(left: Path, right: Path) -> int:
    names = sorted({p.name for p in left.iterdir()} | {p.name for p in right.iterdir()})
    differing = [n for n in names if not ((left / n).is_file() and (right / n).is_file()
                                          and (left / n).read_bytes() == (right / n).read_bytes())]
    print(f"  {len(names)} files, {len(differing)} differ{': ' + ', '.join(differing) if differing else ''}")
    return len(differing)


def compare(left: Path, right: Path) -> int:
    print("warehouse")
    differences = compare_files(left / "cjm.duckdb", right / "cjm.duckdb")
    print("published marts")
    marts = Path("marts", "current", "marts.duckdb")
    differences += compare_files(left / marts, right / marts)
    print("report site")
    differences += compare_pages(left / "reports" / "site", right / "reports" / "site")
    print("EQUAL" if differences == 0 else f"{differences} DIFFERENCES")
    return differences


if __name__ == "__main__":
    match sys.argv[1:]:
        case ["build", config, out]:
            build(Path(config).resolve(), Path(out).resolve())
        case ["compare", left, right]:
            sys.exit(1 if compare(Path(left), Path(right)) else 0)
        case _:
            sys.exit(__doc__)
