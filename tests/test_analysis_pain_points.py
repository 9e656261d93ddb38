"""Pain points (last touchpoints and their lift, exit rates, loops, the leak table) on a fixture counted by hand,
and the leak table on the sample against the stage funnel mart.

Stages: browse (product_*, landing) < cart (add_to_cart) < buy (order). Touchpoint = the event name. Support
events: support_*. Survey: csat (score 1-5; low below 0.65 normalized, i.e. scores 1-3). All times 2026-11-01
UTC; the data end at 14:00 (k3's order).

    customer  events                                                   furthest  stage path
    d1        landing 10:00, product_view 10:05                        browse    browse
    d2        landing 10:00, help_page 10:02, support_chat 10:03       browse    browse
    d3        product_view 09:00, add_to_cart 09:01, product_view      cart      b,c,b,c,b,c (5 moves: a looper)
              09:02, add_to_cart 09:03, product_view 09:04,
              add_to_cart 09:05
    d4        product_view 11:00, add_to_cart 11:10, csat 11:20 (1)    cart      b,c
    d5        landing 12:00, add_to_cart 12:05, product_view 12:06,    cart      b,c,b,c (3 moves: not more than 3)
              add_to_cart 12:07
    k1        landing 10:00, add_to_cart 10:10, order 10:20            buy       b,c,buy
    k2        product_view 13:00, add_to_cart 13:01, checkout_page     buy       b,c,buy
              13:02, order 13:03, csat 13:30 (5)
    k3        order 14:00                                              buy       buy

Droppers: browse d1 (last product_view), d2 (support_chat); cart d3 (add_to_cart), d4 (csat), d5 (add_to_cart).
Went on from browse (last event before the first event above browse): d3 product_view, d4 product_view,
d5 landing, k1 landing, k2 product_view; k3 starts above browse, so has nothing to compare (left out).
Went on from cart: k1 add_to_cart, k2 checkout_page; k3 left out.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from cjm_analytics import analyze_cli
from cjm_analytics.analysis.pain_points import LEAK_COLUMNS, exit_rates, last_touchpoints, leaks, stage_loops
from cjm_analytics.config import Config
from cjm_analytics.warehouse import connect
from tests.fixtures import built_warehouse

EVENTS = """
    event_id,anonymous_id,user_id,event,ts,channel,score
    e01,,d1,landing,2026-11-01T10:00:00Z,,
    e02,,d1,product_view,2026-11-01T10:05:00Z,,
    e03,,d2,landing,2026-11-01T10:00:00Z,,
    e04,,d2,help_page,2026-11-01T10:02:00Z,,
    e05,,d2,support_chat,2026-11-01T10:03:00Z,,
    e06,,d3,product_view,2026-11-01T09:00:00Z,,
    e07,,d3,add_to_cart,2026-11-01T09:01:00Z,,
    e08,,d3,product_view,2026-11-01T09:02:00Z,,
    e09,,d3,add_to_cart,2026-11-01T09:03:00Z,,
    e10,,d3,product_view,2026-11-01T09:04:00Z,,
    e11,,d3,add_to_cart,2026-11-01T09:05:00Z,,
    e12,,d4,product_view,2026-11-01T11:00:00Z,,
    e13,,d4,add_to_cart,2026-11-01T11:10:00Z,,
    e14,,d4,csat,2026-11-01T11:20:00Z,,1
    e15,,d5,landing,2026-11-01T12:00:00Z,,
    e16,,d5,add_to_cart,2026-11-01T12:05:00Z,,
    e17,,d5,product_view,2026-11-01T12:06:00Z,,
    e18,,d5,add_to_cart,2026-11-01T12:07:00Z,,
    e19,,k1,landing,2026-11-01T10:00:00Z,,
    e20,,k1,add_to_cart,2026-11-01T10:10:00Z,,
    e21,,k1,order,2026-11-01T10:20:00Z,,
    e22,,k2,product_view,2026-11-01T13:00:00Z,,
    e23,,k2,add_to_cart,2026-11-01T13:01:00Z,,
    e24,,k2,checkout_page,2026-11-01T13:02:00Z,,
    e25,,k2,order,2026-11-01T13:03:00Z,,
    e26,,k2,csat,2026-11-01T13:30:00Z,,5
    e27,,k3,order,2026-11-01T14:00:00Z,,
