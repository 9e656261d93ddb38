"""DuckDB on the benchmark's terms: settings the product's config has no field for and a JSON profile of every
statement, added to the product's connections through cjm_analytics.warehouse.CONNECT_HOOKS (in a step's child
process only); and where a step's time went, from those profiles."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import duckdb

from benchmarks.measure import MB
from cjm_analytics.sql_steps import quote_ident


def set_all(con: duckdb.DuckDBPyConnection, settings: Mapping[str, Any]) -> None:
    """SET each setting that has a value (bound: DuckDB takes SET's value as a parameter)."""
    for name, value in settings.items():
        if value is not None:
            con.execute(f"SET {quote_ident(name)} = $value", {"value": value})


class _ProfiledConnection:
    """Forwards to a DuckDB connection; every statement's JSON profile goes to its own file."""

    def __init__(self, con: duckdb.DuckDBPyConnection, folder: Path, prefix: str, counter: list[int]) -> None:
        self._con, self._folder, self._prefix, self._counter = con, folder, prefix, counter
        con.execute("PRAGMA enable_profiling = 'json'")

    def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        self._counter[0] += 1
        out = self._folder / f"{self._prefix}-{self._counter[0]:04d}.json"
        self._con.execute("SET profiling_output = $out", {"out": str(out)})
        return self._con.execute(query, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


def add_to_connections(extra: Mapping[str, Any], profile: tuple[Path, str] | None) -> None:
    """Every connection the product opens in this process gets the `extra` settings and, with `profile` (folder,
    file prefix), a JSON profile per statement. The config's `duckdb:` settings are applied by the product itself."""
    from cjm_analytics.warehouse import CONNECT_HOOKS

    counter = [0]  # numbers the profiles of all the step's connections

    def on_connect(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
        set_all(con, extra)
        if profile is None:
            return con
        # A stand-in, not a subclass (DuckDB's connection class cannot be extended): execute is profiled, the
        # rest forwarded.
        return cast(duckdb.DuckDBPyConnection, _ProfiledConnection(con, profile[0], profile[1], counter))

    CONNECT_HOOKS.append(on_connect)


def _walk_operators(node: dict[str, Any], depth: int = 0) -> Iterator[dict[str, Any]]:
    if "type" in node:
        yield {"operator": node["type"], "seconds": round(node.get("timing", 0.0), 3),
               "rows": node.get("intermediate_rows"), "depth": depth,
               "info": {k: v for k, v in (node.get("extra_info") or {}).items() if k != "Estimated Cardinality"}}
    for child in node.get("children", []):
        yield from _walk_operators(child, depth + 1)


def _statement_kind(sql: str) -> str:
    """A statement without its literals (file names, ids), to add up the same statement run per file."""
    text = " ".join(sql.split())
    return re.sub(r"'[^']*'", "'…'", text)[:160]


def summarize(folder: Path, prefix: str) -> dict[str, Any]:
    """A step's statements from their JSON profiles: the slowest, the same statement added up, and time per
    operator type (operator timings are CPU seconds summed over threads)."""
    statements = []
    kinds: dict[str, dict[str, Any]] = {}
    operators: dict[str, float] = {}
    for f in sorted(folder.glob(f"{prefix}-*.json")):
        try:
            p = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        query = p.get("query", {})
        latency = float(query.get("total_time") or p.get("latency") or 0.0)
        ops = [op for root in p.get("operator", p.get("children", [])) for op in _walk_operators(root)]
        for op in ops:
            operators[op["operator"]] = operators.get(op["operator"], 0.0) + op["seconds"]
        kind = kinds.setdefault(_statement_kind(str(query.get("sql", ""))), {"count": 0, "seconds": 0.0,
                                                                              "cpu_seconds": 0.0})
        kind["count"] += 1
        kind["seconds"] += latency
        kind["cpu_seconds"] += float(query.get("cpu_time", 0.0))
        system = p.get("system", {})
        statements.append({
            "sql": " ".join(str(query.get("sql", "")).split())[:400],
            "seconds": round(latency, 3),
            "cpu_seconds": round(float(query.get("cpu_time", 0.0)), 3),
            "peak_buffer_memory_mb": round(system.get("peak_buffer_memory", 0) / MB, 1),
            "peak_temp_dir_mb": round(system.get("peak_temp_dir_size", 0) / MB, 1),
            "top_operators": sorted(ops, key=lambda op: -op["seconds"])[:6],
        })
    statements.sort(key=lambda st: -st["seconds"])
    return {
        "sql_seconds": round(sum(st["seconds"] for st in statements), 3),
        "statements": len(statements),
        "slowest": statements[:8],
        "by_statement": sorted(({"sql": k, "count": v["count"], "seconds": round(v["seconds"], 3),
                                 "cpu_seconds": round(v["cpu_seconds"], 3)} for k, v in kinds.items()),
                               key=lambda k: -float(k["seconds"]))[:12],
        "by_operator": dict(sorted(((k, round(v, 3)) for k, v in operators.items()), key=lambda kv: -kv[1])[:12]),
    }
