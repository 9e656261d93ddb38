"""A straightforward pandas implementation of docs/definitions.md: the baseline the benchmark compares with.

It reads the same Parquet sources as the product, and computes, the way an analyst would write it in
pandas (vectorized, one frame, no hand tuning):

- load: the configured columns under their canonical names, empty strings as NULL, rows without an id,
  an event name or a plausible timestamp dropped, duplicates of (source, event_id) dropped (first kept);
- stitch: each anonymous_id -> the last customer_id seen with it (ts, then event_id, then source);
  customer_key = customer_id, else the stitched id, else the anonymous_id;
- sessionize: stage of each event (first matching rule, globs, `where` conditions on the file's other
  columns compared as text), events ordered by (customer_key, ts, event_id, source), a new session after a
  gap greater than the inactivity timeout; the sessions table (start, end, events, first/last event,
  first non-null channel);
- journeys: mapped events ordered by (customer_key, ts, stage_order, event_id, source), consecutive
  repeats collapsed; furthest stage, converted, converted_at per journey customer;
- aggregate: the stage funnel (reached, exited, rates) and the stage-transition graph ((start)/(end),
  transitions, distinct customers, probability, median hours between the two events a transition joins).

It shares no code with the product (only the config model) and so doubles as a correctness oracle at
sizes the plain-Python tests/reference.py cannot reach. It reads what the benchmark generator writes:
Parquet (or CSV) with timestamp columns, or epoch numbers with `timestamp_format: epoch_s|epoch_ms|epoch_us`;
rows without an event id are not supported (the product would hash their content).
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from cjm_analytics.config import ColumnMap, Config, Source

START, END = "(start)", "(end)"
STEPS = ("load_sources", "stitch_identities", "sessionize", "build_journeys", "aggregate")


@dataclass
class Result:
    """What the baseline computed, and how long each step took."""

    seconds: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    stage_funnel: pd.DataFrame | None = None
    stage_transitions: pd.DataFrame | None = None


def _read_source(source: Source, run_started: datetime) -> pd.DataFrame:
    files = source.files()
    frames = [pd.read_csv(f, dtype=str) if f.suffix == ".csv" else pd.read_parquet(f) for f in files]
    raw = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if not isinstance(source.columns, ColumnMap):
        raise NotImplementedError(f"source {source.name}: preset formats (no plain column map)")
    mapped = source.columns.mapped()
    df = raw.rename(columns={file_col: canon for canon, file_col in mapped.items()})
    for canon in ("event_id", "customer_id", "anonymous_id", "event_name", "channel"):
        if canon not in df:
            df[canon] = None
        df[canon] = df[canon].astype("str").where(df[canon].notna())
        df[canon] = df[canon].mask(df[canon] == "")
    if source.event_name is not None:
        df["event_name"] = source.event_name
    df["ts"] = _timestamps(df["timestamp"], source)
    lower = pd.Timestamp(source.min_timestamp)
    upper = pd.Timestamp(run_started.astimezone(UTC).replace(tzinfo=None)) + timedelta(hours=source.max_future_hours)
    ok = (df.customer_id.notna() | df.anonymous_id.notna()) & df.event_name.notna() & df.ts.notna()
    ok &= (df.ts >= lower) & (df.ts <= upper)
    if df.event_id[ok].isna().any():
        raise NotImplementedError(f"source {source.name}: rows without an event id (the product hashes them)")
    df = df[ok].drop(columns=["timestamp"])
    df = df.drop_duplicates(subset=["event_id"], keep="first")
    df["source"] = source.name
    return df


def _timestamps(values: pd.Series, source: Source) -> pd.Series:
    """The source's timestamp column as naive UTC datetime64[us]."""
    units = {"epoch_s": "s", "epoch_ms": "ms", "epoch_us": "us"}
    if source.timestamp_format in units:
        unit = units[source.timestamp_format]
        ts = pd.to_datetime(pd.to_numeric(values, errors="coerce"), unit=unit)  # type: ignore[call-overload]
    elif source.timestamp_format == "auto" and pd.api.types.is_datetime64_any_dtype(values):
        ts = values
    elif source.timestamp_format == "auto":
        ts = pd.to_datetime(values, errors="coerce", format="ISO8601")
    else:
        raise NotImplementedError(f"timestamp_format {source.timestamp_format!r}")
    if getattr(ts.dt, "tz", None) is None:
        ts = ts.dt.tz_localize(source.timezone, ambiguous="NaT", nonexistent="NaT")
    utc: pd.Series = ts.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[us]")
    return utc


