"""The measured systems, each in a child process of its own: the pipeline's steps (and an incremental night), the
DuckDB sort floor, the pandas baseline and Retentioneering.

    python -m benchmarks.systems step|pandas SPEC.json     # a child: writes its result to spec["result"]

The floor's child is benchmarks/floor.py (DuckDB only); `cjm run` is measured as the product's own command.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks.compare import compare_warehouses, compare_with_retentioneering, size, warehouse_totals
from benchmarks.measure import MB, TimedOut, cpu_seconds, measure, rate, rss_mb
from cjm_analytics.config import ColumnMap, Config, parse_config

PIPELINE_STEPS = ("load_sources", "stitch_identities", "sessionize", "build_journeys", "aggregate")
REPORT_STEP = "publish_reports"
# DuckDB settings the product's config has (`duckdb:`); temp_directory is the benchmark's own, per child.
CONFIG_SETTINGS = ("memory_limit", "threads", "max_temp_directory_size")


def _child(kind: str) -> list[str]:
    return [sys.executable, "-m", "benchmarks.systems", kind]


def link_files(data: Path, sources: Path) -> list[Path]:
    """Symbolic links in sources/<folder>/ to every Parquet file of data/<folder>/ (the source folders of a run
    that adds a night: the cached data set itself stays as generated)."""
    links = []
    for f in sorted(data.glob("*/*.parquet")):
        link = sources / f.parent.name / f.name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(f)
        links.append(link)
    return links


# --------------------------------------------------------------------------------------------------------------
# The pipeline
# --------------------------------------------------------------------------------------------------------------


def _counts_summary(step: str, counts: dict[str, Any]) -> dict[str, Any]:
    if step != "load_sources":
        return counts
    files = counts.get("files", [])
    keys = ("rows_read", "rows_loaded", "rows_rejected", "rows_duplicate")
    return {"files": len(files), **{k: sum(int(f.get(k, 0)) for f in files) for k in keys}}


def worker_step(spec: dict[str, Any]) -> dict[str, Any]:
    """One nightly step of the product (cjm_analytics.nightly) in this process."""
    from benchmarks import profiling
    from cjm_analytics.nightly import NIGHTLY_STEPS, RunContext

    cfg = parse_config(spec["config"], Path(spec["base_dir"]), "benchmark config")
    # As run_nightly does (RunContext.start), with the run id and start shared by every step's process.
    ctx = dataclasses.replace(RunContext.start(cfg, bool(spec.get("full_refresh"))), run_id=spec["run_id"],
                              run_started=datetime.fromisoformat(spec["run_started"]))
    profile = None
    if spec.get("profile_dir"):
        profile = (Path(spec["profile_dir"]), spec["step"])
        profile[0].mkdir(parents=True, exist_ok=True)
    extra = spec["duckdb"].get("extra") or {}
    if extra or profile is not None:
        profiling.add_to_connections(extra, profile)
    rss_before, cpu = rss_mb(), cpu_seconds()
    clock = time.perf_counter()
    result = dict(NIGHTLY_STEPS)[spec["step"]](ctx)
    seconds = time.perf_counter() - clock
    out = {"step": spec["step"], "seconds": round(seconds, 3), "cpu_seconds": round(cpu_seconds() - cpu, 2),
           "product_seconds": result.seconds,
           "rss_before_mb": rss_before, "counts": _counts_summary(spec["step"], result.counts)}
    if profile is not None:
        out["profile"] = profiling.summarize(*profile)
    return out


def _progress(warehouse: Path) -> dict[str, Any]:
    """How far a stopped pipeline got: files and rows loaded, and the tables that exist (read-only look)."""
    import duckdb

    try:
        con = duckdb.connect(str(warehouse), read_only=True)
    except duckdb.Error as e:
        return {"error": str(e).splitlines()[0]}
    try:
        row = con.execute("SELECT count(*), coalesce(sum(rows_loaded), 0) FROM load_manifest").fetchone()
        files, rows = row if row else (0, 0)
        tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
        return {"files_loaded": int(files), "rows_loaded": int(rows), "tables": tables}
    except duckdb.Error as e:
        return {"error": str(e).splitlines()[0]}
    finally:
        con.close()


def run_pipeline(label: str, steps: Sequence[str], config: dict[str, Any], run: dict[str, Any], workdir: Path,
                 settings: dict[str, Any], events: int, log: Callable[[str], None], deadline: float | None = None,
                 profile_dir: Path | None = None) -> dict[str, Any]:
    """The nightly steps on the warehouse of `config`, each in a child process of its own, with the run lock held
    here as run_nightly does (`run`: run_id, run_started and full_refresh, shared by the steps). Per step and end to
    end: seconds, CPU, peak RSS, spill; publish_reports is measured but left out of end to end."""
    from cjm_analytics.warehouse import run_lock

    warehouse = parse_config(config, workdir, "benchmark config").warehouse
    prefix = "" if label == "pipeline" else f"{label}-"
    section = {k: settings[k] for k in CONFIG_SETTINGS if settings.get(k) is not None}
    results = []
    completed = True
    with run_lock(warehouse, run["run_id"]):
        for step in steps:
            log(f"{label}: {step} ...")
            temp = str(workdir / f"duckdb-tmp-{prefix}{step}")  # the step's spill, measured there
            spec = {"config": {**config, "duckdb": {**section, "temp_directory": temp}}, "base_dir": str(workdir),
                    **run, "step": step, "duckdb": {**settings, "temp_directory": temp},
                    "profile_dir": str(profile_dir) if profile_dir else None}
            try:
                r = measure(_child("step"), spec, workdir, f"{prefix}step-{step}", deadline)
            except TimedOut as stopped:
                r = {"step": step, **stopped.partial, "progress": _progress(warehouse)}
                completed = False
                log(f"{label}: {step} stopped at the time limit after {r['seconds']:.0f} s; progress {r['progress']}")
            r["events_per_s"] = rate(events, r["seconds"])
            results.append(r)
            if not completed:
                break
            log(f"{label}: {step}: {r['seconds']:.2f} s, peak RSS {size(r['peak_rss_mb'])}, "
                f"spill {size(r['spill_max_mb'])}")
    main_steps = [r for r in results if r["step"] != REPORT_STEP]
    total = sum(r["seconds"] for r in main_steps)
    out: dict[str, Any] = {
        "completed": completed,
        "steps": main_steps,
        "total": {"seconds": round(total, 3), "events_per_s": rate(events, total),
                  "cpu_seconds": round(sum(r["cpu_seconds"] for r in main_steps), 2),
                  "peak_rss_mb": max(r["peak_rss_mb"] for r in main_steps),
                  "spill_max_mb": max(r["spill_max_mb"] for r in main_steps),
                  "process_seconds": round(sum(r.get("process_seconds", r["seconds"]) for r in main_steps), 3)},
        "publish_reports": next((r for r in results if r["step"] == REPORT_STEP), None),
        "warehouse_mb": round(warehouse.stat().st_size / MB, 1) if warehouse.exists() else None,
    }
    if profile_dir is not None:
        out["profile"] = {r["step"]: r.pop("profile", []) for r in results}
    return out


def incremental_night(full: dict[str, Any], steps: Sequence[str], config: dict[str, Any], workdir: Path,
                      night_path: Path, night_info: dict[str, Any], settings: dict[str, Any],
                      check: bool, log: Callable[[str], None], deadline: float | None = None,
                      profile_dir: Path | None = None) -> dict[str, Any]:
    """The next night on the warehouse of the full run, its files already linked into the source folders: the same
    steps (a new run), what they recomputed, and incremental / full; with `check`, a full refresh of a copy
    compared."""
    from cjm_analytics.nightly import RunContext

    cfg = parse_config(config, workdir, "benchmark config")
    night_events = int(night_info["night_events"])
    ctx = RunContext.start(cfg)
    run = {"run_id": ctx.run_id, "run_started": ctx.run_started.isoformat()}
    night = run_pipeline("night", steps, config, run, workdir, settings, night_events, log, deadline, profile_dir)
    out: dict[str, Any] = {"fraction": night_info["fraction"], "night_events": night_events,
                           "night": {**night_info, "path": str(night_path)}, **night}
    if not night["completed"]:
        return out
    counts = {s["step"]: s.get("counts", {}) for s in night["steps"]}
    totals = warehouse_totals(cfg.warehouse)
    out["recomputed"] = {
        "events_loaded": counts.get("load_sources", {}).get("rows_loaded"),
        "dirty_customers": counts.get("stitch_identities", {}).get("dirty_customers"),
        "customers_recomputed": counts.get("sessionize", {}).get("customers_recomputed"),
        "events_recomputed": counts.get("sessionize", {}).get("events_recomputed"),
        "customers_total": totals["customers"], "events_total": totals["events"], "journeys_total": totals["journeys"],
    }
    by_step = {s["step"]: s for s in full["steps"]}
    out["ratios"] = {
        "incremental_over_full": round(night["total"]["seconds"] / full["total"]["seconds"], 3),
        "incremental_over_full_cpu": round(night["total"]["cpu_seconds"] / max(full["total"]["cpu_seconds"], 0.01), 3),
    }
    out["step_ratios"] = {s["step"]: {"seconds": round(s["seconds"] / max(by_step[s["step"]]["seconds"], 1e-3), 3),
                                      "cpu_seconds": round(s["cpu_seconds"] / max(by_step[s["step"]]["cpu_seconds"],
                                                                                  0.01), 3)}
                          for s in night["steps"] if s["step"] in by_step}
    if check:
        log("check: a full refresh of a copy of the warehouse after the night, compared with it ...")
        refresh_dir = workdir / "refresh"
        refresh_dir.mkdir()
        shutil.copy2(cfg.warehouse, refresh_dir / cfg.warehouse.name)
        refresh_config = {**config, "warehouse": str(refresh_dir / cfg.warehouse.name),
                          "reports": str(refresh_dir / "reports")}
        refresh_run = {"run_id": RunContext.start(cfg).run_id, "run_started": run["run_started"], "full_refresh": True}
        refresh = run_pipeline("refresh", PIPELINE_STEPS, refresh_config, refresh_run, workdir, settings,
                               totals["events"], log, deadline)
        out["full_refresh"] = refresh
        if refresh["completed"]:
            out["check"] = compare_warehouses(cfg.warehouse, refresh_dir / cfg.warehouse.name)
            log(f"check: incremental night {'equals' if out['check']['equal'] else 'DIFFERS FROM'} the full refresh")
    return out


# --------------------------------------------------------------------------------------------------------------
# The floor
# --------------------------------------------------------------------------------------------------------------


def floor_sql(cfg: Config) -> tuple[str, dict[str, Any]]:
    """Scan every source and sort by (customer, time): customer = customer_id, else anonymous_id. The SQL and its
    parameters (each source's name and files)."""
    from cjm_analytics.sql_steps import quote_ident

    selects: list[str] = []
    params: dict[str, Any] = {}
    for i, source in enumerate(cfg.sources):
        if not isinstance(source.columns, ColumnMap):
            raise NotImplementedError(f"floor: source {source.name} uses a preset format")
        cols = source.columns.mapped()
        params[f"source_{i}"], params[f"files_{i}"] = source.name, [str(f) for f in source.files()]

        def col(name: str, cols: dict[str, str] = cols) -> str:
            return quote_ident(cols[name]) if name in cols else "NULL"

        ts = col("timestamp")
        fmt = source.timestamp_format
        ts_expr = {"epoch_s": f"make_timestamp(CAST({ts} AS BIGINT) * 1000000)",
                   "epoch_ms": f"make_timestamp(CAST({ts} AS BIGINT) * 1000)",
                   "epoch_us": f"make_timestamp(CAST({ts} AS BIGINT))"}.get(fmt, f"CAST({ts} AS TIMESTAMP)")
        mapped = ", ".join(quote_ident(c) for c in cols.values())
        selects.append(
            f"SELECT * EXCLUDE ({mapped}), $source_{i} AS source, {col('event_id')} AS event_id, "
            f"{col('customer_id')} AS customer_id, {col('anonymous_id')} AS anonymous_id, "
            f"{col('event_name')} AS event_name, {ts_expr} AS ts, {col('channel')} AS channel "
            f"FROM read_parquet($files_{i})")
    union = "\nUNION ALL BY NAME\n".join(selects)
    sql = f"CREATE TABLE sorted AS SELECT * FROM (\n{union}\n) ORDER BY coalesce(customer_id, anonymous_id), ts"
    return sql, params


def measure_floor(common: dict[str, Any], workdir: Path, duckdb_settings: Callable[[str], dict[str, Any]],
                  events: int, log: Callable[[str], None], in_memory: bool = True) -> dict[str, Any]:
    """`floor` (an in-memory database) and `floor_stored` (a database file, checkpointed: the issue's floor), each
    a whole process of its own (benchmarks/floor.py): `seconds` is the query's, `process_seconds` the process's.
    Without in_memory (`--skip floor_memory`), only the stored one."""
    sql, params = floor_sql(parse_config(common["config"], Path(common["base_dir"]), "benchmark config"))
    out = {}
    for key, mode in ((("floor", "memory"),) if in_memory else ()) + (("floor_stored", "file"),):
        log(f"{key}: DuckDB scan + sort by (customer, time), {mode} database ...")
        settings = duckdb_settings(key)
        spec = {"mode": mode, "sql": sql, "parameters": params, "database": str(workdir / f"{key}.duckdb"),
                "duckdb": settings,  # its temp_directory: where measure() looks for spill
                "settings": {k: settings.get(k) for k in (*CONFIG_SETTINGS, "temp_directory")}
                | (settings.get("extra") or {})}
        try:
            out[key] = measure([sys.executable, "-m", "benchmarks.floor"], spec, workdir, key)
        except RuntimeError as e:
            if mode != "memory":
                raise
            # An in-memory database cannot spill its table: at 100M it does not fit in RAM. It is a yardstick;
            # the floor is the stored one, so the run goes on and says why this one is missing.
            lines = [line for line in str(e).splitlines() if line.strip()] or [repr(e)]
            out["floor_failed"] = next((line for line in reversed(lines) if "Error" in line), lines[-1])
            log(f"{key}: failed, left out ({out['floor_failed']})")
            continue
        out[key]["events_per_s"] = rate(events, out[key]["seconds"])
        log(f"{key}: {out[key]['seconds']:.2f} s (the whole process {out[key]['process_seconds']:.2f} s)")
    return out


# --------------------------------------------------------------------------------------------------------------
# cjm run, as a user runs it: one whole process
# --------------------------------------------------------------------------------------------------------------


def cjm_run_config(config: dict[str, Any], folder: Path, settings: dict[str, Any]) -> Path:
    """The config file of a whole-process `cjm run` in `folder`: the benchmark's sources and stages, a warehouse and
    reports of its own, and the DuckDB settings given to the benchmark (none by default) plus the temp directory
    where its spill is measured."""
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    section = {k: settings[k] for k in CONFIG_SETTINGS if settings.get(k) is not None}
    body = {**config, "warehouse": str(folder / "warehouse" / "cjm.duckdb"), "reports": str(folder / "reports"),
            "duckdb": {**section, "temp_directory": str(folder / "duckdb-tmp")}}
    path = folder / "cjm.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False, width=120), encoding="utf-8")
    return path


def measure_cjm_run(name: str, config_file: Path, prefect: bool, events: int, log: Callable[[str], None],
                    deadline: float | None = None) -> dict[str, Any]:
    """`cjm run [--no-prefect] --config FILE` as one whole process (this checkout's product, by PYTHONPATH): wall
    time from spawn to exit, CPU of the process and the descendants it waited for, peak RSS of its process tree,
    spill. What a user waits for: the interpreter's start, imports, every step, the report and the published marts;
    with Prefect, also the temporary server. {"failed": why} when it exits with an error (the benchmark goes on)."""
    import os

    from benchmarks.measure import REPO, run_process

    folder = config_file.parent
    command = [sys.executable, "-m", "cjm_analytics.cli", "run", *([] if prefect else ["--no-prefect"]),
               "--config", str(config_file)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    log(f"{name}: {' '.join(command[2:])} ...")
    try:
        r = run_process(command, folder / f"{name}.log", folder / "duckdb-tmp", deadline, env)
    except TimedOut as stopped:
        log(f"{name}: stopped at the time limit after {stopped.partial['seconds']:.0f} s")
        return {**stopped.partial, "command": command}
    r["command"] = command
    r["events_per_s"] = rate(events, r["seconds"])
    if r.pop("returncode"):
        r["failed"] = (folder / f"{name}.log").read_text(encoding="utf-8", errors="replace")[-3000:]
        log(f"{name}: FAILED; log {folder / f'{name}.log'}")
        return r
    r["steps"] = run_log_steps(folder / "warehouse" / "cjm.duckdb")
    r["outside_steps_seconds"] = round(r["seconds"] - sum(s["seconds"] for s in r["steps"]), 3)
    log(f"{name}: {r['seconds']:.2f} s, CPU {r['cpu_seconds']:.1f} s, peak RSS {size(r['peak_rss_mb'])}")
    return r


def run_log_steps(warehouse: Path) -> list[dict[str, Any]]:
    """The steps of the warehouse's last run and their seconds, as the product logged them (run_log): where a
    whole `cjm run`'s time went, and, by difference, what it spent outside its steps (start, imports, Prefect)."""
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute("SELECT step, seconds FROM run_log WHERE run_id = (SELECT arg_max(run_id, finished_at) "
                           "FROM run_log) ORDER BY started_at").fetchall()
    finally:
        con.close()
    return [{"step": step, "seconds": round(float(seconds), 3)} for step, seconds in rows]


# --------------------------------------------------------------------------------------------------------------
# pandas (benchmarks/pandas_baseline.py)
# --------------------------------------------------------------------------------------------------------------


def worker_pandas(spec: dict[str, Any]) -> dict[str, Any]:
    from benchmarks import pandas_baseline

    cfg = parse_config(spec["config"], Path(spec["base_dir"]), "benchmark config")
    steps: list[dict[str, Any]] = []
    rss_before, cpu = rss_mb(), [cpu_seconds()]

    def on_step(step: str, seconds: float) -> None:
        now = cpu_seconds()
        steps.append({"step": step, "seconds": round(seconds, 3), "cpu_seconds": round(now - cpu[0], 2),
                      "peak_rss_so_far_mb": rss_mb()})
        cpu[0] = now

    result = pandas_baseline.run(cfg, datetime.fromisoformat(spec["run_started"]), on_step)
    out_dir = Path(spec["outputs"])
    out_dir.mkdir(parents=True, exist_ok=True)
    assert result.stage_funnel is not None and result.stage_transitions is not None
    result.stage_funnel.to_parquet(out_dir / "stage_funnel.parquet")
    result.stage_transitions.to_parquet(out_dir / "stage_transitions.parquet")
    return {"steps": steps, "seconds": round(sum(s["seconds"] for s in steps), 3),
            "cpu_seconds": round(sum(s["cpu_seconds"] for s in steps), 2), "counts": result.counts,
            "rss_before_mb": rss_before}


def measure_pandas(common: dict[str, Any], workdir: Path, events: int, log: Callable[[str], None]) -> dict[str, Any]:
    log("pandas baseline ...")
    p = measure(_child("pandas"), {**common, "outputs": str(workdir / "pandas")}, workdir, "pandas")
    for s in p["steps"]:
        s["events_per_s"] = rate(events, s["seconds"])
    p["events_per_s"] = rate(events, p["seconds"])
    log(f"pandas: {p['seconds']:.2f} s, peak RSS {size(p['peak_rss_mb'])}")
    return p


# --------------------------------------------------------------------------------------------------------------
# Retentioneering (benchmarks/retentioneering_baseline.py, in its own virtualenv)
# --------------------------------------------------------------------------------------------------------------


def measure_retentioneering(common: dict[str, Any], threads: int | None, workdir: Path, events: int,
                            warehouse: Path | None, log: Callable[[str], None]) -> dict[str, Any]:
    """Retentioneering's transition graph, measured in a child with .venv-retentioneering's interpreter (created on
    first use), its edges compared with the pipeline's (`warehouse`: when the pipeline completed).

    {"skipped": why} when the virtualenv cannot be created, {"failed": why} when the child fails: a third-party
    yardstick never stops the benchmark.
    """
    from benchmarks import retentioneering_baseline

    python, status = retentioneering_baseline.ensure_env(log=log)
    if python is None:
        log(f"retentioneering: skipped: {status}")
        return {"skipped": status}
    log("retentioneering: read, stitch, Eventstream, split_sessions, stages, collapse, transition graph ...")
    outputs = workdir / "retentioneering"
    spec = {**common, "outputs": str(outputs),
            "duckdb": {"threads": threads, "temp_directory": str(workdir / "duckdb-tmp-retentioneering")}}
    try:
        r = measure([str(python), "-m", "benchmarks.retentioneering_baseline", "--worker"], spec, workdir,
                    "retentioneering")
    except RuntimeError as e:
        log(f"retentioneering: {e}")
        return {"failed": str(e)}
    for s in r["steps"]:
        s["events_per_s"] = rate(events, s["seconds"])
    r["events_per_s"] = rate(events, r["seconds"])
    log(f"retentioneering: {r['seconds']:.2f} s, peak RSS {size(r['peak_rss_mb'])}")
    if warehouse is not None:
        r["agreement"] = compare_with_retentioneering(warehouse, outputs, r["counts"])
    return r


WORKERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {"step": worker_step, "pandas": worker_pandas}


def main(argv: Sequence[str]) -> int:
    """A child: `KIND SPEC_FILE`; the worker's result, with this process's peak RSS, goes to spec["result"]."""
    kind, spec_file = argv
    spec = json.loads(Path(spec_file).read_text(encoding="utf-8"))
    result = WORKERS[kind](spec)
    result["peak_rss_mb"] = rss_mb()
    Path(spec["result"]).write_text(json.dumps(result, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