"""
INF = math.inf


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return built_warehouse(tmp_path_factory.mktemp("pain"), EVENTS, analysis={
        "surveys": [{"event": "csat", "kind": "csat"}], "support_events": ["support_*"], "min_segment_size": 1})


def _rows(df: pd.DataFrame) -> list[tuple[Any, ...]]:
    return [tuple(None if pd.isna(v) else v for v in r) for r in df.itertuples(index=False)]


# (stage, touchpoint, droppers, dropper_share, continuers, continuer_share, lift, rank_by_count, rank_by_lift)
LAST_TOUCHPOINTS = [
    pytest.param(1, [
        ("browse", "product_view", 1, 1 / 2, 3, 3 / 5, (1 / 2) / (3 / 5), 1, 2),  # ties by count go by name
        ("browse", "support_chat", 1, 1 / 2, 0, 0.0, INF, 2, 1),  # no continuer ended there: infinite lift
        ("cart", "add_to_cart", 2, 2 / 3, 1, 1 / 2, (2 / 3) / (1 / 2), 1, 2),
        ("cart", "csat", 1, 1 / 3, 0, 0.0, INF, 2, 1),
    ], id="min-1"),
    pytest.param(2, [  # lift is ranked only for touchpoints with at least 2 droppers
        ("browse", "product_view", 1, 1 / 2, 3, 3 / 5, (1 / 2) / (3 / 5), 1, None),
        ("browse", "support_chat", 1, 1 / 2, 0, 0.0, INF, 2, None),
        ("cart", "add_to_cart", 2, 2 / 3, 1, 1 / 2, (2 / 3) / (1 / 2), 1, 1),
        ("cart", "csat", 1, 1 / 3, 0, 0.0, INF, 2, None),
    ], id="min-2"),
]


@pytest.mark.parametrize(("min_customers", "expected"), LAST_TOUCHPOINTS)
def test_last_touchpoints(con: duckdb.DuckDBPyConnection, cfg: Config, min_customers: int,
                          expected: list[tuple[Any, ...]]) -> None:
    df = last_touchpoints(con, cfg.goal_order, min_customers=min_customers)
    assert list(df.columns) == ["stage", "stage_order", "touchpoint", "droppers", "dropper_share", "continuers",
                                "continuer_share", "lift", "rank_by_count", "rank_by_lift"]
    assert _rows(df.drop(columns="stage_order")) == [pytest.approx(row) for row in expected]


def test_core_last_touchpoints(con: duckdb.DuckDBPyConnection) -> None:
    # journeys.last_touchpoint: the touchpoint of each journey customer's last event, mapped or not
    got = dict(con.execute("SELECT customer_key, last_touchpoint FROM journeys").fetchall())
    assert got == {"d1": "product_view", "d2": "support_chat", "d3": "add_to_cart", "d4": "csat",
                   "d5": "add_to_cart", "k1": "order", "k2": "csat", "k3": "order"}


def test_core_stage_entries(con: duckdb.DuckDBPyConnection) -> None:
    # (customer, stage_order, number of the first event at the stage, touchpoint of the event before it)
    rows = con.execute("SELECT customer_key, stage_order, event_number, prev_touchpoint FROM stage_entries "
                       "ORDER BY customer_key, stage_order").fetchall()
    assert rows == [
        ("d1", 1, 1, None),  # landing is the very first event: nothing before it
        ("d2", 1, 1, None),  # help_page and support_chat are not stages
        ("d3", 1, 1, None), ("d3", 2, 2, "product_view"),  # later product_view, add_to_cart: not first
        ("d4", 1, 1, None), ("d4", 2, 2, "product_view"),
        ("d5", 1, 1, None), ("d5", 2, 2, "landing"),
        ("k1", 1, 1, None), ("k1", 2, 2, "landing"), ("k1", 3, 3, "add_to_cart"),
        ("k2", 1, 1, None), ("k2", 2, 2, "product_view"), ("k2", 3, 4, "checkout_page"),  # checkout_page: no stage
        ("k3", 3, 1, None),
    ]


def test_exit_rates(con: duckdb.DuckDBPyConnection) -> None:
    # (touchpoint, customers who had it, customers whose last event it is, exit rate)
    assert _rows(exit_rates(con)) == [pytest.approx(row) for row in [
        ("add_to_cart", 5, 2, 2 / 5),  # d3, d4, d5, k1, k2; last for d3, d5
        ("csat", 2, 2, 1.0),  # d4, k2
        ("order", 3, 2, 2 / 3),  # k1, k2, k3; last for k1, k3
        ("product_view", 5, 1, 1 / 5),  # d1, d3, d4, d5, k2; last for d1
        ("support_chat", 1, 1, 1.0),  # d2
        ("checkout_page", 1, 0, 0.0),
        ("help_page", 1, 0, 0.0),
        ("landing", 4, 0, 0.0),  # d1, d2, d5, k1
    ]]


@pytest.mark.parametrize(("threshold", "expected"), [
    (3, [("browse", "cart", 1, 0, 0.0)]),  # d3 (5 moves); d5's 3 moves are not more than 3
    (2, [("browse", "cart", 2, 0, 0.0)]),  # d3, d5
    (5, []),
])
def test_stage_loops(con: duckdb.DuckDBPyConnection, threshold: int, expected: list[tuple[Any, ...]]) -> None:
    df = stage_loops(con, threshold)
    assert list(df.columns) == ["stage_a", "stage_b", "loopers", "converted", "conversion_rate"]
    assert _rows(df) == expected


# Hours from each dropper's last event to the data's end (14:00): d1 3h55, d2 3h57, d3 4h55, d4 2h40, d5 1h53.
LEAKS = [
    pytest.param(dict(min_customers=1), [
        (1, "cart", 3, 3 / 6, "add_to_cart", "csat", 0.0, 1 / 3, 1, (2 + 40 / 60)),  # d4 scored 1: low
        (2, "browse", 2, 2 / 8, "product_view", "support_chat", 1 / 2, 0.0, 0, (3 + 56 / 60)),  # d2 asked support
    ], id="lift-from-1-dropper"),
    pytest.param(dict(min_customers=2, loop_threshold=2), [
        (1, "cart", 3, 3 / 6, "add_to_cart", "add_to_cart", 0.0, 1 / 3, 2, (2 + 40 / 60)),
        (2, "browse", 2, 2 / 8, "product_view", None, 1 / 2, 0.0, 0, (3 + 56 / 60)),
    ], id="lift-from-2-droppers"),
]


@pytest.mark.parametrize(("kwargs", "expected"), LEAKS)
def test_leaks(con: duckdb.DuckDBPyConnection, cfg: Config, kwargs: dict[str, Any],
               expected: list[tuple[Any, ...]]) -> None:
    df = leaks(con, cfg, **kwargs)
    assert list(df.columns) == LEAK_COLUMNS
    assert _rows(df) == [pytest.approx(row) for row in expected]


def test_leaks_take_the_minimum_from_the_config(con: duckdb.DuckDBPyConnection, cfg: Config) -> None:
    assert leaks(con, cfg).top_lift_touchpoint.tolist() == ["csat", "support_chat"]  # min_segment_size 1


def test_without_surveys_or_support_events_the_shares_are_not_configured(con: duckdb.DuckDBPyConnection,
                                                                          cfg: Config) -> None:
    # Not configured is unknown, not 0 (issue 13): the shares are null, and each is null only without its input.
    bare = cfg.model_copy(update={"analysis": cfg.analysis.model_copy(update={"surveys": [], "support_events": []})})
    df = leaks(con, bare)
    assert df.support_share.isna().all() and df.low_score_share.isna().all()
    no_support = cfg.model_copy(update={"analysis": cfg.analysis.model_copy(update={"support_events": []})})
    df = leaks(con, no_support)
    assert df.support_share.isna().all() and df.low_score_share.tolist() == pytest.approx([1 / 3, 0.0])
    # Configured but nobody matched is a real 0.
    unmatched = cfg.model_copy(update={"analysis": cfg.analysis.model_copy(update={"support_events": ["nothing_*"]})})
    assert leaks(con, unmatched).support_share.tolist() == [0.0, 0.0]


# ---- the sample ---------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_leaks_on_the_sample_lose_what_the_stage_funnel_loses(sample: Config) -> None:
    c = connect(sample.warehouse, read_only=True)
    try:
        df = leaks(c, sample)
        funnel = c.execute("SELECT * FROM stage_funnel ORDER BY stage_order").fetchdf()
        journeys = c.execute("SELECT furthest_stage, furthest_stage_order FROM journeys").fetchdf()
        touch = last_touchpoints(c, sample.goal_order, min_customers=1)
    finally:
        c.close()
    # Only the stages before the goal leak: the sample's purchase, retention and advocacy are completions.
    before_last = funnel[funnel.stage_order < sample.goal_order]
    assert before_last.stage.tolist() == ["awareness", "consideration", "intent"]
    assert dict(zip(df.stage, df.customers_lost, strict=True)) == dict(
        zip(before_last.stage, before_last.exited, strict=True))
    # And the same number once more, from the journeys themselves.
    lost = journeys[journeys.furthest_stage_order < sample.goal_order].furthest_stage.value_counts()
    assert dict(zip(df.stage, df.customers_lost, strict=True)) == lost.to_dict()
    assert df.customers_lost.is_monotonic_decreasing and df["rank"].tolist() == list(range(1, len(df) + 1))
    assert df.share_of_reached.tolist() == pytest.approx(
        before_last.set_index("stage").dropoff_rate[df.stage].tolist())
    # Every dropper has exactly one last touchpoint.
    assert touch.groupby("stage").droppers.sum().to_dict() == lost.to_dict()
    assert touch.groupby("stage").dropper_share.sum().tolist() == pytest.approx([1.0] * len(lost))


@pytest.mark.slow
def test_cli(sample: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(analyze_cli, "ANALYSIS_MODULES", ("pain_points",))
    parser = argparse.ArgumentParser()
    analyze_cli.register_all(parser.add_subparsers(dest="command", required=True))
    out = tmp_path / "leaks.parquet"
    args = parser.parse_args(["analyze", "pain-points", "--config", str(sample.config_path), "--out", str(out),
                              "--loop-threshold", "2", "--min-customers", "10"])
    assert args.func(args) == 0
    table = pd.read_parquet(out)
    assert list(table.columns) == LEAK_COLUMNS
    assert table.loc[0, "stage"] == "consideration"
    assert (sample.reports / "analysis-pain-points--loop-threshold-2--min-customers-10.html").exists()
