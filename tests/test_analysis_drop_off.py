"""Drop-off as time to event (Kaplan–Meier with censoring), the audience behind a drop-off and the stalled customers,
on a fixture counted by hand; the estimator also against statsmodels on the sample, from spells built in pandas.

Stages: browse (landing) < cart (add_to_cart) < buy (order), goal buy. Day d = 2026-11-01 00:00 UTC + d days.
The data ends at day 10 (c6's last landing). Unmapped events (support_ticket, nps) do not move a stage.

    customer          events (day)                                           browse→cart   cart→buy   start→buy
    c1 email          landing 0, add_to_cart 1, order 3, landing 6           1             2          3
    c2 ads            landing 0, add_to_cart 2, support_ticket 2.1           2             (8)        (10)
    c3 email persona  landing 5                                              (5)           -          (5)
    c4 anonymous ads  landing 9.25                                           (0.75)        -          (0.75)
    c5                order 4 (skips browse and cart: both reached at 4)     0             0          0
    c6                landing 0, add_to_cart 0.5, landing 10                 0.5           (9.5)      (10)
    c7 email          landing 1, nps 3 at 1.5                                (9)           -          (9)

(x) = censored at x days: not moved on by the end of the data, still within reach.
"""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml
from statsmodels.duration.survfunc import SurvfuncRight

from cjm_analytics import cli
from cjm_analytics.analysis.audience import dropped_at, stalled_customers
from cjm_analytics.analysis.survival import time_to_next
from cjm_analytics.config import Config
from cjm_analytics.errors import AnalysisError
from tests.fixtures import STAGES, WEB_COLUMNS, built_warehouse, table

EVENTS = """
    event_id,anonymous_id,user_id,event,ts,channel,persona,score
    1a,,c1,landing,2026-11-01T00:00:00Z,email,,
    1b,,c1,add_to_cart,2026-11-02T00:00:00Z,,,
    1c,,c1,order,2026-11-04T00:00:00Z,,,
    1d,,c1,landing,2026-11-07T00:00:00Z,,,
    2a,,c2,landing,2026-11-01T00:00:00Z,ads,,
    2b,,c2,add_to_cart,2026-11-03T00:00:00Z,,,
    2c,,c2,support_ticket,2026-11-03T02:24:00Z,,,
    3a,,c3,landing,2026-11-06T00:00:00Z,email,student,
    4a,a4,,landing,2026-11-10T06:00:00Z,ads,,
    5a,,c5,order,2026-11-05T00:00:00Z,,,
    6a,,c6,landing,2026-11-01T00:00:00Z,,,
    6b,,c6,add_to_cart,2026-11-01T12:00:00Z,,,
    6c,,c6,landing,2026-11-11T00:00:00Z,,,
    7a,,c7,landing,2026-11-02T00:00:00Z,email,,
    7b,,c7,nps,2026-11-02T12:00:00Z,,,3
"""
MARKS = {"support_events": ["support_*"], "surveys": [{"event": "nps", "score": "score", "kind": "nps"}]}


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return built_warehouse(tmp_path_factory.mktemp("drop_off"), EVENTS, analysis={"min_segment_size": 1, **MARKS})


@pytest.fixture(scope="module")
def unmarked(tmp_path_factory: pytest.TempPathFactory) -> Config:
    """The same events without support events or surveys configured."""
    return built_warehouse(tmp_path_factory.mktemp("drop_off_unmarked"), EVENTS, analysis={"min_segment_size": 1})


def _km(spells: list[tuple[float, bool]]) -> list[tuple[float, float, float]]:
    """By hand's recipe: (event time, S, Greenwood sum) after each event time."""
    s, greenwood, out = 1.0, 0.0, []
    for t in sorted({t for t, moved in spells if moved}):
        n = sum(1 for u, _ in spells if u >= t)
        d = sum(1 for u, moved in spells if moved and u == t)
        s *= 1 - d / n
        greenwood += d / (n * (n - d)) if d < n else math.inf
        out.append((t, s, greenwood))
    return out


def _loglog(s: float, greenwood: float) -> tuple[float, float]:
    """The 95% interval of the conversion 1 - S on the log(-log S) scale."""
    shift = 1.959963984540054 * math.sqrt(greenwood) / math.log(s)
    centre = math.log(-math.log(s))
    return 1 - math.exp(-math.exp(centre + shift)), 1 - math.exp(-math.exp(centre - shift))


