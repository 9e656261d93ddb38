"""Segments and the stage funnel per segment on a fixture counted by hand, and on the sample against the mart.

Stages: browse (product_*, landing) < cart (add_to_cart) < buy (order), goal buy. Extra columns campaign and
plan are event properties. 2026-10-30 is a Friday, 11-01 a Sunday, 11-02 a Monday.

    customer  events (UTC: time, channel, property)
    s1        landing 10-30 12:00 social campaign=c_a; add_to_cart 11-02 09:00 email plan=basic;
              order 11-02 10:00 direct plan=pro; landing 11-03 10:00 paid (after buying: not last touch)
    s2        product_view 11-01 08:00 (no channel); add_to_cart 11-01 08:05 email campaign=c_b
    s3        landing 11-02 00:00 paid; order 11-02 01:00 (no channel); login 11-03 10:00 email
    s4        login 11-02 10:00 referral plan=pro (unmapped: no journey)
    s5        landing 11-08 23:59:59 social

    customer  first     last touch  campaign  plan   cohort_week  cohort_month  furthest stage
    s1        social    direct      c_a       basic  2026-10-26   2026-10       buy
    s2        email     email       c_b       -      2026-10-26   2026-11       cart
    s3        paid      paid        -         -      2026-11-02   2026-11       buy
    s4        referral  referral    -         pro    -            -             (no journey)
    s5        social    social      -         -      2026-11-02   2026-11       browse
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb
import pandas as pd
import pytest

from cjm_analytics.analysis.segments import customer_segments, stage_funnel_by_segment
from cjm_analytics.config import Config
from cjm_analytics.warehouse import connect
from tests.fixtures import built_warehouse

EVENTS = """
    event_id,anonymous_id,user_id,event,ts,channel,campaign,plan
    s1a,,s1,landing,2026-10-30T12:00:00Z,social,c_a,
    s1b,,s1,add_to_cart,2026-11-02T09:00:00Z,email,,basic
    s1c,,s1,order,2026-11-02T10:00:00Z,direct,,pro
    s1d,,s1,landing,2026-11-03T10:00:00Z,paid,,
    s2a,,s2,product_view,2026-11-01T08:00:00Z,,,
    s2b,,s2,add_to_cart,2026-11-01T08:05:00Z,email,c_b,
    s3a,,s3,landing,2026-11-02T00:00:00Z,paid,,
    s3b,,s3,order,2026-11-02T01:00:00Z,,,
    s3c,,s3,login,2026-11-03T10:00:00Z,email,,
    s4a,,s4,login,2026-11-02T10:00:00Z,referral,,pro
    s5a,,s5,landing,2026-11-08T23:59:59Z,social,,
