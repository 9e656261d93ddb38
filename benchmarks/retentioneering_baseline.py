"""Retentioneering 5 computing its transition graph on the benchmark's data: the third-party yardstick.

Runs with the interpreter of its own virtualenv (`.venv-retentioneering`, from
benchmarks/retentioneering-requirements.txt), never the project's: benchmarks/systems.py starts it as a child,

    .venv-retentioneering/bin/python -m benchmarks.retentioneering_baseline --worker SPEC.json

and it can be run by hand on a generated data set (prints the phases, optionally writes the edges):

    .venv-retentioneering/bin/python -m benchmarks.retentioneering_baseline --data DIR [--out DIR]
    .venv/bin/python -m benchmarks.retentioneering_baseline --setup      # create the virtualenv (make bench-deps)

What a Retentioneering user does to get the stage-transition graph of docs/definitions.md, one phase each:

1. read_parquet: every source's Parquet files with pandas (pyarrow), only the columns needed (ids, event
   name, timestamp, and the properties the stage rules test), under common names; epoch timestamps
   converted. No validation or de-duplication (the generated data has neither rejects nor duplicates);
2. stitch_identities: user = customer_id, else the last customer_id seen with the row's anonymous_id (ties
   by event_id, then source), else the anonymous_id: the pipeline's rule, in pandas, because Retentioneering
   has no identity stitching and a coalesce would give different paths, so different counts;
3. eventstream: `Eventstream(df, schema={"path_cols": ["user_id"], ...})` (it copies, converts, sorts by
   user and time and numbers the events);
4. split_sessions: `split_sessions(timeout="30m")` on all events (a new session after a gap greater than 30
   minutes, as ours); like ours, the graph does not use the sessions;
5. map_stages: one `filter_events(sql=...)` whose CASE applies the config's stage rules in order (first match
   wins; globs with GLOB; `where` conditions compared as text) to rename each event to its stage and drop
   the unmapped events;
6. collapse_loops: `collapse_events(loops=True)`: consecutive repeats of a stage become one event;
7. transition_graph: `transition_graph_data(edge_weight=...)` (the TransitionGraph widget's data, no UI) for
   "count", "unique_paths" and "time_median"; path_start/path_end are the graph's (start)/(end). The
   probability is "proba_out" computed from the counts the way TransitionMatrix computes it, instead of a
   fourth call that would count again.

Not the same as ours, by Retentioneering's design: ties (equal timestamps) are ordered by the input order
and, in collapse_events, arbitrarily (ours: by stage order, then event id), so a few edges can differ and
a tie can even leave a self-loop; "time_median" is the median of whole seconds between the two rows' times,
and a collapsed run's time is its first event's (ours: median hours from the last event at the source stage
to the first at the target; null on (start)/(end) edges, where Retentioneering has 0).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

# Both import only the standard library and DuckDB, which Retentioneering's own interpreter has too.
from benchmarks.measure import REPO, cpu_seconds, rss_mb
from cjm_analytics.sql_steps import quote_ident, quote_literal

# Retentioneering sends usage events to PostHog unless told not to; set before it is imported anywhere.
os.environ.setdefault("RETENTIONEERING_NO_TRACK", "1")

VENV = REPO / ".venv-retentioneering"
REQUIREMENTS = Path(__file__).with_name("retentioneering-requirements.txt")
START, END = "(start)", "(end)"


# --------------------------------------------------------------------------------------------------------------
# The virtualenv (these run in the project's interpreter: benchmarks/systems.py, make bench-deps)
# --------------------------------------------------------------------------------------------------------------


def venv_python(venv: Path = VENV) -> Path:
    return venv / "bin" / "python"


def _requirements_hash() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]


def env_ready(venv: Path = VENV) -> bool:
    """Is the virtualenv installed from the current requirements (not half-created by a failed install)?"""
    stamp = venv / ".installed"
    return (venv_python(venv).exists() and stamp.is_file()
            and stamp.read_text(encoding="utf-8").strip() == _requirements_hash())


def ensure_env(venv: Path = VENV, log: Callable[[str], None] = print,
               base_python: str | None = None) -> tuple[Path | None, str]:
    """The virtualenv's interpreter, creating or updating the env when the requirements changed; (None, why) when
    it cannot be created (no network, no venv module, a pin without a wheel for this Python)."""
    python = venv_python(venv)
    if env_ready(venv):
        return python, "ready"
    log(f"creating {venv} from {REQUIREMENTS.name} (once; pip output in {venv}.log) ...")
    log_file = venv.with_name(venv.name + ".log")
    commands = [
        [base_python or sys.executable, "-m", "venv", "--clear", str(venv)],
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", str(REQUIREMENTS)],
    ]
    with log_file.open("w", encoding="utf-8") as out:
        for command in commands:
            try:
                done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, timeout=1800, check=False)
            except (OSError, subprocess.TimeoutExpired) as e:
                return None, f"{' '.join(command[:3])} ...: {e}"
            if done.returncode != 0:
                out.flush()
                lines = log_file.read_text(encoding="utf-8", errors="replace").strip().splitlines()
                last = next((line for line in reversed(lines) if "error" in line.lower()), lines[-1] if lines else "")
                return None, (f"{' '.join(command[:4])} ... exited {done.returncode}: {last.strip()[:300]} "
                              f"(see {log_file})")
    (venv / ".installed").write_text(_requirements_hash() + "\n", encoding="utf-8")
    return python, "created"


# --------------------------------------------------------------------------------------------------------------
# Measuring this process
# --------------------------------------------------------------------------------------------------------------


class _Phases:
    """Wall time, CPU time and peak RSS so far at the end of each phase; `untimed()` leaves out what was done since
    the last phase ended (the counts taken for the comparison with the pipeline, which a user would not take)."""

    def __init__(self, on_phase: Callable[[dict[str, Any]], Any] | None = None) -> None:
        self.done: list[dict[str, Any]] = []
        self.untimed_seconds = 0.0
        self._on_phase = on_phase
        self._clock, self._cpu = time.perf_counter(), cpu_seconds()

    def untimed(self) -> None:
        self.untimed_seconds += time.perf_counter() - self._clock
        self._clock, self._cpu = time.perf_counter(), cpu_seconds()

    def end(self, phase: str, **extra: Any) -> None:
        clock, cpu = time.perf_counter(), cpu_seconds()
        row = {"step": phase, "seconds": round(clock - self._clock, 3), "cpu_seconds": round(cpu - self._cpu, 2),
               "peak_rss_so_far_mb": rss_mb(), **extra}
        self.done.append(row)
        if self._on_phase:
            self._on_phase(row)
        self._clock, self._cpu = time.perf_counter(), cpu_seconds()


# --------------------------------------------------------------------------------------------------------------
# The phases
# --------------------------------------------------------------------------------------------------------------


def _rules(stages: list[dict[str, Any]]) -> list[tuple[str, str, dict[str, str]]]:
    """(stage, event-name glob, {property: wanted text}) per rule, in config order."""
    out: list[tuple[str, str, dict[str, str]]] = []
    for stage in stages:
        for rule in stage["events"]:
            if isinstance(rule, str):
                out.append((stage["name"], rule, {}))
            else:
                out.append((stage["name"], rule["name"], {k: str(v) for k, v in (rule.get("where") or {}).items()}))
    return out


def _source_files(source: dict[str, Any], base_dir: Path) -> list[Path]:
    pattern = Path(source["path"])
    if not pattern.is_absolute():
        pattern = base_dir / pattern
    return sorted(Path(pattern.anchor).glob(str(pattern.relative_to(pattern.anchor))))


def read_events(config: dict[str, Any], base_dir: Path) -> Any:
    """Every source's rows: event_id, customer_id, anonymous_id, event, timestamp, source, and the properties
    the stage rules test."""
    import pandas as pd
    import pyarrow.parquet as pq

    properties = sorted({p for _stage, _name, where in _rules(config["stages"]) for p in where})
    units: dict[str, Literal["s", "ms", "us"]] = {"epoch_s": "s", "epoch_ms": "ms", "epoch_us": "us"}
    frames = []
    for source in config["sources"]:
        columns = source.get("columns")
        if not isinstance(columns, dict) or source.get("format", "auto") not in ("auto", "parquet"):
            raise NotImplementedError(f"source {source['name']}: only Parquet with a column map")
        files = _source_files(source, base_dir)
        if not files or any(f.suffix != ".parquet" for f in files):
            raise NotImplementedError(f"source {source['name']}: no Parquet files at {source['path']}")
        wanted = {canon: columns[canon] for canon in ("event_id", "customer_id", "anonymous_id", "event_name",
                                                      "timestamp") if columns.get(canon)}
        present = set(pq.read_schema(files[0]).names)
        file_columns = [*wanted.values(), *(p for p in properties if p in present)]
        df = pd.concat([pd.read_parquet(f, columns=file_columns) for f in files], ignore_index=True)
        df = df.rename(columns={v: k for k, v in wanted.items()}).rename(columns={"event_name": "event"})
        fmt = source.get("timestamp_format", "auto")
        if fmt in units:
            df["timestamp"] = pd.to_datetime(df["timestamp"], unit=units[fmt])
        elif fmt != "auto" or not pd.api.types.is_datetime64_any_dtype(df["timestamp"]):
            raise NotImplementedError(f"source {source['name']}: timestamp_format {fmt!r}")
        if source.get("timezone", "UTC") != "UTC":
            raise NotImplementedError(f"source {source['name']}: timezone {source['timezone']!r}")
        df["source"] = source["name"]
        frames.append(df)
    events = pd.concat(frames, ignore_index=True)
    for canon in ("customer_id", "anonymous_id", *properties):
        if canon not in events:
            events[canon] = None
    return events


def stitch(events: Any) -> Any:
    """user_id per row: customer_id, else the last customer_id seen with its anonymous_id, else the anonymous_id."""
    both = events.loc[events.anonymous_id.notna() & events.customer_id.notna(),
                      ["anonymous_id", "customer_id", "timestamp", "event_id", "source"]]
    last = both.sort_values(["anonymous_id", "timestamp", "event_id", "source"]).drop_duplicates("anonymous_id",
                                                                                                 keep="last")
    identities = last.set_index("anonymous_id")["customer_id"]
    return events.customer_id.fillna(events.anonymous_id.map(identities)).fillna(events.anonymous_id)


def stage_sql(stages: list[dict[str, Any]], columns: Sequence[str], event_col: str = "event") -> str:
    """filter_events' SQL: each event renamed to its stage (first matching rule), unmapped events dropped."""
    whens = []
    for stage, name, where in _rules(stages):
        conditions = [f"CAST({quote_ident(event_col)} AS VARCHAR) GLOB {quote_literal(name)}"]
        for prop, wanted in where.items():
            conditions.append(f"CAST({quote_ident(prop)} AS VARCHAR) = {quote_literal(wanted)}" if prop in columns
                              else "FALSE")
        whens.append(f"WHEN {' AND '.join(conditions)} THEN {quote_literal(stage)}")
    case = "CASE " + " ".join(whens) + " END"
    return (f"SELECT * EXCLUDE (_stage) REPLACE (_stage AS {quote_ident(event_col)}) "
            f"FROM (SELECT *, {case} AS _stage FROM eventstream) WHERE _stage IS NOT NULL")


