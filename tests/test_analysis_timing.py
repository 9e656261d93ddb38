"""Time between stages and time to convert on a fixture counted by hand; p90 checked against numpy.

Stages: browse (product_*, landing) < cart (add_to_cart) < buy (order), goal buy. All times 2026-11-01 UTC
unless said; the channel is on each customer's first event.

    customer    events                                           collapsed path (transition hours)   to convert
    t1 email    landing 10:00, add_to_cart 11:00, order 13:00    browse -1- cart -2- buy              3
    t2 email    product_view 10:00, product_view 10:30,          browse -1.5- cart -0.5- browse       6
                add_to_cart 12:00, product_view 12:30,           -0.5- cart -3- buy (a run is timed
                add_to_cart 13:00, order 16:00                   from its last event: 10:30 -> 12:00)
    t3 social   landing 09:00, order 10:00                       browse -1- buy                       1
    t4 social   order 08:00                                      buy                                  0
    t5 social   landing 08:00, add_to_cart 08:06                 browse -0.1- cart                    -
    t6          landing 00:00, order 11-02 00:00                 browse -24- buy                      24
"""

from __future__ import annotations

import math
from typing import Any

import duckdb
import numpy as np
import pytest

from cjm_analytics.analysis.timing import (
    DEFAULT_BINS,
    time_between_stages,
    time_to_convert,
    time_to_convert_histogram,
)
from cjm_analytics.config import Config
from tests.fixtures import built_warehouse

EVENTS = """
    event_id,anonymous_id,user_id,event,ts,channel
    t1a,,t1,landing,2026-11-01T10:00:00Z,email
    t1b,,t1,add_to_cart,2026-11-01T11:00:00Z,
    t1c,,t1,order,2026-11-01T13:00:00Z,
    t2a,,t2,product_view,2026-11-01T10:00:00Z,email
    t2b,,t2,product_view,2026-11-01T10:30:00Z,
    t2c,,t2,add_to_cart,2026-11-01T12:00:00Z,
    t2d,,t2,product_view,2026-11-01T12:30:00Z,
    t2e,,t2,add_to_cart,2026-11-01T13:00:00Z,
    t2f,,t2,order,2026-11-01T16:00:00Z,
    t3a,,t3,landing,2026-11-01T09:00:00Z,social
    t3b,,t3,order,2026-11-01T10:00:00Z,
    t4a,,t4,order,2026-11-01T08:00:00Z,social
    t5a,,t5,landing,2026-11-01T08:00:00Z,social
    t5b,,t5,add_to_cart,2026-11-01T08:06:00Z,
    t6a,,t6,landing,2026-11-01T00:00:00Z,
    t6b,,t6,order,2026-11-02T00:00:00Z,
"""


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return built_warehouse(tmp_path_factory.mktemp("timing"), EVENTS, analysis={"min_segment_size": 2})


def _stats(hours: list[float]) -> tuple[int, float, float, float]:
    # p90 is numpy's default percentile (linear interpolation between the two nearest ranks).
    return len(hours), float(np.median(hours)), float(np.percentile(hours, 90)), float(np.mean(hours))


BETWEEN: dict[tuple[str, str], list[float]] = {  # (from, to): hours of every such transition
    ("browse", "cart"): [1, 1.5, 0.5, 0.1],  # t1, t2 twice, t5
    ("browse", "buy"): [1, 24],  # t3, t6
    ("cart", "browse"): [0.5],  # t2
    ("cart", "buy"): [2, 3],  # t1, t2
}
# (from, to, segment): email is t1 t2, social t3 t4 t5, (none) t6.
BETWEEN_BY_FIRST_TOUCH: dict[tuple[str, str, str], list[float]] = {
    ("browse", "cart", "email"): [1, 1.5, 0.5],
    ("browse", "cart", "social"): [0.1],
    ("browse", "buy", "(none)"): [24],
    ("browse", "buy", "social"): [1],
    ("cart", "browse", "email"): [0.5],
    ("cart", "buy", "email"): [2, 3],
}


def test_time_between_stages(con: duckdb.DuckDBPyConnection, cfg: Config) -> None:
    t = time_between_stages(con, None, cfg)
    assert list(t.columns) == ["from_stage", "to_stage", "transitions", "median_hours", "p90_hours", "mean_hours"]
    assert [tuple(r) for r in t[["from_stage", "to_stage"]].itertuples(index=False)] == list(BETWEEN)
    for row, hours in zip(t.itertuples(), BETWEEN.values(), strict=True):
        assert (row.transitions, row.median_hours, row.p90_hours, row.mean_hours) == pytest.approx(_stats(hours))
    assert t.median_hours.tolist()[:1] == [0.75]  # 0.1, 0.5, 1, 1.5: between the middle two


def test_time_between_stages_by_segment(con: duckdb.DuckDBPyConnection, cfg: Config) -> None:
    t = time_between_stages(con, "first_touch_channel", cfg)
    assert list(t.columns) == ["from_stage", "to_stage", "segment", "transitions", "median_hours", "p90_hours",
                               "mean_hours", "too_small"]
    keys = [tuple(r) for r in t[["from_stage", "to_stage", "segment"]].itertuples(index=False)]
    assert keys == list(BETWEEN_BY_FIRST_TOUCH)
    for row, hours in zip(t.itertuples(), BETWEEN_BY_FIRST_TOUCH.values(), strict=True):
        assert (row.transitions, row.median_hours, row.p90_hours, row.mean_hours) == pytest.approx(_stats(hours))
        assert row.too_small == (len(hours) < 2)


