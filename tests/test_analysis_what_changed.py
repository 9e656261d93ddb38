"""What changed between two runs: each stage's conversion change split into mix and rate effects per first-touch
channel, over the same cohort days, on two nights counted by hand.

Stages browse (landing) < cart (add_to_cart) < buy (order), goal buy. Segment: the first-touch channel.

    night 1 (data ends 11-03 20:00)                       night 2 adds
    11-01  e1 email: landing, add_to_cart, order           e2: add_to_cart 11-03 (late, for an old cohort)
           e2 email: landing                               s2: add_to_cart, order 11-02 (late)
           s1 social: landing, add_to_cart                 s6 social: landing 11-02 (a late customer)
    11-02  e3 email: landing, add_to_cart                  s4, s5 social: landing 11-04 (new cohort day)
           s2 social: landing
    11-03  s3 social: landing 20:00

The same cohort days: 11-01 and 11-02 (both nights hold them, and night 1 saw them whole). Browse → cart there:
night 1 email 2 of 3, social 1 of 2 (3/5); night 2 email 3 of 3, social 2 of 3 (s6) (5/6). The new cohort
11-04 and night 1's partial 11-03 are left out, so s4 and s5 do not read as a drop.
"""

from __future__ import annotations

from datetime import timedelta
from fractions import Fraction as F
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from cjm_analytics.analysis.changes import conversion_change
from cjm_analytics.config import Config
from cjm_analytics.errors import AnalysisError
from tests.fixtures import RUN_STARTED, make_config, run_steps, table, write_csv

NIGHT_1 = """
    event_id,anonymous_id,user_id,event,ts,channel
    1,,e1,landing,2026-11-01T09:00:00Z,email
    2,,e1,add_to_cart,2026-11-01T09:10:00Z,
    3,,e1,order,2026-11-01T09:20:00Z,
    4,,e2,landing,2026-11-01T10:00:00Z,email
    5,,s1,landing,2026-11-01T11:00:00Z,social
    6,,s1,add_to_cart,2026-11-01T11:10:00Z,
    7,,e3,landing,2026-11-02T09:00:00Z,email
    8,,e3,add_to_cart,2026-11-02T09:10:00Z,
    9,,s2,landing,2026-11-02T10:00:00Z,social
    10,,s3,landing,2026-11-03T20:00:00Z,social
"""
NIGHT_2 = """
    event_id,anonymous_id,user_id,event,ts,channel
    11,,e2,add_to_cart,2026-11-03T10:00:00Z,
    12,,s2,add_to_cart,2026-11-02T10:10:00Z,
    13,,s2,order,2026-11-02T10:20:00Z,
    14,,s6,landing,2026-11-02T12:00:00Z,social
    15,,s4,landing,2026-11-04T09:00:00Z,social
    16,,s5,landing,2026-11-04T10:00:00Z,social
"""


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> Config:
    root: Path = tmp_path_factory.mktemp("what_changed")
    write_csv(root / "web" / "night1.csv", NIGHT_1)
    config = make_config(root)
    run_steps(config, run_started=RUN_STARTED)
    assert "conversion_change" not in set(table(config, "SELECT table_name FROM duckdb_tables()").table_name)
    write_csv(root / "web" / "night2.csv", NIGHT_2)
    run_steps(config, run_started=RUN_STARTED + timedelta(days=1))
    return config


def _shift_share(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]
                 ) -> dict[str, tuple[F, F]]:
    """Kitagawa's symmetric decomposition, in fractions: segment -> (mix, rate); counts are (moved on, customers)."""
    n0, n1 = sum(c for _, c in before.values()), sum(c for _, c in after.values())
    out = {}
    for s in before:
        w0, w1 = F(before[s][1], n0), F(after[s][1], n1)
        r0, r1 = F(*before[s]), F(*after[s])
        out[s] = ((w1 - w0) * (r0 + r1) / 2, (r1 - r0) * (w0 + w1) / 2)
    return out