def load(cfg: Config, run_started: datetime) -> pd.DataFrame:
    """Every source's valid, de-duplicated events in one frame (properties as their own columns)."""
    return pd.concat([_read_source(s, run_started) for s in cfg.sources], ignore_index=True)


def stitch(events: pd.DataFrame) -> pd.Series:
    """customer_key per event; each anonymous_id belongs to the last customer_id seen with it."""
    both = events.loc[events.anonymous_id.notna() & events.customer_id.notna(),
                      ["anonymous_id", "customer_id", "ts", "event_id", "source"]]
    last = both.sort_values(["anonymous_id", "ts", "event_id", "source"]).drop_duplicates("anonymous_id", keep="last")
    identities = last.set_index("anonymous_id")["customer_id"]
    return events.customer_id.fillna(events.anonymous_id.map(identities)).fillna(events.anonymous_id)


def stage_orders(events: pd.DataFrame, cfg: Config) -> pd.Series:
    """stage_order per event (NA when no rule matches): the first matching rule in config order wins."""
    names = [n for n in events.event_name.unique() if isinstance(n, str)]
    order = pd.Series(pd.NA, index=events.index, dtype="Int64")
    for k, stage in enumerate(cfg.stages, start=1):
        for rule in stage.events:
            hits = events.event_name.isin([n for n in names if fnmatch.fnmatchcase(n, rule.name)])
            for prop, wanted in rule.where.items():
                hits &= events[prop].astype("str").eq(wanted).fillna(False) if prop in events else False
            order[hits & order.isna()] = k
    return order


