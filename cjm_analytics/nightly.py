"""The nightly run as an ordered list of coarse steps, each over the warehouse path in its own transaction.

run_plan gives the run's steps for a config (NIGHTLY_STEPS; with `engine: dask` the per-customer steps bucket by
bucket), and run_steps walks it for both `run_nightly` (no orchestrator) and the Prefect flow
(pipelines/nightly.py), which only says how a step and a bucket run. So the two never compose the run differently.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from cjm_analytics import progress
from cjm_analytics.alerts import alerting
from cjm_analytics.checks import Health, check_run, gate
from cjm_analytics.config import Config, DuckDBSettings
from cjm_analytics.core import (
    JOURNEY_TABLES,
    SESSIONIZE_TABLES,
    build_journeys,
    clear_dirty,
    decide_refresh,
    decided_full,
    derivation_fingerprint,
    finish_core,
    sessionize,
    stitch_identities,
    write_rules,
)
from cjm_analytics.distributed import (
    CORE_TABLES,
    bucket_root,
    export_buckets,
    import_buckets,
    process_bucket,
    remove_bucket_files,
)
from cjm_analytics.marts import build_marts
from cjm_analytics.raw import FileLoad, load_source
from cjm_analytics.warehouse import open_warehouse, run_lock, transaction, undone_after


@dataclass(frozen=True)
class RunContext:
    config: Config
    run_id: str
    run_started: datetime  # UTC
    full_refresh: bool = False  # asked for; a config change or an unfinished refresh also makes a run full
    reload: bool = False  # read every source file again (docs/lifecycle.md); implies a full refresh
    force_publish: bool = False  # publish even if an error-level health check fails (a person has looked)

    @classmethod
    def start(cls, config: Config, full_refresh: bool = False, reload: bool = False,
              force_publish: bool = False) -> RunContext:
        started = datetime.now(UTC)
        return cls(config, f"{started:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}", started, full_refresh or reload, reload,
                   force_publish)

    @cached_property
    def fingerprint(self) -> str:
        """What the core tables are derived with (core.derivation_fingerprint): hashed once per run."""
        return derivation_fingerprint(self.config)

    def is_full(self, con: Any) -> bool:
        """Whether this run recomputes every customer, as its stitch step decided (core.decide_refresh)."""
        return decided_full(con)


@dataclass
class StepResult:
    step: str
    seconds: float
    counts: dict[str, Any] = field(default_factory=dict)  # as stored in run_log


@dataclass(kw_only=True)
class LoadResult(StepResult):
    files: list[FileLoad]  # what happened to each file (counts["files"] holds them as dicts)


@dataclass(kw_only=True)
class HealthResult(StepResult):
    health: Health


@dataclass(kw_only=True)
class ExportResult(StepResult):
    folders: list[Path]  # the non-empty buckets, to process


def run_step(ctx: RunContext, step: str, work: Callable[[Any], dict[str, Any]], atomic: bool = True,
             replaces: tuple[str, ...] = ()) -> StepResult:
    """Run one step over the warehouse; its run_log row commits together with its writes (atomic steps). On a
    night, the dirty customers' rows of the per-customer tables the step `replaces` are deleted first, in ranges
    that each commit (core.clear_dirty: one delete of them all would hold memory in proportion to the tables)."""
    started, clock = datetime.now(UTC), time.perf_counter()
    opened = open_warehouse(ctx.config.warehouse, ctx.config.duckdb)
    with opened as con, progress.current().step(step, con):
        cleared = _delete_dirty_rows(ctx, con, replaces)
        with transaction(con) if atomic else nullcontext(con):
            counts = work(con)
            if replaces:
                counts = {**counts, "delete_ranges": cleared}
            result = StepResult(step, round(time.perf_counter() - clock, 3), counts)
            con.execute(
                "INSERT INTO run_log VALUES ($run_id, $step, $started, $finished, $seconds, $counts)",
                {
                    "run_id": ctx.run_id, "step": step, "started": started.replace(tzinfo=None),
                    "finished": datetime.now(UTC).replace(tzinfo=None), "seconds": result.seconds,
                    "counts": json.dumps(counts, default=str),
                },
            )
    progress.current().finished(step, result.seconds, counts)
    return result


def _delete_dirty_rows(ctx: RunContext, con: Any, tables: tuple[str, ...]) -> int:
    """The dirty customers' rows of `tables`, deleted ahead of a night's step, within the budget (core.clear_dirty);
    the number of ranges (0 on a full refresh, which recreates the tables in the step's transaction)."""
    if not tables or ctx.is_full(con):
        return 0
    with _within_budget(con, ctx.config):
        return clear_dirty(con, tables, ctx.config.engine.memory_budget_bytes)


def load_sources(ctx: RunContext) -> LoadResult:
    """Load every configured source; a source's new and changed files commit together with their manifest rows."""
    files: list[FileLoad] = []

    def work(con: Any) -> dict[str, Any]:
        # Each source's files are read in chunks that fit engine.memory_budget, and within the budget as DuckDB's
        # limit too, as in the core steps: DuckDB then drops the pages it caches of the rows it appends and scans
        # (docs/performance.md, "Within the budget"). A text file with a line over 4 MB is read and judged under
        # DuckDB's default limit instead (raw/text.py, `_room_for_reader`, says why).
        with _within_budget(con, ctx.config):
            for source in ctx.config.sources:
                files.extend(load_source(con, source, ctx.run_id, ctx.run_started, ctx.reload,
                                         ctx.config.engine.memory_budget_bytes))
            # Checkpointed here, within the limit: left to the connection's close, after the limit is reset, the
            # checkpoint of a 10M-row batch took the load's peak from 1.1 to 2.2 GB (docs/performance.md).
            con.execute("CHECKPOINT")
        return {"files": [f.as_dict() for f in files]}

    done = run_step(ctx, "load_sources", work, atomic=False)
    return LoadResult(done.step, done.seconds, done.counts, files=files)


def stitch_identities_step(ctx: RunContext) -> StepResult:
    """The run's plan, decided here once (full or incremental) with the config's rule tables, then identity
    stitching and which customers this run recomputes."""

    def work(con: Any) -> dict[str, Any]:
        full = decide_refresh(con, ctx.fingerprint, ctx.full_refresh)
        write_rules(con, ctx.config.stages, ctx.config.touchpoints)  # once, for every later step and bucket
        # Within the budget: without DuckDB's limit it kept every page it read of the raw events (a full stitch
        # at 100M events peaked at 3.2 GB, 690 MB within the budget, in as much CPU).
        with _within_budget(con, ctx.config):
            return stitch_identities(con, full)

    return run_step(ctx, "stitch_identities", work)


@contextmanager
def _within_budget(con: Any, config: Config) -> Iterator[None]:
    """A per-customer core step's memory, the marts' and the load's: the core steps' buckets (the load's chunks)
    are sized to engine.memory_budget, and unless the config sets duckdb.memory_limit, the budget is DuckDB's limit
    during the step too. The buckets' working set fits it (the marts read compact per-customer rows and
    summaries); the limit makes DuckDB drop the pages it caches (read and written) instead of keeping them all in
    RAM."""
    if config.duckdb.memory_limit is not None:
        yield
        return
    con.execute("SET memory_limit = $limit", {"limit": f"{config.engine.memory_budget_bytes}B"})
    # Said to the load's reader: this limit is the budget, not the user's, so a file with a very long line may
    # be read above it (raw/text.py, `_room_for_reader`); a limit the config sets is never raised.
    con.execute("SET VARIABLE cjm_limit_is_budget = true")

    def reset() -> None:
        # The limit is the database's: put back on a cursor, whose transaction is not the step's (a failed
        # statement aborts that one, which then refuses any statement); the variable is this session's.
        with con.cursor() as other:
            other.execute("RESET memory_limit")
        con.execute("RESET VARIABLE cjm_limit_is_budget")

    with undone_after(reset):
        yield


def sessionize_step(ctx: RunContext) -> StepResult:
    """Stage mapping and sessions of the customers in scope, bucket by bucket (core.sessionize)."""
    cfg = ctx.config

    def work(con: Any) -> dict[str, Any]:
        with _within_budget(con, cfg):
            return sessionize(con, cfg.sessions.inactivity, cfg.touchpoints.field, ctx.is_full(con),
                              cfg.sessions.from_, cfg.engine.memory_budget_bytes)

    return run_step(ctx, "sessionize", work, replaces=SESSIONIZE_TABLES)


def build_journeys_step(ctx: RunContext) -> StepResult:
    """Stage paths and journeys of the customers in scope, bucket by bucket (core.build_journeys)."""
    cfg = ctx.config

    def work(con: Any) -> dict[str, Any]:
        with _within_budget(con, cfg):
            return build_journeys(con, cfg.goal_order, ctx.is_full(con), cfg.engine.memory_budget_bytes)

    return run_step(ctx, "build_journeys", work, replaces=JOURNEY_TABLES)


def aggregate_step(ctx: RunContext) -> StepResult:
    """The marts, rebuilt from the journeys (their summaries maintained per dirty customer on a night); the run's
    pending changes are done with in the same commit."""

    def work(con: Any) -> dict[str, Any]:
        # Within the budget too: the marts read compact per-customer rows and summaries, and DuckDB's limit makes
        # it drop the pages it caches (10M: 1.06 -> 0.83 GB, no more CPU; docs/performance.md).
        with _within_budget(con, ctx.config):
            counts = build_marts(con, ctx.config, ctx.run_id, ctx.run_started, full=ctx.is_full(con))
        finish_core(con, ctx.fingerprint)
        return counts

    return run_step(ctx, "aggregate", work)


def check_health_step(ctx: RunContext) -> HealthResult:
    """The run's health checks (docs/checks.md); an error-level failure stops the run here, before publishing."""
    found: list[Health] = []

    def work(con: Any) -> dict[str, Any]:
        found.append(check_run(con, ctx.config, ctx.run_id, ctx.run_started))
        return {"verdict": found[0].verdict, "failed": len(found[0].failed), "warnings": len(found[0].warnings),
                "summary": found[0].summary()}

    done = run_step(ctx, "check_health", work)  # committed: the checks stay, whatever the verdict
    if found[0].failed and not ctx.force_publish:
        from cjm_analytics.publish import show_failed_night

        show_failed_night(ctx.config.reports, found[0], ctx.run_started)
    gate(found[0], ctx.force_publish)
    return HealthResult(done.step, done.seconds, done.counts, health=found[0])


def publish_reports_step(ctx: RunContext) -> StepResult:
    """The report site and the GraphML graph, written whole as this run's version; shown by publish_marts."""
    from cjm_analytics.publish import GRAPHML, stage_report

    def work(con: Any) -> dict[str, Any]:
        out = ctx.config.reports
        site = stage_report(con, out, ctx.run_id, ctx.config.report.title, entity=ctx.config.entity.words,
                            sessions_off=ctx.config.sessions.off)
        return {"report": str(out / "index.html"), "files": len(list(site.iterdir())), "graphml": str(out / GRAPHML),
                "site": str(site)}

    return run_step(ctx, "publish_reports", work, atomic=False)


def publish_marts_step(ctx: RunContext) -> StepResult:
    """The marts for dashboards; then this run's report and marts are shown together, now that every step before
    has succeeded (a run that dies before shows neither)."""
    from cjm_analytics.publish import publish_run

    def work(con: Any) -> dict[str, Any]:
        return publish_run(con, ctx.config.marts, ctx.config.reports, ctx.run_id, ctx.run_started,
                           ctx.config.report.title)

    return run_step(ctx, "publish_marts", work, atomic=False)


NIGHTLY_STEPS: tuple[tuple[str, Callable[[RunContext], StepResult]], ...] = (
    ("load_sources", load_sources),
    ("stitch_identities", stitch_identities_step),
    ("sessionize", sessionize_step),
    ("build_journeys", build_journeys_step),
    ("aggregate", aggregate_step),
    ("check_health", check_health_step),
    ("publish_reports", publish_reports_step),
    ("publish_marts", publish_marts_step),
)


# --- engine: dask. The per-customer steps, bucket by bucket (distributed.py, docs/scaling.md) ---------------

BUCKETED_STEPS = ("sessionize", "build_journeys")


def export_buckets_step(ctx: RunContext) -> ExportResult:
    """The customers in scope, with the identities and rule tables they need, as Parquet by bucket."""
    folders: list[Path] = []
    root = bucket_root(ctx.config, ctx.run_id)

    def work(con: Any) -> dict[str, Any]:
        remove_bucket_files(ctx.config)  # the run lock is held: earlier runs' bucket files are a crash's leftovers
        full = ctx.is_full(con)
        folders.extend(export_buckets(con, root, ctx.config.engine.buckets, full))
        return {"full_refresh": int(full), "buckets": len(folders), "folder": str(root)}

    done = run_step(ctx, "export_buckets", work, atomic=False)
    return ExportResult(done.step, done.seconds, done.counts, folders=folders)


def import_buckets_step(ctx: RunContext, outputs: list[Path]) -> StepResult:
    """The buckets' rows into the core tables in one transaction; then the run's bucket files go."""
    done = run_step(ctx, "import_buckets", lambda con: import_buckets(con, outputs, ctx.is_full(con)),
                    replaces=CORE_TABLES)
    remove_bucket_files(ctx.config, ctx.run_id)
    return done


P = ParamSpec("P")
R = TypeVar("R")


class InProcess:
    """How a plan's steps run: here, each a plain call, and the buckets one after another. The Prefect flow
    overrides both (pipelines/nightly.py): a task per step, and a task per bucket on its task runner."""

    def step(self, name: str, step: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        return step(*args, **kwargs)

    def map(self, name: str, step: Callable[[Path, Config], Path], items: list[Path], config: Config) -> list[Path]:
        return [step(item, config) for item in items]


PlanStep = Callable[[RunContext, InProcess], list[StepResult]]


def core_by_bucket(ctx: RunContext, runner: InProcess) -> list[StepResult]:
    """sessionize and build_journeys for each customer bucket on its own: export, process every bucket, import."""
    exported = runner.step("export_buckets", export_buckets_step, ctx)
    outputs = runner.map("process_bucket", process_bucket, exported.folders, ctx.config)
    return [exported, runner.step("import_buckets", import_buckets_step, ctx, outputs)]


def _single(name: str, step: Callable[[RunContext], StepResult]) -> PlanStep:
    return lambda ctx, runner: [runner.step(name, step, ctx)]


def run_plan(config: Config) -> list[tuple[str, PlanStep]]:
    """The run's steps for a config, decided here only: NIGHTLY_STEPS, where with `engine: dask` the per-customer
    steps (BUCKETED_STEPS) run as core_by_bucket."""
    plan = [(name, _single(name, step)) for name, step in NIGHTLY_STEPS]
    if config.engine.kind == "dask":
        at = [name for name, _ in plan].index(BUCKETED_STEPS[0])
        assert tuple(name for name, _ in plan[at:at + len(BUCKETED_STEPS)]) == BUCKETED_STEPS
        plan[at:at + len(BUCKETED_STEPS)] = [("core_by_bucket", core_by_bucket)]
    return plan


def run_steps(ctx: RunContext, runner: InProcess | None = None) -> Iterator[StepResult]:
    """Walk the run's plan; each step's result as soon as it is done."""
    runner = runner or InProcess()
    for _, step in run_plan(ctx.config):
        yield from step(ctx, runner)


def run_nightly(config: Config, full_refresh: bool = False, reload: bool = False,
                force_publish: bool = False) -> tuple[RunContext, list[StepResult]]:
    """The whole nightly run without an orchestrator (tests, benchmarks, `cjm run --no-prefect`); with
    `engine: dask`, its buckets one after another in this process."""
    ctx = RunContext.start(config, full_refresh, reload, force_publish)
    with run_lock(config.warehouse, ctx.run_id), alerting(config, ctx.run_id):
        return ctx, list(run_steps(ctx))


def run_summary(warehouse: Path, settings: DuckDBSettings | None = None) -> dict[str, Any]:
    """The run_summary row of the warehouse, as a dict."""
    from cjm_analytics.warehouse import connect

    con = connect(warehouse, read_only=True, settings=settings)
    try:
        df = con.execute("SELECT * FROM run_summary").fetchdf()
    finally:
        con.close()
    return {str(k): (None if v != v else v) for k, v in df.iloc[0].to_dict().items()} if len(df) else {}