def test_browse_by_hand(cfg: Config, con: duckdb.DuckDBPyConnection) -> None:
    change = conversion_change(con, cfg)
    browse = change[change.stage == "browse"].set_index("segment")
    assert browse.first_cohort_date.astype(str).unique().tolist() == ["2026-11-01"]
    assert browse.last_cohort_date.astype(str).unique().tolist() == ["2026-11-02"]
    assert browse.conversion_before.iloc[0] == pytest.approx(3 / 5)
    assert browse.conversion_after.iloc[0] == pytest.approx(5 / 6)
    # email: share 3/5 -> 1/2, rate 2/3 -> 1; social: share 2/5 -> 1/2, rate 1/2 -> 2/3.
    assert browse.loc["email", "mix_effect"] == pytest.approx(-1 / 12)
    assert browse.loc["email", "rate_effect"] == pytest.approx(11 / 60)
    assert browse.loc["social", "mix_effect"] == pytest.approx(7 / 120)
    assert browse.loc["social", "rate_effect"] == pytest.approx(3 / 40)
    assert browse.total_effect.sum() == pytest.approx(5 / 6 - 3 / 5)
    # social moved conversion by 16/120, email by 12/120: social is the largest contributor.
    assert browse.contributor_rank.to_dict() == {"social": 1, "email": 2}
    assert browse.customers_before.to_dict() == {"email": 3, "social": 2}
    assert browse.customers_after.to_dict() == {"email": 3, "social": 3}


def test_every_stage_adds_up(cfg: Config, con: duckdb.DuckDBPyConnection) -> None:
    change = conversion_change(con, cfg)
    expected = {  # stage -> counts (moved on, customers) per segment, night 1 and night 2, on 11-01 and 11-02
        "browse": ({"email": (2, 3), "social": (1, 2)}, {"email": (3, 3), "social": (2, 3)}),
        "cart": ({"email": (1, 2), "social": (0, 1)}, {"email": (1, 3), "social": (1, 2)}),
        "buy": ({"email": (1, 3), "social": (0, 2)}, {"email": (1, 3), "social": (1, 3)}),  # from browse
    }
    for stage, (before, after) in expected.items():
        rows = change[change.stage == stage].set_index("segment")
        for segment, (mix, rate) in _shift_share(before, after).items():
            assert rows.loc[segment, "mix_effect"] == pytest.approx(float(mix)), (stage, segment)
            assert rows.loc[segment, "rate_effect"] == pytest.approx(float(rate)), (stage, segment)
        change_total = rows.conversion_after.iloc[0] - rows.conversion_before.iloc[0]
        assert rows.total_effect.sum() == pytest.approx(change_total), stage
        ranked = rows.total_effect.abs().sort_values(ascending=False, kind="stable")
        assert rows.sort_values("contributor_rank").index.tolist() == ranked.index.tolist()


def test_the_mart_holds_tonight_against_the_previous_night(cfg: Config, con: duckdb.DuckDBPyConnection) -> None:
    mart = table(cfg, "SELECT * FROM conversion_change ORDER BY stage_order, contributor_rank")
    pd.testing.assert_frame_equal(mart, conversion_change(con, cfg), check_dtype=False)
    runs = table(cfg, "SELECT DISTINCT run_id, run_started_at FROM run_segment_cohorts ORDER BY run_started_at")
    assert mart.run_before.unique().tolist() == [runs.run_id[0]]
    assert mart.run_after.unique().tolist() == [runs.run_id[1]]


def test_unknown_run(cfg: Config, con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(AnalysisError, match="'nope'"):
        conversion_change(con, cfg, against="nope")


def test_the_overview_names_the_largest_contributors(cfg: Config, con: duckdb.DuckDBPyConnection) -> None:
    """The overview's "What changed" lines, from the figures counted by hand above (in points)."""
    from cjm_analytics.report.marts import read_marts
    from cjm_analytics.report.pages import PAGES
    from cjm_analytics.report.pages.overview import overview_body

    page = overview_body(read_marts(con), PAGES)
    assert "<h2>What changed since the last good run</h2>" in page
    assert ("<li><b>browse → cart</b>: 60.0% → 83.3% (+23.3 points): mix -2.5, rate +25.8; largest: "
            "<b>social</b> +13.3 (mix +5.8, rate +7.5), <b>email</b> +10.0 (mix -8.3, rate +18.3)</li>") in page
    # The goal's line is conversion from the first stage: 1 of 5 -> 2 of 6.
    assert "<li><b>browse → buy</b>: 20.0% → 33.3% (+13.3 points)" in page


def test_a_first_night_has_nothing_to_compare(tmp_path: Path) -> None:
    from cjm_analytics.report.marts import read_marts
    from cjm_analytics.report.pages import PAGES
    from cjm_analytics.report.pages.overview import overview_body
    from cjm_analytics.warehouse import connect

    write_csv(tmp_path / "web" / "night1.csv", NIGHT_1)
    config = make_config(tmp_path)
    run_steps(config, run_started=RUN_STARTED)
    con = connect(config.warehouse, read_only=True)
    try:
        assert "What changed" not in overview_body(read_marts(con), PAGES)
    finally:
        con.close()
