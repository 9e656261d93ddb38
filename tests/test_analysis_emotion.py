"""The emotion curve on a fixture counted by hand, and its means on the sample against pandas.

Stages: browse (product_*, landing) < cart (add_to_cart) < buy (order). Surveys: nps (property score, 0-10)
and csat* (property rating, 1-5). All times 2026-11-01 UTC. Normalized = (score - min) / (max - min).

    customer  events                                                 answers -> stage (latest stage event at or before)
    e1        landing 10:00, nps 10:05 (10)                          nps 10 -> browse (1.0, promoter)
    e2        nps 09:00 (3), landing 09:30                           nps 3 -> (before first stage) (0.3, detractor)
    e3        landing 10:00, add_to_cart 10:10, nps 10:10 (8)        nps 8 -> cart: same time counts (0.8, passive)
    e4        add_to_cart 11:00, order 12:00, csat 12:30 (4)         csat 4 -> buy (0.75)
    e5        landing 10:00, add_to_cart 10:30, csat 10:40 (2),      csat 2 -> cart (0.25); nps 'abc' -> cart, invalid
              nps 10:50 ('abc')
    e6        landing 10:00, nps 10:01 (11), csat_web 10:02 (5)      nps 11 -> browse, invalid (above 10); csat 5 ->
                                                                     browse (1.0)
    e7        order 09:00, nps 09:10 (6), csat 09:20 (no rating)     nps 6 -> buy (0.6, detractor); csat -> invalid
    e8        landing 08:00, add_to_cart 08:10, landing 08:20,       nps 9 -> browse: the latest stage, not the furthest
              nps 08:30 (9)                                          (0.9, promoter)
    e9        landing 15:00, add_to_cart 15:00, csat 15:00 (3)       csat 3 -> cart: at equal times the higher stage
                                                                     comes later in the path (0.5)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from statistics import mean, stdev
from typing import Any

import duckdb
import pandas as pd
import pytest

from cjm_analytics import analyze_cli
from cjm_analytics.analysis.emotion import emotion_curve
from cjm_analytics.config import Analysis, Config
from cjm_analytics.warehouse import connect
from tests.fixtures import built_warehouse

EVENTS = """
    event_id,anonymous_id,user_id,event,ts,channel,score,rating
    a01,,e1,landing,2026-11-01T10:00:00Z,,,
    a02,,e1,nps,2026-11-01T10:05:00Z,,10,
    a03,,e2,nps,2026-11-01T09:00:00Z,,3,
    a04,,e2,landing,2026-11-01T09:30:00Z,,,
    a05,,e3,landing,2026-11-01T10:00:00Z,,,
    a06,,e3,add_to_cart,2026-11-01T10:10:00Z,,,
    a07,,e3,nps,2026-11-01T10:10:00Z,,8,
    a08,,e4,add_to_cart,2026-11-01T11:00:00Z,,,
    a09,,e4,order,2026-11-01T12:00:00Z,,,
    a10,,e4,csat,2026-11-01T12:30:00Z,,,4
    a11,,e5,landing,2026-11-01T10:00:00Z,,,
    a12,,e5,add_to_cart,2026-11-01T10:30:00Z,,,
    a13,,e5,csat,2026-11-01T10:40:00Z,,,2
    a14,,e5,nps,2026-11-01T10:50:00Z,,abc,
    a15,,e6,landing,2026-11-01T10:00:00Z,,,
    a16,,e6,nps,2026-11-01T10:01:00Z,,11,
    a17,,e6,csat_web,2026-11-01T10:02:00Z,,,5
    a18,,e7,order,2026-11-01T09:00:00Z,,,
    a19,,e7,nps,2026-11-01T09:10:00Z,,6,
    a20,,e7,csat,2026-11-01T09:20:00Z,,,
    a21,,e8,landing,2026-11-01T08:00:00Z,,,
    a22,,e8,add_to_cart,2026-11-01T08:10:00Z,,,
    a23,,e8,landing,2026-11-01T08:20:00Z,,,
    a24,,e8,nps,2026-11-01T08:30:00Z,,9,
    a25,,e9,landing,2026-11-01T15:00:00Z,,,
    a26,,e9,add_to_cart,2026-11-01T15:00:00Z,,,
    a27,,e9,csat,2026-11-01T15:00:00Z,,,3
