"""The journey_map mart (docs/marts.md) against an independent pandas computation of every measure, on a hand-made
fixture with two personas and on the sample; and the page built from it, with markup in persona and touchpoint
names.

The oracle reads the core `events` table (its own tests hold it to the raw files) and, for properties, the raw
files or `raw_events`; it follows docs/marts.md in plain pandas, never our SQL.

The fixture: 24 customers over stages browse (landing, product_view) < cart (add_to_cart) < buy (order, the goal)
< renew (renewal, after the goal); persona = the CRM-style property `plan` (PRO or BASIC, markup both), every
third customer PRO. Even customers open a `CHAT` (markup, unmapped) while browsing, which goes with reaching the
cart: the moment of truth of browse. Channels ads/email/none rotate. No surveys, no support events configured.
"""

from __future__ import annotations

import html
import json
import math
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from cjm_analytics.config import Config
from cjm_analytics.errors import ConfigError
from cjm_analytics.nightly import run_nightly
from tests.fixtures import make_config, write_csv

PRO = "<b>pro</b>"
BASIC = '<a href="https://example.com">basic</a>'
CHAT = "<img src=x onerror=alert(1)>chat"
STAGES = [
    {"name": "browse", "events": ["landing", "product_view"]},
    {"name": "cart", "events": ["add_to_cart"]},
    {"name": "buy", "events": ["order"]},
    {"name": "renew", "events": ["renewal"]},
]
Z = 1.959964
KEY = ["persona_type", "persona", "stage_order"]