def sessionize(events: pd.DataFrame, inactivity_minutes: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Events in customer order with session_number, and one row per session."""
    ev = events.sort_values(["customer_key", "ts", "event_id", "source"], ignore_index=True)
    same_customer = ev.customer_key.eq(ev.customer_key.shift())
    new_session = ~same_customer | (ev.ts.diff() > pd.Timedelta(minutes=inactivity_minutes))
    session = new_session.cumsum()
    ev["session_number"] = session - session.groupby(ev.customer_key).transform("min") + 1
    sessions = ev.groupby(session, sort=False).agg(
        customer_key=("customer_key", "first"), session_number=("session_number", "first"),
        session_start=("ts", "min"), session_end=("ts", "max"), n_events=("ts", "size"),
        first_event=("event_name", "first"), last_event=("event_name", "last"), channel=("channel", "first"),
    )
    return ev, sessions.reset_index(drop=True)


def journeys(events: pd.DataFrame, cfg: Config) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(collapsed path steps, one row per journey customer)."""
    m = events.loc[events.stage_order.notna(), ["customer_key", "ts", "stage_order", "event_id", "source"]]
    m = m.sort_values(["customer_key", "ts", "stage_order", "event_id", "source"], ignore_index=True)
    same_customer = m.customer_key.eq(m.customer_key.shift())
    prev_order = m.stage_order.shift().where(same_customer)
    prev_ts = m.ts.shift().where(same_customer)
    starts = ~same_customer | m.stage_order.ne(prev_order)
    steps = pd.DataFrame({
        "customer_key": m.customer_key[starts], "stage_order": m.stage_order[starts],
        "prev_order": prev_order[starts],
        "hours_from_prev": (m.ts[starts] - prev_ts[starts]).dt.total_seconds() / 3600,
    })
    j = m.groupby("customer_key").agg(first_ts=("ts", "min"), last_ts=("ts", "max"),
                                      furthest_stage_order=("stage_order", "max"))
    j["path_length"] = steps.groupby("customer_key").size()
    j["converted"] = j.furthest_stage_order >= cfg.goal_order
    j["converted_at"] = m[m.stage_order >= cfg.goal_order].groupby("customer_key").ts.min()
    j["furthest_stage"] = j.furthest_stage_order.map(dict(enumerate(cfg.stage_names, start=1)))
    return steps.reset_index(drop=True), j


def stage_funnel(journey_table: pd.DataFrame, cfg: Config) -> pd.DataFrame:
    n = len(cfg.stages)
    exited = journey_table.furthest_stage_order.value_counts().reindex(range(1, n + 1), fill_value=0)
    reached = exited[::-1].cumsum()[::-1]
    f = pd.DataFrame({"stage": cfg.stage_names, "stage_order": range(1, n + 1),
                      "reached": reached.to_numpy(), "exited": exited.to_numpy()})
    denominator = f.reached.where(f.reached > 0)
    f["dropoff_rate"] = (f.exited / denominator).where(f.stage_order < n)
    f["conversion_to_next"] = f.reached.shift(-1) / denominator
    f["conversion_from_first"] = f.reached / (f.reached.iloc[0] if f.reached.iloc[0] else float("nan"))
    return f


def stage_transitions(steps: pd.DataFrame, cfg: Config) -> pd.DataFrame:
    n = len(cfg.stages)
    inner = pd.DataFrame({"customer_key": steps.customer_key, "from_order": steps.prev_order.fillna(0),
                          "to_order": steps.stage_order, "hours": steps.hours_from_prev})
    last = steps.drop_duplicates("customer_key", keep="last")
    ends = pd.DataFrame({"customer_key": last.customer_key, "from_order": last.stage_order, "to_order": n + 1,
                         "hours": float("nan")})
    edges = pd.concat([inner, ends], ignore_index=True).astype({"from_order": "int64", "to_order": "int64"})
    t = edges.groupby(["from_order", "to_order"]).agg(
        transitions=("customer_key", "size"), customers=("customer_key", "nunique"), median_hours=("hours", "median"),
    ).reset_index()
    t["probability"] = t.transitions / t.groupby("from_order").transitions.transform("sum")
    names = {0: START, n + 1: END, **dict(enumerate(cfg.stage_names, start=1))}
    t["from_stage"] = t.from_order.map(names)
    t["to_stage"] = t.to_order.map(names)
    columns = ["from_stage", "to_stage", "from_order", "to_order", "transitions", "customers", "probability",
               "median_hours"]
    return t[columns].sort_values(["from_order", "to_order"], ignore_index=True)


def run(cfg: Config, run_started: datetime, on_step: Callable[[str, float], Any] | None = None) -> Result:
    """Every step, timed; on_step(step, seconds) is called after each."""
    out = Result()

    def done(step: str, clock: float) -> float:
        out.seconds[step] = time.perf_counter() - clock
        if on_step:
            on_step(step, out.seconds[step])
        return time.perf_counter()

    clock = time.perf_counter()
    events = load(cfg, run_started)
    out.counts["events"] = len(events)
    clock = done("load_sources", clock)

    events["customer_key"] = stitch(events)
    clock = done("stitch_identities", clock)

    events["stage_order"] = stage_orders(events, cfg)
    events, sessions = sessionize(events, cfg.sessions.inactivity_minutes)
    out.counts.update(customers=int(events.customer_key.nunique()), sessions=len(sessions),
                      mapped_events=int(events.stage_order.notna().sum()))
    clock = done("sessionize", clock)

    steps, journey_table = journeys(events, cfg)
    out.counts.update(journeys=len(journey_table), converted=int(journey_table.converted.sum()))
    clock = done("build_journeys", clock)

    out.stage_funnel = stage_funnel(journey_table, cfg)
    out.stage_transitions = stage_transitions(steps, cfg)
    done("aggregate", clock)
    return out
