"""Identity, sessions, paths, funnel, transitions and Sankey links on a fixture counted by hand.

Stages: browse (product_*, landing) < cart (add_to_cart) < buy (order); goal buy; timeout 30 min.

    customer  events (UTC, 2026-11-01 unless said)                      collapsed path         furthest
    u1        a1 anon: landing 10:00, product_view 10:10;               browse,cart,browse,    buy
              a1+u1 login 10:20; add_to_cart 10:50 (gap 30 min          cart,buy
              exactly: same session); product_a 11:20:01 (gap 30m1s:
              new session); add_to_cart 11:25; order 11:30
    u2        order 2026-11-02 09:00 (bought without browsing)          buy                    buy
    u3        a3 anon: product_view 10:00, add_to_cart 10:05 (a3 is     browse,cart            cart
              first seen with u9, then with u3: stitched to u3)
    u9        a3+u9 login 08:00 (unmapped only: not a journey)          -                      -
    a4        product_view 12:00, product_view 12:01 (never logs in)    browse                 browse
"""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import pytest

from cjm_analytics.graph import stage_graph, write_graphml
from cjm_analytics.warehouse import connect
from tests.fixtures import RUN_STARTED, make_config, rows, run_steps, table, write_csv

EVENTS = """
    event_id,anonymous_id,user_id,event,ts,channel
    e01,a1,,landing,2026-11-01T10:00:00Z,social
    e02,a1,,product_view,2026-11-01T10:10:00Z,
    e03,a1,u1,login,2026-11-01T10:20:00Z,
    e04,a1,u1,add_to_cart,2026-11-01T10:50:00Z,
    e05,a1,u1,product_a,2026-11-01T11:20:01Z,email
    e06,,u1,add_to_cart,2026-11-01T11:25:00Z,
    e07,,u1,order,2026-11-01T11:30:00Z,
    e08,,u2,order,2026-11-02T09:00:00Z,
    e09,a3,u9,login,2026-11-01T08:00:00Z,paid
    e10,a3,,product_view,2026-11-01T10:00:00Z,
    e11,a3,u3,login,2026-11-01T10:01:00Z,
    e12,a3,,add_to_cart,2026-11-01T10:05:00Z,
    e13,a4,,product_view,2026-11-01T12:00:00Z,direct
    e14,a4,,product_view,2026-11-01T12:01:00Z,
"""


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("core")
    write_csv(root / "web" / "events.csv", EVENTS)
    config = make_config(root, report={"sankey_steps": 3, "sankey_min_share": 0.3})
    run_steps(config, run_started=RUN_STARTED)
    return config


def test_stitching_takes_the_last_customer_seen_with_an_anonymous_id(cfg) -> None:  # type: ignore[no-untyped-def]
    ids = table(cfg, "SELECT anonymous_id, customer_id FROM identities ORDER BY 1")
    assert ids.values.tolist() == [["a1", "u1"], ["a3", "u3"]]
    keys = table(cfg, "SELECT event_id, customer_key FROM events ORDER BY event_id")
    assert dict(keys.values.tolist()) == {
        "e01": "u1", "e02": "u1", "e03": "u1", "e04": "u1", "e05": "u1", "e06": "u1", "e07": "u1", "e08": "u2",
        "e09": "u9", "e10": "u3", "e11": "u3", "e12": "u3", "e13": "a4", "e14": "a4",
    }


def test_sessions_split_only_on_gaps_greater_than_the_timeout(cfg) -> None:  # type: ignore[no-untyped-def]
    sessions = rows(cfg, """
        SELECT customer_key, session_number, n_events, first_event, last_event, channel
        FROM sessions ORDER BY customer_key, session_number""")
    assert sessions == [
        ("a4", 1, 2, "product_view", "product_view", "direct"),
        ("u1", 1, 4, "landing", "add_to_cart", "social"),  # 10:50 is exactly 30 min after 10:20
        ("u1", 2, 3, "product_a", "order", "email"),  # 11:20:01 is 30 min 1 s after 10:50
        ("u2", 1, 1, "order", "order", None),
        ("u3", 1, 3, "product_view", "add_to_cart", None),
        ("u9", 1, 1, "login", "login", "paid"),
    ]
    # Every event points at its session by (customer_key, session_number), and every session has events.
    per_event = table(cfg, "SELECT count(*) AS n FROM (SELECT DISTINCT customer_key, session_number FROM events) "
                           "NATURAL JOIN sessions")
    assert per_event.n[0] == 6


def test_sessionize_counts_what_it_recomputed(cfg) -> None:  # type: ignore[no-untyped-def]
    logged = rows(cfg, "SELECT counts->>'events_recomputed', counts->>'mapped_events', "
                       "counts->>'customers_recomputed' FROM run_log WHERE step = 'sessionize'")
    assert logged == [tuple(str(n) for n in rows(
        cfg, "SELECT count(*), count(stage), count(DISTINCT customer_key) FROM events")[0])]


