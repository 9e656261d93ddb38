"""Headline figures of the latest run compared with the previous night and with a week before (run_history).

The previous night is the latest run that started on an earlier UTC date than this run (a rerun the same
day is not a night); 7 days ago is the latest run that started at least 7 × 24 hours before this run.
A change is the difference of two run_history values: nothing is recomputed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import pandas as pd

from cjm_analytics.report.formatting import fmt_int, fmt_pct, missing, number

Better = Literal["higher", "lower", "neither"]
Direction = Literal["up", "down", "same", "none"]
Verdict = Literal["better", "worse", "neutral", "none"]


@dataclass(frozen=True)
class Kpi:
    """One headline figure: a run_summary column, shown as a count or a rate, and which way is good. The label
    says the entity in its words ({plural}, {Plural}: Entity.say)."""

    column: str
    label: str
    kind: Literal["count", "rate"]
    better: Better


KPIS = (
    Kpi("journey_customers", "Journey {plural}", "count", "higher"),
    Kpi("converted", "Converted", "count", "higher"),
    Kpi("conversion_rate", "Conversion rate", "rate", "higher"),
    Kpi("worst_dropoff_rate", "Worst drop-off", "rate", "lower"),
    Kpi("customers", "{Plural}", "count", "neither"),
    Kpi("sessions", "Sessions", "count", "neither"),
    Kpi("events_loaded", "Events loaded", "count", "neither"),
    Kpi("events_rejected", "Events rejected", "count", "lower"),
)


@dataclass(frozen=True)
class Change:
    """A KPI of this run against the same KPI of an earlier run (None: there is no earlier run)."""

    kpi: Kpi
    current: float | None
    earlier: float | None
    has_earlier: bool

    @property
    def diff(self) -> float | None:
        if self.current is None or self.earlier is None:
            return None
        return self.current - self.earlier

    @property
    def direction(self) -> Direction:
        """Up, down or the same as shown: a change that rounds to 0 (0.0 pp, 0 counts) is the same."""
        diff = self.diff
        if diff is None:
            return "none"
        shown = round(diff * 1000) if self.kpi.kind == "rate" else round(diff)
        return "same" if shown == 0 else "up" if diff > 0 else "down"

    @property
    def verdict(self) -> Verdict:
        direction = self.direction
        if direction == "none":
            return "none"
        if direction == "same" or self.kpi.better == "neither":
            return "neutral"
        good = (direction == "up") == (self.kpi.better == "higher")
        return "better" if good else "worse"

    @property
    def text(self) -> str:
        """The change with its sign: `+12 (+1.9%)`, `−0.8 pp`, `no change`; or why there is none."""
        diff = self.diff
        if not self.has_earlier:
            return "no earlier run"
        if diff is None:
            return "not comparable (a value is missing)"
        if self.direction == "same":
            return "no change"
        sign = "+" if diff > 0 else "−"
        if self.kpi.kind == "rate":
            return f"{sign}{abs(diff) * 100:.1f} pp"
        relative = f" ({sign}{abs(diff) / self.earlier:.1%})" if self.earlier else ""
        return f"{sign}{fmt_int(abs(diff))}{relative}"


def _started(row: Mapping[str, Any]) -> datetime | None:
    value = row.get("run_started_at")
    if missing(value):
        return None
    if isinstance(value, datetime):  # pd.Timestamp is one too
        return datetime(*value.timetuple()[:6], value.microsecond)
    return datetime.fromisoformat(str(value))


def earlier_runs(
    history: pd.DataFrame, current: Mapping[str, Any]
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(the previous night's run, the run of 7 days before) from run_history, each None when there is none."""
    started = _started(current)
    if started is None or history.empty:
        return None, None
    records = [{str(k): v for k, v in record.items()} for record in history.to_dict("records")]
    runs = [
        (when, row)
        for row in records
        if row.get("run_id") != current.get("run_id") and (when := _started(row)) is not None
    ]
    midnight = datetime(started.year, started.month, started.day)
    week = started - timedelta(days=7)
    night = [r for r in runs if r[0] < midnight]
    weeks = [r for r in runs if r[0] <= week]
    return _latest(night), _latest(weeks)


def _latest(runs: list[tuple[datetime, dict[str, Any]]]) -> dict[str, Any] | None:
    return max(runs, key=lambda r: (r[0], str(r[1].get("run_id"))))[1] if runs else None


def change(kpi: Kpi, current: Mapping[str, Any], earlier: Mapping[str, Any] | None) -> Change:
    """The KPI of this run against an earlier run's."""
    return Change(
        kpi=kpi,
        current=number(current.get(kpi.column)),
        earlier=None if earlier is None else number(earlier.get(kpi.column)),
        has_earlier=earlier is not None,
    )


def fmt_kpi(kpi: Kpi, value: Any) -> str:
    """A KPI value as shown on its card."""
    return fmt_pct(value) if kpi.kind == "rate" else fmt_int(value)
