"""The benchmark's generator and pandas baseline (benchmarks/): deterministic, the advertised shape, and the
baseline agreeing with the product at a small size (it is an independent implementation of the definitions,
so it doubles as a correctness check of the pipeline). No timings are asserted."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from benchmarks import pandas_baseline
from benchmarks.generate import DAYS, EVENT_NAMES, START, config_dict, generate
from cjm_analytics.config import parse_config
from tests.fixtures import run_steps

pytestmark = pytest.mark.slow

EVENTS = 20_000


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "data"
    generate(out, EVENTS, seed=7)
    return out


@pytest.fixture(scope="module")
def events(data: Path) -> pd.DataFrame:
    """All rows of both sources under common names (customer = user id, else anonymous id)."""
    con = duckdb.connect()
    return con.execute(f"""
        SELECT 'web' AS source, coalesce(user_id, anonymous_id) AS who, user_id, anonymous_id, event AS name, ts
        FROM read_parquet('{data}/clickstream/*.parquet')
        UNION ALL
        SELECT 'crm', customer_id, customer_id, NULL, activity, make_timestamp(occurred_at * 1000)
        FROM read_parquet('{data}/crm/*.parquet')
    """).df()


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.parquet"))}


def test_a_seed_gives_the_same_files_and_another_seed_other_ones(data: Path, tmp_path: Path) -> None:
    generate(tmp_path / "again", EVENTS, seed=7)
    assert _files(tmp_path / "again") == _files(data)
    generate(tmp_path / "other", EVENTS, seed=8)
    assert _files(tmp_path / "other") != _files(data)


def test_the_advertised_shape(data: Path, events: pd.DataFrame) -> None:
    assert len(events) == EVENTS
    # One file per source and day with rows, 30 days from START.
    assert len(list((data / "clickstream").glob("*.parquet"))) == DAYS
    assert DAYS - 3 <= len(list((data / "crm").glob("*.parquet"))) <= DAYS
    assert events.ts.min() >= START.replace(tzinfo=None)
    assert events.ts.max() < START.replace(tzinfo=None) + timedelta(days=DAYS)
    assert events.ts.dt.date.nunique() == DAYS
    # ~20 events per customer (a customer: a user id, or an anonymous id never seen with one).
    stitched = events.dropna(subset=["user_id", "anonymous_id"]).drop_duplicates("anonymous_id", keep="last")
    key = events.user_id.fillna(events.anonymous_id.map(stitched.set_index("anonymous_id").user_id))
    key = key.fillna(events.anonymous_id)
    assert 15 <= EVENTS / key.nunique() <= 25
    # ~30 event names, all of them known; CRM is a second source of roughly a tenth of the rows.
    assert set(events.name) <= set(EVENT_NAMES)
    assert 28 <= events.name.nunique() <= len(EVENT_NAMES) <= 36
    assert 0.05 <= (events.source == "crm").mean() <= 0.2


def test_visitors_log_in_later_and_sessions_split_on_gaps(events: pd.DataFrame) -> None:
    web = events[events.source == "web"]
    anonymous_rows = web[web.user_id.isna()].anonymous_id
    logged_in_rows = web[web.user_id.notna()].anonymous_id
    later_logins = set(anonymous_rows) & set(logged_in_rows)
    assert len(later_logins) > 0.1 * web.anonymous_id.nunique()
    assert {"login", "signup"} <= set(web.name)
    ordered = web.sort_values(["anonymous_id", "ts"])
    gaps = ordered.ts.diff()[ordered.anonymous_id.eq(ordered.anonymous_id.shift())].dt.total_seconds()
    assert (gaps < 30 * 60).mean() > 0.7  # most gaps are seconds to minutes
    assert (gaps > 3600).mean() > 0.05 and (gaps > 86400).any()  # some hours, some days
    assert (gaps == 1800).any() and (gaps == 1801).any()  # the timeout's edge, both sides
    assert (gaps == 0).any()  # ties


def test_the_pandas_baseline_agrees_with_the_pipeline(data: Path, tmp_path: Path) -> None:
    cfg = parse_config(config_dict(data, warehouse=str(tmp_path / "cjm.duckdb"), reports=str(tmp_path / "reports")),
                       tmp_path, "benchmark config")
    ctx = run_steps(cfg)  # the nightly steps up to the marts
    con = duckdb.connect(str(cfg.warehouse), read_only=True)
    funnel = con.execute("SELECT stage, reached, exited FROM stage_funnel ORDER BY stage_order").df()
    edges = con.execute("SELECT from_stage, to_stage, transitions, customers, probability, median_hours "
                        "FROM stage_transitions ORDER BY from_order, to_order").df()
    counts = con.execute("SELECT (SELECT count(*) FROM sessions), (SELECT count(*) FROM journeys)").fetchone()
    con.close()

    theirs = pandas_baseline.run(cfg, ctx.run_started)
    assert theirs.stage_funnel is not None and theirs.stage_transitions is not None
    pd.testing.assert_frame_equal(funnel, theirs.stage_funnel[["stage", "reached", "exited"]], check_dtype=False)
    assert (funnel.reached > 0).all()  # every stage is reached by someone at this size
    their_edges = theirs.stage_transitions[list(edges.columns)]
    exact = ["from_stage", "to_stage", "transitions", "customers"]
    pd.testing.assert_frame_equal(edges[exact], their_edges[exact], check_dtype=False)
    assert np.allclose(edges.probability, their_edges.probability)
    assert np.allclose(edges.median_hours.astype(float), their_edges.median_hours.astype(float), equal_nan=True)
    assert (theirs.counts["sessions"], theirs.counts["journeys"]) == counts
