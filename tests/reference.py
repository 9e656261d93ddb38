"""Test oracle: an independent, plain-pandas computation of every figure in DEFINITIONS.md.

This module is the second opinion the test suite compares the product's DuckDB SQL against. It
deliberately shares no code with the product (it imports only the config model): it is written the
most obvious way, with the csv module, Python loops and small pandas frames, and speed does not matter.

Public functions (the e2e tests call these):

- ``reference_load(cfg, run_started) -> (events, rejects)``
- ``reference_reconciliation(cfg, run_started, by="source") -> DataFrame`` (read/loaded/rejected/duplicate)
- ``reference_figures(events, cfg) -> dict[str, DataFrame]`` (identities, events, sessions, journeys,
  stage_funnel, stage_transitions, stage_conversion_daily, sankey_links, run_summary)

Choices where DEFINITIONS.md / docs/tables.md leave room are listed in ``CHOICES`` below.
"""

from __future__ import annotations

import csv
import fnmatch
import gzip
import hashlib
import io
import itertools
import json
import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import pandas as pd

from cjm_analytics.config import Config, Source

CHOICES = """
- Blank lines (no fields at all) are skipped: they are not records and are not counted as read.
- Rows whose field count differs from the header's are rejected with reason
  'MISSING COLUMNS: expected N, got M' or 'TOO MANY COLUMNS: expected N, got M'.
- Validation order (first failing check gives the reason): column count, missing ids,
  missing event_name, missing timestamp, unparseable timestamp, before min, after horizon.
- Only valid rows take part in de-duplication: a row is a duplicate when it is valid and its
  (source, event_id) was already accepted earlier (files sorted, rows in file order).
- A configured event_id column that is empty in a row falls back to the content hash.
- min_timestamp (a date) is midnight UTC; ts == min and ts == run_started + horizon are accepted.
- Naive local times that are ambiguous/non-existent (DST) use zoneinfo's fold=0.
- Fractional seconds beyond microseconds are truncated.
- `where` conditions look only at the properties (the non-mapped columns); an empty value is NULL and
  never equals a condition.
- sessions.first_event / last_event are event *names* (first_event_id / last_event_id also given);
  session_id is '<customer_key>#<session_number>' (not compared with the product's md5).
- Events of one customer are ordered by (ts, event_id, source) wherever an order is needed, and mapped
  events for the stage path by (ts, stage_order, event_id, source).
- median_hours is the continuous median (mean of the two middle values) over all transitions on the edge.
- Sankey folding: a (step, stage) node is folded into 'other' when customers_at_node / journey_customers
  < sankey_min_share (strict).
- Rates whose denominator is 0 are NaN; cohort_date is a datetime.date.
"""

START = "(start)"
END = "(end)"
OTHER = "other"
DROP_OFF = "(drop-off)"
COMPLETED = "(completed)"
CONTINUES = "(continues)"

EVENT_COLUMNS = [
    "event_id",
    "source",
    "source_kind",
    "file",
    "row_number",
    "customer_id",
    "anonymous_id",
    "event_name",
    "ts",
    "channel",
    "properties",
]
REJECT_COLUMNS = ["source", "file", "row_number", "reason", "raw"]


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------


class BadTimestamp(Exception):
    """A timestamp value that cannot be parsed."""


@dataclass
class _FileCounts:
    source: str
    file: str
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    rows_duplicate: int = 0


@dataclass
class _LoadResult:
    events: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)
    counts: list[_FileCounts] = field(default_factory=list)


def _read_records(path: Path) -> list[list[str]]:
    """All CSV records of a file (gzip-aware), header first, blank lines skipped."""
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        raw = gzip.decompress(raw)
    text = raw.decode("utf-8-sig")
    return [rec for rec in csv.reader(io.StringIO(text, newline="")) if len(rec) > 0]


def _epoch_to_utc(value: str, unit: Literal["s", "ms", "us"]) -> datetime:
    """An epoch number (as text) in the given unit, as a naive UTC datetime."""
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise BadTimestamp(value) from None
    if not number.is_finite():
        raise BadTimestamp(value)
    per_second = {"s": 1, "ms": 1_000, "us": 1_000_000}[unit]
    micros = int(number * 1_000_000 / per_second)  # truncates below a microsecond
    try:
        return datetime(1970, 1, 1) + timedelta(microseconds=micros)
    except OverflowError:
        raise BadTimestamp(value) from None