"""
SURVEYS = [{"event": "nps", "score": "score", "kind": "nps"}, {"event": "csat*", "score": "rating", "kind": "csat"}]
COLUMNS = ["stage", "stage_order", "responses", "mean_score", "ci_low", "ci_high", "nps", "nps_responses",
           "csat_mean", "csat_responses", "invalid_responses"]
Z = 1.959964

# The valid normalized scores per stage, as listed in the docstring.
SCORES = {"(before first stage)": [0.3], "browse": [1.0, 1.0, 0.9], "cart": [0.8, 0.25, 0.5], "buy": [0.75, 0.6]}


def _interval(scores: list[float]) -> tuple[float, float]:
    m, half = mean(scores), Z * stdev(scores) / len(scores) ** 0.5
    return max(m - half, 0.0), min(m + half, 1.0)


EXPECTED = [
    # stage, order, responses, mean, ci, nps, nps responses, csat mean, csat responses, invalid
    ("(before first stage)", 0, 1, 0.3, (None, None), -100.0, 1, None, 0, 0),  # one answer: no interval
    ("browse", 1, 3, 2.9 / 3, _interval(SCORES["browse"]), 100.0, 2, 5.0, 1, 1),  # the interval is cut at 1
    ("cart", 2, 3, 1.55 / 3, _interval(SCORES["cart"]), 0.0, 1, 2.5, 2, 1),
    ("buy", 3, 2, 0.675, _interval(SCORES["buy"]), -100.0, 1, 4.0, 1, 1),
]


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return built_warehouse(tmp_path_factory.mktemp("emotion"), EVENTS, analysis={"surveys": SURVEYS})


def _row(values: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(None if pd.isna(v) else v for v in values)


@pytest.mark.parametrize(("position", "expected"), list(enumerate(EXPECTED)), ids=[e[0] for e in EXPECTED])
def test_emotion_curve(con: duckdb.DuckDBPyConnection, cfg: Config, position: int,
                       expected: tuple[Any, ...]) -> None:
    df = emotion_curve(con, cfg)
    assert list(df.columns) == COLUMNS
    assert df.stage.tolist() == ["(before first stage)", "browse", "cart", "buy"]
    stage, order, responses, m, (lo, hi), nps, nps_n, csat, csat_n, invalid = expected
    assert _row(tuple(df.iloc[position])) == pytest.approx(
        (stage, order, responses, m, lo, hi, nps, nps_n, csat, csat_n, invalid))


def test_the_browse_interval_is_the_normal_approximation(con: duckdb.DuckDBPyConnection, cfg: Config) -> None:
    # browse: scores 1.0, 1.0, 0.9: mean 0.96667, sd 0.057735, half width 1.959964 x 0.057735 / sqrt 3 = 0.065332.
    row = emotion_curve(con, cfg).set_index("stage").loc["browse"]
    assert row.ci_low == pytest.approx(0.966667 - 0.065332, abs=1e-6)
    assert row.ci_high == 1.0  # 1.031999, cut at the top of the scale


def test_first_matching_survey_wins(con: duckdb.DuckDBPyConnection, cfg: Config) -> None:
    # csat_web matches "csat*" only; a catch-all rating survey listed after it changes nothing for csat events.
    extra = [*SURVEYS, {"event": "*", "score": "rating", "kind": "rating", "min": 0, "max": 100}]
    wider = cfg.model_copy(update={"analysis": Analysis.model_validate({"surveys": extra})})
    df = emotion_curve(con, wider).set_index("stage")
    # Every other event is now a "rating" answer without a rating: invalid, counted, never averaged.
    assert df.responses.tolist() == [1, 3, 3, 2]
    assert df.invalid_responses.sum() == 3 + 15  # the 3 invalid survey answers + the 15 events that are no survey


def test_no_surveys_gives_the_stages_with_no_answers(con: duckdb.DuckDBPyConnection, cfg: Config) -> None:
    bare = cfg.model_copy(update={"analysis": cfg.analysis.model_copy(update={"surveys": []})})
    df = emotion_curve(con, bare)
    assert df.stage.tolist() == ["browse", "cart", "buy"]  # no "(before first stage)" row without an answer there
    assert df.responses.tolist() == [0, 0, 0] and df.mean_score.isna().all()


def test_a_kind_not_configured_is_null_not_zero(con: duckdb.DuckDBPyConnection, cfg: Config) -> None:
    # Only the CSAT survey: NPS is unknown (null) at every stage, not "0 answers"; CSAT is as before.
    csat_only = cfg.model_copy(update={"analysis": Analysis.model_validate({"surveys": SURVEYS[1:]})})
    df = emotion_curve(con, csat_only).set_index("stage")
    assert df.nps_responses.isna().all() and df.nps.isna().all()
    assert df.csat_responses.tolist() == [1, 2, 1]  # browse, cart, buy
    nps_only = cfg.model_copy(update={"analysis": Analysis.model_validate({"surveys": SURVEYS[:1]})})
    df = emotion_curve(con, nps_only).set_index("stage")
    assert df.csat_responses.isna().all() and df.csat_mean.isna().all()
    assert df.nps_responses.tolist() == [1, 2, 1, 1]  # (before first stage), browse, cart, buy


# ---- the sample ---------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_emotion_means_on_the_sample_equal_pandas(sample: Config) -> None:
    c = connect(sample.warehouse, read_only=True)
    try:
        df = emotion_curve(c, sample)
        events = c.execute("SELECT e.customer_key, e.event_name, e.ts, e.stage, e.stage_order, r.properties "
                           "FROM events AS e JOIN raw_events AS r USING (source, event_id)").fetchdf()
    finally:
        c.close()
    # The sample's surveys, written out: nps_response 0-10, csat_response 1-5, both in the property "score".
    assert [(s.event, s.score, s.min, s.max) for s in sample.analysis.surveys] == [
        ("nps_response", "score", 0, 10), ("csat_response", "score", 1, 5)]
    scale = {"nps_response": (0, 10), "csat_response": (1, 5)}
    answers = events[events.event_name.isin(list(scale))].copy()
    answers["raw"] = [float(json.loads(p)["score"]) for p in answers.properties]
    answers["score"] = [(r - scale[e][0]) / (scale[e][1] - scale[e][0])
                        for r, e in zip(answers.raw, answers.event_name, strict=True)]
    # The stage at the answer: the latest stage event at or before it, the higher stage first at equal times.
    mapped = events[events.stage.notna()].sort_values(["ts", "stage_order"])
    placed = pd.merge_asof(answers.sort_values("ts"), mapped[["customer_key", "ts", "stage"]],
                           on="ts", by="customer_key", direction="backward", suffixes=("_answer", ""))
    placed["stage"] = placed["stage"].fillna("(before first stage)")
    expected = placed.groupby("stage").score.agg(["mean", "count"])
    ours = df[df.responses > 0].set_index("stage")
    assert ours.responses.to_dict() == expected["count"].to_dict()
    assert ours.mean_score.to_dict() == pytest.approx(expected["mean"].to_dict())
    nps = placed[placed.event_name == "nps_response"].groupby("stage").raw.agg(
        lambda s: 100 * ((s >= 9).mean() - (s <= 6).mean()))
    assert ours.nps.dropna().to_dict() == pytest.approx(nps.to_dict())
    assert df.stage.tolist()[-6:] == sample.stage_names and df.invalid_responses.sum() == 0


@pytest.mark.slow
def test_cli(sample: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(analyze_cli, "ANALYSIS_MODULES", ("emotion",))
    parser = argparse.ArgumentParser()
    analyze_cli.register_all(parser.add_subparsers(dest="command", required=True))
    out = tmp_path / "emotion.csv"
    args = parser.parse_args(["analyze", "emotion-curve", "--config", str(sample.config_path), "--out", str(out)])
    assert args.func(args) == 0
    assert pd.read_csv(out).columns.tolist() == COLUMNS
    assert (sample.reports / "analysis-emotion-curve.html").exists()
