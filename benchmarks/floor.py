"""The floor, as one whole process: DuckDB reads every source, sorts the rows by (customer, time) and stores them,
in a database file then checkpointed (the issue's floor) or in memory; nothing else.

    python -m benchmarks.floor SPEC.json     # a child of benchmarks.systems.measure_floor

It imports only the standard library and DuckDB, so that the whole process (interpreter start, import, the query)
is the least any DuckDB program doing this work waits for: the yardstick `cjm run` is held against
(benchmarks/README.md). The SQL and its parameters come in the spec (benchmarks.systems.floor_sql).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import duckdb

from benchmarks.measure import MB, cpu_seconds, rss_mb


def run(spec: dict[str, Any]) -> dict[str, Any]:
    """The floor's query in an in-memory database (`memory`) or a database file, checkpointed (`file`)."""
    db = Path(spec["database"])
    db.unlink(missing_ok=True)
    con = duckdb.connect(str(db) if spec["mode"] == "file" else ":memory:")
    for name, value in spec["settings"].items():  # bound: DuckDB takes SET's value as a parameter
        if value is not None:
            con.execute(f'SET "{name.replace(chr(34), chr(34) * 2)}" = $value', {"value": value})
    rss_before, cpu = rss_mb(), cpu_seconds()
    clock = time.perf_counter()
    con.execute(spec["sql"], spec["parameters"])
    con.execute("CHECKPOINT")
    seconds = time.perf_counter() - clock
    cpu = cpu_seconds() - cpu
    rows = con.execute("SELECT count(*) FROM sorted").fetchone()
    con.close()
    database_size = db.stat().st_size if db.exists() else 0
    db.unlink(missing_ok=True)
    return {"mode": spec["mode"], "seconds": round(seconds, 3), "cpu_seconds": round(cpu, 2),
            "rows": rows[0] if rows else 0, "sql": spec["sql"], "parameters": spec["parameters"],
            "rss_before_mb": rss_before, "database_mb": round(database_size / MB, 1), "peak_rss_mb": rss_mb()}


def main(argv: list[str]) -> int:
    [spec_file] = argv
    spec = json.loads(Path(spec_file).read_text(encoding="utf-8"))
    Path(spec["result"]).write_text(json.dumps(run(spec), default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