def _to_utc_naive(parsed: datetime, timezone: str) -> datetime:
    """Aware -> UTC; naive -> read in the source's time zone, then UTC. Result is naive."""
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(timezone))
    return parsed.astimezone(UTC).replace(tzinfo=None)


def parse_timestamp(value: str, timestamp_format: str, timezone: str) -> datetime:
    """Parse one timestamp text per the source's format; naive UTC datetime or BadTimestamp."""
    text = value.strip()
    if timestamp_format == "epoch_s":
        return _epoch_to_utc(text, "s")
    if timestamp_format == "epoch_ms":
        return _epoch_to_utc(text, "ms")
    if timestamp_format == "epoch_us":
        return _epoch_to_utc(text, "us")
    if timestamp_format != "auto":
        try:
            parsed = datetime.strptime(text, timestamp_format)
        except ValueError:
            raise BadTimestamp(value) from None
        return _to_utc_naive(parsed, timezone)
    # auto
    if text.isdigit() and text.isascii():
        number = int(text)
        if number < 10**11:
            return _epoch_to_utc(text, "s")
        if number < 10**14:
            return _epoch_to_utc(text, "ms")
        if number < 10**17:
            return _epoch_to_utc(text, "us")
        raise BadTimestamp(value)
    force_utc = False
    if text.upper().endswith(" UTC"):
        text = text[: -len(" UTC")].strip()
        force_utc = True
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise BadTimestamp(value) from None
    if force_utc:
        if parsed.tzinfo is not None:
            raise BadTimestamp(value)
        parsed = parsed.replace(tzinfo=UTC)
    return _to_utc_naive(parsed, timezone)


def _none_if_empty(value: str | None) -> str | None:
    """Empty strings are NULL."""
    return None if value is None or value == "" else value


def _content_hash(source_name: str, record: list[str]) -> str:
    """Deterministic id of a row without an id column: md5 of the source name and the row's fields."""
    payload = "\x1e".join([source_name, *record])
    return hashlib.md5(payload.encode("utf-8")).hexdigest()