def edges_table(counts: Any, paths: Any, seconds: Any) -> Any:
    """The three matrices as one row per edge with transitions > 0, under the pipeline's column names."""
    import pandas as pd

    def long(matrix: Any, name: str) -> Any:
        s = matrix.stack(future_stack=True)
        s.index = s.index.set_names(["from_stage", "to_stage"])
        return s.rename(name)

    t = pd.concat([long(counts, "transitions"), long(paths, "customers"), long(seconds, "median")], axis=1)
    t = t[t.transitions > 0].reset_index()
    t["probability"] = t.transitions / t.groupby("from_stage").transitions.transform("sum")
    t["median_hours"] = pd.to_timedelta(t["median"]).dt.total_seconds() / 3600
    names = {"path_start": START, "path_end": END}
    t["from_stage"] = t.from_stage.astype(str).replace(names)
    t["to_stage"] = t.to_stage.astype(str).replace(names)
    t = t.astype({"transitions": "int64", "customers": "int64"})
    return t[["from_stage", "to_stage", "transitions", "customers", "probability", "median_hours"]]


def run(config: dict[str, Any], base_dir: Path,
        on_phase: Callable[[dict[str, Any]], Any] | None = None) -> tuple[Any, dict[str, Any], list[dict[str, Any]]]:
    """Every phase, measured: (edges, counts, phases)."""
    from retentioneering import Eventstream

    phases = _Phases(on_phase)
    counts: dict[str, Any] = {}
    events = read_events(config, base_dir)
    counts["events"] = len(events)
    phases.end("read_parquet")

    events["user_id"] = stitch(events)
    properties = sorted({p for _s, _n, where in _rules(config["stages"]) for p in where})
    frame = events[["user_id", "event", "timestamp", *properties]]
    del events
    phases.end("stitch_identities")
    counts["customers"] = int(frame.user_id.nunique())
    phases.untimed()

    stream = Eventstream(frame, schema={"path_cols": ["user_id"], "event_col": "event", "timestamp_col": "timestamp"})
    del frame
    phases.end("eventstream")

    stream = stream.split_sessions(timeout=f"{config.get('sessions', {}).get('inactivity_minutes', 30)}m")
    phases.end("split_sessions")
    counts["sessions"] = int(stream.df["session_id"].nunique())
    phases.untimed()

    stream = stream.filter_events(sql=stage_sql(config["stages"], list(stream.df.columns)))
    phases.end("map_stages")
    counts.update(mapped_events=len(stream.df), journeys=int(stream.df["user_id"].nunique()))
    phases.untimed()

    stream = stream.collapse_events(loops=True)
    counts["path_steps"] = len(stream.df)
    phases.end("collapse_loops")

    matrices = {w: stream.transition_graph_data(edge_weight=w) for w in ("count", "unique_paths", "time_median")}
    edges = edges_table(matrices["count"], matrices["unique_paths"], matrices["time_median"])
    phases.end("transition_graph")
    counts.update(edges=len(edges), transitions=int(edges.transitions.sum()),
                  self_loops=int((edges.from_stage == edges.to_stage).sum()),
                  untimed_seconds=round(phases.untimed_seconds, 3))
    return edges, counts, phases.done


