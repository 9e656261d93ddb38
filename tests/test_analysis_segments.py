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
import numpy as np
import pandas as pd
import pytest

from cjm_analytics.analysis.segments import (
    SIGNIFICANCE_COLUMNS,
    customer_segments,
    stage_funnel_by_segment,
    with_segment_significance,
)
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


FUNNEL_COLUMNS = ["segment", "segment_size", "too_small", "stage", "stage_order", "reached", "exited", "dropoff_rate",
                  "conversion_to_next", "conversion_from_first"]
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
    assert list(f.columns) == [*FUNNEL_COLUMNS, *SIGNIFICANCE_COLUMNS]
    got = f[FUNNEL_COLUMNS].drop(columns="stage_order")
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
            "conversion_from_first", "too_small", *SIGNIFICANCE_COLUMNS]
    analysis = stage_funnel_by_segment(con, by, cfg)[cols].sort_values(["segment", "stage"]).reset_index(drop=True)
    mart = con.execute("SELECT * FROM stage_funnel_by_segment WHERE segment_type = $t",
                       {"t": segment_type}).fetchdf()[cols].sort_values(["segment", "stage"]).reset_index(drop=True)
    # DuckDB reads an all-NULL text column back as None objects, a column with text as str with NaN: the same NULLs.
    mart["test"], analysis["test"] = mart["test"].astype("str"), analysis["test"].astype("str")
    pd.testing.assert_frame_equal(analysis, mart, check_dtype=False)


# ---- intervals and differences beyond chance ----------------------------------------------------------------

def significance_oracle(funnel: pd.DataFrame, min_size: int) -> pd.DataFrame:
    """Wilson intervals (statsmodels) and each segment's conversion_to_next against the rest of its stage (scipy's
    Fisher or chi-square by Cochran's rule, statsmodels' Benjamini–Hochberg over every test), row by row."""
    from scipy.stats import chi2_contingency, fisher_exact
    from statsmodels.stats.multitest import multipletests
    from statsmodels.stats.proportion import proportion_confint

    f = funnel.sort_values(["segment", "stage_order"]).copy()
    f["next"] = f.groupby("segment").reached.shift(-1)
    out = []
    for r in f.itertuples():
        row = {"segment": r.segment, "stage_order": r.stage_order, "p_value": np.nan, "test": None}
        row["conversion_from_first_ci_low"], row["conversion_from_first_ci_high"] = (
            proportion_confint(r.reached, r.segment_size, method="wilson") if r.segment_size else (np.nan, np.nan))
        if pd.notna(r.next) and r.reached > 0:
            row["conversion_to_next_ci_low"], row["conversion_to_next_ci_high"] = proportion_confint(
                r.next, r.reached, method="wilson")
            lo, hi = proportion_confint(r.exited, r.reached, method="wilson")
            row["dropoff_ci_low"], row["dropoff_ci_high"] = lo, hi
        same = f[(f.stage_order == r.stage_order) & (f.segment != r.segment)]
        rest_n, rest_x = same.reached.sum(), same.next.sum()
        row["rest_conversion_to_next"] = rest_x / rest_n if pd.notna(r.next) and rest_n else np.nan
        table = np.array([[r.next, r.reached - r.next], [rest_x, rest_n - rest_x]]) if pd.notna(r.next) else None
        if table is not None and r.reached >= min_size and (table.sum(0) > 0).all() and (table.sum(1) > 0).all():
            expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
            if expected.min() < 5:
                row["p_value"], row["test"] = fisher_exact(table).pvalue, "fisher"
            else:
                row["p_value"], row["test"] = chi2_contingency(table, correction=False).pvalue, "chi2"
        out.append(row)
    o = pd.DataFrame(out)
    tested = o.p_value.notna()
    o["q_value"] = np.nan
    o.loc[tested, "q_value"] = multipletests(o.p_value[tested], method="fdr_bh")[1]
    o["differs"] = o.q_value < 0.05
    return o


def assert_significance_matches(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    got = got.sort_values(["segment", "stage_order"]).reset_index(drop=True)
    expected = expected.sort_values(["segment", "stage_order"]).reset_index(drop=True)
    for column in SIGNIFICANCE_COLUMNS:
        if column in ("test", "differs"):
            assert [None if pd.isna(v) else v for v in got[column]] == [
                None if pd.isna(v) else v for v in expected[column]], column
        else:
            np.testing.assert_allclose(got[column].astype(float), expected[column].astype(float), rtol=1e-9,
                                       atol=1e-12, err_msg=column)


# Three stages; a converts far better at stage 1, b worse, c like the rest; d is too small to be tested (its 4 of 4
# would otherwise be a "difference"). (segment, segment_size, stage_order, reached, exited)
FUNNEL = pd.DataFrame([
    ("a", 200, 1, 200, 40), ("a", 200, 2, 160, 100), ("a", 200, 3, 60, 60),
    ("b", 300, 1, 300, 210), ("b", 300, 2, 90, 50), ("b", 300, 3, 40, 40),
    ("c", 100, 1, 100, 45), ("c", 100, 2, 55, 30), ("c", 100, 3, 25, 25),
    ("d", 4, 1, 4, 0), ("d", 4, 2, 4, 0), ("d", 4, 3, 4, 4),
], columns=["segment", "segment_size", "stage_order", "reached", "exited"])


def test_segment_significance_against_scipy_and_statsmodels() -> None:
    got = with_segment_significance(FUNNEL, min_size=30)
    expected = significance_oracle(FUNNEL, 30)
    assert_significance_matches(got, expected)
    flagged = got[got.differs]
    assert set(zip(flagged.segment, flagged.stage_order, strict=True)) >= {("a", 1), ("b", 1)}
    assert not got[got.segment == "d"].differs.any() and got[got.segment == "d"].p_value.isna().all()
    assert got.too_small.tolist() == [False] * 9 + [True] * 3
    assert got[got.stage_order == 3].p_value.isna().all()  # the last stage has no next to convert to


def test_segment_significance_of_the_sample(sample: tuple[Config, duckdb.DuckDBPyConnection]) -> None:
    cfg, con = sample
    got = stage_funnel_by_segment(con, "first_touch_channel", cfg)
    assert_significance_matches(got, significance_oracle(got, cfg.analysis.min_segment_size))
    assert got.p_value.notna().sum() > 10


def test_only_rows_with_enough_customers_are_tested(con: duckdb.DuckDBPyConnection, cfg: Config) -> None:
    # min_segment_size 2: only social's browse row reached 2 (s1, s5); 1 of 2 went on, against 2 of 2 of the
    # others (s2, s3): Fisher's p = 1 (both possible tables have probability 1/2).
    f = stage_funnel_by_segment(con, "first_touch_channel", cfg)
    tested = f[f.p_value.notna()]
    assert list(zip(tested.segment, tested.stage, tested.test, strict=True)) == [("social", "browse", "fisher")]
    assert tested.p_value.iloc[0] == pytest.approx(1.0) and tested.rest_conversion_to_next.iloc[0] == 1.0
    assert not f.differs.any()
