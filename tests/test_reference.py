"""Tests of the test oracle itself (tests/reference.py): tiny literal tables, every number counted by hand."""

from __future__ import annotations

import gzip
import math
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from cjm_analytics.config import Config, parse_config
from tests.reference import (
    parse_timestamp,
    reference_figures,
    reference_load,
    reference_reconciliation,
)

RUN_STARTED = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
HEADER = "event_id,user_id,anonymous_id,event,ts,channel,page"
COLUMNS = {
    "event_id": "event_id",
    "customer_id": "user_id",
    "anonymous_id": "anonymous_id",
    "event_name": "event",
    "timestamp": "ts",
    "channel": "channel",
}
STAGES: list[dict[str, Any]] = [
    {"name": "browse", "events": ["product_*", "landing"]},
    {"name": "cart", "events": ["add_to_cart"]},
    {"name": "buy", "events": ["order"]},
]


def write(path: Path, text: str) -> Path:
    """Write a literal table: leading indentation and blank edges removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [line.strip() for line in text.strip().splitlines()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def config(tmp_path: Path, sources: list[dict[str, Any]] | None = None, **overrides: Any) -> Config:
    """A config over files already under tmp_path (default: one web source over web/*)."""
    data: dict[str, Any] = {
        "warehouse": "wh.duckdb",
        "reports": "reports",
        "sources": sources or [{"name": "web", "kind": "clickstream", "path": "web/*", "columns": COLUMNS}],
        "stages": STAGES,
        "goal": "buy",
    }
    data.update(overrides)
    return parse_config(data, tmp_path, origin="test.yaml")


def figures(tmp_path: Path, rows: str, **overrides: Any) -> dict[str, pd.DataFrame]:
    """Load one web file with HEADER + rows and compute every figure."""
    write(tmp_path / "web" / "events.csv", HEADER + "\n" + rows)
    cfg = config(tmp_path, **overrides)
    events, rejects = reference_load(cfg, RUN_STARTED)
    assert rejects.empty, rejects.to_dict("records")
    return reference_figures(events, cfg)


def by_key(df: pd.DataFrame, key: str = "customer_key") -> dict[Any, dict[Any, Any]]:
    """Rows of a frame as dicts, keyed by one column."""
    return {r[key]: r for r in df.to_dict("records")}


def same(a: float, b: float) -> bool:
    """Equal floats, NaN equal to NaN."""
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b)


# ------------------------------------------------------------------------------------------ loading


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("e1,,,landing,2026-01-01T10:00:00,web,", "missing customer_id and anonymous_id"),
        ("e1,c1,,,2026-01-01T10:00:00,web,", "missing event_name"),
        ("e1,c1,,landing,,web,", "missing timestamp"),
        ("e1,c1,,landing,yesterday,web,", "unparseable timestamp"),
        ("e1,c1,,landing,2026-13-01T10:00:00,web,", "unparseable timestamp"),
        ("e1,c1,,landing,1989-12-31T23:59:59,web,", "timestamp before 1990-01-01"),
        ("e1,c1,,landing,2026-11-24T12:00:01Z,web,", "timestamp more than 24 hours after the run started"),
        ("e1,c1,,landing,2026-01-01T10:00:00,web", "MISSING COLUMNS: expected 7, got 6"),
        ("e1,c1,,landing,2026-01-01T10:00:00,web,p,extra", "TOO MANY COLUMNS: expected 7, got 8"),
    ],
)
def test_each_reject_reason(tmp_path: Path, row: str, reason: str) -> None:
    ok = "e0,c0,,landing,2026-01-01T09:00:00,web,home"
    path = write(tmp_path / "web" / "a.csv", f"{HEADER}\n{ok}\n{row}")
    cfg = config(tmp_path)
    events, rejects = reference_load(cfg, RUN_STARTED)
    assert list(events["event_id"]) == ["e0"]
    assert rejects[["source", "file", "row_number", "reason"]].to_dict("records") == [
        {"source": "web", "file": str(path), "row_number": 2, "reason": reason}
    ]
    recon = reference_reconciliation(cfg, RUN_STARTED)
    assert recon.to_dict("records") == [
        {"source": "web", "rows_read": 2, "rows_loaded": 1, "rows_rejected": 1, "rows_duplicate": 0}
    ]


def test_bounds_are_inclusive_and_configurable(tmp_path: Path) -> None:
    write(
        tmp_path / "web" / "a.csv",
        f"""{HEADER}
        e1,c1,,landing,1990-01-01T00:00:00,,
        e2,c1,,landing,2026-11-24T12:00:00Z,,
        e3,c1,,landing,1980-06-01T00:00:00,,""",
    )
    cfg = config(tmp_path)
    events, rejects = reference_load(cfg, RUN_STARTED)
    assert list(events["event_id"]) == ["e1", "e2"]
    assert list(rejects["reason"]) == ["timestamp before 1990-01-01"]
    src = {
        "name": "web",
        "kind": "clickstream",
        "path": "web/*",
        "columns": COLUMNS,
        "min_timestamp": "1970-01-01",
        "max_future_hours": 0,
    }
    events, rejects = reference_load(config(tmp_path, sources=[src]), RUN_STARTED)
    assert list(events["event_id"]) == ["e1", "e3"]
    assert list(rejects["reason"]) == ["timestamp more than 0 hours after the run started"]


def test_duplicates_are_counted_once(tmp_path: Path) -> None:
    # e1 appears in both files and twice in a.csv; only its first row is an event.
    write(
        tmp_path / "web" / "a.csv",
        f"""{HEADER}
        e1,c1,,landing,2026-01-01T10:00:00,web,home
        e2,c1,,add_to_cart,2026-01-01T10:01:00,web,
        e1,c1,,landing,2026-01-01T10:00:00,web,home""",
    )
    write(
        tmp_path / "web" / "b.csv",
        f"""{HEADER}
        e1,c9,,order,2026-01-02T10:00:00,web,
        e3,,,order,2026-01-02T10:00:00,web,
        e4,c1,,order,2026-01-02T10:00:00,web,""",
    )
    cfg = config(tmp_path)
    events, rejects = reference_load(cfg, RUN_STARTED)
    assert list(events["event_id"]) == ["e1", "e2", "e4"]
    assert events.loc[0, "customer_id"] == "c1"  # the first e1 wins
    assert len(rejects) == 1
    assert reference_reconciliation(cfg, RUN_STARTED).to_dict("records") == [
        {"source": "web", "rows_read": 6, "rows_loaded": 3, "rows_rejected": 1, "rows_duplicate": 2}
    ]
    per_file = reference_reconciliation(cfg, RUN_STARTED, by="file")
    assert per_file[["rows_read", "rows_loaded", "rows_rejected", "rows_duplicate"]].values.tolist() == [
        [3, 2, 0, 1],
        [3, 1, 1, 1],
    ]


def test_rows_without_id_column_deduplicate_by_content(tmp_path: Path) -> None:
    cols = {k: v for k, v in COLUMNS.items() if k != "event_id"}
    (tmp_path / "crm").mkdir()
    (tmp_path / "crm" / "deals.csv.gz").write_bytes(
        gzip.compress(
            b"user_id,anonymous_id,event,ts,channel,amount\n"
            b"c1,,order,2026-01-01T10:00:00,,10\n"
            b"c1,,order,2026-01-01T10:00:00,,10\n"
            b"c1,,order,2026-01-01T10:00:00,,11\n"
        )
    )
    cfg = config(tmp_path, sources=[{"name": "crm", "kind": "crm", "path": "crm/*.csv.gz", "columns": cols}])
    events, _ = reference_load(cfg, RUN_STARTED)
    assert len(events) == 2
    assert [p["amount"] for p in events["properties"]] == ["10", "11"]
    assert reference_reconciliation(cfg, RUN_STARTED)["rows_duplicate"].tolist() == [1]


def test_loaded_event_columns(tmp_path: Path) -> None:
    write(
        tmp_path / "web" / "a.csv",
        f"""{HEADER}
        e1,,a1,landing,2026-01-01 10:00:00.123456+02:00,,home""",
    )
    events, _ = reference_load(config(tmp_path), RUN_STARTED)
    e = events.iloc[0]
    assert (e["source"], e["source_kind"], e["customer_id"], e["anonymous_id"], e["channel"]) == (
        "web",
        "clickstream",
        None,
        "a1",
        None,
    )
    assert e["ts"] == pd.Timestamp("2026-01-01 08:00:00.123456")
    assert e["properties"] == {"page": "home"}
    assert str(events["ts"].dtype) == "datetime64[us]"


def test_constant_event_name_source(tmp_path: Path) -> None:
    write(
        tmp_path / "crm" / "deals.csv",
        """
        deal,customer,closed
        d1,c1,2026-01-01T10:00:00
        d2,,2026-01-01T10:00:00""",
    )
    src = {
        "name": "crm",
        "kind": "crm",
        "path": "crm/*",
        "event_name": "order",
        "columns": {"event_id": "deal", "customer_id": "customer", "timestamp": "closed"},
    }
    events, rejects = reference_load(config(tmp_path, sources=[src]), RUN_STARTED)
    assert events[["event_id", "event_name"]].values.tolist() == [["d1", "order"]]
    assert list(rejects["reason"]) == ["missing customer_id and anonymous_id"]


@pytest.mark.parametrize(
    ("text", "fmt", "tz", "utc"),
    [
        ("2026-01-01T10:00:00", "auto", "UTC", "2026-01-01 10:00:00"),
        ("2026-01-01 10:00:00", "auto", "Europe/Berlin", "2026-01-01 09:00:00"),  # CET = UTC+1
        ("2026-07-01 10:00:00", "auto", "Europe/Berlin", "2026-07-01 08:00:00"),  # CEST = UTC+2
        ("2026-01-01T10:00:00Z", "auto", "Europe/Berlin", "2026-01-01 10:00:00"),
        ("2026-01-01 10:00:00 UTC", "auto", "Europe/Berlin", "2026-01-01 10:00:00"),
        ("2026-01-01T10:00:00-05:00", "auto", "Europe/Berlin", "2026-01-01 15:00:00"),
        ("2026-01-01T10:00:00.5", "auto", "UTC", "2026-01-01 10:00:00.5"),
        ("1767261600", "auto", "Europe/Berlin", "2026-01-01 10:00:00"),  # epoch is UTC whatever the zone
        ("1767261600000", "auto", "UTC", "2026-01-01 10:00:00"),
        ("1767261600000001", "auto", "UTC", "2026-01-01 10:00:00.000001"),
        ("1767261600", "epoch_s", "UTC", "2026-01-01 10:00:00"),
        ("1767261600250", "epoch_ms", "UTC", "2026-01-01 10:00:00.25"),
        ("1767261600000250", "epoch_us", "UTC", "2026-01-01 10:00:00.00025"),
        ("01/02/2026 10:00", "%d/%m/%Y %H:%M", "America/New_York", "2026-02-01 15:00:00"),
    ],
)
def test_timestamp_parsing(text: str, fmt: str, tz: str, utc: str) -> None:
    assert pd.Timestamp(parse_timestamp(text, fmt, tz)) == pd.Timestamp(utc)


# ------------------------------------------------------------------------------------------ identity


def test_stitching_picks_the_last_customer_id(tmp_path: Path) -> None:
    # a1 is seen with c1 (10:05) and later with c2 (11:00): its anonymous history goes to c2.
    # a2 is seen with c3 and c4 at the same ts: the larger event_id (e7 > e6) wins.
    # a3 is never seen with a customer id: it is its own key.
    f = figures(
        tmp_path,
        """
        e1,,a1,landing,2026-01-01T10:00:00,,
        e2,c1,a1,landing,2026-01-01T10:05:00,,
        e3,c2,a1,landing,2026-01-01T11:00:00,,
        e4,c1,,landing,2026-01-01T12:00:00,,
        e5,,a2,landing,2026-01-01T09:00:00,,
        e6,c3,a2,landing,2026-01-01T10:00:00,,
        e7,c4,a2,landing,2026-01-01T10:00:00,,
        e8,,a3,landing,2026-01-01T10:00:00,,""",
    )
    assert by_key(f["identities"], "anonymous_id") == {
        "a1": {"anonymous_id": "a1", "customer_id": "c2", "stitched_at": pd.Timestamp("2026-01-01 11:00")},
        "a2": {"anonymous_id": "a2", "customer_id": "c4", "stitched_at": pd.Timestamp("2026-01-01 10:00")},
    }
    keys = dict(zip(f["events"]["event_id"], f["events"]["customer_key"], strict=True))
    # a known customer_id always wins (e2 stays c1 although a1 is stitched to c2)
    assert keys == {"e1": "c2", "e2": "c1", "e3": "c2", "e4": "c1", "e5": "c4", "e6": "c3", "e7": "c4", "e8": "a3"}
    assert f["run_summary"].loc[0, "customers"] == 5  # c1, c2, c3, c4, a3


# ------------------------------------------------------------------------------------------ sessions


@pytest.mark.parametrize(
    ("second_ts", "n_sessions"),
    [
        ("2026-01-01T10:30:00", 1),  # gap of exactly 30 minutes: same session
        ("2026-01-01T10:30:00.000001", 2),  # 30 minutes + 1 µs: new session
        ("2026-01-01T10:29:59.999999", 1),
    ],
)
def test_session_boundary(tmp_path: Path, second_ts: str, n_sessions: int) -> None:
    f = figures(
        tmp_path,
        f"""
        e1,c1,,landing,2026-01-01T10:00:00,,
        e2,c1,,page_view,{second_ts},,""",
    )
    assert len(f["sessions"]) == n_sessions
    assert f["journeys"].loc[0, "n_sessions"] == n_sessions
    assert f["run_summary"].loc[0, "sessions"] == n_sessions
    assert f["events"]["session_id"].nunique() == n_sessions


def test_session_boundary_follows_config(tmp_path: Path) -> None:
    f = figures(
        tmp_path,
        """
        e1,c1,,landing,2026-01-01T10:00:00,,
        e2,c1,,landing,2026-01-01T10:10:00,,""",
        sessions={"inactivity_minutes": 5},
    )
    assert len(f["sessions"]) == 2


def test_session_rows(tmp_path: Path) -> None:
    # c1: session 1 = e1,e2,e3 (e2 and e3 tie on ts: order by event_id), session 2 = e4.
    f = figures(
        tmp_path,
        """
        e3,c1,,add_to_cart,2026-01-01T10:10:00,,
        e1,c1,,page_view,2026-01-01T10:00:00,,
        e2,c1,,landing,2026-01-01T10:10:00,ads,
        e4,c1,,order,2026-01-01T12:00:00,email,
        e5,c2,,page_view,2026-01-01T12:00:00,,""",
    )
    s = f["sessions"].sort_values(["customer_key", "session_number"])
    assert s[
        ["customer_key", "session_number", "n_events", "first_event", "last_event", "channel"]
    ].values.tolist() == [
        ["c1", 1, 3, "page_view", "add_to_cart", "ads"],
        ["c1", 2, 1, "order", "order", "email"],
        ["c2", 1, 1, "page_view", "page_view", None],
    ]
    assert s["session_start"].tolist()[:2] == [pd.Timestamp("2026-01-01 10:00"), pd.Timestamp("2026-01-01 12:00")]
    assert s["session_end"].tolist()[0] == pd.Timestamp("2026-01-01 10:10")


# ------------------------------------------------------------------------------------------ stages


def test_first_matching_rule_wins_and_where_conditions(tmp_path: Path) -> None:
    stages = [
        {"name": "browse", "events": ["product_*"]},
        {"name": "cart", "events": [{"name": "product_*", "where": {"page": "cart"}}, "add_to_cart"]},
        {"name": "buy", "events": ["order", {"name": "Product_*"}]},
    ]
    f = figures(
        tmp_path,
        """
        e1,c1,,product_view,2026-01-01T10:00:00,,cart
        e2,c1,,add_to_cart,2026-01-01T10:01:00,,
        e3,c1,,Product_view,2026-01-01T10:02:00,,
        e4,c1,,PRODUCT_view,2026-01-01T10:03:00,,
        e5,c1,,order,2026-01-01T10:04:00,,""",
        stages=stages,
    )
    ev = by_key(f["events"], "event_id")
    # e1 matches browse first (its page=cart condition belongs to a later stage); globs are case-sensitive
    assert [(ev[i]["stage"], ev[i]["stage_order"]) for i in ["e1", "e2", "e3", "e5"]] == [
        ("browse", 1),
        ("cart", 2),
        ("buy", 3),
        ("buy", 3),
    ]
    assert ev["e4"]["stage"] is None and pd.isna(ev["e4"]["stage_order"])


def test_where_condition_on_property(tmp_path: Path) -> None:
    stages = [
        {"name": "browse", "events": ["page_view"]},
        {"name": "cart", "events": [{"name": "page_view", "where": {"page": "cart"}}]},
        {"name": "buy", "events": ["order"]},
    ]
    stages = [stages[1], stages[0], stages[2]]  # the conditional rule first
    f = figures(
        tmp_path,
        """
        e1,c1,,page_view,2026-01-01T10:00:00,,cart
        e2,c1,,page_view,2026-01-01T10:01:00,,home
        e3,c1,,page_view,2026-01-01T10:02:00,,""",
        stages=stages,
    )
    assert f["events"]["stage"].tolist() == ["cart", "browse", "browse"]


def test_collapsed_path_and_journey_fields(tmp_path: Path) -> None:
    # c1: browse, browse, (unmapped), cart, browse, buy, buy  ->  browse, cart, browse, buy
    f = figures(
        tmp_path,
        """
        e1,c1,,landing,2026-01-01T10:00:00,,
        e2,c1,,product_view,2026-01-01T10:05:00,ads,
        e3,c1,,page_view,2026-01-01T09:00:00,,
        e4,c1,,add_to_cart,2026-01-01T10:10:00,email,
        e5,c1,,product_view,2026-01-01T10:20:00,,
        e6,c1,,order,2026-01-01T13:00:00,,
        e7,c1,,order,2026-01-01T14:00:00,,""",
    )
    j = f["journeys"].iloc[0]
    assert j["stage_path"] == ["browse", "cart", "browse", "buy"]
    assert j["path_length"] == 4
    assert j["first_ts"] == pd.Timestamp("2026-01-01 10:00")  # first *mapped* event, not e3
    assert j["last_ts"] == pd.Timestamp("2026-01-01 14:00")
    assert (j["furthest_stage"], j["furthest_stage_order"], bool(j["converted"])) == ("buy", 3, True)
    assert j["converted_at"] == pd.Timestamp("2026-01-01 13:00")
    assert j["hours_to_convert"] == 3.0
    assert j["n_events"] == 7  # all events, mapped or not
    assert j["n_sessions"] == 4  # 09:00 | 10:00-10:20 | 13:00 | 14:00 (gaps of 60, 160 and 60 min split)
    assert j["first_channel"] == "ads"
    assert j["cohort_date"] == date(2026, 1, 1)


def test_equal_ts_orders_by_stage_order(tmp_path: Path) -> None:
    f = figures(
        tmp_path,
        """
        e1,c1,,order,2026-01-01T10:00:00,,
        e2,c1,,landing,2026-01-01T10:00:00,,""",
    )
    assert f["journeys"].iloc[0]["stage_path"] == ["browse", "buy"]


def test_customers_without_mapped_events_are_not_journeys(tmp_path: Path) -> None:
    f = figures(
        tmp_path,
        """
        e1,c1,,page_view,2026-01-01T10:00:00,,
        e2,c2,,landing,2026-01-01T10:00:00,,""",
    )
    assert f["journeys"]["customer_key"].tolist() == ["c2"]
    s = f["run_summary"].iloc[0]
    assert (s["customers"], s["journey_customers"]) == (2, 1)


# ------------------------------------------------------------------------------------------ funnel

FUNNEL_ROWS = """
    a1,A,,landing,2026-01-01T10:00:00,,
    b1,B,,landing,2026-01-01T10:00:00,,
    b2,B,,add_to_cart,2026-01-01T11:00:00,,
    c1,C,,landing,2026-01-01T10:00:00,,
    c2,C,,add_to_cart,2026-01-01T11:00:00,,
    c3,C,,order,2026-01-01T12:00:00,,
    d1,D,,order,2026-01-02T10:00:00,,
    e1,E,,add_to_cart,2026-01-02T10:00:00,,
    e2,E,,landing,2026-01-02T11:00:00,,
"""


def test_ladder_buy_without_browse(tmp_path: Path) -> None:
    f = figures(tmp_path, "d1,D,,order,2026-01-02T10:00:00,,")
    assert f["stage_funnel"][["stage", "reached", "exited"]].values.tolist() == [
        ["browse", 1, 0],
        ["cart", 1, 0],
        ["buy", 1, 1],
    ]
    j = f["journeys"].iloc[0]
    assert j["stage_path"] == ["buy"] and bool(j["converted"]) and j["hours_to_convert"] == 0.0


def test_stage_funnel_hand_count(tmp_path: Path) -> None:
    # furthest: A browse, B cart, C buy, D buy (ladder), E cart (cart then browse: furthest is cart)
    f = figures(tmp_path, FUNNEL_ROWS)
    rows = f["stage_funnel"].to_dict("records")
    expected = [
        # stage, order, reached, exited, dropoff, to_next, from_first
        ("browse", 1, 5, 1, 1 / 5, 4 / 5, 1.0),
        ("cart", 2, 4, 2, 2 / 4, 2 / 4, 4 / 5),
        ("buy", 3, 2, 2, math.nan, math.nan, 2 / 5),
    ]
    assert len(rows) == 3
    for r, (stage, order, reached, exited, drop, nxt, first) in zip(rows, expected, strict=True):
        assert (r["stage"], r["stage_order"], r["reached"], r["exited"]) == (stage, order, reached, exited)
        assert same(r["dropoff_rate"], drop)
        assert same(r["conversion_to_next"], nxt)
        assert same(r["conversion_from_first"], first)
    s = f["run_summary"].iloc[0]
    assert (s["journey_customers"], s["converted"]) == (5, 2)
    assert s["conversion_rate"] == 2 / 5
    assert (s["worst_dropoff_stage"], s["worst_dropoff_rate"]) == ("cart", 0.5)


def test_worst_dropoff_tie_goes_to_the_earlier_stage(tmp_path: Path) -> None:
    # A browse, B browse, C cart, D buy -> dropoff browse 2/4 = 0.5, cart 1/2 = 0.5: a tie.
    f = figures(
        tmp_path,
        """
        a,A,,landing,2026-01-01T10:00:00,,
        b,B,,landing,2026-01-01T10:00:00,,
        c,C,,add_to_cart,2026-01-01T10:00:00,,
        d,D,,order,2026-01-01T10:00:00,,""",
    )
    assert f["stage_funnel"]["dropoff_rate"].tolist()[:2] == [0.5, 0.5]
    s = f["run_summary"].iloc[0]
    assert (s["worst_dropoff_stage"], s["worst_dropoff_rate"]) == ("browse", 0.5)


def test_worst_dropoff_is_a_stage_before_the_goal(tmp_path: Path) -> None:
    # The same five journeys with cart as the goal: cart's 2 of 4 stop after the goal (completed), so the worst
    # drop-off is browse's 1 of 5, never cart's 0.5; and B and E, who stopped at cart, end in (completed).
    f = figures(tmp_path, FUNNEL_ROWS, goal="cart")
    s = f["run_summary"].iloc[0]
    assert (s["worst_dropoff_stage"], s["worst_dropoff_rate"]) == ("browse", 1 / 5)
    assert s["converted"] == 4
    sinks = f["sankey_links"].groupby("to_node")["customers"].sum()
    assert sinks.get("(drop-off)") == 1 and sinks.get("(completed)") == 4  # only A is lost


def test_stage_conversion_daily(tmp_path: Path) -> None:
    # 2026-01-01: A (browse), B (cart), C (buy); 2026-01-02: D (buy), E (cart)
    f = figures(tmp_path, FUNNEL_ROWS)
    d = f["stage_conversion_daily"]
    assert d[["cohort_date", "stage", "stage_order", "reached", "exited"]].values.tolist() == [
        [date(2026, 1, 1), "browse", 1, 3, 1],
        [date(2026, 1, 1), "cart", 2, 2, 1],
        [date(2026, 1, 1), "buy", 3, 1, 1],
        [date(2026, 1, 2), "browse", 1, 2, 0],
        [date(2026, 1, 2), "cart", 2, 2, 1],
        [date(2026, 1, 2), "buy", 3, 1, 1],
    ]
    rates = d["dropoff_rate"].tolist()
    assert rates[:2] == [1 / 3, 1 / 2] and math.isnan(rates[2])
    assert rates[3:5] == [0.0, 0.5] and math.isnan(rates[5])


# ------------------------------------------------------------------------------------------ transitions


def test_transitions_hand_count_and_probabilities(tmp_path: Path) -> None:
    # paths: A [browse], B [browse, cart], C [browse, cart, buy], D [buy], E [cart, browse]
    f = figures(tmp_path, FUNNEL_ROWS)
    t = f["stage_transitions"]
    got = {
        (r["from_stage"], r["to_stage"]): (
            r["from_order"],
            r["to_order"],
            r["transitions"],
            r["customers"],
            r["probability"],
        )
        for r in t.to_dict("records")
    }
    assert got == {
        ("(start)", "browse"): (0, 1, 3, 3, 3 / 5),
        ("(start)", "cart"): (0, 2, 1, 1, 1 / 5),
        ("(start)", "buy"): (0, 3, 1, 1, 1 / 5),
        ("browse", "cart"): (1, 2, 2, 2, 2 / 4),
        ("browse", "(end)"): (1, 4, 2, 2, 2 / 4),  # A, and E after its cart -> browse
        ("cart", "buy"): (2, 3, 1, 1, 1 / 3),
        ("cart", "(end)"): (2, 4, 1, 1, 1 / 3),
        ("cart", "browse"): (2, 1, 1, 1, 1 / 3),
        ("buy", "(end)"): (3, 4, 2, 2, 1.0),
    }
    for _, out in t.groupby("from_stage"):
        assert math.isclose(out["probability"].sum(), 1.0)


def test_transitions_count_loops_per_transition(tmp_path: Path) -> None:
    # one customer: browse, cart, browse, cart -> browse->cart twice, cart->browse once
    f = figures(
        tmp_path,
        """
        e1,c1,,landing,2026-01-01T10:00:00,,
        e2,c1,,add_to_cart,2026-01-01T10:01:00,,
        e3,c1,,landing,2026-01-01T10:02:00,,
        e4,c1,,add_to_cart,2026-01-01T10:03:00,,""",
    )
    t = {
        (r["from_stage"], r["to_stage"]): (r["transitions"], r["customers"], r["probability"])
        for r in f["stage_transitions"].to_dict("records")
    }
    assert t[("browse", "cart")] == (2, 1, 1.0)
    assert t[("cart", "browse")] == (1, 1, 0.5)
    assert t[("cart", "(end)")] == (1, 1, 0.5)


def test_median_hours(tmp_path: Path) -> None:
    # X: browse 0h, browse 1h, cart 3h  -> last browse (1h) to first cart (3h) = 2h; cart 3h, cart 5h, buy 6h -> 1h
    # Y: browse 0h, cart 4h             -> 4h
    # Z: browse 0h, cart 10h, buy 12h   -> 10h; cart->buy 2h
    f = figures(
        tmp_path,
        """
        x1,X,,landing,2026-01-01T00:00:00,,
        x2,X,,landing,2026-01-01T01:00:00,,
        x3,X,,add_to_cart,2026-01-01T03:00:00,,
        x4,X,,add_to_cart,2026-01-01T05:00:00,,
        x5,X,,order,2026-01-01T06:00:00,,
        y1,Y,,landing,2026-01-01T00:00:00,,
        y2,Y,,add_to_cart,2026-01-01T04:00:00,,
        z1,Z,,landing,2026-01-01T00:00:00,,
        z2,Z,,add_to_cart,2026-01-01T10:00:00,,
        z3,Z,,order,2026-01-01T12:00:00,,""",
    )
    m = {(r["from_stage"], r["to_stage"]): r["median_hours"] for r in f["stage_transitions"].to_dict("records")}
    assert m[("browse", "cart")] == 4.0  # median of 2, 4, 10
    assert m[("cart", "buy")] == 1.5  # median of 1, 2 (mean of the middle two)
    assert math.isnan(m[("(start)", "browse")])
    assert math.isnan(m[("buy", "(end)")])


# ------------------------------------------------------------------------------------------ sankey


def test_sankey_links_with_folding(tmp_path: Path) -> None:
    # paths: A [browse], B [browse, cart], C [browse, cart, buy], D [buy], E [cart, browse]
    # 5 journey customers, min_share 0.25 -> a node with 1 customer (0.2) is folded, 2 (0.4) is kept.
    # step 1: browse 3, cart 1 (fold), buy 1 (fold); step 2: cart 2, browse 1 (fold); step 3: buy 1 (fold)
    f = figures(tmp_path, FUNNEL_ROWS, report={"sankey_steps": 2, "sankey_min_share": 0.25})
    links = {
        (r["from_step"], r["from_node"], r["to_step"], r["to_node"]): r["customers"]
        for r in f["sankey_links"].to_dict("records")
    }
    assert links == {
        (1, "browse", 2, "(drop-off)"): 1,  # A
        (1, "browse", 2, "cart"): 2,  # B, C
        (1, "other", 2, "(completed)"): 1,  # D (buy folded): bought, so completed, not lost
        (1, "other", 2, "other"): 1,  # E (cart -> browse, both folded)
        (2, "cart", 3, "(drop-off)"): 1,  # B
        (2, "cart", 3, "(continues)"): 1,  # C, longer than 2 steps
        (2, "other", 3, "(drop-off)"): 1,  # E
    }
    # step 2's outflow equals its inflow without the paths that dropped off at step 2
    sl = f["sankey_links"]
    into_2 = sl[(sl["to_step"] == 2) & ~sl["to_node"].isin(["(drop-off)", "(completed)"])]["customers"].sum()
    assert into_2 == sl[sl["from_step"] == 2]["customers"].sum() == 3


def test_sankey_without_folding(tmp_path: Path) -> None:
    f = figures(tmp_path, FUNNEL_ROWS, report={"sankey_steps": 3, "sankey_min_share": 0})
    links = {
        (r["from_step"], r["from_node"], r["to_step"], r["to_node"]): r["customers"]
        for r in f["sankey_links"].to_dict("records")
    }
    assert links == {
        (1, "browse", 2, "(drop-off)"): 1,
        (1, "browse", 2, "cart"): 2,
        (1, "buy", 2, "(completed)"): 1,  # D bought
        (1, "cart", 2, "browse"): 1,
        (2, "cart", 3, "(drop-off)"): 1,
        (2, "cart", 3, "buy"): 1,
        (2, "browse", 3, "(drop-off)"): 1,
        (3, "buy", 4, "(completed)"): 1,  # C's path ends exactly at the last step, at the goal
    }


@pytest.mark.parametrize(("min_share", "folded"), [(0.2, False), (0.21, True)])
def test_sankey_folding_threshold_is_strict(tmp_path: Path, min_share: float, folded: bool) -> None:
    # 5 journeys; D alone is at buy in step 1: share 1/5 = 0.2 is folded only below min_share.
    f = figures(tmp_path, FUNNEL_ROWS, report={"sankey_steps": 1, "sankey_min_share": min_share})
    nodes = set(f["sankey_links"]["from_node"])
    assert ("buy" not in nodes) == folded
    assert ("other" in nodes) == folded


# ------------------------------------------------------------------------------------------ edge cases


def test_no_events_gives_empty_figures(tmp_path: Path) -> None:
    f = figures(tmp_path, "")
    assert f["journeys"].empty and f["sessions"].empty and f["sankey_links"].empty
    assert f["stage_funnel"]["reached"].tolist() == [0, 0, 0]
    s = f["run_summary"].iloc[0]
    assert (s["customers"], s["journey_customers"]) == (0, 0)
    assert math.isnan(s["conversion_rate"]) and s["worst_dropoff_stage"] is None


def test_figures_accept_json_text_properties(tmp_path: Path) -> None:
    stages = [
        {"name": "browse", "events": [{"name": "page_view", "where": {"page": "home"}}]},
        {"name": "buy", "events": ["order"]},
    ]
    write(tmp_path / "web" / "a.csv", f"{HEADER}\ne1,c1,,page_view,2026-01-01T10:00:00,,home")
    cfg = config(tmp_path, stages=stages)
    events, _ = reference_load(cfg, RUN_STARTED)
    events["properties"] = ['{"page": "home"}']
    events["ts"] = events["ts"].dt.tz_localize("UTC")
    f = reference_figures(events, cfg)
    assert f["events"]["stage"].tolist() == ["browse"]