def versions() -> dict[str, str]:
    import platform
    from importlib.metadata import version

    return {"python": platform.python_version(),
            **{p: version(p) for p in ("retentioneering", "pandas", "numpy", "duckdb", "pyarrow")}}


# --------------------------------------------------------------------------------------------------------------
# Comparing with the pipeline's stage_transitions (pandas only: runs in either interpreter)
# --------------------------------------------------------------------------------------------------------------


def compare_edges(ours: Any, theirs: Any) -> dict[str, Any]:
    """How Retentioneering's edges agree with the pipeline's: edges and, per edge, transitions and customers."""
    merged = ours.merge(theirs, on=["from_stage", "to_stage"], how="outer", suffixes=("", "_r"), indicator=True)
    both = merged[merged["_merge"] == "both"]
    diff = (both.transitions - both.transitions_r).abs()
    return {
        "edges": len(ours), "edges_retentioneering": len(theirs), "edges_in_both": len(both),
        "only_pipeline": [f"{a} -> {b}" for a, b in merged.loc[merged["_merge"] == "left_only",
                                                                ["from_stage", "to_stage"]].itertuples(index=False)],
        "only_retentioneering": [f"{a} -> {b}" for a, b in merged.loc[merged["_merge"] == "right_only",
                                                                      ["from_stage", "to_stage"]].itertuples(
                                                                          index=False)],
        "transitions": int(ours.transitions.sum()), "transitions_retentioneering": int(theirs.transitions.sum()),
        "edges_equal_transitions": int((diff == 0).sum()),
        "edges_equal_customers": int((both.customers == both.customers_r).sum()),
        "max_abs_transition_diff": int(diff.max()) if len(diff) else 0,
        "max_rel_transition_diff": round(float((diff / both.transitions).max()), 6) if len(diff) else 0.0,
        "max_abs_probability_diff": round(float((both.probability - both.probability_r).abs().max()), 6)
        if len(both) else 0.0,
        "all_equal": bool(len(both) == len(ours) == len(theirs) and (diff == 0).all()
                          and (both.customers == both.customers_r).all()),
    }


