"""The core steps split by customer bucket, so that Dask workers can run them (docs/scaling.md).

Journeys are independent per customer: the customers in scope are split by hash(customer_key) into buckets,
each bucket runs the unchanged core.sessionize and core.build_journeys in a DuckDB of its own over Parquet
files, and the driver puts the rows back in one transaction. The steps around them, and where the buckets run
(one after another, or one Prefect task each on a DaskTaskRunner), are in cjm_analytics/nightly.py.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import uuid
from contextlib import suppress
from pathlib import Path
from typing import Any

import duckdb

from cjm_analytics.catalog import CUSTOMER_TABLES
from cjm_analytics.config import Config
from cjm_analytics.core import RULE_TABLES, build_journeys, clear_scope, scope, sessionize
from cjm_analytics.sql_steps import quote_literal, run_sql
from cjm_analytics.warehouse import apply_settings

CORE_TABLES = tuple(t for t in CUSTOMER_TABLES if t != "identities")  # identities: stitched on the driver
_BUCKET_PREFIX = "bucket-"
_RULES = "rules"  # beside the bucket folders: this run's rule tables, which every bucket reads


def _files(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.glob("*.parquet"))


def _count(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None) -> int:
    row = con.execute(sql, params or {}).fetchone()
    return int(row[0]) if row else 0


def bucket_root(config: Config, run_id: str) -> Path:
    """This run's bucket files: `<work_dir or the warehouse's folder>/<warehouse file>.buckets/<run_id>/`."""
    return _buckets_of(config) / run_id


def _buckets_of(config: Config) -> Path:
    return (config.engine.work_dir or config.warehouse.parent) / f"{config.warehouse.name}.buckets"


def remove_bucket_files(config: Config, run_id: str | None = None) -> None:
    """Delete one run's bucket files (after its import), or with no run_id every run's: under the run lock, those
    are what a run that died left."""
    if run_id is None:
        shutil.rmtree(_buckets_of(config), ignore_errors=True)
        return
    shutil.rmtree(bucket_root(config, run_id), ignore_errors=True)
    with suppress(OSError):
        _buckets_of(config).rmdir()  # only when no other folder is left in it


def export_buckets(con: duckdb.DuckDBPyConnection, out_dir: Path, buckets: int, full: bool) -> list[Path]:
    """Write the raw events in scope, and the identities they need, as Parquet: one folder per customer bucket;
    and the run's rule tables beside them, for every bucket.

    Call after stitch_identities. A bucket holds whole customers (bucket = hash(customer_key) % buckets), so
    it can be sessionized and turned into journeys on its own. Returns the folders of the non-empty buckets.
    """
    scope(con, full)
    shutil.rmtree(out_dir, ignore_errors=True)
    (out_dir / _RULES).mkdir(parents=True)
    for table in RULE_TABLES:
        con.execute(f"COPY {table} TO {quote_literal(str(out_dir / _RULES / f'{table}.parquet'))} (FORMAT parquet)")
    raw, identities = out_dir / "_raw_events", out_dir / "_identities"
    # The worker computes customer_key again (sql/core/keyed_events.sql) and checks that it agrees.
    con.execute(
        f"""COPY (
            SELECT r.*, cjm_customer_key(r.customer_id, i.customer_id, r.anonymous_id) AS customer_key,
                hash(customer_key) % $buckets AS bucket
            FROM scope_raw_events AS r
            LEFT JOIN identities AS i ON r.anonymous_id = i.anonymous_id
        ) TO {quote_literal(str(raw))} (FORMAT parquet, PARTITION_BY (bucket))""",
        {"buckets": buckets},
    )
    if not any(raw.glob("bucket=*")):
        return []
    # An anonymous id's rows can belong to several customers (and buckets): each bucket gets its mapping.
    con.execute(
        f"""COPY (
            SELECT i.*, e.bucket
            FROM identities AS i
            INNER JOIN (
                SELECT DISTINCT anonymous_id, bucket
                FROM read_parquet({quote_literal(str(raw / "*" / "*.parquet"))}, hive_partitioning = true)
            ) AS e ON i.anonymous_id = e.anonymous_id
        ) TO {quote_literal(str(identities))} (FORMAT parquet, PARTITION_BY (bucket))"""
    )
    folders = []
    for part in sorted(raw.glob("bucket=*")):
        number = int(part.name.removeprefix("bucket="))
        folder = out_dir / f"{_BUCKET_PREFIX}{number:04d}"
        folder.mkdir()
        part.rename(folder / "raw_events")
        if (identities / part.name).is_dir():
            (identities / part.name).rename(folder / "identities")
        folders.append(folder)
    shutil.rmtree(raw)
    shutil.rmtree(identities, ignore_errors=True)
    return sorted(folders)


def process_bucket(bucket_dir: Path, config: Config) -> Path:
    """Events, sessions, journey steps and journeys of one bucket's customers, as Parquet in `bucket_dir/output`.

    Runs anywhere bucket_dir can be read (a Dask worker): an in-memory DuckDB, the same core steps as a local
    run. A retried bucket replaces its own output, so running it twice is harmless.
    """
    clock = time.perf_counter()
    staging = bucket_dir / f".output-{uuid.uuid4().hex}"
    staging.mkdir()
    spill = tempfile.mkdtemp(prefix="cjm-bucket-")  # a worker-local disk for DuckDB to spill to
    con = duckdb.connect(":memory:", config={"temp_directory": spill})
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_progress_bar = false")  # a worker's output is a log, not a terminal
        # The config's memory and thread limits hold on the worker too; its spill stays on its own disk.
        apply_settings(con, config.duckdb.model_copy(update={"temp_directory": None}))
        run_sql(con, "raw/schema")
        run_sql(con, "core/schema")
        for table in RULE_TABLES:  # the driver's, as the run wrote them
            con.execute(f"INSERT INTO {table} SELECT * FROM read_parquet($f)",
                        {"f": str(bucket_dir.parent / _RULES / f"{table}.parquet")})
        raw = _files(bucket_dir / "raw_events")
        con.execute("INSERT INTO raw_events BY NAME SELECT * EXCLUDE (customer_key) FROM read_parquet($f)", {"f": raw})
        identities = _files(bucket_dir / "identities")
        if identities:
            con.execute("INSERT INTO identities BY NAME SELECT * FROM read_parquet($f)", {"f": identities})
        counts: dict[str, Any] = {
            **sessionize(con, config.sessions.inactivity, config.touchpoints.field, full=True,
                         session_field=config.sessions.from_, memory_budget=config.engine.memory_budget_bytes),
            **build_journeys(con, config.goal_order, full=True, memory_budget=config.engine.memory_budget_bytes),
        }
        disagree = _count(
            con,
            "SELECT count(*) FROM (SELECT DISTINCT customer_key FROM read_parquet($f) "
            "EXCEPT SELECT DISTINCT customer_key FROM events)",
            {"f": raw},
        )
        if disagree or _count(con, "SELECT count(*) FROM events") != _count(con, "SELECT count(*) FROM raw_events"):
            raise RuntimeError(f"{bucket_dir}: the bucket's customers differ from the exported ones")
        for table in CORE_TABLES:
            con.execute(f"COPY {table} TO {quote_literal(str(staging / f'{table}.parquet'))} (FORMAT parquet)")
        counts["seconds"] = round(time.perf_counter() - clock, 3)
        (staging / "counts.json").write_text(json.dumps(counts), encoding="utf-8")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)
    output = bucket_dir / "output"
    shutil.rmtree(output, ignore_errors=True)
    try:
        staging.rename(output)
    except OSError:  # another attempt at this bucket finished first; its output is the same
        shutil.rmtree(staging, ignore_errors=True)
    return output


def import_buckets(con: duckdb.DuckDBPyConnection, out_dirs: list[Path], full: bool) -> dict[str, Any]:
    """Replace the customers in scope in the core tables by the buckets' rows (call inside one transaction; on a
    night, after the dirty customers' rows are deleted: core.clear_dirty)."""
    inserted: dict[str, int] = {}
    for table in CORE_TABLES:
        clear_scope(con, table, full)
        files = [str(d / f"{table}.parquet") for d in out_dirs]
        inserted[f"{table}_recomputed"] = _count(
            con, f"INSERT INTO {table} BY NAME SELECT * FROM read_parquet($f)", {"f": files}
        ) if files else 0
    seconds = [json.loads((d / "counts.json").read_text(encoding="utf-8"))["seconds"] for d in out_dirs]
    row = con.execute("SELECT count(*), count(*) FILTER (WHERE converted) FROM journeys").fetchone()
    journeys, converted = row if row else (0, 0)
    return {
        "buckets": len(out_dirs), **inserted,
        "sessions": _count(con, "SELECT count(*) FROM sessions"), "journeys": journeys, "converted": converted,
        "bucket_seconds_max": max(seconds, default=0.0), "bucket_seconds_sum": round(sum(seconds), 3),
    }
