"""Ordered funnels with a conversion window: any steps, in order, strictly in order or in any order.

Definitions and a worked example: docs/analysis/funnels.md. The SQL is sql/analysis/funnel_specs.sql (the
specs and the events matching them) and sql/analysis/ordered_funnel.sql.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal, get_args

import duckdb
import pandas as pd

from cjm_analytics.analysis.segments import SEGMENT_COLUMNS, segment_table
from cjm_analytics.config import Analysis
from cjm_analytics.errors import AnalysisError
from cjm_analytics.sql_steps import query_sql, run_sql

Order = Literal["ordered", "strict", "any"]
ORDERS: tuple[Order, ...] = get_args(Order)
STEP_KINDS = ("stage", "event", "touchpoint")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_WINDOW_DAYS = 36_500  # a century: keeps every window end inside a timestamp's range


def parse_step(text: str) -> tuple[str, str]:
    """('stage'|'event'|'touchpoint'|'auto', name) from 'stage:intent', 'event:order_completed' or 'intent'."""
    kind, sep, name = text.partition(":")
    if sep and kind in STEP_KINDS:
        if not name:
            raise AnalysisError(f"step {text!r}: give a name after {kind}:")
        return kind, name
    if not text:
        raise AnalysisError("a step name is empty")
    return "auto", text


def _epoch_us(ts: datetime) -> int:
    # A naive `now` is UTC, like every timestamp in the warehouse.
    aware = ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)
    return (aware - _EPOCH) // timedelta(microseconds=1)


def ordered_funnel(
    con: duckdb.DuckDBPyConnection,
    steps: Sequence[str],
    window_days: float = 14,
    order: Order = "ordered",
    exclusions: Sequence[str] = (),
    hide_unelapsed: bool = False,
    segment: str | None = None,
    now: datetime | None = None,
    min_segment_size: int = Analysis().min_segment_size,
) -> pd.DataFrame:
    """Customers completing each step within the window; per-segment rows when `segment` is given."""
    if not steps:
        raise AnalysisError("steps: give at least one step")
    if not 0 < window_days <= MAX_WINDOW_DAYS:
        raise AnalysisError(f"window_days: must be greater than 0 and at most {MAX_WINDOW_DAYS:,}, not {window_days}")
    if order not in ORDERS:
        raise AnalysisError(f"order: use one of {', '.join(ORDERS)}, not {order!r}")
    step_specs = [parse_step(s) for s in steps]
    exclusion_specs = [parse_step(s) for s in exclusions]
    both = sorted({x for x in exclusions if parse_step(x) in step_specs})
    if both:
        raise AnalysisError(f"exclusions: {', '.join(both)} is also a step")
    specs = step_specs + exclusion_specs
    ids = [*range(1, len(step_specs) + 1), *range(-1, -len(exclusion_specs) - 1, -1)]
    spec_params = {"spec_ids": ids, "spec_kinds": [k for k, _ in specs], "spec_values": [v for _, v in specs]}
    run_sql(con, "analysis/funnel_specs")  # defines the cjm_funnel_specs and cjm_funnel_matches macros
    unknown = query_sql(con, "analysis/funnel_unknown_specs", **spec_params)
    if len(unknown):
        bad = [(list(steps) if i > 0 else list(exclusions))[abs(i) - 1] for i in unknown.spec_id]
        raise AnalysisError(f"{', '.join(map(repr, bad))}: no such stage, and no event has this name or touchpoint")
    # In any order step k means "k of the steps, whichever": the names of the steps would mislead.
    names = list(steps) if order != "any" else [f"{k} of {len(steps)} steps" for k in range(1, len(steps) + 1)]
    table = query_sql(
        con, "analysis/ordered_funnel", **spec_params, segments=segment_table(con, segment),
        step_names=names, n_steps=len(step_specs), order=order,
        window_us=round(window_days * 86_400_000_000), hide_unelapsed=hide_unelapsed,
        now_us=_epoch_us(now) if now is not None else None, min_segment_size=min_segment_size,
    )
    return table if segment is not None else table.drop(columns=SEGMENT_COLUMNS)