# --------------------------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------------------------


def worker(spec_file: Path) -> int:
    """benchmarks/systems.py's child: the spec has the config, base_dir, outputs and result paths."""
    spec = json.loads(spec_file.read_text(encoding="utf-8"))
    from retentioneering import engine

    # Its one DuckDB instance (every processor's queries): the benchmark's temp directory, where spill is
    # measured, and --threads when given; otherwise DuckDB's defaults, as a user gets them. Quoted: engine.run
    # takes SQL text, no parameters.
    settings = spec.get("duckdb") or {}
    for key in ("temp_directory", "threads"):
        if settings.get(key) is not None:
            engine.run(f"SET {key} = {quote_literal(str(settings[key]))}")
    rss_before = rss_mb()
    edges, counts, phases = run(spec["config"], Path(spec["base_dir"]))
    out_dir = Path(spec["outputs"])
    out_dir.mkdir(parents=True, exist_ok=True)
    edges.to_parquet(out_dir / "stage_transitions.parquet")
    result = {"steps": phases, "seconds": round(sum(p["seconds"] for p in phases), 3),
              "cpu_seconds": round(sum(p["cpu_seconds"] for p in phases), 2), "counts": counts,
              "rss_before_mb": rss_before, "versions": versions(), "peak_rss_mb": rss_mb(),
              "duckdb": engine.run("SELECT current_setting('threads') AS threads, "
                                   "current_setting('memory_limit') AS memory_limit").iloc[0].to_dict()}
    Path(spec["result"]).write_text(json.dumps(result, default=str), encoding="utf-8")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.retentioneering_baseline",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--worker", type=Path, metavar="SPEC", help=argparse.SUPPRESS)
    parser.add_argument("--setup", action="store_true", help=f"create {VENV.name} (run with the project's Python)")
    parser.add_argument("--data", type=Path, help="a data set written by benchmarks.generate")
    parser.add_argument("--out", type=Path, help="write the edges (stage_transitions.parquet) and counts.json here")
    args = parser.parse_args(argv)
    if args.setup:
        python, status = ensure_env()
        print(f"{VENV}: {status}" if python else f"{VENV} could not be created: {status}")
        return 0 if python else 1
    if args.worker:
        return worker(args.worker)
    if not args.data:
        parser.error("one of --data, --worker, --setup")
    from benchmarks.generate import config_dict

    def show(p: dict[str, Any]) -> None:
        print(f"{p['step']:<18} {p['seconds']:8.2f} s  cpu {p['cpu_seconds']:7.1f} s  peak RSS "
              f"{p['peak_rss_so_far_mb']:8,.0f} MB", flush=True)

    edges, counts, _ = run(config_dict(args.data.resolve()), args.data.resolve(), show)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        edges.to_parquet(args.out / "stage_transitions.parquet")
        (args.out / "counts.json").write_text(json.dumps(counts) + "\n", encoding="utf-8")
    print(json.dumps(counts))
    print(edges.to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
