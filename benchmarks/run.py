"""The benchmark: the real nightly steps, the DuckDB sort floor and a pandas baseline on the same generated data.

    python -m benchmarks.run --events 1000000 [--seed 1] [--memory-limit 4GB] [--threads 2] [--set NAME=VALUE]
                             [--skip floor,pipeline,pandas,publish] [--pipeline-time-limit MINUTES]
                             [--out benchmarks/results/NAME.json] [--profile] [--keep]

What it does, in one run (see benchmarks/README.md):

1. data: generates the data set with benchmarks/generate.py (in a child process), or reuses it from the
   cache directory (`--data-dir`, env CJM_BENCH_DATA, default ~/.cache/cjm-bench; outside the repo), keyed by
   events, seed and generator version; then reads every file once so that all systems start from a warm
   page cache;
2. floor: DuckDB reads all the Parquet files and materializes them sorted by (customer, time):
   `CREATE TABLE sorted AS SELECT ... ORDER BY coalesce(customer_id, anonymous_id), ts`, in an in-memory
   database (`floor`) and in a database file, checkpointed (`floor_stored`);
3. pipeline: every step of cjm_analytics.nightly.NIGHTLY_STEPS on a fresh warehouse, one child process per
   step (same run id), so each step's wall time, CPU time, peak RSS (the child's VmHWM) and DuckDB spill
   (the temp directory's allocated size, sampled every 50 ms) are its own; publish_reports is measured but
   kept out of the end-to-end figures;
4. pandas: benchmarks/pandas_baseline.py in one child process (peak RSS after each step);
5. retentioneering: benchmarks/retentioneering_baseline.py, Retentioneering 5 building its transition graph,
   in a child process with the interpreter of its own virtualenv (.venv-retentioneering, created on first use;
   skipped with the reason when it cannot be); its edges are compared with the pipeline's;

then compares the pipeline's stage_funnel, stage_transitions and counts with the pandas baseline's (an
independent implementation of docs/definitions.md), prints the table and the ratios, and writes everything
(with the machine, the versions, the product's commit and source hash, and the settings) to a JSON file.

`--memory-limit`, `--threads` and `--set` of one of the product's DuckDB settings go into the `duckdb:`
section of the config every step runs with, as a user would set them (each step also gets its own
`temp_directory`, where its spill is measured); the same settings apply to the floor. Other `--set` settings
and `--profile` (DuckDB's JSON profile of every statement of every step, and where each step's time goes)
wrap cjm_analytics.warehouse.connect in the step's child process only.

`--incremental 0.01` adds the next night: after the systems above, the night's files
(`benchmarks.generate --night-fraction`, cached beside the data set) are linked into the source folders and the
same steps run again on the same warehouse, each in a child process, as an incremental night; per step and end
to end it reports the same figures, the customers and events recomputed, and incremental / full. With
`--check-incremental`, a copy of that warehouse is then refreshed in full (`--full-refresh`, measured too) and
its core tables and stage marts are compared with the incremental night's (EXCEPT ALL both ways).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PIPELINE_STEPS = ("load_sources", "stitch_identities", "sessionize", "build_journeys", "aggregate")
REPORT_STEP = "publish_reports"
SYSTEMS = ("floor", "pipeline", "pandas", "publish", "retentioneering")
# DuckDB settings the product's config has (`duckdb:`); temp_directory is the benchmark's own, per child.
CONFIG_SETTINGS = ("memory_limit", "threads", "max_temp_directory_size")
MB = 1024 * 1024


# --------------------------------------------------------------------------------------------------------------
# The data set
# --------------------------------------------------------------------------------------------------------------


def default_data_dir() -> Path:
    return Path(os.environ.get("CJM_BENCH_DATA") or Path.home() / ".cache" / "cjm-bench")


def dataset(data_dir: Path, events: int, seed: int, log: Callable[[str], None]) -> tuple[Path, dict[str, Any], bool]:
    """The data set's directory (generated unless cached), its description, and whether it was generated now."""
    from benchmarks.generate import GENERATOR_VERSION

    path = data_dir / f"events-{events}-seed-{seed}-v{GENERATOR_VERSION}"
    info_file = path / "dataset.json"
    if info_file.is_file():
        info = json.loads(info_file.read_text(encoding="utf-8"))
        if info.get("events") == events and info.get("seed") == seed and len(list(path.rglob("*.parquet"))) == info[
                "files"]:
            return path, info, False
    log(f"generating {events:,} events (seed {seed}) in {path} ...")
    # In a child process, so that this one stays small while it measures the others.
    subprocess.run([sys.executable, "-m", "benchmarks.generate", "--events", str(events), "--seed", str(seed),
                    "--out", str(path)], cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    info = json.loads(info_file.read_text(encoding="utf-8"))
    log(f"generated {info['files']} files, {info['bytes'] / MB:,.0f} MB in {info['seconds']:.1f} s")
    return path, info, True


def night_dataset(data_dir: Path, events: int, seed: int, fraction: float,
                  log: Callable[[str], None]) -> tuple[Path, dict[str, Any], bool]:
    """The next night's directory (generated unless cached, beside the data set), its description, whether new."""
    from benchmarks.generate import GENERATOR_VERSION, NIGHT_VERSION, night_key

    path = data_dir / f"events-{events}-seed-{seed}-v{GENERATOR_VERSION}-{night_key(fraction)}-n{NIGHT_VERSION}"
    info_file = path / "night.json"
    if info_file.is_file():
        info = json.loads(info_file.read_text(encoding="utf-8"))
        if (info.get("events"), info.get("seed"), info.get("fraction")) == (events, seed, fraction) and len(
                list(path.rglob("*.parquet"))) == info["files"]:
            return path, info, False
    log(f"generating the night after it: {fraction:g} x {events:,} events in {path} ...")
    subprocess.run([sys.executable, "-m", "benchmarks.generate", "--events", str(events), "--seed", str(seed),
                    "--night-fraction", repr(fraction), "--out", str(path)], cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL)
    info = json.loads(info_file.read_text(encoding="utf-8"))
    log(f"generated the night: {info['night_events']:,} events in {info['seconds']:.1f} s")
    return path, info, True


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


def warm_page_cache(path: Path) -> None:
    """Read every data file once, so that no system pays for the first read from disk."""
    for f in sorted(path.rglob("*.parquet")):
        with f.open("rb") as fh:
            while fh.read(1 << 24):
                pass


# --------------------------------------------------------------------------------------------------------------
# Measuring a child process
# --------------------------------------------------------------------------------------------------------------


def _allocated_bytes(path: Path) -> int:
    total = 0
    with contextlib.suppress(FileNotFoundError):
        for root, _dirs, files in os.walk(path):
            for name in files:
                with contextlib.suppress(FileNotFoundError):
                    total += os.stat(os.path.join(root, name)).st_blocks * 512
    return total


class _Sampler(threading.Thread):
    """While a child runs: the largest allocated size of the DuckDB temp directory, and the child's VmHWM (so a
    child that has to be stopped still has a peak RSS), sampled every 50 ms."""

    def __init__(self, temp_dir: Path) -> None:
        super().__init__(daemon=True)
        self.temp_dir, self.max_spill, self.pid, self.hwm_kb = temp_dir, 0, 0, 0
        self._stop_event = threading.Event()

    def _sample(self) -> None:
        self.max_spill = max(self.max_spill, _allocated_bytes(self.temp_dir))
        if self.pid:
            with contextlib.suppress(OSError, ValueError, IndexError):
                for line in Path(f"/proc/{self.pid}/status").read_text(encoding="utf-8").splitlines():
                    if line.startswith("VmHWM:"):
                        self.hwm_kb = max(self.hwm_kb, int(line.split()[1]))

    def run(self) -> None:
        while not self._stop_event.is_set():
            self._sample()
            self._stop_event.wait(0.05)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        self.max_spill = max(self.max_spill, _allocated_bytes(self.temp_dir))
        return self.max_spill


class TimedOut(Exception):
    """A measured child was stopped at the benchmark's time limit; what was measured until then."""

    def __init__(self, name: str, partial: dict[str, Any]) -> None:
        super().__init__(f"{name} stopped at the time limit after {partial['seconds']:.0f} s")
        self.partial = partial


def measure(kind: str, spec: dict[str, Any], workdir: Path, name: str,
            deadline: float | None = None, command: Sequence[str] | None = None) -> dict[str, Any]:
    """Run `python -m benchmarks.run --worker KIND SPEC` and measure it: its own result plus peak RSS and spill.

    A child still running at `deadline` (time.monotonic()) is killed and TimedOut raised. `command` (another
    interpreter and module; the spec file is appended) replaces `python -m benchmarks.run --worker KIND`.
    """
    spec_file = workdir / f"{name}.spec.json"
    result_file = workdir / f"{name}.result.json"
    log_file = workdir / f"{name}.log"
    spec = {**spec, "result": str(result_file)}
    spec_file.write_text(json.dumps(spec, default=str), encoding="utf-8")
    temp_dir = Path(spec["duckdb"]["temp_directory"]) if spec.get("duckdb") else workdir / "none"
    load_before = os.getloadavg()[0]
    sampler = _Sampler(temp_dir)
    clock = time.perf_counter()
    timed_out = False
    with log_file.open("w", encoding="utf-8") as log:
        argv = [*command, str(spec_file)] if command else [sys.executable, "-m", "benchmarks.run", "--worker", kind,
                                                           str(spec_file)]
        child = subprocess.Popen(argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        sampler.pid = child.pid
        sampler.start()
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if deadline is not None and time.monotonic() > deadline and not timed_out:
                timed_out = True
                sampler._sample()
                os.kill(child.pid, signal.SIGKILL)  # our own child, by its pid
            time.sleep(0.05)
        child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - clock
    spill = sampler.stop()
    shutil.rmtree(temp_dir, ignore_errors=True)
    if timed_out:
        raise TimedOut(name, {"timed_out": True, "seconds": round(wall, 3),
                              "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
                              "peak_rss_mb": round(sampler.hwm_kb / 1024, 1), "spill_max_mb": round(spill / MB, 1),
                              "load_average_before": round(load_before, 2)})
    if child.returncode != 0 or not result_file.is_file():
        tail = log_file.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise RuntimeError(f"{name} failed (exit {child.returncode}); log {log_file}:\n{tail}")
    result: dict[str, Any] = json.loads(result_file.read_text(encoding="utf-8"))
    # peak_rss_mb: the child's own VmHWM at its end (see _rss_mb); ru_maxrss is kept for reference only.
    result.update(spill_max_mb=round(spill / MB, 1), process_seconds=round(wall, 3),
                  process_cpu_seconds=round(usage.ru_utime + usage.ru_stime, 2),
                  ru_maxrss_mb=round(usage.ru_maxrss / 1024, 1), load_average_before=round(load_before, 2))
    return result


# --------------------------------------------------------------------------------------------------------------
# Workers (child processes)
# --------------------------------------------------------------------------------------------------------------


def _rss_mb() -> float:
    """This process's peak RSS so far: VmHWM of its own address space.

    Not getrusage's ru_maxrss: on Linux a child's ru_maxrss starts at its parent's RSS at spawn (exec keeps
    the larger of the two), so a large parent would inflate every child's figure.
    """
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _cpu() -> float:
    """CPU seconds of this process so far (all threads, user + system)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _settings_sql(settings: dict[str, Any]) -> list[str]:
    """SET statements for the benchmark's DuckDB settings (the config's ones, temp_directory, other --set ones)."""
    sql = []
    extra = settings.get("extra") or {}
    for key, value in [*((k, settings.get(k)) for k in (*CONFIG_SETTINGS, "temp_directory")), *extra.items()]:
        if value is None:
            continue
        if not re.fullmatch(r"[a-z_]+", key):
            raise ValueError(f"not a DuckDB setting name: {key!r}")
        literal = "'" + str(value).replace("'", "''") + "'"
        sql.append(f"SET {key} = {value if isinstance(value, int) else literal}")
    return sql


class _ProfiledConnection:
    """Forwards to a DuckDB connection; every statement's JSON profile goes to its own file."""

    def __init__(self, con: Any, folder: Path, prefix: str, counter: list[int]) -> None:
        self._con, self._folder, self._prefix, self._counter = con, folder, prefix, counter
        con.execute("PRAGMA enable_profiling = 'json'")

    def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        self._counter[0] += 1
        out = self._folder / f"{self._prefix}-{self._counter[0]:04d}.json"
        self._con.execute(f"SET profiling_output = '{out}'")
        return self._con.execute(query, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


def _patch_connect(extra: dict[str, Any], profile: tuple[Path, str] | None) -> None:
    """DuckDB settings the config has no field for, and profiling, on every connection the product opens (in this
    process only); the config's `duckdb:` settings are applied by the product itself."""
    import cjm_analytics.warehouse as warehouse

    original = warehouse.connect
    counter = [0]

    def connect(path: Path, read_only: bool = False, settings: Any = None) -> Any:
        con = original(path, read_only, settings)
        for statement in _settings_sql({"extra": extra}):
            con.execute(statement)
        if profile is not None:
            return _ProfiledConnection(con, profile[0], profile[1], counter)
        return con

    warehouse.connect = connect


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


def _summarize_profiles(folder: Path, prefix: str) -> dict[str, Any]:
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


def _counts_summary(step: str, counts: dict[str, Any]) -> dict[str, Any]:
    if step != "load_sources":
        return counts
    files = counts.get("files", [])
    keys = ("rows_read", "rows_loaded", "rows_rejected", "rows_duplicate")
    return {"files": len(files), **{k: sum(int(f.get(k, 0)) for f in files) for k in keys}}


def worker_step(spec: dict[str, Any]) -> dict[str, Any]:
    """One nightly step of the product (cjm_analytics.nightly) in this process."""
    from cjm_analytics.config import parse_config
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
        _patch_connect(extra, profile)
    rss_before, cpu = _rss_mb(), _cpu()
    clock = time.perf_counter()
    result = dict(NIGHTLY_STEPS)[spec["step"]](ctx)
    seconds = time.perf_counter() - clock
    out = {"step": spec["step"], "seconds": round(seconds, 3), "cpu_seconds": round(_cpu() - cpu, 2),
           "product_seconds": result.seconds,
           "rss_before_mb": rss_before, "counts": _counts_summary(spec["step"], result.counts)}
    if profile is not None:
        out["profile"] = _summarize_profiles(*profile)
    return out


def run_pipeline(label: str, steps: Sequence[str], config: dict[str, Any], run: dict[str, Any], workdir: Path,
                 settings: dict[str, Any], events: int, log: Callable[[str], None], deadline: float | None = None,
                 profile_dir: Path | None = None) -> dict[str, Any]:
    """The nightly steps on the warehouse of `config`, each in a child process of its own, with the run lock held
    here as run_nightly does (`run`: run_id, run_started and full_refresh, shared by the steps). Per step and end to
    end: seconds, CPU, peak RSS, spill; publish_reports is measured but left out of end to end."""
    from cjm_analytics.config import parse_config
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
                r = measure("step", spec, workdir, f"{prefix}step-{step}", deadline)
            except TimedOut as stopped:
                r = {"step": step, **stopped.partial, "progress": _progress(warehouse)}
                completed = False
                log(f"{label}: {step} stopped at the time limit after {r['seconds']:.0f} s; progress {r['progress']}")
            r["events_per_s"] = _rate(events, r["seconds"])
            results.append(r)
            if not completed:
                break
            log(f"{label}: {step}: {r['seconds']:.2f} s, peak RSS {_size(r['peak_rss_mb'])}, "
                f"spill {_size(r['spill_max_mb'])}")
    main_steps = [r for r in results if r["step"] != REPORT_STEP]
    total = sum(r["seconds"] for r in main_steps)
    out: dict[str, Any] = {
        "completed": completed,
        "steps": main_steps,
        "total": {"seconds": round(total, 3), "events_per_s": _rate(events, total),
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


# Compared after an incremental night and a full refresh: the core tables and the stage marts, without the
# columns that name the run that wrote a row.
INCREMENTAL_COMPARED = ("identities", "events", "sessions", "journey_steps", "journeys", "stage_funnel",
                        "stage_funnel_by_segment", "stage_transitions", "stage_conversion_daily", "sankey_links")
RUN_COLUMNS = {"run_id", "run_date"}


def compare_warehouses(left: Path, right: Path) -> dict[str, Any]:
    """Per table of INCREMENTAL_COMPARED: rows only in left and only in right (EXCEPT ALL both ways)."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute(f"ATTACH '{left}' AS l (READ_ONLY)")
        con.execute(f"ATTACH '{right}' AS r (READ_ONLY)")
        tables: dict[str, Any] = {}
        for name in INCREMENTAL_COMPARED:
            cols = ", ".join('"' + str(c[0]) + '"' for c in con.execute(f"DESCRIBE l.{name}").fetchall()
                             if c[0] not in RUN_COLUMNS)
            counts = []
            for a, b in (("l", "r"), ("r", "l")):
                row = con.execute(f"SELECT count(*) FROM (SELECT {cols} FROM {a}.{name} EXCEPT ALL "
                                  f"SELECT {cols} FROM {b}.{name})").fetchone()
                counts.append(int(row[0]) if row else -1)
            size = con.execute(f"SELECT count(*) FROM l.{name}").fetchone()
            tables[name] = {"rows": int(size[0]) if size else 0, "only_incremental": counts[0],
                            "only_full_refresh": counts[1]}
    finally:
        con.close()
    return {"equal": all(t["only_incremental"] == 0 and t["only_full_refresh"] == 0 for t in tables.values()),
            "tables": tables}


def _warehouse_totals(warehouse: Path) -> dict[str, int]:
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        row = con.execute("SELECT (SELECT count(*) FROM events), (SELECT count(DISTINCT customer_key) FROM events), "
                          "(SELECT count(*) FROM journeys)").fetchone()
    finally:
        con.close()
    return dict(zip(("events", "customers", "journeys"), map(int, row or (0, 0, 0)), strict=True))


def incremental_night(full: dict[str, Any], steps: Sequence[str], config: dict[str, Any], workdir: Path,
                      sources: Path, night_path: Path, night_info: dict[str, Any], settings: dict[str, Any],
                      check: bool, log: Callable[[str], None], deadline: float | None = None,
                      profile_dir: Path | None = None) -> dict[str, Any]:
    """The next night on the warehouse of the full run: its files linked into the source folders, the same steps
    (a new run), what they recomputed, and incremental / full; with `check`, a full refresh of a copy compared."""
    from cjm_analytics.config import parse_config
    from cjm_analytics.nightly import RunContext

    cfg = parse_config(config, workdir, "benchmark config")
    link_files(night_path, sources)
    night_events = int(night_info["night_events"])
    ctx = RunContext.start(cfg)
    run = {"run_id": ctx.run_id, "run_started": ctx.run_started.isoformat()}
    night = run_pipeline("night", steps, config, run, workdir, settings, night_events, log, deadline, profile_dir)
    out: dict[str, Any] = {"fraction": night_info["fraction"], "night_events": night_events,
                           "night": {**night_info, "path": str(night_path)}, **night}
    if not night["completed"]:
        return out
    counts = {s["step"]: s.get("counts", {}) for s in night["steps"]}
    totals = _warehouse_totals(cfg.warehouse)
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


def floor_sql(cfg: Any) -> str:
    """Scan every source and sort by (customer, time): customer = customer_id, else anonymous_id."""
    from cjm_analytics.config import ColumnMap

    selects = []
    for source in cfg.sources:
        if not isinstance(source.columns, ColumnMap):
            raise NotImplementedError(f"floor: source {source.name} uses a preset format")
        cols = source.columns.mapped()
        files = ", ".join("'" + str(f).replace("'", "''") + "'" for f in source.files())

        def col(name: str, cols: dict[str, str] = cols) -> str:
            return '"' + cols[name] + '"' if name in cols else "NULL"

        ts = col("timestamp")
        fmt = source.timestamp_format
        ts_expr = {"epoch_s": f"make_timestamp(CAST({ts} AS BIGINT) * 1000000)",
                   "epoch_ms": f"make_timestamp(CAST({ts} AS BIGINT) * 1000)",
                   "epoch_us": f"make_timestamp(CAST({ts} AS BIGINT))"}.get(fmt, f"CAST({ts} AS TIMESTAMP)")
        mapped = ", ".join(f'"{c}"' for c in cols.values())
        selects.append(
            f"SELECT * EXCLUDE ({mapped}), '{source.name}' AS source, {col('event_id')} AS event_id, "
            f"{col('customer_id')} AS customer_id, {col('anonymous_id')} AS anonymous_id, "
            f"{col('event_name')} AS event_name, {ts_expr} AS ts, {col('channel')} AS channel "
            f"FROM read_parquet([{files}])")
    union = "\nUNION ALL BY NAME\n".join(selects)
    return f"CREATE TABLE sorted AS SELECT * FROM (\n{union}\n) ORDER BY coalesce(customer_id, anonymous_id), ts"


def worker_floor(spec: dict[str, Any]) -> dict[str, Any]:
    """The floor: in an in-memory database (`memory`), or in a database file, checkpointed (`file`)."""
    import duckdb

    from cjm_analytics.config import parse_config

    cfg = parse_config(spec["config"], Path(spec["base_dir"]), "benchmark config")
    db = Path(spec["database"])
    db.unlink(missing_ok=True)
    con = duckdb.connect(str(db) if spec["mode"] == "file" else ":memory:")
    for statement in _settings_sql(spec["duckdb"]):
        con.execute(statement)
    sql = floor_sql(cfg)
    rss_before, cpu = _rss_mb(), _cpu()
    clock = time.perf_counter()
    con.execute(sql)
    con.execute("CHECKPOINT")
    seconds = time.perf_counter() - clock
    cpu = _cpu() - cpu
    rows = con.execute("SELECT count(*) FROM sorted").fetchone()
    con.close()
    size = db.stat().st_size if db.exists() else 0
    db.unlink(missing_ok=True)
    return {"mode": spec["mode"], "seconds": round(seconds, 3), "cpu_seconds": round(cpu, 2),
            "rows": rows[0] if rows else 0, "sql": sql, "rss_before_mb": rss_before, "database_mb": round(size / MB, 1)}


def worker_pandas(spec: dict[str, Any]) -> dict[str, Any]:
    from benchmarks import pandas_baseline
    from cjm_analytics.config import parse_config

    cfg = parse_config(spec["config"], Path(spec["base_dir"]), "benchmark config")
    steps: list[dict[str, Any]] = []
    rss_before, cpu = _rss_mb(), [_cpu()]

    def on_step(step: str, seconds: float) -> None:
        now = _cpu()
        steps.append({"step": step, "seconds": round(seconds, 3), "cpu_seconds": round(now - cpu[0], 2),
                      "peak_rss_so_far_mb": _rss_mb()})
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


WORKERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "step": worker_step, "floor": worker_floor, "pandas": worker_pandas,
}


def run_worker(kind: str, spec_file: str) -> int:
    spec = json.loads(Path(spec_file).read_text(encoding="utf-8"))
    result = WORKERS[kind](spec)
    result["peak_rss_mb"] = _rss_mb()
    Path(spec["result"]).write_text(json.dumps(result, default=str), encoding="utf-8")
    return 0


# --------------------------------------------------------------------------------------------------------------
# Comparing the pipeline with the pandas baseline
# --------------------------------------------------------------------------------------------------------------


def compare_with_pandas(warehouse: Path, pandas_outputs: Path, pandas_counts: dict[str, Any]) -> dict[str, Any]:
    """Do the product's funnel, transitions and headline counts equal the pandas baseline's?"""
    import duckdb
    import numpy as np
    import pandas as pd

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        funnel = con.execute("SELECT stage, stage_order, reached, exited FROM stage_funnel ORDER BY stage_order").df()
        edges = con.execute("SELECT from_stage, to_stage, transitions, customers, probability, median_hours "
                            "FROM stage_transitions ORDER BY from_order, to_order").df()
        row = con.execute("SELECT (SELECT count(*) FROM events), (SELECT count(DISTINCT customer_key) FROM events), "
                          "(SELECT count(*) FROM sessions), (SELECT count(*) FROM journeys), "
                          "(SELECT count(*) FILTER (WHERE converted) FROM journeys)").fetchone()
    finally:
        con.close()
    theirs_f = pd.read_parquet(pandas_outputs / "stage_funnel.parquet")
    theirs_t = pd.read_parquet(pandas_outputs / "stage_transitions.parquet")
    ours_counts = dict(zip(("events", "customers", "sessions", "journeys", "converted"), row or (), strict=True))
    funnel_ok = funnel[["reached", "exited"]].astype("int64").equals(theirs_f[["reached", "exited"]].astype("int64"))
    merged = edges.merge(theirs_t, on=["from_stage", "to_stage"], how="outer", suffixes=("", "_pandas"),
                         indicator=True)
    same_edges = bool((merged["_merge"] == "both").all())
    counts_ok = same_edges and bool((merged.transitions == merged.transitions_pandas).all()
                                    and (merged.customers == merged.customers_pandas).all())
    prob_ok = same_edges and bool(np.allclose(merged.probability, merged.probability_pandas, rtol=1e-9))
    med_ok = same_edges and bool(np.allclose(merged.median_hours.astype(float),
                                             merged.median_hours_pandas.astype(float), rtol=1e-9, atol=1e-9,
                                             equal_nan=True))
    mismatched = {k: [ours_counts[k], pandas_counts.get(k)] for k in ours_counts
                  if pandas_counts.get(k) is not None and ours_counts[k] != pandas_counts.get(k)}
    return {"funnel_reached_exited": funnel_ok, "transition_counts": counts_ok, "probabilities": prob_ok,
            "median_hours": med_ok, "counts": not mismatched, "count_mismatches": mismatched,
            "edges": len(edges), "all": funnel_ok and counts_ok and prob_ok and med_ok and not mismatched}


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
        r = measure("retentioneering", spec, workdir, "retentioneering",
                    command=[str(python), "-m", "benchmarks.retentioneering_baseline", "--worker"])
    except RuntimeError as e:
        log(f"retentioneering: {e}")
        return {"failed": str(e)}
    for s in r["steps"]:
        s["events_per_s"] = _rate(events, s["seconds"])
    r["events_per_s"] = _rate(events, r["seconds"])
    log(f"retentioneering: {r['seconds']:.2f} s, peak RSS {_size(r['peak_rss_mb'])}")
    if warehouse is not None:
        r["agreement"] = compare_with_retentioneering(warehouse, outputs, r["counts"])
    return r


def compare_with_retentioneering(warehouse: Path, outputs: Path, counts: dict[str, Any]) -> dict[str, Any]:
    """Retentioneering's edges (transitions, customers, probability) and counts against the pipeline's."""
    import duckdb
    import pandas as pd

    from benchmarks.retentioneering_baseline import compare_edges

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        ours = con.execute("SELECT from_stage, to_stage, transitions, customers, probability, median_hours "
                           "FROM stage_transitions ORDER BY from_order, to_order").df()
        row = con.execute("SELECT (SELECT count(DISTINCT customer_key) FROM events), (SELECT count(*) FROM sessions), "
                          "(SELECT count(*) FROM journeys)").fetchone()
    finally:
        con.close()
    out = compare_edges(ours, pd.read_parquet(outputs / "stage_transitions.parquet"))
    ours_counts = dict(zip(("customers", "sessions", "journeys"), row or (), strict=True))
    out["count_mismatches"] = {k: [v, counts.get(k)] for k, v in ours_counts.items() if v != counts.get(k)}
    return out


def retentioneering_ratios(report: dict[str, Any]) -> dict[str, float]:
    """Retentioneering over the pipeline end to end: wall time, CPU time, peak RSS (when both ran)."""
    r, p = report.get("retentioneering") or {}, report.get("pipeline") or {}
    if "steps" not in r or not p.get("completed"):
        return {}
    total = p["total"]
    return {"retentioneering_over_pipeline": round(r["seconds"] / total["seconds"], 2),
            "retentioneering_over_pipeline_cpu": round(r["cpu_seconds"] / total["cpu_seconds"], 2),
            "retentioneering_over_pipeline_peak_rss": round(r["peak_rss_mb"] / total["peak_rss_mb"], 2)}


def _retentioneering_lines(r: dict[str, Any]) -> list[str]:
    """What the table says about Retentioneering besides its rows: why it is missing, or how it agrees."""
    if "skipped" in r or "failed" in r:
        why = str(r.get("skipped") or r.get("failed")).splitlines()[0]
        return [f"retentioneering: {'skipped' if 'skipped' in r else 'FAILED'}: {why}"]
    v = r.get("versions", {})
    lines = [f"(retentioneering {v.get('retentioneering')}: pandas {v.get('pandas')}, duckdb {v.get('duckdb')}; "
             "peak RSS so far after each phase)"]
    a = r.get("agreement")
    if a:
        lines.append(
            f"retentioneering vs pipeline: {a['edges_in_both']} of {a['edges']} edges in both "
            f"(+{len(a['only_retentioneering'])} only in Retentioneering); transitions equal on "
            f"{a['edges_equal_transitions']}, customers on {a['edges_equal_customers']}; total transitions "
            f"{a['transitions_retentioneering']:,} vs {a['transitions']:,}, largest edge difference "
            f"{a['max_abs_transition_diff']} ({a['max_rel_transition_diff']:.2%}), probability "
            f"{a['max_abs_probability_diff']:.4f}"
            + (f"; count mismatches {a['count_mismatches']}" if a["count_mismatches"] else "")
            + ("" if a["all_equal"] else " (ties: see benchmarks/README.md)"))
    return lines


# --------------------------------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    import duckdb
    import numpy
    import pandas
    import pyarrow

    try:
        import psutil

        memory_gb = round(psutil.virtual_memory().total / 1024**3, 1)
    except ImportError:
        memory_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1)
    cpu_model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    commit = ""
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                check=True).stdout.strip()
    return {
        "cores": os.cpu_count(), "cores_available": len(os.sched_getaffinity(0)), "cpu_model": cpu_model,
        "memory_gb": memory_gb, "platform": platform.platform(), "python": platform.python_version(),
        "duckdb": duckdb.__version__, "pandas": pandas.__version__, "pyarrow": pyarrow.__version__,
        "numpy": numpy.__version__, "git_commit": commit, "load_average": list(os.getloadavg()),
    }


def product_fingerprint() -> dict[str, Any]:
    """Which product code was measured: the commit, and a hash of sql/ and cjm_analytics/ as they are on disk
    (other work may be uncommitted)."""
    import hashlib

    digest = hashlib.sha256()
    files = sorted([*REPO.glob("sql/**/*.sql"), *REPO.glob("cjm_analytics/**/*.py")])
    for f in files:
        digest.update(f.relative_to(REPO).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return {"source_sha256": digest.hexdigest()[:16], "files": len(files)}


def _rate(events: int, seconds: float) -> float:
    return round(events / seconds) if seconds > 0 else 0.0


def _size(mb: float) -> str:
    return f"{mb / 1024:,.2f} GB" if mb >= 1024 else f"{mb:,.0f} MB"


def print_table(report: dict[str, Any]) -> None:
    n = report["events"]
    m = report["machine"]
    print()
    print(f"cjm benchmark: {n:,} events ({report['data']['customers']:,} customers, {report['data']['files']} files, "
          f"{report['data']['bytes'] / MB:,.0f} MB Parquet), seed {report['seed']}")
    print(f"machine: {m['cores_available']} cores, {m['memory_gb']} GB; duckdb {m['duckdb']}, pandas {m['pandas']}; "
          f"memory_limit {report['settings']['memory_limit'] or 'default'}, "
          f"threads {report['settings']['threads'] or 'default'}"
          + (f", max_temp_directory_size {report['settings']['max_temp_directory_size']}"
             if report["settings"].get("max_temp_directory_size") else "")
          + "".join(f", {k} {v}" for k, v in (report["settings"].get("extra") or {}).items()))
    header = f"{'system':<15} {'step':<22} {'seconds':>9} {'cpu s':>7} {'events/s':>12} {'peak RSS':>10} {'spill':>9}"
    print(header)
    print("-" * len(header))

    def row(system: str, step: str, r: dict[str, Any], rss: str = "peak_rss_mb") -> None:
        rss_s = _size(r[rss]) if r.get(rss) is not None else "-"
        spill_s = _size(r["spill_max_mb"]) if r.get("spill_max_mb") is not None else "-"
        stopped = "  stopped at the time limit" if r.get("timed_out") else ""
        print(f"{system:<15} {step:<22} {r['seconds']:>9.2f} {r.get('cpu_seconds', 0):>7.1f} "
              f"{r.get('events_per_s', _rate(n, r['seconds'])):>12,.0f} {rss_s:>10} {spill_s:>9}{stopped}")

    if "floor" in report:
        row("floor", "scan+sort, in memory", report["floor"])
    if "floor_stored" in report:
        row("floor", "scan+sort, to file", report["floor_stored"])
    if "pipeline" in report:
        p = report["pipeline"]
        for s in p["steps"]:
            row("pipeline", s["step"], s)
        row("pipeline", "end to end" if p["completed"] else "until stopped", p["total"])
        if p.get("publish_reports"):
            row("(report)", REPORT_STEP, p["publish_reports"])
    if "pandas" in report:
        pd_ = report["pandas"]
        for s in pd_["steps"]:
            row("pandas", s["step"], s, rss="peak_rss_so_far_mb")
        row("pandas", "end to end", {**pd_, "spill_max_mb": None})
        print("(pandas: peak RSS is the process's high-water mark so far, after each step)")
    rt = report.get("retentioneering") or {}
    for s in rt.get("steps", []):
        row("retentioneering", s["step"], s, rss="peak_rss_so_far_mb")
    if "steps" in rt:
        row("retentioneering", "end to end", rt)
    if rt:
        print(_retentioneering_lines(rt)[0])
    ratios = report.get("ratios", {})
    if ratios:
        print("ratios: " + ", ".join(f"{k.replace('_', ' ')} = {v:.2f}" for k, v in ratios.items()))
    if "agreement" in report:
        a = report["agreement"]
        verdict = "agrees" if a["all"] else "DISAGREES"
        print(f"pandas baseline {verdict} with the pipeline: "
              + ", ".join(f"{k} {'ok' if v else 'DIFFERENT'}" for k, v in a.items()
                          if isinstance(v, bool) and k != "all")
              + (f"; count mismatches {a['count_mismatches']}" if a["count_mismatches"] else ""))
    for line in _retentioneering_lines(rt)[1:] if rt else []:
        print(line)
    inc = report.get("incremental")
    if inc:
        print(f"incremental night: {inc['night_events']:,} new events ({inc['fraction']:g} of the history), "
              f"{inc['night']['day']}; events/s of the night's events")
        for s in inc["steps"]:
            row("night", s["step"], s)
        row("night", "end to end" if inc["completed"] else "until stopped", inc["total"])
        if inc.get("publish_reports"):
            row("(report)", f"night {REPORT_STEP}", inc["publish_reports"])
        rc = inc.get("recomputed")
        if rc:
            print(f"night recomputed {rc['customers_recomputed']:,} of {rc['customers_total']:,} customers "
                  f"({rc['customers_recomputed'] / max(rc['customers_total'], 1):.1%}; dirty after stitching "
                  f"{rc['dirty_customers']:,}) and {rc['events_recomputed']:,} of {rc['events_total']:,} events "
                  f"({rc['events_recomputed'] / max(rc['events_total'], 1):.1%}); loaded {rc['events_loaded']:,}")
        if inc.get("ratios"):
            r_ = inc["ratios"]
            print(f"incremental / full: wall {r_['incremental_over_full']:.3f}, "
                  f"CPU {r_['incremental_over_full_cpu']:.3f} (target: under 0.10); per step (wall / CPU): "
                  + ", ".join(f"{k} {v['seconds']:.2f}/{v['cpu_seconds']:.2f}" for k, v in inc["step_ratios"].items()))
        fr = inc.get("full_refresh")
        if fr:
            for s in fr["steps"]:
                row("refresh", s["step"], s)
            row("refresh", "end to end" if fr["completed"] else "until stopped", fr["total"])
        if "check" in inc:
            c = inc["check"]
            print("incremental night vs full refresh of history + night: "
                  + ("equal" if c["equal"] else "DIFFERENT") + " ("
                  + ", ".join(f"{k} {v['rows']:,}" + ("" if not (v["only_incremental"] or v["only_full_refresh"])
                                                      else f" [-{v['only_incremental']}/+{v['only_full_refresh']}]")
                              for k, v in c["tables"].items()) + " rows)")
    for step, prof in [*report.get("profile", {}).items(),
                       *((f"night {k}", v) for k, v in ((inc or {}).get("profile") or {}).items())]:
        if not prof:
            continue
        print(f"\nprofile of {step}: {prof['statements']} statements, {prof['sql_seconds']:.2f} s in SQL; "
              "CPU seconds per operator type: "
              + ", ".join(f"{k} {v:.2f}" for k, v in list(prof["by_operator"].items())[:6]))
        for k in prof["by_statement"][:4]:
            print(f"  {k['seconds']:8.2f} s  (cpu {k['cpu_seconds']:.2f} s) x{k['count']:<4} {k['sql'][:88]}")
        s = prof["slowest"][0] if prof["slowest"] else None
        if s:
            print(f"  slowest: {s['seconds']:.2f} s, buffer {s['peak_buffer_memory_mb']:.0f} MB, "
                  f"temp {s['peak_temp_dir_mb']:.0f} MB: "
                  + ", ".join(f"{op['operator']} {op['seconds']:.2f}" for op in s["top_operators"][:5]))


def _funnel(warehouse: Path) -> list[dict[str, Any]]:
    """The run's stage funnel (what the data looks like, for the record)."""
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute("SELECT stage, reached, exited FROM stage_funnel ORDER BY stage_order").fetchall()
    finally:
        con.close()
    return [{"stage": stage, "reached": int(reached), "exited": int(exited)} for stage, reached, exited in rows]


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


def _label(events: int) -> str:
    for unit, size in (("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if events >= size and events % (size // 10) == 0:
            value = events / size
            return f"{value:g}{unit}"
    return str(events)


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.generate import config_dict
    from cjm_analytics.config import parse_config
    from cjm_analytics.errors import ConfigError
    from cjm_analytics.nightly import RunContext

    def log(msg: str) -> None:
        print(f"[{datetime.now():%H:%M:%S}] {msg}", flush=True)

    skip = {s.strip() for item in args.skip for s in item.split(",") if s.strip()}
    unknown = skip - set(SYSTEMS)
    if unknown:
        raise SystemExit(f"--skip: unknown {sorted(unknown)} (choose from {', '.join(SYSTEMS)})")
    if args.incremental is not None and "pipeline" in skip:
        raise SystemExit("--incremental: the night runs on the pipeline's warehouse; do not skip pipeline")
    data_path, info, generated = dataset(args.data_dir, args.events, args.seed, log)
    night_path, night_info = None, None
    if args.incremental is not None:
        night_path, night_info, _ = night_dataset(args.data_dir, args.events, args.seed, args.incremental, log)
    warm_page_cache(data_path)

    stamp = datetime.now(UTC)
    workdir = args.data_dir / "runs" / f"{data_path.name}-{stamp:%Y%m%dT%H%M%S}"
    workdir.mkdir(parents=True)
    # With a night to add, the sources are links to the data set's files, in folders the night's files join later.
    sources = workdir / "sources"
    if night_path is not None:
        link_files(data_path, sources)
        warm_page_cache(night_path)
    config = config_dict(data_path if night_path is None else sources,
                         warehouse=str(workdir / "warehouse" / "cjm.duckdb"),
                         reports=str(workdir / "reports"))
    extra = dict(item.split("=", 1) for item in args.set)
    if "temp_directory" in extra:
        raise SystemExit("--set temp_directory: each measured child has its own (its spill is measured there)")
    threads = extra.pop("threads", args.threads)
    settings = {"memory_limit": extra.pop("memory_limit", args.memory_limit),
                "threads": int(threads) if isinstance(threads, str) and threads.isdigit() else threads,
                "max_temp_directory_size": extra.pop("max_temp_directory_size", None), "extra": extra}

    def step_config(name: str) -> dict[str, Any]:
        """The config a pipeline step runs with: the DuckDB settings in its `duckdb:` section, as a user's."""
        section = {k: settings[k] for k in CONFIG_SETTINGS if settings[k] is not None}
        return {**config, "duckdb": {**section, "temp_directory": str(workdir / f"duckdb-tmp-{name}")}}

    try:
        cfg = parse_config(step_config("check"), workdir, "benchmark config")
    except ConfigError as e:  # e.g. --memory-limit 4
        shutil.rmtree(workdir, ignore_errors=True)
        raise SystemExit(f"benchmark: {e}") from None
    ctx = RunContext.start(cfg)
    common = {"config": config, "base_dir": str(workdir), "run_id": ctx.run_id,
              "run_started": ctx.run_started.isoformat()}
    report: dict[str, Any] = {
        "benchmark": "cjm-analytics", "format": 1, "date": stamp.isoformat(timespec="seconds"),
        "events": args.events, "seed": args.seed, "command": " ".join(["python -m benchmarks.run", *sys.argv[1:]]),
        "settings": settings, "machine": machine_info(), "product": product_fingerprint(),
        "data": {**info, "path": str(data_path), "generated_this_run": generated},
    }

    def duckdb_settings(name: str) -> dict[str, Any]:
        return {**settings, "temp_directory": str(workdir / f"duckdb-tmp-{name}")}

    try:
        if "floor" not in skip:
            for key, mode in (("floor", "memory"), ("floor_stored", "file")):
                log(f"{key}: DuckDB scan + sort by (customer, time), {mode} database ...")
                report[key] = measure("floor", {**common, "mode": mode, "duckdb": duckdb_settings(key),
                                                "database": str(workdir / f"{key}.duckdb")}, workdir, key)
                report[key]["events_per_s"] = _rate(args.events, report[key]["seconds"])
                log(f"{key}: {report[key]['seconds']:.2f} s")
        steps = [*PIPELINE_STEPS, *([] if "publish" in skip else [REPORT_STEP])]
        deadline = time.monotonic() + args.pipeline_time_limit * 60 if args.pipeline_time_limit else None
        if "pipeline" not in skip:
            report["pipeline"] = run_pipeline(
                "pipeline", steps, config, {"run_id": ctx.run_id, "run_started": ctx.run_started.isoformat()}, workdir,
                settings, args.events, log, deadline, workdir / "profiles" if args.profile else None)
            if report["pipeline"]["completed"]:
                report["pipeline"]["stage_funnel"] = _funnel(cfg.warehouse)
            if args.profile:
                report["profile"] = report["pipeline"].pop("profile")
        pipeline_done = "pipeline" in report and report["pipeline"]["completed"]
        if "pandas" not in skip:
            log("pandas baseline ...")
            p = measure("pandas", {**common, "outputs": str(workdir / "pandas")}, workdir, "pandas")
            for s in p["steps"]:
                s["events_per_s"] = _rate(args.events, s["seconds"])
            p["events_per_s"] = _rate(args.events, p["seconds"])
            report["pandas"] = p
            log(f"pandas: {p['seconds']:.2f} s, peak RSS {_size(p['peak_rss_mb'])}")
            if pipeline_done:
                report["agreement"] = compare_with_pandas(cfg.warehouse, workdir / "pandas", p["counts"])
        if "retentioneering" not in skip:
            report["retentioneering"] = measure_retentioneering(common, settings.get("threads"), workdir, args.events,
                                                                cfg.warehouse if pipeline_done else None, log)
        # The night last: the systems above read the source folders, which now get the night's files.
        if night_path is not None and night_info is not None and pipeline_done:
            log(f"incremental night: {night_info['night_events']:,} new events ...")
            deadline = time.monotonic() + args.pipeline_time_limit * 60 if args.pipeline_time_limit else None
            report["incremental"] = incremental_night(
                report["pipeline"], steps, config, workdir, sources, night_path, night_info, settings,
                args.check_incremental, log, deadline, workdir / "profiles-night" if args.profile else None)
        ratios = {}
        if pipeline_done and "floor" in report:
            for key in ("floor", "floor_stored"):
                ratios[f"pipeline_over_{key}"] = round(
                    report["pipeline"]["total"]["seconds"] / report[key]["seconds"], 2)
        if pipeline_done and "pandas" in report:
            ratios["pandas_over_pipeline"] = round(report["pandas"]["seconds"] / report["pipeline"]["total"]["seconds"],
                                                   2)
            ratios["pandas_over_pipeline_peak_rss"] = round(
                report["pandas"]["peak_rss_mb"] / report["pipeline"]["total"]["peak_rss_mb"], 2)
        ratios.update((report.get("incremental") or {}).get("ratios") or {})
        report["ratios"] = {**ratios, **retentioneering_ratios(report)}
    finally:
        if args.keep:
            report["workdir"] = str(workdir)
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--worker"]:
        return run_worker(argv[1], argv[2])
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events to generate (default 1,000,000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data-dir", type=Path, default=default_data_dir(),
                        help="cache of generated data sets and scratch space (default $CJM_BENCH_DATA or "
                             "~/.cache/cjm-bench)")
    parser.add_argument("--memory-limit", help="DuckDB memory_limit for the pipeline and the floor, e.g. 4GB "
                                               "(default: DuckDB's, 80%% of RAM)")
    parser.add_argument("--threads", type=int, help="DuckDB threads (default: DuckDB's, one per core)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="another DuckDB setting for the pipeline's and the floor's connections, e.g. "
                             "checkpoint_threshold=1GB (to try a setting before proposing it)")
    parser.add_argument("--skip", action="append", default=[], metavar="SYSTEMS",
                        help=f"comma-separated, any of: {', '.join(SYSTEMS)} (publish = the report step)")
    parser.add_argument("--out", type=Path, help="result JSON (default benchmarks/results/<events>-<date>.json)")
    parser.add_argument("--profile", action="store_true",
                        help="write DuckDB's JSON profile of every pipeline statement; print the slowest")
    parser.add_argument("--pipeline-time-limit", type=float, metavar="MINUTES",
                        help="stop the pipeline if it is still running after this long; the steps done, the stopped "
                             "step's figures until then and how far loading got are reported")
    parser.add_argument("--incremental", type=float, metavar="FRACTION",
                        help="then an incremental night of FRACTION x events new events (e.g. 0.01) on the same "
                             "warehouse, step by step; reported with what it recomputed and incremental / full")
    parser.add_argument("--check-incremental", action="store_true",
                        help="with --incremental: refresh a copy of the warehouse in full (measured) and compare its "
                             "core tables and stage marts with the incremental night's")
    parser.add_argument("--keep", action="store_true", help="keep the warehouse and the logs (printed path)")
    args = parser.parse_args(argv)
    args.data_dir = args.data_dir.expanduser().resolve()
    report = benchmark(args)
    print_table(report)
    default_name = f"{_label(args.events)}-{report['date'][:19].replace(':', '').replace('-', '')}.json"
    out = args.out or REPO / "benchmarks" / "results" / default_name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
