"""The nightly run as an ordered list of coarse steps, each over the warehouse path in its own transaction.

Both the Prefect flow (pipelines/nightly.py) and `run_nightly` (no orchestrator) walk NIGHTLY_STEPS, so the
two can never compose the run differently.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cjm_analytics import progress
from cjm_analytics.alerts import alerting
from cjm_analytics.checks import Health, check_run, gate
from cjm_analytics.config import Config, DuckDBSettings
from cjm_analytics.core import (
    build_journeys,
    derivation_fingerprint,
    finish_core,
    needs_full_refresh,
    sessionize,
    stitch_identities,
)
from cjm_analytics.marts import build_marts
from cjm_analytics.raw import FileLoad, load_source
from cjm_analytics.warehouse import open_warehouse, run_lock, transaction


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

    @property
    def fingerprint(self) -> str:
        return derivation_fingerprint(self.config)

    def is_full(self, con: Any) -> bool:
        """Whether this step recomputes every customer (decided from the warehouse's state)."""
        return needs_full_refresh(con, self.fingerprint, self.full_refresh)


@dataclass
class StepResult:
    step: str
    seconds: float
    counts: dict[str, Any] = field(default_factory=dict)


def run_step(ctx: RunContext, step: str, work: Callable[[Any], dict[str, Any]], atomic: bool = True) -> StepResult:
    """Run one step over the warehouse; its run_log row commits together with its writes (atomic steps)."""
    started, clock = datetime.now(UTC), time.perf_counter()
    opened = open_warehouse(ctx.config.warehouse, ctx.config.duckdb)
    with opened as con, transaction(con) if atomic else nullcontext(con):
        with progress.current().step(step, con):
            counts = work(con)
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


def load_sources(ctx: RunContext) -> StepResult:
    """Load every configured source; a source's new and changed files commit together with their manifest rows."""

    def work(con: Any) -> dict[str, Any]:
        files: list[FileLoad] = []
        for source in ctx.config.sources:
            files.extend(load_source(con, source, ctx.run_id, ctx.run_started, ctx.reload))
        return {"files": [f.as_dict() for f in files]}

    return run_step(ctx, "load_sources", work, atomic=False)


def stitch_identities_step(ctx: RunContext) -> StepResult:
    """Identity stitching, and which customers this run recomputes."""
    return run_step(ctx, "stitch_identities", lambda con: stitch_identities(con, ctx.is_full(con)))


def sessionize_step(ctx: RunContext) -> StepResult:
    """Stage mapping and sessions of the customers in scope."""
    cfg = ctx.config
    return run_step(
        ctx,
        "sessionize",
        lambda con: sessionize(con, cfg.stages, cfg.sessions.inactivity_minutes, cfg.touchpoints, ctx.is_full(con),
                               cfg.sessions.from_),
    )


def build_journeys_step(ctx: RunContext) -> StepResult:
    """Stage paths and journeys of the customers in scope."""
    return run_step(ctx, "build_journeys", lambda con: build_journeys(con, ctx.config.goal_order, ctx.is_full(con)))


def aggregate_step(ctx: RunContext) -> StepResult:
    """The marts, rebuilt from the journeys; the run's pending changes are done with in the same commit."""

    def work(con: Any) -> dict[str, Any]:
        counts = build_marts(con, ctx.config, ctx.run_id, ctx.run_started)
        finish_core(con, ctx.fingerprint)
        return counts

    return run_step(ctx, "aggregate", work)


def check_health_step(ctx: RunContext) -> StepResult:
    """The run's health checks (docs/checks.md); an error-level failure stops the run here, before publishing."""
    found: list[Health] = []

    def work(con: Any) -> dict[str, Any]:
        found.append(check_run(con, ctx.config, ctx.run_id, ctx.run_started))
        return {"verdict": found[0].verdict, "failed": len(found[0].failed), "warnings": len(found[0].warnings),
                "summary": found[0].summary()}

    result = run_step(ctx, "check_health", work)  # committed: the checks stay, whatever the verdict
    if found[0].failed and not ctx.force_publish:
        from cjm_analytics.publish import show_failed_night

        show_failed_night(ctx.config.reports, found[0], ctx.run_started)
    gate(found[0], ctx.force_publish)
    return result


def publish_reports_step(ctx: RunContext) -> StepResult:
    """The report site and the GraphML graph, written whole as this run's version; shown by publish_marts."""
    from cjm_analytics.publish import GRAPHML, stage_report

    def work(con: Any) -> dict[str, Any]:
        out = ctx.config.reports
        site = stage_report(con, out, ctx.run_id, ctx.config.report.title)
        return {"report": str(out / "index.html"), "files": len(list(site.iterdir())), "graphml": str(out / GRAPHML),
                "site": str(site)}

    return run_step(ctx, "publish_reports", work, atomic=False)


def publish_marts_step(ctx: RunContext) -> StepResult:
    """The marts for dashboards; then this run's report and marts are shown together, now that every step before
    has succeeded (a run that dies before shows neither)."""
    from cjm_analytics.publish import publish_run

    def work(con: Any) -> dict[str, Any]:
        return publish_run(con, ctx.config.marts, ctx.config.reports, ctx.run_id, ctx.run_started)

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


def run_nightly(config: Config, full_refresh: bool = False, reload: bool = False,
                force_publish: bool = False) -> tuple[RunContext, list[StepResult]]:
    """The whole nightly run without an orchestrator (tests, benchmarks, `cjm run --no-prefect`)."""
    ctx = RunContext.start(config, full_refresh, reload, force_publish)
    with run_lock(config.warehouse, ctx.run_id), alerting(config, ctx.run_id):
        return ctx, [step(ctx) for _, step in NIGHTLY_STEPS]


def run_summary(warehouse: Path, settings: DuckDBSettings | None = None) -> dict[str, Any]:
    """The run_summary row of the warehouse, as a dict."""
    from cjm_analytics.warehouse import connect

    con = connect(warehouse, read_only=True, settings=settings)
    try:
        df = con.execute("SELECT * FROM run_summary").fetchdf()
    finally:
        con.close()
    return {str(k): (None if v != v else v) for k, v in df.iloc[0].to_dict().items()} if len(df) else {}