def test_browse_curve_by_hand(cfg: Config, con: duckdb.DuckDBPyConnection) -> None:
    curve = time_to_next(con, cfg, "browse").curve
    assert list(curve.columns) == ["stage", "stage_order", "from_stage", "to_stage", "day", "at_risk", "events",
                                   "censored", "km_conversion", "ci_low", "ci_high"]
    assert set(curve.to_stage) == {"cart"} and curve.day.tolist() == list(range(10))
    # Buckets (d-1, d]: day 0 c5 (0); day 1 c6 (0.5), c4 censored (0.75), c1 (1); day 2 c2; c3 censored at 5, c7 at 9.
    assert curve.at_risk.tolist() == [7, 6, 3, 2, 2, 2, 1, 1, 1, 1]
    assert curve.events.tolist() == [1, 2, 1, 0, 0, 0, 0, 0, 0, 0]
    assert curve.censored.tolist() == [0, 1, 0, 0, 0, 1, 0, 0, 0, 1]
    # S: 6/7 at 0, 5/7 at 0.5, c4 leaves the risk set, x 3/4 at 1 (n = 4), x 2/3 at 2 (n = 3).
    expected = [1 - 6 / 7, 1 - 15 / 28] + [1 - 5 / 14] * 8
    assert curve.km_conversion.tolist() == pytest.approx(expected, abs=1e-12)
    greenwood_day2 = 1 / (7 * 6) + 1 / (6 * 5) + 1 / (4 * 3) + 1 / (3 * 2)
    low, high = _loglog(5 / 14, greenwood_day2)
    assert (curve.ci_low[2], curve.ci_high[2]) == pytest.approx((low, high), abs=1e-12)
    assert curve.ci_low[2] < curve.km_conversion[2] < curve.ci_high[2]


def test_every_curve_matches_the_product_limit_recipe(cfg: Config, con: duckdb.DuckDBPyConnection) -> None:
    spells = {  # the table in the docstring: (days, moved on)
        "browse": [(1, True), (2, True), (5, False), (0.75, False), (0, True), (0.5, True), (9, False)],
        "cart": [(2, True), (8, False), (0, True), (9.5, False)],
        "buy": [(3, True), (10, False), (5, False), (0.75, False), (0, True), (10, False), (9, False)],
    }
    curve = time_to_next(con, cfg).curve
    assert curve.groupby("stage", sort=False).from_stage.first().to_dict() == {
        "browse": "browse", "cart": "cart", "buy": "browse"}
    for stage, stage_spells in spells.items():
        rows = curve[curve.stage == stage]
        steps = _km(stage_spells)
        for day, km, low, high in rows[["day", "km_conversion", "ci_low", "ci_high"]].itertuples(index=False):
            done = [(s, g) for t, s, g in steps if t <= day]
            s, g = done[-1] if done else (1.0, 0.0)
            assert km == pytest.approx(1 - s, abs=1e-12), (stage, day)
            if 0 < s < 1:
                assert (low, high) == pytest.approx(_loglog(s, g), abs=1e-12), (stage, day)
            else:  # nobody (or everybody) moved on yet: the interval is undefined, not [0, 0]
                assert math.isnan(low) and math.isnan(high), (stage, day)
        assert rows.at_risk.iloc[0] == len(stage_spells)
        assert rows.events.sum() == sum(m for _, m in stage_spells)
        assert rows.censored.sum() == sum(not m for _, m in stage_spells)


def test_eventual_conversion(cfg: Config, con: duckdb.DuckDBPyConnection) -> None:
    eventual = time_to_next(con, cfg).eventual.set_index("stage")
    assert eventual.loc["browse", ["customers", "moved_on", "within_reach"]].tolist() == [7, 4, 3]
    assert eventual.loc["browse", "observed_conversion"] == pytest.approx(4 / 7)
    # Censoring c4 at 0.75 days instead of counting it as lost lifts the projection above the observed share.
    assert eventual.loc["browse", "projected_conversion"] == pytest.approx(9 / 14)
    assert eventual.loc["browse", ["horizon_days", "last_event_day", "at_risk_at_last_event"]].tolist() == [9, 2, 3]
    assert eventual.loc["cart", "projected_conversion"] == pytest.approx(1 / 2)
    assert eventual.loc["buy", "projected_conversion"] == pytest.approx(1 - 24 / 35)
    assert eventual.loc["buy", ["from_stage", "to_stage", "horizon_days"]].tolist() == ["browse", "buy", 10]
    assert eventual.loc["buy", "ci_low"] < 11 / 35 < eventual.loc["buy", "ci_high"]