def test_time_between_stages_is_the_transition_graphs_median(con: duckdb.DuckDBPyConnection, cfg: Config) -> None:
    graph = con.execute("SELECT from_stage, to_stage, median_hours FROM stage_transitions "
                        "WHERE median_hours IS NOT NULL").fetchdf()
    mine = time_between_stages(con, None, cfg)[["from_stage", "to_stage", "median_hours"]]
    merged = graph.merge(mine, on=["from_stage", "to_stage"], suffixes=("_graph", ""))
    assert len(merged) == len(graph) == len(mine)
    assert merged.median_hours.tolist() == pytest.approx(merged.median_hours_graph.tolist())


CONVERTED = [3, 6, 1, 0, 24]  # t1, t2, t3, t4, t6 (t5 never ordered)


@pytest.mark.parametrize(("segment", "expected"), [
    pytest.param(None, [(None, CONVERTED)], id="all"),
    pytest.param("first_touch_channel", [("(none)", [24]), ("email", [3, 6]), ("social", [1, 0])], id="first-touch"),
])
def test_time_to_convert(con: duckdb.DuckDBPyConnection, cfg: Config, segment: str | None,
                         expected: list[tuple[str | None, list[float]]]) -> None:
    t = time_to_convert(con, segment, cfg)
    assert list(t.columns) == (["converted", "median_hours", "p90_hours"] if segment is None else
                               ["segment", "converted", "median_hours", "p90_hours", "too_small"])
    assert len(t) == len(expected)
    for row, (name, hours) in zip(t.itertuples(), expected, strict=True):
        n, median, p90, _ = _stats(hours)
        assert (row.converted, row.median_hours, row.p90_hours) == pytest.approx((n, median, p90))
        if segment is not None:
            assert (row.segment, row.too_small) == (name, n < 2)
    if segment is None:
        assert t.p90_hours[0] == pytest.approx(16.8)  # 0, 1, 3, 6, 24: rank 3.6 -> 6 + 0.6 * (24 - 6)


HISTOGRAMS = [
    # Edges are [lower, upper): t3's 1 h falls in [1, 6), t2's 6 h in [6, 24), t6's 24 h in [24, 72).
    pytest.param(DEFAULT_BINS, [1, 2, 1, 1, 0, 0, 0],
                 ["[0, 1)", "[1, 6)", "[6, 24)", "[24, 72)", "[72, 168)", "[168, 336)", "[336, inf)"], id="default"),
    # Bins that miss some customers: the shares say so (t4's 0 h, t2's 6 h and t6's 24 h are in no bin).
    pytest.param([1, 6], [2], ["[1, 6)"], id="partial"),
    pytest.param([0, 0.5, 24.5], [1, 4], ["[0, 0.5)", "[0.5, 24.5)"], id="fractions"),
]


@pytest.mark.parametrize(("bins", "counts", "labels"), HISTOGRAMS)
def test_time_to_convert_histogram(con: duckdb.DuckDBPyConnection, cfg: Config, bins: list[float],
                                   counts: list[int], labels: list[str]) -> None:
    h = time_to_convert_histogram(con, bins, None, cfg)
    assert list(h.columns) == ["bin", "label", "lower_hours", "upper_hours", "converted", "share"]
    assert h.label.tolist() == labels
    assert h.converted.tolist() == counts
    assert h.share.tolist() == pytest.approx([c / len(CONVERTED) for c in counts])
    assert h.lower_hours.tolist() == list(bins[:-1]) and h.upper_hours.tolist() == list(bins[1:])
    expected, _ = np.histogram(CONVERTED, bins=[b if math.isfinite(b) else 1e9 for b in bins])
    if bins[-1] == math.inf:  # numpy closes its last bin [a, b]; ours are all half-open
        assert h.converted.tolist() == expected.tolist()


def test_time_to_convert_histogram_by_segment(con: duckdb.DuckDBPyConnection, cfg: Config) -> None:
    h = time_to_convert_histogram(con, [0, 2, math.inf], "first_touch_channel", cfg)
    got = {(r.segment, r.label): (r.converted, r.share, r.too_small) for r in h.itertuples()}
    assert got == {
        ("(none)", "[0, 2)"): (0, 0.0, True), ("(none)", "[2, inf)"): (1, 1.0, True),  # t6 24 h
        ("email", "[0, 2)"): (0, 0.0, False), ("email", "[2, inf)"): (2, 1.0, False),  # t1 3 h, t2 6 h
        ("social", "[0, 2)"): (2, 1.0, False), ("social", "[2, inf)"): (0, 0.0, False),  # t3 1 h, t4 0 h
    }


@pytest.mark.parametrize("bins", [[1], [0, 0], [5, 1], []])
def test_bad_bins_are_refused(con: duckdb.DuckDBPyConnection, cfg: Config, bins: list[Any]) -> None:
    with pytest.raises(ValueError, match="increasing edges"):
        time_to_convert_histogram(con, bins, None, cfg)


def test_quantile_cont_is_numpys_default_percentile(con: duckdb.DuckDBPyConnection) -> None:
    values = np.random.default_rng(7).exponential(30, 101).tolist()
    got = con.execute("SELECT quantile_cont(x, 0.9), quantile_cont(x, 0.5) FROM unnest($v) AS t(x)",
                      {"v": values}).fetchone()
    assert got == pytest.approx((np.percentile(values, 90), np.median(values)))