def test_journeys(cfg) -> None:  # type: ignore[no-untyped-def]
    j = table(cfg, "SELECT * FROM journeys ORDER BY customer_key").set_index("customer_key")
    assert list(j.index) == ["a4", "u1", "u2", "u3"]  # u9 has no mapped event
    assert [list(p) for p in j.stage_path] == [
        ["browse"], ["browse", "cart", "browse", "cart", "buy"], ["buy"], ["browse", "cart"]]
    assert j.furthest_stage.tolist() == ["browse", "buy", "buy", "cart"]
    assert j.converted.tolist() == [False, True, True, False]
    assert j.loc["u1", "hours_to_convert"] == pytest.approx(1.5)  # 10:00 -> 11:30
    assert j.loc["u2", "hours_to_convert"] == 0
    assert j.n_sessions.tolist() == [1, 2, 1, 1]
    assert j.n_events.tolist() == [2, 7, 1, 3]
    assert j.loc["u1", "first_channel"] == "social"
    assert str(j.loc["u2", "cohort_date"])[:10] == "2026-11-02"


def test_stage_funnel_is_a_ladder(cfg) -> None:  # type: ignore[no-untyped-def]
    f = table(cfg, "SELECT * FROM stage_funnel ORDER BY stage_order")
    # furthest: a4 browse, u3 cart, u1 buy, u2 buy (u2 never browsed, still passed browse and cart).
    assert f.reached.tolist() == [4, 3, 2]
    assert f.exited.tolist() == [1, 1, 2]
    assert f.dropoff_rate.tolist()[:2] == [1 / 4, 1 / 3]
    assert f.dropoff_rate.isna().tolist() == [False, False, True]
    assert f.conversion_to_next.tolist()[:2] == [3 / 4, 2 / 3]
    assert f.conversion_from_first.tolist() == [1, 3 / 4, 2 / 4]


def test_stage_conversion_daily_sums_to_the_funnel(cfg) -> None:  # type: ignore[no-untyped-def]
    d = table(cfg, "SELECT cohort_date, stage, reached, exited FROM stage_conversion_daily ORDER BY 1, stage_order")
    assert d[["reached", "exited"]].values.tolist() == [[3, 1], [2, 1], [1, 1], [1, 0], [1, 0], [1, 1]]


def test_stage_transitions(cfg) -> None:  # type: ignore[no-untyped-def]
    t = table(cfg, "SELECT from_stage, to_stage, transitions, customers, probability, median_hours "
                   "FROM stage_transitions").set_index(["from_stage", "to_stage"])
    assert t.transitions.to_dict() == {
        ("(start)", "browse"): 3, ("(start)", "buy"): 1,
        ("browse", "cart"): 3, ("browse", "(end)"): 1,
        ("cart", "browse"): 1, ("cart", "buy"): 1, ("cart", "(end)"): 1,
        ("buy", "(end)"): 2,
    }
    assert t.customers[("browse", "cart")] == 2  # u1 twice, u3 once
    assert t.probability[("cart", "browse")] == pytest.approx(1 / 3)
    assert t.probability[("browse", "(end)")] == pytest.approx(1 / 4)
    assert t.groupby(level=0).probability.sum().tolist() == pytest.approx([1, 1, 1, 1])
    # browse -> cart: u1 10:10 -> 10:50 (40 min), u1 11:20:01 -> 11:25 (4 min 59 s), u3 10:00 -> 10:05 (5 min).
    assert t.median_hours[("browse", "cart")] == pytest.approx(5 / 60)
    assert t.median_hours[("cart", "browse")] == pytest.approx((30 + 1 / 60) / 60)
    assert t.median_hours[("(start)", "browse")] != t.median_hours[("(start)", "browse")]  # NaN


def test_sankey_links_fold_small_nodes_and_balance(cfg) -> None:  # type: ignore[no-untyped-def]
    links = table(cfg, "SELECT from_step, from_node, to_step, to_node, customers FROM sankey_links")
    got = sorted(map(tuple, links.values.tolist()))
    # Step 1: browse 3 (a4, u1, u3), buy 1 (u2) -> 1/4 < 0.3: folded into other.
    # Step 2: cart 2 (u1, u3). Step 3: browse 1 (u1) -> folded. u1's path goes on past step 3.
    assert got == [
        (1, "browse", 2, "(drop-off)", 1),
        (1, "browse", 2, "cart", 2),
        (1, "other", 2, "(completed)", 1),  # u2's path is buy alone: the goal reached, completed, not lost
        (2, "cart", 3, "(drop-off)", 1),
        (2, "cart", 3, "other", 1),
        (3, "other", 4, "(continues)", 1),
    ]


def test_run_summary(cfg) -> None:  # type: ignore[no-untyped-def]
    s = table(cfg, "SELECT * FROM run_summary").iloc[0]
    assert (s.events_read, s.events_loaded, s.customers, s.journey_customers, s.sessions, s.converted) == (
        14, 14, 5, 4, 6, 2)
    assert s.conversion_rate == 0.5
    assert (s.worst_dropoff_stage, s.worst_dropoff_rate) == ("cart", pytest.approx(1 / 3))