def _as_utc_naive(moment: datetime) -> datetime:
    """An aware datetime as naive UTC; a naive one is taken to be UTC already."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo is not None else moment


def _check_row(
    source: Source, values: dict[str, str | None], run_started_utc: datetime
) -> tuple[str | None, datetime | None]:
    """(reason, ts): reason is None for a valid row."""
    mapped = source.columns.mapped()
    customer_id = values.get(mapped["customer_id"]) if "customer_id" in mapped else None
    anonymous_id = values.get(mapped["anonymous_id"]) if "anonymous_id" in mapped else None
    if customer_id is None and anonymous_id is None:
        return "missing customer_id and anonymous_id", None
    event_name = values.get(mapped["event_name"]) if "event_name" in mapped else source.event_name
    if event_name is None:
        return "missing event_name", None
    ts_text = values.get(mapped["timestamp"])
    if ts_text is None:
        return "missing timestamp", None
    try:
        ts = parse_timestamp(ts_text, source.timestamp_format, source.timezone)
    except BadTimestamp:
        return "unparseable timestamp", None
    lower = datetime(source.min_timestamp.year, source.min_timestamp.month, source.min_timestamp.day)
    if ts < lower:
        return f"timestamp before {source.min_timestamp.isoformat()}", None
    upper = run_started_utc + timedelta(hours=source.max_future_hours)
    if ts > upper:
        return f"timestamp more than {source.max_future_hours:g} hours after the run started", None
    return None, ts


def _load(cfg: Config, run_started: datetime) -> _LoadResult:
    """Read every source's files in order, sorting rows into events, rejects and duplicates."""
    out = _LoadResult()
    run_started_utc = _as_utc_naive(run_started)
    for source in cfg.sources:
        fmt = source.format
        mapped = source.columns.mapped()
        accepted_ids: set[str] = set()
        for path in source.files():
            if fmt not in ("auto", "csv") or (fmt == "auto" and ".csv" not in path.name.lower()):
                raise NotImplementedError(f"the reference loader reads CSV only, not {path}")
            counts = _FileCounts(source.name, str(path))
            out.counts.append(counts)
            records = _read_records(path)
            if not records:
                continue
            header, rows = records[0], records[1:]
            missing = [c for c in mapped.values() if c not in header]
            if missing:
                raise ValueError(f"{path}: missing configured column(s) {missing}")
            mapped_file_columns = set(mapped.values())
            for row_number, record in enumerate(rows, start=1):
                counts.rows_read += 1
                raw = ",".join(record)
                if len(record) != len(header):
                    kind = "MISSING COLUMNS" if len(record) < len(header) else "TOO MANY COLUMNS"
                    out.rejects.append(
                        {
                            "source": source.name,
                            "file": str(path),
                            "row_number": row_number,
                            "reason": f"{kind}: expected {len(header)}, got {len(record)}",
                            "raw": raw,
                        }
                    )
                    counts.rows_rejected += 1
                    continue
                values = {name: _none_if_empty(v) for name, v in zip(header, record, strict=True)}
                reason, ts = _check_row(source, values, run_started_utc)
                if reason is not None:
                    out.rejects.append(
                        {
                            "source": source.name,
                            "file": str(path),
                            "row_number": row_number,
                            "reason": reason,
                            "raw": raw,
                        }
                    )
                    counts.rows_rejected += 1
                    continue
                own_id = values.get(mapped["event_id"]) if "event_id" in mapped else None
                event_id = own_id if own_id is not None else _content_hash(source.name, record)
                if event_id in accepted_ids:
                    counts.rows_duplicate += 1
                    continue
                accepted_ids.add(event_id)
                counts.rows_loaded += 1
                out.events.append(
                    {
                        "event_id": event_id,
                        "source": source.name,
                        "source_kind": source.kind,
                        "file": str(path),
                        "row_number": row_number,
                        "customer_id": values.get(mapped["customer_id"]) if "customer_id" in mapped else None,
                        "anonymous_id": (values.get(mapped["anonymous_id"]) if "anonymous_id" in mapped else None),
                        "event_name": (
                            values.get(mapped["event_name"]) if "event_name" in mapped else source.event_name
                        ),
                        "ts": ts,
                        "channel": values.get(mapped["channel"]) if "channel" in mapped else None,
                        "properties": {k: v for k, v in values.items() if k not in mapped_file_columns},
                    }
                )
    return out


def _frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    """A DataFrame with exactly these columns (object dtype for text, so None stays None)."""
    df = pd.DataFrame({c: pd.Series([r[c] for r in rows], dtype=object) for c in columns}, columns=columns)
    return df


def _ts_column(values: list[Any]) -> pd.Series:
    """A datetime64[us] column (None becomes NaT)."""
    return pd.Series(pd.to_datetime(pd.Series(values, dtype=object)), dtype="datetime64[us]")