def test_the_nightly_marts_hold_the_same_answer(cfg: Config, con: duckdb.DuckDBPyConnection) -> None:
    answer = time_to_next(con, cfg)
    pd.testing.assert_frame_equal(table(cfg, "SELECT * FROM stage_time_to_next ORDER BY stage_order, day"),
                                  answer.curve, check_dtype=False)
    pd.testing.assert_frame_equal(table(cfg, "SELECT * FROM stage_eventual_conversion ORDER BY stage_order"),
                                  answer.eventual, check_dtype=False)


def test_a_stage_at_or_after_the_goal_has_no_time_to_next(cfg: Config, con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(AnalysisError, match="'nope'"):
        time_to_next(con, cfg, "nope")


# --- against statsmodels on the sample --------------------------------------------------------------------------

def _sample_spells(con: duckdb.DuckDBPyConnection, goal_order: int) -> dict[int, pd.DataFrame]:
    """Spells built in pandas from the events: reached(k) = first event at stage k or beyond."""
    events = con.execute("SELECT customer_key, stage_order, ts FROM events WHERE stage_order IS NOT NULL").fetchdf()
    end = con.execute("SELECT max(ts) FROM events").fetchone()[0]  # type: ignore[index]
    first = events.groupby(["customer_key", "stage_order"]).ts.min().unstack()
    first = first.reindex(columns=range(1, int(first.columns.max()) + 1))
    never = pd.Timestamp("2262-01-01")  # cummin skips NaT: a skipped stage takes the next reached one's time
    reached = first.iloc[:, ::-1].fillna(never).cummin(axis=1).iloc[:, ::-1]  # min over the stage and beyond
    reached = reached.where(reached < never)
    out = {}
    for k in range(1, goal_order + 1):
        start, stop = (reached[1], reached[goal_order]) if k == goal_order else (reached[k], reached[k + 1])
        have = start.notna()
        days = ((stop.where(stop.notna(), pd.Timestamp(end)) - start)[have].dt.total_seconds() / 86400)
        out[k] = pd.DataFrame({"days": days, "moved_on": stop[have].notna()})
    return out


def test_matches_statsmodels_on_the_sample(sample: Config) -> None:
    con = duckdb.connect(str(sample.warehouse), read_only=True)
    try:
        curve = time_to_next(con, sample).curve
        spells = _sample_spells(con, sample.goal_order)
    finally:
        con.close()
    for k, frame in spells.items():
        rows = curve[curve.stage_order == k]
        sf = SurvfuncRight(frame.days.to_numpy(), frame.moved_on.astype(int).to_numpy())
        at = np.searchsorted(sf.surv_times, rows.day.to_numpy(), side="right") - 1
        s = np.where(at >= 0, sf.surv_prob[np.maximum(at, 0)], 1.0)
        np.testing.assert_allclose(rows.km_conversion, 1 - s, atol=1e-9)
        se = np.where(at >= 0, sf.surv_prob_se[np.maximum(at, 0)], 0.0)
        defined = (s > 0) & (s < 1)
        expected = [_loglog(p, (e / p) ** 2) for p, e in zip(s[defined], se[defined], strict=True)]
        np.testing.assert_allclose(rows.ci_low[defined], [lo for lo, _ in expected], atol=1e-9)
        np.testing.assert_allclose(rows.ci_high[defined], [hi for _, hi in expected], atol=1e-9)
        assert rows.at_risk.iloc[0] == len(frame) and rows.events.sum() == frame.moved_on.sum()


# --- audiences --------------------------------------------------------------------------------------------------

def test_dropped_at_browse(cfg: Config, con: duckdb.DuckDBPyConnection) -> None:
    audience = dropped_at(con, cfg, "browse")
    # c1 came back to browse after buying: completed, never dropped. Most recently seen first.
    assert audience.customer_id.tolist() == ["a4", "c3", "c7"]
    assert audience.identified.tolist() == [False, True, True]
    assert audience.days_since_last_seen.tolist() == pytest.approx([0.75, 5, 8.5])
    assert audience.last_touchpoint.tolist() == ["landing", "landing", "nps"]
    assert audience.last_channel.tolist() == ["ads", "email", "email"]
    assert audience.contacted_support.tolist() == [False, False, False]
    assert audience.low_score.tolist() == [False, False, True]  # c7's nps 3 is below 0.65 of the scale
    assert set(audience.dropped_at) == {"browse"}


def test_dropped_at_cart_flags_support(cfg: Config, con: duckdb.DuckDBPyConnection) -> None:
    audience = dropped_at(con, cfg, "cart")
    assert audience.customer_id.tolist() == ["c6", "c2"]  # c6 went back to browse: its furthest stage is cart
    assert audience.contacted_support.tolist() == [False, True]
    assert audience.reached_at.astype(str).tolist() == ["2026-11-01 12:00:00", "2026-11-03 00:00:00"]


def test_flags_are_unknown_where_not_configured(unmarked: Config) -> None:
    con = duckdb.connect(str(unmarked.warehouse), read_only=True)
    try:
        audience = dropped_at(con, unmarked, "browse")
        stalled = stalled_customers(con, unmarked)
    finally:
        con.close()
    for frame in (audience, stalled):
        assert frame.contacted_support.isna().all() and frame.low_score.isna().all()
    assert len(audience) == 3


def test_audience_filters(cfg: Config, con: duckdb.DuckDBPyConnection) -> None:
    assert dropped_at(con, cfg, "browse", since=date(2026, 11, 6)).customer_id.tolist() == ["a4", "c3"]
    assert dropped_at(con, cfg, "browse", "first_touch_channel", "email").customer_id.tolist() == ["c3", "c7"]
    assert dropped_at(con, cfg, "browse", "persona", "student").customer_id.tolist() == ["c3"]


@pytest.mark.parametrize("stage", ["buy", "nope"])
def test_nobody_drops_out_at_or_after_the_goal(cfg: Config, con: duckdb.DuckDBPyConnection, stage: str) -> None:
    with pytest.raises(AnalysisError, match=repr(stage)):
        dropped_at(con, cfg, stage)


def test_stalled_customers(cfg: Config, con: duckdb.DuckDBPyConnection) -> None:
    stalled = stalled_customers(con, cfg)
    # browse: dwell of c6, c1, c2 (c5 skipped the stage) = 0.5, 1, 2 days: p90 1.8 (numpy), reach 5.4 days.
    #   c3 sits 5 > 1.8, last seen 5 days ago <= 5.4: stalled. c4 sits 0.75. c7 sits 9 but left (unseen 8.5 days).
    # cart: dwell of c1 = 2 days: p90 2, reach 6. c6 sits 9.5, seen at the end: stalled. c2 unseen 7.9 days: left.
    assert stalled.customer_id.tolist() == ["c3", "c6"]
    assert stalled.stage.tolist() == ["browse", "cart"]
    assert stalled.p90_dwell_days.tolist() == pytest.approx([np.percentile([0.5, 1, 2], 90), 2])
    assert stalled.dwell_movers.tolist() == [3, 1]
    assert stalled.days_at_stage.tolist() == pytest.approx([5, 9.5])
    assert stalled.reach_days.tolist() == pytest.approx([5.4, 6])
    pd.testing.assert_frame_equal(table(cfg, "SELECT * FROM stalled_customers"), stalled, check_dtype=False)


def test_a_stage_with_too_few_movers_flags_nobody(cfg: Config, con: duckdb.DuckDBPyConnection) -> None:
    strict = cfg.model_copy(update={"analysis": cfg.analysis.model_copy(update={"min_segment_size": 2})})
    assert stalled_customers(con, strict).stage.tolist() == ["browse"]  # cart's p90 rests on one mover


def test_audience_command(cfg: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "cjm.yaml"
    config.write_text(yaml.safe_dump({
        "warehouse": str(cfg.warehouse), "reports": str(tmp_path / "reports"), "stages": STAGES, "goal": "buy",
        "sources": [{"name": "web", "kind": "clickstream", "path": str(cfg.warehouse.parent.parent / "web" / "*"),
                     "columns": WEB_COLUMNS}],
        "analysis": {"min_segment_size": 1, **MARKS}}), encoding="utf-8")
    out = tmp_path / "audience.parquet"
    assert cli.main(["analyze", "audience", "--dropped-at", "cart", "--config", str(config), "--out", str(out)]) == 0
    assert pd.read_parquet(out).customer_id.tolist() == ["c6", "c2"]
    assert (tmp_path / "reports" / "analysis-audience--dropped-at-cart.html").exists()
    capsys.readouterr()
    assert cli.main(["analyze", "audience", "--dropped-at", "buy", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "completed" in err