def fixture_events() -> str:
    start = datetime(2026, 11, 1, 8, 0)
    lines = ["event_id,user_id,event,ts,channel,plan"]
    n = 0

    def add(i: int, event: str, minutes: float, channel: str = "", plan: str = "") -> None:
        nonlocal n
        n += 1
        ts = (start + timedelta(days=i % 5, minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")
        quoted = '"' + plan.replace('"', '""') + '"' if plan else ""
        lines.append(f"{n},u{i},{event},{ts},{channel},{quoted}")

    for i in range(24):
        plan = PRO if i % 3 == 0 else BASIC
        channel = ("ads", "email", "")[i % 3]
        add(i, "landing", 0, channel, plan)
        if i % 2 == 0:
            add(i, CHAT, 3 + i % 4)
        if i % 4 != 1:
            add(i, "product_view", 10 + i)
        goes_to_cart = i % 2 == 0 or i % 7 == 3
        if goes_to_cart:
            add(i, "add_to_cart", 60 + 5 * i, "email" if i % 5 == 0 else "")
            add(i, "product_view", 70 + 5 * i)  # back to browsing: still at cart for the map (latest stage)
        if goes_to_cart and i % 3 != 2:
            add(i, "order", 600 + 30 * i, "ads" if i % 4 == 0 else "")
            if i % 4 == 0:
                add(i, "renewal", 3000 + i)
    return "\n".join(lines) + "\n"


# --- the oracle ----------------------------------------------------------------------------------------------


def wilson(hits: float, n: float) -> tuple[float, float]:
    p = hits / n
    centre = (p + Z**2 / (2 * n)) / (1 + Z**2 / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2)) / (1 + Z**2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def oracle(events: pd.DataFrame, personas: pd.DataFrame, goal_order: int, n_stages: int,
           min_support: int) -> dict[str, pd.DataFrame]:
    """Every measure from core events (customer_key, event_number, ts, touchpoint, event_name, stage_order,
    channel, session_number) and personas (customer_key, persona_type, persona)."""
    ev = events.sort_values(["customer_key", "event_number"]).copy()
    ev["touchpoint"] = ev["touchpoint"].fillna(ev["event_name"])
    mapped = ev[ev["stage_order"].notna()]
    journeys = mapped.groupby("customer_key")["stage_order"].max().rename("furthest").reset_index()
    last = ev.groupby("customer_key").last()["touchpoint"].rename("last_touchpoint")
    journeys = journeys.join(last, on="customer_key")
    people = personas.merge(journeys, on="customer_key")  # journey customers only
    out: dict[str, pd.DataFrame] = {}

    # Ladder.
    rows = []
    for (ptype, persona), g in people.groupby(["persona_type", "persona"]):
        for k in range(1, n_stages + 1):
            reached = int((g["furthest"] >= k).sum())
            nxt = int((g["furthest"] >= k + 1).sum()) if k < n_stages else None
            rows.append({"persona_type": ptype, "persona": persona, "stage_order": k, "reached": reached,
                         "ended": int((g["furthest"] == k).sum()), "next": nxt})
    out["ladder"] = pd.DataFrame(rows)

    # Placement: the stage of the latest mapped event at or before each event (the highest at equal times).
    moments = mapped.groupby(["customer_key", "ts"])["stage_order"].max().reset_index().sort_values("ts")
    placed = pd.merge_asof(ev.sort_values("ts").drop(columns="stage_order"), moments, on="ts", by="customer_key",
                           direction="backward").dropna(subset=["stage_order"])
    entries = mapped.groupby(["customer_key", "stage_order"])["ts"].min().rename("entry").reset_index()
    later = entries.merge(mapped[["customer_key", "stage_order", "ts"]], on="customer_key", suffixes=("", "_later"))
    later = later[(later["stage_order_later"] > later["stage_order"]) & (later["ts"] >= later["entry"])]
    moved = later.groupby(["customer_key", "stage_order"])["ts"].min().rename("moved")
    entries = entries.join(moved, on=["customer_key", "stage_order"])
    placed = placed.merge(entries, on=["customer_key", "stage_order"])
    placed = placed.merge(people[["customer_key", "persona_type", "persona"]], on="customer_key")

    stay = entries.dropna(subset=["moved"]).merge(people, on="customer_key")
    stay["hours"] = (stay["moved"] - stay["entry"]).dt.total_seconds() / 3600
    out["stay"] = stay.groupby(KEY)["hours"].agg(
        median=lambda h: h.quantile(0.5), p90=lambda h: h.quantile(0.9), n="count").reset_index()

    stage_customers = placed.groupby(KEY)["customer_key"].nunique().rename("base")
    touch = placed.groupby([*KEY, "touchpoint"])["customer_key"].nunique().rename("hits").reset_index()
    touch = touch.join(stage_customers, on=KEY)
    out["touchpoints"] = _ranked(touch, "touchpoint")

    session_channel = (ev.dropna(subset=["channel"]).groupby(["customer_key", "session_number"])["channel"]
                       .first().rename("session_channel"))
    sessions = placed[[*KEY, "customer_key", "session_number"]].drop_duplicates()
    sessions = sessions.join(session_channel, on=["customer_key", "session_number"])
    sessions["label"] = sessions["session_channel"].fillna("(no channel)")
    base = sessions.groupby(KEY).size().rename("base")
    mix = sessions.groupby([*KEY, "label"]).size().rename("hits").reset_index().join(base, on=KEY)
    out["channels"] = _ranked(mix.rename(columns={"label": "touchpoint"}), "touchpoint")

    lost = people[people["furthest"] < goal_order].rename(columns={"furthest": "stage_order"})
    lost_base = lost.groupby(KEY).size().rename("base")
    last_tp = lost.groupby([*KEY, "last_touchpoint"]).size().rename("hits").reset_index().join(lost_base, on=KEY)
    out["lost_last"] = _ranked(last_tp.rename(columns={"last_touchpoint": "touchpoint"}), "touchpoint", top=3)

    # Drivers of going from stage k to k + 1 (analysis.drivers' definition), for the touchpoints of stage k.
    drivers = []
    for k in range(1, goal_order):
        stage_tps = set(placed[(placed["stage_order"] == k)
                               & (placed["moved"].isna() | (placed["ts"] < placed["moved"]))]["touchpoint"])
        # A converter's history stops before their first event at k + 1 or beyond; the rest's runs to the end.
        cut = ev[ev["stage_order"].fillna(0) >= k + 1].groupby("customer_key")["event_number"].min()
        hist = ev[(ev["event_number"] < ev["customer_key"].map(cut).fillna(np.inf))
                  & (ev["stage_order"].fillna(0) < k + 1) & ev["touchpoint"].isin(stage_tps)]
        flags = hist[["customer_key", "touchpoint"]].drop_duplicates()
        pop = people[people["furthest"] >= k].copy()
        pop["conv"] = pop["furthest"] >= k + 1
        totals = pop.groupby(["persona_type", "persona"])["conv"].agg(n="size", n_conv="sum")
        with_ = (flags.merge(pop, on="customer_key").groupby(["persona_type", "persona", "touchpoint"])["conv"]
                 .agg(n_with="size", a="sum").reset_index().join(totals, on=["persona_type", "persona"]))
        for r in with_.to_dict("records"):
            n_with, a = int(r["n_with"]), int(r["a"])
            n_without, c = int(r["n"]) - n_with, int(r["n_conv"]) - a
            if n_with < min_support or n_without < min_support:
                continue
            b, d = n_with - a, n_without - c
            cells = [a, b, c, d] if 0 not in (a, b, c, d) else [x + 0.5 for x in (a, b, c, d)]
            drivers.append({"persona_type": r["persona_type"], "persona": r["persona"], "stage_order": k,
                            "touchpoint": r["touchpoint"], "population": int(r["n"]), "customers_with": n_with,
                            "rate_with": a / n_with, "rate_without": c / n_without,
                            "odds_ratio": cells[0] * cells[3] / (cells[1] * cells[2])})
    out["drivers"] = pd.DataFrame(drivers)
    return {name: f.astype({"stage_order": "int64"}) if "stage_order" in f else f for name, f in out.items()}


def _ranked(frame: pd.DataFrame, label: str, top: int = 5) -> pd.DataFrame:
    frame = frame.sort_values([*KEY, "hits", label], ascending=[True, True, True, False, True])
    frame["rank"] = frame.groupby(KEY).cumcount() + 1
    return frame[frame["rank"] <= top].assign(share=lambda f: f["hits"] / f["base"])


# --- comparing ----------------------------------------------------------------------------------------------


def mart(cfg: Config) -> pd.DataFrame:
    con = duckdb.connect(str(cfg.warehouse), read_only=True)
    try:
        return con.execute("SELECT * FROM journey_map").fetchdf()
    finally:
        con.close()


def measure(jm: pd.DataFrame, name: str) -> pd.DataFrame:
    return jm[jm["measure"] == name].astype({"stage_order": "int64"})


def assert_matches(jm: pd.DataFrame, want: dict[str, pd.DataFrame], goal_order: int, n_stages: int) -> None:
    ladder = want["ladder"].set_index(KEY)
    for name, column in (("reached", "reached"),):
        got = measure(jm, name).set_index(KEY)["value"]
        pd.testing.assert_series_equal(got.sort_index(), ladder[column].astype(float).sort_index(),
                                       check_names=False)
    lost = measure(jm, "lost").set_index(KEY)["value"].sort_index()
    done = measure(jm, "completed").set_index(KEY)["value"].sort_index()
    assert (lost.index.get_level_values("stage_order") < goal_order).all()
    assert (done.index.get_level_values("stage_order") >= goal_order).all()
    ended = ladder["ended"].astype(float)
    pd.testing.assert_series_equal(pd.concat([lost, done]).sort_index(), ended.sort_index(), check_names=False)

    conv = measure(jm, "conversion_to_next").set_index(KEY).sort_index()
    expect = ladder.dropna(subset=["next"]).sort_index()
    assert list(conv.index) == list(expect.index[expect["reached"] > 0])
    for key, r in conv.iterrows():
        e = expect.loc[key]
        assert r["value"] == pytest.approx(e["next"] / e["reached"])
        assert (r["ci_low"], r["ci_high"]) == pytest.approx(wilson(e["next"], e["reached"]))

    stay = want["stay"].set_index(KEY).sort_index()
    for name, column in (("time_in_stage_median_hours", "median"), ("time_in_stage_p90_hours", "p90")):
        got = measure(jm, name).set_index(KEY).sort_index()
        assert list(got.index) == list(stay.index)
        np.testing.assert_allclose(got["value"], stay[column], rtol=1e-9)
        np.testing.assert_array_equal(got["customers"], stay["n"])

    for name, frame in (("top_touchpoint", want["touchpoints"]), ("channel_mix", want["channels"]),
                        ("lost_last_touchpoint", want["lost_last"])):
        got = measure(jm, name).set_index([*KEY, "rank"]).sort_index()
        exp = frame.set_index([*KEY, "rank"]).sort_index()
        assert list(got.index) == list(exp.index), name
        assert list(got["label"]) == list(exp["touchpoint"]), name
        np.testing.assert_allclose(got["value"], exp["share"], rtol=1e-12, err_msg=name)
        np.testing.assert_array_equal(got["hits"], exp["hits"], err_msg=name)

    drivers = want["drivers"].set_index([*KEY, "touchpoint"]) if not want["drivers"].empty else None
    moments = measure(jm, "moment_of_truth")
    for r in moments.to_dict("records"):
        assert drivers is not None
        d = drivers.loc[(r["persona_type"], r["persona"], r["stage_order"], r["label"])]
        assert (r["customers"], r["hits"]) == (d["population"], d["customers_with"])
        assert (r["rate_with"], r["rate_without"], r["value"]) == pytest.approx(
            (d["rate_with"], d["rate_without"], d["odds_ratio"]))
    if drivers is not None:  # each stage shows its three strongest candidates, or all when there are fewer
        tested = drivers.groupby(level=KEY).size()
        shown = moments.groupby(KEY).size()
        for key, n in tested.items():
            size = ladder.loc[key, "reached"]
            if size >= 2 * 2:  # the persona is read (not too small) at this stage
                assert shown.get(key, 0) == min(3, n), key
    for r in measure(jm, "opportunity").to_dict("records"):
        lost_here = ladder.loc[(r["persona_type"], r["persona"], r["stage_order"]), "ended"]
        assert r["customers"] == lost_here and r["stage_order"] < goal_order
        assert r["value"] == pytest.approx(lost_here * (r["rate_with"] - r["rate_without"]))
        assert r["significant"] and r["rate_with"] > r["rate_without"]


# --- the hand-made fixture ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_personas(tmp_path_factory: pytest.TempPathFactory) -> Config:
    root = tmp_path_factory.mktemp("journey-map")
    write_csv(root / "web" / "events.csv", fixture_events())
    columns = {"event_id": "event_id", "customer_id": "user_id", "event_name": "event", "timestamp": "ts",
               "channel": "channel"}
    cfg = make_config(root, sources=[{"name": "web", "kind": "clickstream", "path": "web/*", "columns": columns}],
                      stages=STAGES, goal="buy", journey_map={"personas": ["plan"], "min_customers": 2})
    run_nightly(cfg)
    return cfg


def test_every_number_of_the_fixture_map_is_counted_again_in_pandas(two_personas: Config) -> None:
    cfg = two_personas
    con = duckdb.connect(str(cfg.warehouse), read_only=True)
    events = con.execute("SELECT * FROM events").fetchdf()
    con.close()
    raw = pd.read_csv(cfg.sources[0].files()[0], dtype=str, keep_default_na=False)
    plans = raw[raw["plan"] != ""].groupby("user_id")["plan"].first()
    personas = pd.concat([
        pd.DataFrame({"customer_key": events["customer_key"].unique(), "persona_type": "all",
                      "persona": "all customers"}),
        pd.DataFrame({"customer_key": plans.index, "persona_type": "plan", "persona": plans.values}),
    ])
    want = oracle(events, personas, goal_order=3, n_stages=4, min_support=2)
    jm = mart(cfg)
    # Both personas are there, under their own names (markup is data), with their sizes.
    sizes = jm[jm["persona_type"] == "plan"].groupby("persona")["persona_size"].first().to_dict()
    assert sizes == {PRO: 8, BASIC: 16}
    assert_matches(jm, want, goal_order=3, n_stages=4)
    # The planted driver: customers who chatted while browsing went on to the cart (all 12 did, 2 of 12 others).
    chat = measure(jm, "moment_of_truth")
    chat = chat[(chat["persona_type"] == "all") & (chat["label"] == CHAT)].iloc[0]
    assert (chat["stage"], chat["rate_with"], chat["rate_without"], bool(chat["significant"])) == (
        "browse", 1.0, pytest.approx(2 / 12), True)
    opportunity = measure(jm, "opportunity")
    browse = opportunity[(opportunity["persona_type"] == "all") & (opportunity["stage"] == "browse")].iloc[0]
    assert (browse["label"], browse["value"]) == (CHAT, pytest.approx(10 * (1 - 2 / 12)))
    # Without surveys or support events their rows are absent (never 0), and the mart says they are not set up.
    assert not jm["measure"].isin(["emotion_mean_score", "nps", "csat_mean", "lost_support_share",
                                   "lost_low_score_share"]).any()
    flags = jm[jm["measure"].str.endswith("_configured")].set_index("measure")["value"].to_dict()
    assert flags == {"surveys_configured": 0.0, "support_configured": 0.0}
    # After the goal a journey that ends is completed: no stage at or after buy has lost customers.
    assert set(measure(jm, "completed")["stage"]) == {"buy", "renew"}
    # The personas' conversion against the rest of their type.
    conv = measure(jm, "persona_conversion").set_index("persona")
    assert conv.loc[PRO, "value"] == pytest.approx(5 / 8) and conv.loc[PRO, "rate_without"] == pytest.approx(4 / 16)


def test_the_map_is_published_with_the_marts(two_personas: Config) -> None:
    current = two_personas.marts / "current"
    published = pd.read_parquet(current / "parquet" / "journey_map" / "data.parquet")
    assert len(published) == len(mart(two_personas))
    con = duckdb.connect(str(current / "marts.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM journey_map").fetchone() == (len(published),)
    con.close()


def test_the_page_escapes_persona_and_touchpoint_names(two_personas: Config) -> None:
    text = (two_personas.reports / "journey-map.html").read_text(encoding="utf-8")
    for name in (PRO, BASIC, CHAT):
        assert name not in text
        assert html.escape(name) in text
    assert "onerror" not in text.replace(html.escape(CHAT), "")
    # Not configured is said, not 0.
    assert "contacted support: <span class=\"jm-none\">not configured</span>" in text
    assert "low survey score: <span class=\"jm-none\">not configured</span>" in text


# --- the sample --------------------------------------------------------------------------------------------


def test_every_number_of_the_sample_map_is_counted_again_in_pandas(sample: Config) -> None:
    con = duckdb.connect(str(sample.warehouse), read_only=True)
    events = con.execute("SELECT * FROM events").fetchdf()
    raw = con.execute("SELECT source, event_id, properties FROM raw_events").fetchdf()
    jm = con.execute("SELECT * FROM journey_map").fetchdf()
    funnel = con.execute("SELECT stage_order, reached FROM stage_funnel").fetchdf()
    con.close()
    first = events.dropna(subset=["channel"]).sort_values("event_number").groupby("customer_key")["channel"].first()
    # The map keeps the 8 largest channels (config default) and folds the rest into "(other)".
    top = first.value_counts().sort_index().sort_values(ascending=False, kind="stable").index[:8]
    channel = events[["customer_key"]].drop_duplicates().join(first, on="customer_key")
    channel["persona"] = np.where(channel["channel"].isna(), "(none)",
                                  np.where(channel["channel"].isin(top), channel["channel"], "(other)"))
    personas = pd.concat([
        channel[["customer_key"]].assign(persona_type="all", persona="all customers"),
        channel[["customer_key", "persona"]].assign(persona_type="first_touch_channel"),
    ])
    want = oracle(events, personas, goal_order=sample.goal_order, n_stages=len(sample.stages), min_support=30)
    assert_matches(jm, want, goal_order=sample.goal_order, n_stages=len(sample.stages))
    # For all customers the map's reach is the stage funnel's.
    all_reached = measure(jm, "reached")
    all_reached = all_reached[all_reached["persona_type"] == "all"].set_index("stage_order")["value"]
    assert list(all_reached.sort_index()) == list(funnel.sort_values("stage_order")["reached"].astype(float))

    # Emotion: survey answers (nps 0-10, csat 1-5) at the stage the customer was at, for all customers.
    answers = events[events["event_name"].isin(["nps_response", "csat_response"])].merge(
        raw, on=["source", "event_id"])
    answers["raw"] = pd.to_numeric(answers["properties"].map(lambda p: json.loads(p).get("score")), errors="coerce")
    nps = answers["event_name"] == "nps_response"
    lo, hi = np.where(nps, 0, 1), np.where(nps, 10, 5)
    answers = answers[(answers["raw"] >= lo) & (answers["raw"] <= hi)].copy()
    answers["score"] = (answers["raw"] - np.where(answers["event_name"] == "nps_response", 0, 1)) / np.where(
        answers["event_name"] == "nps_response", 10, 4)
    mapped = events.dropna(subset=["stage_order"]).groupby(["customer_key", "ts"])["stage_order"].max()
    placed = pd.merge_asof(answers.sort_values("ts"), mapped.reset_index().sort_values("ts"), on="ts",
                           by="customer_key", suffixes=("_own", "")).dropna(subset=["stage_order"])
    got = measure(jm, "emotion_mean_score")
    got = got[got["persona_type"] == "all"].set_index("stage_order")
    want_mean = placed.groupby("stage_order")["score"].mean()
    np.testing.assert_allclose(got["value"].sort_index(), want_mean.sort_index(), rtol=1e-12)
    got_nps = measure(jm, "nps")
    got_nps = got_nps[got_nps["persona_type"] == "all"].set_index("stage_order")["value"].sort_index()
    p = placed[placed["event_name"] == "nps_response"]
    want_nps = p.groupby("stage_order")["raw"].agg(lambda s: 100 * ((s >= 9).mean() - (s <= 6).mean()))
    np.testing.assert_allclose(got_nps, want_nps.sort_index(), rtol=1e-12)

    # Support contacts of the customers lost at each stage (support_events: support_ticket_opened).
    lost = measure(jm, "lost_support_share")
    lost = lost[lost["persona_type"] == "all"].set_index("stage_order")
    furthest = events.dropna(subset=["stage_order"]).groupby("customer_key")["stage_order"].max()
    supported = set(events[events["event_name"] == "support_ticket_opened"]["customer_key"])
    for k, r in lost.iterrows():
        who = furthest[furthest == k].index
        assert (r["customers"], r["hits"]) == (len(who), sum(c in supported for c in who))


def test_moments_of_truth_are_the_drivers_of_all_customers(sample: Config) -> None:
    """For all customers, a moment of truth is conversion_drivers' row for the touchpoint (the q-value aside: the
    map corrects over the stage's own touchpoints)."""
    from cjm_analytics.analysis.drivers import conversion_drivers

    con = duckdb.connect(str(sample.warehouse), read_only=True)
    moments = con.execute("SELECT stage, stage_order, label, value, customers, hits, rate_with, rate_without, "
                          "p_value FROM journey_map WHERE persona_type = 'all' AND measure = 'moment_of_truth'"
                          ).fetchdf()
    stages = [s.name for s in sample.stages]
    assert set(moments["stage_order"]) == set(range(1, sample.goal_order))
    for order, group in moments.groupby("stage_order"):
        drivers = conversion_drivers(con, stages[int(order) - 1], stages[int(order)], kinds=("touchpoint",),
                                     min_support=sample.journey_map.min_customers).set_index("value")
        for r in group.to_dict("records"):
            d = drivers.loc[r["label"]]
            assert (r["customers"], r["hits"]) == (d["population"], d["customers_with"])
            assert (r["value"], r["rate_with"], r["rate_without"], r["p_value"]) == pytest.approx(
                (d["odds_ratio"], d["rate_with"], d["rate_without"], d["p_value"]))
    con.close()


def test_the_maps_driver_candidates_are_those_of_every_event_before_the_cutoff(sample: Config) -> None:
    """The map reads each customer's first event per touchpoint (touchpoint_firsts); the drivers' own history reads
    every event before the cutoff (analysis/drivers_history.sql): the same customers have the same touchpoints."""
    from cjm_analytics.analysis.drivers import collect_candidates
    from cjm_analytics.sql_steps import run_sql

    con = duckdb.connect(str(sample.warehouse), read_only=True)
    touchpoints = [str(t) for (t,) in con.execute("SELECT DISTINCT touchpoint FROM events "
                                                  "WHERE touchpoint IS NOT NULL").fetchall()]
    flags = "SELECT customer_key, converted, value FROM cjm_driver_flags WHERE kind = 'touchpoint' ORDER BY ALL"
    checked = 0
    for order in range(1, sample.goal_order):
        collect_candidates(con, order, order + 1, ["touchpoint"], None, 20)
        want = con.execute(flags).fetchall()
        run_sql(con, "marts/journey_map_driver_flags", touchpoints=touchpoints, population="cjm_driver_population")
        assert con.execute(flags).fetchall() == want
        checked += len(want)
    assert checked > 100
    con.close()


@pytest.mark.parametrize(("section", "message"), [
    ({"personas": ["plan", "plan"]}, "journey_map.personas: duplicate persona type(s) plan"),
    ({"personas": [""]}, "journey_map.personas[0]: String should have at least 1 character"),
    ({"min_customers": 0}, "journey_map.min_customers: Input should be greater than or equal to 1"),
    ({"persona": ["plan"]}, "journey_map.persona: unknown key (did you mean 'personas'?)"),
])
def test_a_wrong_journey_map_section_is_one_line(tmp_path: Path, section: dict[str, object], message: str) -> None:
    write_csv(tmp_path / "web" / "events.csv", "event_id,user_id,event,ts\n1,u1,landing,2026-11-01T10:00:00Z")
    with pytest.raises(ConfigError) as e:
        make_config(tmp_path, journey_map=section)
    assert str(e.value) == f"test.yaml: {message}"


def test_the_maps_driver_counts_from_the_summaries_are_those_counted_over_every_customer(sample: Config) -> None:
    """The personas of all customers and of first-touch channel take their drivers' counts from the maintained
    summaries (marts.maintain_summaries); counted over every customer (stage_driver_counts), they are the same."""
    from cjm_analytics.analysis.journey_map import (
        SUMMARIZED_TYPES,
        build_personas,
        stage_driver_counts,
        summary_driver_counts,
    )
    from cjm_analytics.sql_steps import run_sql

    con = duckdb.connect(str(sample.warehouse), read_only=True)
    build_personas(con, sample)
    run_sql(con, "marts/journey_map_prepare")
    run_sql(con, "marts/journey_map_segment_personas", persona_types=list(SUMMARIZED_TYPES))
    assert set(sample.journey_map.personas) <= set(SUMMARIZED_TYPES)
    checked = 0
    for order in range(1, sample.goal_order):
        touchpoints = [str(t) for (t,) in con.execute("SELECT DISTINCT touchpoint FROM stage_touchpoints "
                                                      "WHERE stage_order = ? ORDER BY 1", [order]).fetchall()]
        want = stage_driver_counts(con, order, touchpoints, 1)  # every count, not only those a test reads
        got = summary_driver_counts(con, order, touchpoints, 1)
        pd.testing.assert_frame_equal(got, want, check_dtype=False)
        checked += len(got)
    assert checked > 100
    con.close()
