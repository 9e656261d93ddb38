"""Ordered funnels with a conversion window: any steps, in order, strictly in order or in any order.

Definitions and a worked example: docs/analysis/funnels.md. The SQL is sql/analysis/funnel_hits.sql and
sql/analysis/ordered_funnel.sql.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal, get_args

import duckdb
import pandas as pd
import plotly.graph_objects as go

from cjm_analytics.analysis.commands import AddAnalysis, Answer
from cjm_analytics.analysis.output import plotly_names
from cjm_analytics.analysis.segments import SEGMENT_COLUMNS, build_segment_table, grouped_bars
from cjm_analytics.config import Analysis, Config
from cjm_analytics.errors import ConfigError
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
            raise ValueError(f"step {text!r}: give a name after {kind}:")
        return kind, name
    if not text:
        raise ValueError("a step name is empty")
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
        raise ValueError("steps: give at least one step")
    if not 0 < window_days <= MAX_WINDOW_DAYS:
        raise ValueError(f"window_days: must be greater than 0 and at most {MAX_WINDOW_DAYS:,}, not {window_days}")
    if order not in ORDERS:
        raise ValueError(f"order: use one of {', '.join(ORDERS)}, not {order!r}")
    step_specs = [parse_step(s) for s in steps]
    exclusion_specs = [parse_step(s) for s in exclusions]
    both = sorted({x for x in exclusions if parse_step(x) in step_specs})
    if both:
        raise ValueError(f"exclusions: {', '.join(both)} is also a step")
    specs = step_specs + exclusion_specs
    ids = [*range(1, len(step_specs) + 1), *range(-1, -len(exclusion_specs) - 1, -1)]
    run_sql(con, "analysis/funnel_hits", spec_ids=ids, spec_kinds=[k for k, _ in specs],
            spec_values=[v for _, v in specs], n_steps=len(step_specs), order=order)
    try:
        unknown = query_sql(con, "analysis/funnel_unknown_specs")
        if len(unknown):
            bad = [(list(steps) if i > 0 else list(exclusions))[abs(i) - 1] for i in unknown.spec_id]
            raise ValueError(f"{', '.join(map(repr, bad))}: no such stage, and no event has this name or touchpoint")
        build_segment_table(con, segment)
        # In any order step k means "k of the steps, whichever": the names of the steps would mislead.
        names = list(steps) if order != "any" else [f"{k} of {len(steps)} steps" for k in range(1, len(steps) + 1)]
        table = query_sql(
            con, "analysis/ordered_funnel",
            step_names=names, n_steps=len(step_specs), order=order,
            window_us=round(window_days * 86_400_000_000), hide_unelapsed=hide_unelapsed,
            now_us=_epoch_us(now) if now is not None else None, min_segment_size=min_segment_size,
        )
    finally:
        run_sql(con, "analysis/funnel_cleanup")
    return table if segment is not None else table.drop(columns=SEGMENT_COLUMNS)


def funnel_figure(table: pd.DataFrame) -> go.Figure:
    """Funnel bars of customers per step; grouped bars of conversion from the first step per segment."""
    if "segment" in table.columns:
        return grouped_bars(table, "step_name", "conversion_from_first", "share of step-1 customers")
    fig = go.Figure(go.Funnel(y=plotly_names(table.step_name), x=table.completed, textinfo="value+percent initial"))
    fig.update_layout(margin={"t": 30})
    return fig


def _split(text: str | None) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()] if text else []


def _funnel(con: duckdb.DuckDBPyConnection, cfg: Config, args: argparse.Namespace) -> Answer:
    window = args.window_days if args.window_days is not None else cfg.analysis.funnel_window_days
    steps, exclusions = _split(args.steps), _split(args.exclude)
    try:
        table = ordered_funnel(con, steps, window, args.order, exclusions, args.hide_unelapsed, args.segment,
                               min_segment_size=cfg.analysis.min_segment_size)
    except ValueError as e:
        raise ConfigError(f"analyze funnel: {e}") from None
    how = {"ordered": "in this order (other events may come between)",
           "strict": "in this order with no other event between consecutive steps",
           "any": "in any order"}[args.order]
    rule = ("step k counts once the customer has done k of the steps, each first done after the attempt's start"
            if args.order == "any" else
            "a customer completes step k at the earliest step-k event after their step k−1 (events at the same "
            "time are taken in funnel order)")
    intro = (
        f"How many customers go {' → '.join(steps)} {how}, within {window:g} days of their first step? "
        f"An attempt starts at a step-1 event{' (in any order: at any step event)' if args.order == 'any' else ''}; "
        f"{rule}; every step must fall within the window from the start. "
        "Each customer counts once, by the attempt that gets furthest (the earliest such). entered = customers "
        "who completed the previous step; conversion_from_previous = completed / entered; times to convert are "
        "from step 1 to the step, median and p90 (linear interpolation) among completers."
    )
    if exclusions:
        intro += (f" An attempt with {' or '.join(exclusions)} after step 1 and before its last completed step "
                  "does not count; a customer with no other attempt leaves the funnel.")
    if args.hide_unelapsed:
        intro += " Attempts whose window has not ended by the latest event in the warehouse are left out."
    if args.segment:
        intro += (f" Per {args.segment}: segment_size = the segment's customers at step 1; too_small marks "
                  f"fewer than {cfg.analysis.min_segment_size}.")
    return Answer(table, f"Funnel: {' → '.join(steps)}", intro, funnel_figure(table))


def register(add_analysis: AddAnalysis) -> None:
    """Add `cjm analyze funnel`."""
    parser = add_analysis("funnel", "an ordered funnel of stages or events with a conversion window", _funnel)
    parser.add_argument("--steps", required=True,
                        help="comma-separated steps: stage names or event/touchpoint names; prefix stage:, "
                             "event: or touchpoint: to say which (e.g. awareness,event:add_to_cart,purchase)")
    parser.add_argument("--window-days", type=float, default=None,
                        help="conversion window from step 1 (default: analysis.funnel_window_days, 14)")
    parser.add_argument("--order", choices=ORDERS, default="ordered",
                        help="ordered: other events may come between; strict: the next event must be the next "
                             "step; any: steps in any order")
    parser.add_argument("--exclude", help="comma-separated exclusion events (e.g. remove_from_cart)")
    parser.add_argument("--hide-unelapsed", action="store_true",
                        help="leave out attempts whose window has not ended by the latest event")
    parser.add_argument("--segment", help="break down by a segment (first_touch_channel, campaign, cohort_week, ...)")