def reference_load(cfg: Config, run_started: datetime) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Load every source per DEFINITIONS.md 'Events': (events, rejects) frames."""
    result = _load(cfg, run_started)
    events = _frame(result.events, EVENT_COLUMNS)
    events["ts"] = _ts_column([r["ts"] for r in result.events])
    events["row_number"] = events["row_number"].astype("int64")
    rejects = _frame(result.rejects, REJECT_COLUMNS)
    rejects["row_number"] = rejects["row_number"].astype("int64")
    return events, rejects


def reference_reconciliation(
    cfg: Config, run_started: datetime, by: Literal["source", "file"] = "source"
) -> pd.DataFrame:
    """Counts per source (or per file): rows_read, rows_loaded, rows_rejected, rows_duplicate."""
    result = _load(cfg, run_started)
    keys = ["source", "file"] if by == "file" else ["source"]
    rows = []
    for c in result.counts:
        rows.append(
            {
                "source": c.source,
                "file": c.file,
                "rows_read": c.rows_read,
                "rows_loaded": c.rows_loaded,
                "rows_rejected": c.rows_rejected,
                "rows_duplicate": c.rows_duplicate,
            }
        )
    numbers = ["rows_read", "rows_loaded", "rows_rejected", "rows_duplicate"]
    if not rows:
        return pd.DataFrame({c: pd.Series([], dtype="int64" if c in numbers else object) for c in keys + numbers})
    df = pd.DataFrame(rows)
    if by == "source":
        order = [s.name for s in cfg.sources]
        df = df.groupby("source", sort=False)[numbers].sum().reset_index()
        df = df.set_index("source").reindex([n for n in order if n in set(df["source"])]).reset_index()
    return df[keys + numbers].reset_index(drop=True)


# --------------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------------


def _rule_matches(rule: Any, event_name: str, properties: dict[str, Any]) -> bool:
    """An EventRule holds when its glob matches the name and every `where` property equals the text."""
    if not fnmatch.fnmatchcase(event_name, rule.name):
        return False
    for prop, wanted in rule.where.items():
        value = properties.get(prop)
        if value is None or str(value) != wanted:
            return False
    return True


def _stage_of(event_name: str, properties: dict[str, Any], cfg: Config) -> tuple[str | None, int | None]:
    """First matching rule in config order: (stage, stage_order) or (None, None)."""
    for order, stage in enumerate(cfg.stages, start=1):
        for rule in stage.events:
            if _rule_matches(rule, event_name, properties or {}):
                return stage.name, order
    return None, None


def _is_null(value: Any) -> bool:
    """None, NaN, pd.NA or NaT."""
    return value is None or (isinstance(value, float) and value != value) or value is pd.NA or value is pd.NaT


def _event_sort_key(e: dict[str, Any]) -> tuple[Any, ...]:
    """Order of a customer's events: ts, then event_id (then source)."""
    return (e["ts"], str(e["event_id"]), str(e["source"]))


def _path_sort_key(e: dict[str, Any]) -> tuple[Any, ...]:
    """Order of mapped events in a stage path: ts, then stage_order, then event_id."""
    return (e["ts"], e["stage_order"], str(e["event_id"]), str(e["source"]))


def _hours(delta: timedelta) -> float:
    """A time difference in hours."""
    return delta.total_seconds() / 3600.0


def _rate(numerator: float, denominator: float) -> float:
    """numerator / denominator, NaN when the denominator is 0."""
    return numerator / denominator if denominator else float("nan")


