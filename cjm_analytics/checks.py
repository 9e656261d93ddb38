"""A run's health checks and verdict (sql/checks/, docs/checks.md): whether tonight's figures may be published.

The checks compare this run with what it read and with the runs before it that passed; each is stored in
run_checks with its level. A failed error-level check makes the verdict `failed`: nothing new is published and the
run ends with ChecksFailedError. Failed warnings publish with a banner.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import duckdb

from cjm_analytics.config import Config
from cjm_analytics.errors import ChecksFailedError
from cjm_analytics.sql_steps import run_sql

Verdict = Literal["passed", "warning", "failed"]


@dataclass(frozen=True)
class CheckResult:
    check: str
    subject: str
    level: str
    status: str  # pass | error | warning | info
    value: float | None
    expected: str | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Health:
    """The checks of one run and what they decide."""

    run_id: str
    checks: list[CheckResult]

    @property
    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status == "error"]

    @property
    def warnings(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status == "warning"]

    @property
    def verdict(self) -> Verdict:
        return "failed" if self.failed else "warning" if self.warnings else "passed"

    def summary(self) -> str:
        """One line: the verdict and the failed checks' messages."""
        bad = self.failed or self.warnings
        if not bad:
            return f"run {self.run_id}: all {len(self.checks)} checks passed"
        more = f" (+{len(bad) - 3} more, see table run_checks)" if len(bad) > 3 else ""
        kind = "failed" if self.failed else "passed with warnings"
        return f"run {self.run_id} {kind}: " + "; ".join(c.message for c in bad[:3]) + more

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "verdict": self.verdict, "summary": self.summary(),
                "checks": [c.as_dict() for c in self.checks]}


def check_run(con: duckdb.DuckDBPyConnection, config: Config, run_id: str, run_started: datetime) -> Health:
    """Store this run's metrics and checks (run_metrics, run_checks) and return them."""
    c = config.checks
    started = run_started.replace(tzinfo=None)
    run_sql(con, "checks/run_metrics", run_id=run_id, run_started=started,
            sources=[s.name for s in config.sources], goal_order=config.goal_order)
    run_sql(con, "checks/run_checks", run_id=run_id, run_started=started,
            level_source_empty=c.source_empty.level, level_refused_files=c.refused_files.level,
            level_reject_rate=c.reject_rate.level, max_reject_rate=c.reject_rate.max,
            level_volume=c.volume.level, volume_runs=c.volume.runs, volume_min_runs=c.volume.min_runs,
            volume_max_mads=c.volume.max_mads, volume_min_change=c.volume.min_change,
            level_stage_rules=c.stage_rules.level, level_stage_unreached=c.stage_unreached.level,
            level_kpi_change=c.kpi_change.level, kpi_max_points=c.kpi_change.max_points,
            entity=config.entity.singular, entities=config.entity.plural)  # the messages' words
    return read_health(con, run_id)


def read_health(con: duckdb.DuckDBPyConnection, run_id: str) -> Health:
    """The stored checks of a run, the failed ones first."""
    rows = con.execute(
        "SELECT check_name, subject, level, status, value, expected, message FROM run_checks WHERE run_id = $run_id "
        "ORDER BY CASE status WHEN 'error' THEN 0 WHEN 'warning' THEN 1 WHEN 'info' THEN 2 ELSE 3 END, "
        "check_name, subject", {"run_id": run_id}).fetchall()
    return Health(run_id, [CheckResult(*row) for row in rows])


def gate(health: Health, force_publish: bool) -> None:
    """Stop the run before publishing when an error-level check failed (unless a person forces it)."""
    if health.failed and not force_publish:
        raise ChecksFailedError(health.summary() + "; nothing was published (the marts and the report show the "
                                "last good run); fix the input and run again, or rerun with --force-publish")