"""


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return built_warehouse(tmp_path_factory.mktemp("segments"), EVENTS, analysis={"min_segment_size": 2})


SEGMENTS = {
    "first_touch_channel": ["social", "email", "paid", "referral", "social"],
    "last_touch_channel": ["direct", "email", "paid", "referral", "social"],
    "campaign": ["c_a", "c_b", None, None, None],
    "plan": ["basic", None, None, "pro", None],
    "cohort_week": ["2026-10-26", "2026-10-26", "2026-11-02", None, "2026-11-02"],
    "cohort_month": ["2026-10", "2026-11", "2026-11", None, "2026-11"],
}


@pytest.mark.parametrize("by", SEGMENTS)
def test_customer_segments(con: duckdb.DuckDBPyConnection, cfg: Config, by: str) -> None:
    s = customer_segments(con, by, cfg)
    assert list(s.columns) == ["customer_key", "segment"]
    assert s.customer_key.tolist() == ["s1", "s2", "s3", "s4", "s5"]
    assert [None if pd.isna(v) else v for v in s.segment] == SEGMENTS[by]


def test_a_property_nobody_has_is_refused(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(ValueError, match="no event has a value for property 'persona'"):
        customer_segments(con, "persona")


N = float("nan")
# (segment, segment_size, too_small, stage, reached, exited, dropoff_rate, conversion_to_next, conversion_from_first)
BY_FIRST_TOUCH = [
    ("email", 1, True, "browse", 1, 0, 0.0, 1.0, 1.0),  # s2
    ("email", 1, True, "cart", 1, 1, 1.0, 0.0, 1.0),
    ("email", 1, True, "buy", 0, 0, N, N, 0.0),
    ("paid", 1, True, "browse", 1, 0, 0.0, 1.0, 1.0),  # s3 bought without a cart: the ladder counts it
    ("paid", 1, True, "cart", 1, 0, 0.0, 1.0, 1.0),
    ("paid", 1, True, "buy", 1, 1, N, N, 1.0),
    ("social", 2, False, "browse", 2, 1, 0.5, 0.5, 1.0),  # s1 buy, s5 browse; s4 (referral) has no journey
    ("social", 2, False, "cart", 1, 0, 0.0, 1.0, 0.5),
    ("social", 2, False, "buy", 1, 1, N, N, 0.5),
]
BY_CAMPAIGN = [  # (none): s3 buy, s5 browse; c_a: s1 buy; c_b: s2 cart
    ("(none)", 2, False, "browse", 2, 1, 0.5, 0.5, 1.0),
    ("(none)", 2, False, "cart", 1, 0, 0.0, 1.0, 0.5),
    ("(none)", 2, False, "buy", 1, 1, N, N, 0.5),
    ("c_a", 1, True, "browse", 1, 0, 0.0, 1.0, 1.0),
    ("c_a", 1, True, "cart", 1, 0, 0.0, 1.0, 1.0),
    ("c_a", 1, True, "buy", 1, 1, N, N, 1.0),
    ("c_b", 1, True, "browse", 1, 0, 0.0, 1.0, 1.0),
    ("c_b", 1, True, "cart", 1, 1, 1.0, 0.0, 1.0),
    ("c_b", 1, True, "buy", 0, 0, N, N, 0.0),
]
BY_WEEK = [  # week of 10-26: s1 buy, s2 cart; week of 11-02: s3 buy, s5 browse (Sunday 23:59:59)
    ("2026-10-26", 2, False, "browse", 2, 0, 0.0, 1.0, 1.0),
    ("2026-10-26", 2, False, "cart", 2, 1, 0.5, 0.5, 1.0),
    ("2026-10-26", 2, False, "buy", 1, 1, N, N, 0.5),
    ("2026-11-02", 2, False, "browse", 2, 1, 0.5, 0.5, 1.0),
    ("2026-11-02", 2, False, "cart", 1, 0, 0.0, 1.0, 0.5),
    ("2026-11-02", 2, False, "buy", 1, 1, N, N, 0.5),
]


@pytest.mark.parametrize(("by", "expected"), [
    pytest.param("first_touch_channel", BY_FIRST_TOUCH, id="first-touch"),
    pytest.param("campaign", BY_CAMPAIGN, id="campaign-with-none"),
    pytest.param("cohort_week", BY_WEEK, id="cohort-week"),
])
def test_stage_funnel_by_segment_counted_by_hand(con: duckdb.DuckDBPyConnection, cfg: Config, by: str,
                                                 expected: list[tuple[Any, ...]]) -> None:
    f = stage_funnel_by_segment(con, by, cfg)
    assert list(f.columns) == ["segment", "segment_size", "too_small", "stage", "stage_order", "reached", "exited",
                               "dropoff_rate", "conversion_to_next", "conversion_from_first"]
    got = f.drop(columns="stage_order")
    pd.testing.assert_frame_equal(got, pd.DataFrame(expected, columns=got.columns), check_dtype=False)


# ---- the sample ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sample(sample: Config) -> Iterator[tuple[Config, duckdb.DuckDBPyConnection]]:
    c = connect(sample.warehouse, read_only=True)
    yield sample, c
    c.close()


@pytest.mark.parametrize("by", ["first_touch_channel", "last_touch_channel", "campaign", "device", "deal_stage",
                                "cohort_week", "cohort_month"])
def test_segments_of_the_sample_add_up_to_the_stage_funnel(sample: tuple[Config, duckdb.DuckDBPyConnection],
                                                           by: str) -> None:
    cfg, con = sample
    per_segment = stage_funnel_by_segment(con, by, cfg)
    mart = con.execute("SELECT stage, reached, exited FROM stage_funnel ORDER BY stage_order").fetchdf()
    summed = per_segment.groupby("stage", sort=False)[["reached", "exited"]].sum().reset_index()
    pd.testing.assert_frame_equal(summed, mart, check_dtype=False)
    sizes = per_segment.drop_duplicates("segment")
    assert sizes.segment_size.sum() == mart.reached[0]  # every journey customer is in exactly one segment
    assert (sizes.too_small == (sizes.segment_size < cfg.analysis.min_segment_size)).all()


def test_first_touch_of_the_sample_is_the_journeys_first_channel(
        sample: tuple[Config, duckdb.DuckDBPyConnection]) -> None:
    cfg, con = sample
    segments = customer_segments(con, "first_touch_channel", cfg).set_index("customer_key").segment
    journeys = con.execute("SELECT customer_key, first_channel FROM journeys").fetchdf()
    assert segments[journeys.customer_key].tolist() == journeys.first_channel.tolist()


@pytest.mark.parametrize(("by", "segment_type"), [("first_touch_channel", "first_channel"),
                                                  ("cohort_month", "cohort_month")])
def test_the_dashboard_mart_agrees_with_the_analysis(sample: tuple[Config, duckdb.DuckDBPyConnection], by: str,
                                                     segment_type: str) -> None:
    cfg, con = sample
    cols = ["segment", "segment_size", "stage", "reached", "exited", "dropoff_rate", "conversion_to_next",
            "conversion_from_first"]
    analysis = stage_funnel_by_segment(con, by, cfg)[cols].sort_values(["segment", "stage"]).reset_index(drop=True)
    mart = con.execute("SELECT * FROM stage_funnel_by_segment WHERE segment_type = $t",
                       {"t": segment_type}).fetchdf()[cols].sort_values(["segment", "stage"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(analysis, mart, check_dtype=False)