def _compute_identities(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """anonymous_id -> the event that carries its last customer_id (by ts, then event_id)."""
    last: dict[str, dict[str, Any]] = {}
    for e in events:
        if e["anonymous_id"] is None or e["customer_id"] is None:
            continue
        current = last.get(e["anonymous_id"])
        if current is None or _event_sort_key(e) > _event_sort_key(current):
            last[e["anonymous_id"]] = e
    return last


def _funnel_rows(furthest_orders: list[int], cfg: Config) -> list[dict[str, Any]]:
    """reached / exited / rates per configured stage, for a list of furthest stage orders."""
    n = len(cfg.stages)
    reached = {k: sum(1 for f in furthest_orders if f >= k) for k in range(1, n + 1)}
    exited = {k: sum(1 for f in furthest_orders if f == k) for k in range(1, n + 1)}
    rows = []
    for k, stage in enumerate(cfg.stages, start=1):
        last = k == n
        rows.append(
            {
                "stage": stage.name,
                "stage_order": k,
                "reached": reached[k],
                "exited": exited[k],
                "dropoff_rate": float("nan") if last else _rate(exited[k], reached[k]),
                "conversion_to_next": float("nan") if last else _rate(reached[k + 1], reached[k]),
                "conversion_from_first": _rate(reached[k], reached[1]),
            }
        )
    return rows


def reference_figures(events: pd.DataFrame, cfg: Config) -> dict[str, pd.DataFrame]:
    """Every core and mart figure of DEFINITIONS.md / docs/tables.md from loaded events."""
    inactivity = timedelta(minutes=cfg.sessions.inactivity_minutes)
    goal_order = cfg.goal_order
    n_stages = len(cfg.stages)

    # Plain Python records, so that every step below is an obvious loop.
    recs: list[dict[str, Any]] = []
    for row in events.to_dict("records"):
        e: dict[str, Any] = {str(k): v for k, v in row.items()}
        for col in ("customer_id", "anonymous_id", "channel"):
            e[col] = None if _is_null(e.get(col)) else e[col]
        ts = pd.Timestamp(e["ts"])
        if ts.tzinfo is not None:
            ts = ts.tz_convert("UTC").tz_localize(None)
        e["ts"] = ts.to_pydatetime()
        props = e.get("properties")
        if isinstance(props, str):  # e.g. the product's JSON column, read back as text
            props = json.loads(props)
        e["properties"] = props if isinstance(props, dict) else {}
        recs.append(e)

    # --- identities
    last_with_customer = _compute_identities(recs)
    identities = pd.DataFrame(
        {
            "anonymous_id": pd.Series(sorted(last_with_customer), dtype=object),
            "customer_id": pd.Series(
                [last_with_customer[a]["customer_id"] for a in sorted(last_with_customer)], dtype=object
            ),
            "stitched_at": _ts_column([last_with_customer[a]["ts"] for a in sorted(last_with_customer)]),
        }
    )

    # --- events: customer_key and stage
    for e in recs:
        if e["customer_id"] is not None:
            e["customer_key"] = e["customer_id"]
        elif e["anonymous_id"] in last_with_customer:
            e["customer_key"] = last_with_customer[e["anonymous_id"]]["customer_id"]
        else:
            e["customer_key"] = e["anonymous_id"]
        e["stage"], e["stage_order"] = _stage_of(e["event_name"], e["properties"], cfg)

    by_customer: dict[str, list[dict[str, Any]]] = {}
    for e in recs:
        by_customer.setdefault(e["customer_key"], []).append(e)
    for evs in by_customer.values():
        evs.sort(key=_event_sort_key)

    # --- sessions
    session_rows: list[dict[str, Any]] = []
    n_sessions_of: dict[str, int] = {}
    for key in sorted(by_customer):
        evs = by_customer[key]
        sessions: list[list[dict[str, Any]]] = []
        previous: dict[str, Any] | None = None
        for e in evs:
            if previous is None or e["ts"] - previous["ts"] > inactivity:
                sessions.append([])
            sessions[-1].append(e)
            previous = e
        n_sessions_of[key] = len(sessions)
        for number, sess in enumerate(sessions, start=1):
            session_id = f"{key}#{number}"
            for e in sess:
                e["session_id"] = session_id
            channels = [e["channel"] for e in sess if e["channel"] is not None]
            session_rows.append(
                {
                    "customer_key": key,
                    "session_id": session_id,
                    "session_number": number,
                    "session_start": sess[0]["ts"],
                    "session_end": sess[-1]["ts"],
                    "n_events": len(sess),
                    "first_event": sess[0]["event_name"],
                    "last_event": sess[-1]["event_name"],
                    "first_event_id": sess[0]["event_id"],
                    "last_event_id": sess[-1]["event_id"],
                    "channel": channels[0] if channels else None,
                }
            )
    session_cols = [
        "customer_key",
        "session_id",
        "session_number",
        "session_start",
        "session_end",
        "n_events",
        "first_event",
        "last_event",
        "first_event_id",
        "last_event_id",
        "channel",
    ]
    sessions_df = _frame(session_rows, session_cols)
    for c in ("session_start", "session_end"):
        sessions_df[c] = _ts_column([r[c] for r in session_rows])
    for c in ("session_number", "n_events"):
        sessions_df[c] = sessions_df[c].astype("int64")

    events_out = events.copy()
    events_out["customer_key"] = pd.Series([e["customer_key"] for e in recs], index=events.index, dtype=object)
    events_out["stage"] = pd.Series([e["stage"] for e in recs], index=events.index, dtype=object)
    events_out["stage_order"] = pd.Series([e["stage_order"] for e in recs], index=events.index, dtype="Int64")
    events_out["session_id"] = pd.Series([e["session_id"] for e in recs], index=events.index, dtype=object)

    # --- journeys (and the runs of each path, for transition times)
    journey_rows: list[dict[str, Any]] = []
    runs_of: dict[str, list[dict[str, Any]]] = {}
    for key in sorted(by_customer):
        evs = by_customer[key]
        mapped = sorted((e for e in evs if e["stage"] is not None), key=_path_sort_key)
        if not mapped:
            continue
        runs: list[dict[str, Any]] = []
        for e in mapped:
            if runs and runs[-1]["stage"] == e["stage"]:
                runs[-1]["last_ts"] = e["ts"]
            else:
                runs.append(
                    {"stage": e["stage"], "stage_order": e["stage_order"], "first_ts": e["ts"], "last_ts": e["ts"]}
                )
        runs_of[key] = runs
        path = [r["stage"] for r in runs]
        furthest_order = max(e["stage_order"] for e in mapped)
        first_ts = min(e["ts"] for e in mapped)
        last_ts = max(e["ts"] for e in mapped)
        converted = furthest_order >= goal_order
        converted_at = min(e["ts"] for e in mapped if e["stage_order"] >= goal_order) if converted else None
        channels = [e["channel"] for e in evs if e["channel"] is not None]
        journey_rows.append(
            {
                "customer_key": key,
                "first_ts": first_ts,
                "last_ts": last_ts,
                "stage_path": path,
                "path_length": len(path),
                "furthest_stage": cfg.stages[furthest_order - 1].name,
                "furthest_stage_order": furthest_order,
                "converted": converted,
                "converted_at": converted_at,
                "hours_to_convert": _hours(converted_at - first_ts) if converted_at is not None else float("nan"),
                "n_sessions": n_sessions_of[key],
                "n_events": len(evs),
                "first_channel": channels[0] if channels else None,
                "cohort_date": first_ts.date(),
            }
        )
    journey_cols = [
        "customer_key",
        "first_ts",
        "last_ts",
        "stage_path",
        "path_length",
        "furthest_stage",
        "furthest_stage_order",
        "converted",
        "converted_at",
        "hours_to_convert",
        "n_sessions",
        "n_events",
        "first_channel",
        "cohort_date",
    ]
    journeys_df = _frame(journey_rows, journey_cols)
    for c in ("first_ts", "last_ts", "converted_at"):
        journeys_df[c] = _ts_column([r[c] for r in journey_rows])
    for c in ("path_length", "furthest_stage_order", "n_sessions", "n_events"):
        journeys_df[c] = journeys_df[c].astype("int64")
    journeys_df["converted"] = journeys_df["converted"].astype(bool)
    journeys_df["hours_to_convert"] = journeys_df["hours_to_convert"].astype("float64")

    # --- stage funnel
    furthest_all = [j["furthest_stage_order"] for j in journey_rows]
    funnel_df = pd.DataFrame(
        _funnel_rows(furthest_all, cfg),
        columns=[
            "stage",
            "stage_order",
            "reached",
            "exited",
            "dropoff_rate",
            "conversion_to_next",
            "conversion_from_first",
        ],
    )

    # --- stage transitions
    order_of = {s.name: i for i, s in enumerate(cfg.stages, start=1)}
    order_of[START] = 0
    order_of[END] = n_stages + 1
    edge_count: dict[tuple[str, str], int] = {}
    edge_customers: dict[tuple[str, str], set[str]] = {}
    edge_hours: dict[tuple[str, str], list[float]] = {}
    for key, runs in runs_of.items():
        nodes: list[tuple[str, dict[str, Any] | None]] = [(START, None)]
        nodes += [(r["stage"], r) for r in runs]
        nodes.append((END, None))
        for (a, run_a), (b, run_b) in itertools.pairwise(nodes):
            edge = (a, b)
            edge_count[edge] = edge_count.get(edge, 0) + 1
            edge_customers.setdefault(edge, set()).add(key)
            edge_hours.setdefault(edge, [])
            if run_a is not None and run_b is not None:
                edge_hours[edge].append(_hours(run_b["first_ts"] - run_a["last_ts"]))
    out_total: dict[str, int] = {}
    for (a, _b), n in edge_count.items():
        out_total[a] = out_total.get(a, 0) + n
    transition_rows = []
    for a, b in sorted(edge_count, key=lambda ed: (order_of[ed[0]], order_of[ed[1]])):
        hours = edge_hours[(a, b)]
        transition_rows.append(
            {
                "from_stage": a,
                "to_stage": b,
                "from_order": order_of[a],
                "to_order": order_of[b],
                "transitions": edge_count[(a, b)],
                "customers": len(edge_customers[(a, b)]),
                "probability": edge_count[(a, b)] / out_total[a],
                "median_hours": statistics.median(hours) if hours else float("nan"),
            }
        )
    transitions_df = pd.DataFrame(
        transition_rows,
        columns=[
            "from_stage",
            "to_stage",
            "from_order",
            "to_order",
            "transitions",
            "customers",
            "probability",
            "median_hours",
        ],
    )

    # --- stage conversion daily
    daily_rows = []
    for cohort in sorted({j["cohort_date"] for j in journey_rows}):
        furthest = [j["furthest_stage_order"] for j in journey_rows if j["cohort_date"] == cohort]
        for r in _funnel_rows(furthest, cfg):
            daily_rows.append(
                {
                    "cohort_date": cohort,
                    "stage": r["stage"],
                    "stage_order": r["stage_order"],
                    "reached": r["reached"],
                    "exited": r["exited"],
                    "dropoff_rate": r["dropoff_rate"],
                }
            )
    daily_df = pd.DataFrame(
        daily_rows, columns=["cohort_date", "stage", "stage_order", "reached", "exited", "dropoff_rate"]
    )

    # --- sankey links
    steps = cfg.report.sankey_steps
    min_share = cfg.report.sankey_min_share
    journey_customers = len(journey_rows)
    at_step: dict[tuple[int, str], int] = {}
    for j in journey_rows:
        for s, stage in enumerate(j["stage_path"][:steps], start=1):
            at_step[(s, stage)] = at_step.get((s, stage), 0) + 1

    def node(step: int, stage: str) -> str:
        """The Sankey node of a stage at a step: the stage, or 'other' when its share is too small."""
        return OTHER if at_step[(step, stage)] / journey_customers < min_share else stage

    link_count: dict[tuple[int, str, int, str], int] = {}
    for j in journey_rows:
        path = j["stage_path"]
        for s in range(1, min(len(path), steps) + 1):
            from_node = node(s, path[s - 1])
            if len(path) == s:
                # A journey that ends after reaching the goal is completed, whatever came after the goal.
                to_node = COMPLETED if j["converted"] else DROP_OFF
            elif s == steps:
                to_node = CONTINUES
            else:
                to_node = node(s + 1, path[s])
            link = (s, from_node, s + 1, to_node)
            link_count[link] = link_count.get(link, 0) + 1
    sankey_df = pd.DataFrame(
        [
            {"from_step": k[0], "from_node": k[1], "to_step": k[2], "to_node": k[3], "customers": v}
            for k, v in sorted(link_count.items())
        ],
        columns=["from_step", "from_node", "to_step", "to_node", "customers"],
    )

    # --- run summary
    converted_n = sum(1 for j in journey_rows if j["converted"])
    worst_stage: str | None = None
    worst_rate = float("nan")
    # Only the stages before the goal: stopping at or after it is completing, not dropping off.
    for r in _funnel_rows(furthest_all, cfg)[: cfg.goal_order - 1]:
        rate = r["dropoff_rate"]
        if rate == rate and (worst_stage is None or rate > worst_rate):
            worst_stage, worst_rate = r["stage"], rate
    summary_df = pd.DataFrame(
        [
            {
                "customers": len(by_customer),
                "journey_customers": journey_customers,
                "sessions": len(session_rows),
                "converted": converted_n,
                "conversion_rate": _rate(converted_n, journey_customers),
                "worst_dropoff_stage": worst_stage,
                "worst_dropoff_rate": worst_rate,
            }
        ]
    )

    return {
        "identities": identities,
        "events": events_out,
        "sessions": sessions_df,
        "journeys": journeys_df,
        "stage_funnel": funnel_df,
        "stage_transitions": transitions_df,
        "stage_conversion_daily": daily_df,
        "sankey_links": sankey_df,
        "run_summary": summary_df,
    }


__all__ = [
    "CHOICES",
    "parse_timestamp",
    "reference_figures",
    "reference_load",
    "reference_reconciliation",
]