def test_stage_graph_carries_the_mart_figures(cfg, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    con = connect(cfg.warehouse, read_only=True)
    try:
        g = stage_graph(con)
    finally:
        con.close()
    assert list(g.nodes) == ["(start)", "browse", "cart", "buy", "(end)"]
    assert g.nodes["cart"]["reached"] == 3
    assert g.edges["cart", "browse"]["transitions"] == 1
    assert g.edges["cart", "(end)"]["probability"] == pytest.approx(1 / 3)
    back = nx.read_graphml(write_graphml(g, tmp_path / "g.graphml"))
    assert back.edges["browse", "cart"]["transitions"] == 3
    assert "dropoff_rate" not in back.nodes["buy"]  # undefined for the last stage


def test_property_conditions_and_first_rule_wins(tmp_path: Path) -> None:
    write_csv(tmp_path / "crm" / "a.csv", """
        customer_id,activity,at,deal_stage
        c1,deal,2026-11-01 10:00:00,proposal
        c2,deal,2026-11-01 10:00:00,lost
        c3,order_x,2026-11-01 10:00:00,
    """)
    source = {"name": "crm", "kind": "crm", "path": "crm/*.csv",
              "columns": {"customer_id": "customer_id", "event_name": "activity", "timestamp": "at"}}
    stages = [
        {"name": "lead", "events": ["order_*"]},
        {"name": "intent", "events": [{"name": "deal", "where": {"deal_stage": "proposal"}}]},
        {"name": "buy", "events": ["order_x"]},
    ]
    cfg = make_config(tmp_path, sources=[source], stages=stages, goal="buy")
    run_steps(cfg, until="sessionize", run_started=RUN_STARTED)
    assert rows(cfg, "SELECT customer_key, stage FROM events ORDER BY 1") == [
        ("c1", "intent"), ("c2", None), ("c3", "lead")]


def test_touchpoints_are_cleaned_at_mapping_time(tmp_path: Path) -> None:
    write_csv(tmp_path / "web" / "a.csv", """
        event_id,anonymous_id,user_id,event,ts,channel,page
        1,a1,,product_view,2026-11-01T10:00:00Z,,/product/123
        2,a1,,product_view,2026-11-01T10:01:00Z,,/product/9
        3,a1,,landing,2026-11-01T10:02:00Z,,/
        4,a1,,landing,2026-11-01T10:03:00Z,,
        5,a1,,landing,2026-11-01T10:04:00Z,,/product/12/reviews
    """)
    cfg = make_config(tmp_path, touchpoints={"field": "page", "clean": [
        {"pattern": r"/product/\d+", "alias": "/product/*"}, {"pattern": "/.*", "alias": "other page"}]})
    run_steps(cfg, until="sessionize", run_started=RUN_STARTED)
    # Full matches only; the first rule wins; no page property -> the event name.
    assert rows(cfg, "SELECT touchpoint FROM events ORDER BY event_id") == [
        ("/product/*",), ("/product/*",), ("other page",), ("landing",), ("other page",)]


def test_sankey_per_segment_balances_and_all_is_the_sankey(cfg) -> None:  # type: ignore[no-untyped-def]
    assert rows(cfg, "SELECT from_step, from_node, to_step, to_node, customers FROM sankey_segment_links "
                     "WHERE segment_type = 'all' EXCEPT ALL SELECT * FROM sankey_links") == []
    # First-touch channel of each journey: a4 direct, u1 social, u2 none, u3 none (u3's channel-less events).
    sizes = rows(cfg, "SELECT segment, sum(customers) FROM sankey_segment_links "
                      "WHERE segment_type = 'first_channel' AND from_step = 1 GROUP BY 1 ORDER BY 1")
    assert sizes == [("(none)", 2), ("direct", 1), ("social", 1)]
    # Within a segment every step's outflow equals its inflow.
    unbalanced = rows(cfg, """
        WITH inflow AS (SELECT segment_type, segment, to_step AS step, sum(customers) AS n
                        FROM sankey_segment_links
                        WHERE to_node NOT IN ('(drop-off)', '(completed)', '(continues)') GROUP BY ALL),
             outflow AS (SELECT segment_type, segment, from_step AS step, sum(customers) AS n
                         FROM sankey_segment_links GROUP BY ALL)
        SELECT * FROM inflow i JOIN outflow o USING (segment_type, segment, step) WHERE i.n <> o.n""")
    assert unbalanced == []


def test_every_run_appends_one_history_row(tmp_path: Path) -> None:
    write_csv(tmp_path / "web" / "a.csv", EVENTS)
    config = make_config(tmp_path)
    first = run_steps(config, run_started=RUN_STARTED)
    second = run_steps(config, run_started=RUN_STARTED)
    assert rows(config, "SELECT run_id, journey_customers FROM run_history ORDER BY run_id") == sorted(
        [(first.run_id, 4), (second.run_id, 4)])
