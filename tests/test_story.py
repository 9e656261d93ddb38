"""The story the report tells about where customers leave (issue 13), on journeys counted by hand: a journey that
completes is never a drop-off (Sankey, transitions, leaks, marts), a stage after the goal is never the headline,
an input that is not configured is never shown as 0, and the trends mark the cohorts still maturing.

Stages browse (landing) < cart (add_to_cart) < buy (order) < renew (renewal); the goal is buy. No support events
and no surveys are configured. All on 1 Nov 2026 UTC except i (20 Oct); the data end at 12:00 (h's order).

    customer  events                                                     path                 furthest  converted
    a         landing 10:00                                              browse               browse    no
    b         landing 10:00, add_to_cart 10:05                           browse, cart         cart      no
    c         landing 10:00, add_to_cart 10:05, order 10:10              browse, cart, buy    buy       yes
    d         landing 10:00, add_to_cart 10:05, order 10:10,             browse, cart, buy,   renew     yes
              renewal 11:00                                              renew
    e         order 10:00                                                buy                  buy       yes
    f         landing 10:00, order 10:05, landing 10:30                  browse, buy, browse  buy       yes
    g         landing 10:00, add_to_cart 10:20                           browse, cart         cart      no
    h         landing 10:00, add_to_cart 10:05, order 12:00              browse, cart, buy    buy       yes
    i         landing 20 Oct 09:00                                       browse               browse    no

reached: browse 9, cart 7, buy 5, renew 1; stopped there: browse 2 (a, i), cart 2 (b, g), buy 4 (c, e, f, h),
renew 1 (d). Drop-off before the goal: browse 2/9, cart 2/7 (the worst). buy's 4/5 = 80% and renew are customers
who completed: before this fix the headline named buy (80.0%), the Sankey drew 5 completed journeys as red
(drop-off), and the leak table ranked buy first with "contacted support 0.0%".
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from cjm_analytics import analyze_cli
from cjm_analytics.config import Config
from cjm_analytics.report import build_report
from cjm_analytics.report.marts import read_marts
from cjm_analytics.report.pages.charts import sankey_segments
from cjm_analytics.report.sankey import segment_sankey_figure
from cjm_analytics.report.theme import GREEN, VERMILLION
from cjm_analytics.warehouse import connect
from tests.fixtures import RUN_STARTED, WEB_COLUMNS, built_warehouse, make_config, rows, run_steps

EVENTS = """
    event_id,anonymous_id,user_id,event,ts,channel
    a1,,a,landing,2026-11-01T10:00:00Z,ads
    b1,,b,landing,2026-11-01T10:00:00Z,ads
    b2,,b,add_to_cart,2026-11-01T10:05:00Z,
    c1,,c,landing,2026-11-01T10:00:00Z,email
    c2,,c,add_to_cart,2026-11-01T10:05:00Z,
    c3,,c,order,2026-11-01T10:10:00Z,
    d1,,d,landing,2026-11-01T10:00:00Z,email
    d2,,d,add_to_cart,2026-11-01T10:05:00Z,
    d3,,d,order,2026-11-01T10:10:00Z,
    d4,,d,renewal,2026-11-01T11:00:00Z,
    e1,,e,order,2026-11-01T10:00:00Z,
    f1,,f,landing,2026-11-01T10:00:00Z,
    f2,,f,order,2026-11-01T10:05:00Z,
    f3,,f,landing,2026-11-01T10:30:00Z,
    g1,,g,landing,2026-11-01T10:00:00Z,
    g2,,g,add_to_cart,2026-11-01T10:20:00Z,
    h1,,h,landing,2026-11-01T10:00:00Z,
    h2,,h,add_to_cart,2026-11-01T10:05:00Z,
    h3,,h,order,2026-11-01T12:00:00Z,
    i1,,i,landing,2026-10-20T09:00:00Z,
"""
CONFIG: dict[str, Any] = {
    "warehouse": "warehouse/cjm.duckdb",
    "reports": "reports",
    "sources": [{"name": "web", "kind": "clickstream", "path": "web/*", "columns": WEB_COLUMNS}],
    "stages": [
        {"name": "browse", "events": ["landing"]},
        {"name": "cart", "events": ["add_to_cart"]},
        {"name": "buy", "events": ["order"]},
        {"name": "renew", "events": ["renewal"]},
    ],
    "goal": "buy",
}


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> Config:
    root = tmp_path_factory.mktemp("story")
    (root / "cjm.yaml").write_text(yaml.safe_dump(CONFIG), encoding="utf-8")  # for `cjm analyze`
    return built_warehouse(root, EVENTS, stages=CONFIG["stages"], goal="buy")


@pytest.fixture(scope="module")
def site(cfg: Config) -> Path:
    out = cfg.reports / "built"
    con = connect(cfg.warehouse, read_only=True)
    try:
        build_report(con, out)
    finally:
        con.close()
    return out


def test_a_journey_that_completes_ends_in_completed_never_in_drop_off(cfg: Config) -> None:
    links = set(rows(cfg, "SELECT from_step, from_node, to_step, to_node, customers FROM sankey_links "
                          "WHERE to_node IN ('(drop-off)', '(completed)')"))
    assert links == {
        (1, "browse", 2, "(drop-off)", 2),  # a, i
        (2, "cart", 3, "(drop-off)", 2),  # b, g
        (1, "buy", 2, "(completed)", 1),  # e
        (3, "buy", 4, "(completed)", 2),  # c, h
        (3, "browse", 4, "(completed)", 1),  # f went back to browse after buying: still completed
        (4, "renew", 5, "(completed)", 1),  # d
    }
    # The same in every segment: the completed sinks add up to the converted journeys.
    by_segment = rows(cfg, "SELECT segment_type, segment, to_node, sum(customers) FROM sankey_segment_links "
                           "WHERE to_node IN ('(drop-off)', '(completed)') GROUP BY ALL ORDER BY ALL")
    assert by_segment == [
        ("all", "all", "(completed)", 5), ("all", "all", "(drop-off)", 4),
        ("first_channel", "(none)", "(completed)", 3), ("first_channel", "(none)", "(drop-off)", 2),
        ("first_channel", "ads", "(drop-off)", 2),
        ("first_channel", "email", "(completed)", 2),
    ]


def test_exits_after_the_goal_are_counted_as_completions(cfg: Config) -> None:
    exits = rows(cfg, "SELECT from_stage, transitions, converted_transitions, probability FROM stage_transitions "
                      "WHERE to_stage = '(end)' ORDER BY from_order")
    assert [e[:3] for e in exits] == [("browse", 3, 1), ("cart", 2, 0), ("buy", 3, 3), ("renew", 1, 1)]
    # The probabilities are unchanged: browse's 3 exits of 9 transitions out of it (a, i, f; 6 go to cart/buy).
    assert exits[0][3] == pytest.approx(3 / 9)


def test_the_marts_tell_a_drop_off_from_a_completion(cfg: Config) -> None:
    funnel = rows(cfg, "SELECT stage, reached, exited, dropoff_rate, before_goal, is_goal FROM stage_funnel "
                       "ORDER BY stage_order")
    assert funnel == [
        ("browse", 9, 2, pytest.approx(2 / 9), True, False),
        ("cart", 7, 2, pytest.approx(2 / 7), True, False),
        ("buy", 5, 4, pytest.approx(4 / 5), False, True),
        ("renew", 1, 1, None, False, False),
    ]
    flags = rows(cfg, "SELECT DISTINCT stage, before_goal, is_goal FROM stage_funnel_by_segment ORDER BY 1")
    assert flags == [("browse", True, False), ("buy", False, True), ("cart", True, False), ("renew", False, False)]
    # Drop-off summed from the marts, before the goal only: 4 customers lost (a, i, b, g), never the 5 completed.
    lost = rows(cfg, "SELECT sum(exited) FILTER (WHERE before_goal), sum(exited) FILTER (WHERE NOT before_goal) "
                     "FROM stage_conversion_daily")
    assert lost == [(4, 5)]


def test_the_headline_is_the_worst_stage_before_the_goal(cfg: Config, site: Path) -> None:
    assert rows(cfg, "SELECT worst_dropoff_stage, worst_dropoff_rate FROM run_summary") == [
        ("cart", pytest.approx(2 / 7))]  # not buy's 80%: those customers completed
    index = (site / "index.html").read_text(encoding="utf-8")
    card = index.split("Worst drop-off")[1].split("</div>")[0]
    assert ">cart<" in card and "28.6%" in card and "before buy" in card and "80.0%" not in card


def test_leaks_are_the_stages_before_the_goal(cfg: Config) -> None:
    leaks = pd.DataFrame(
        rows(cfg, 'SELECT "rank", stage, customers_lost, share_of_reached, support_share, low_score_share '
                  'FROM leaks ORDER BY "rank"'),
        columns=["rank", "stage", "lost", "share", "support", "low_score"])
    assert leaks[["rank", "stage", "lost"]].values.tolist() == [[1, "browse", 2], [2, "cart", 2]]
    assert leaks.share.tolist() == pytest.approx([2 / 9, 2 / 7])
    # No support events, no surveys: unknown, stored as NULL, never 0.
    assert leaks.support.isna().all() and leaks.low_score.isna().all()


def _cells(text: str, nth: int) -> list[list[str]]:
    body = text.split("<tbody>")[nth + 1].split("</tbody>")[0]
    return [re.findall(r"<td[^>]*>(.*?)</td>", r) for r in re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)]


def test_the_pain_points_page_says_not_configured_and_shows_retention_apart(site: Path) -> None:
    text = (site / "pain-points.html").read_text(encoding="utf-8")
    leak_rows = _cells(text, 0)
    assert [r[1] for r in leak_rows] == ["browse", "cart"]  # buy and renew are no leak
    assert all(r[6] == "not configured" and r[7] == "not configured" for r in leak_rows)
    assert "0.0%" not in "".join(r[6] + r[7] for r in leak_rows)
    # The chart's hover too.
    assert "contacted support: not configured" in text and "contacted support: 0.0%" not in text
    # After the goal: retention, from the stage funnel, named as completions.
    assert "After the goal: retention, not drop-off" in text
    assert _cells(text, 1) == [["buy", "5", "4", "80.0%", "20.0%"], ["renew", "1", "1", "—", "—"]]


def test_the_sankey_page_draws_a_green_completed_node(cfg: Config, site: Path) -> None:
    con = connect(cfg.warehouse, read_only=True)
    try:
        marts = read_marts(con)
    finally:
        con.close()
    trace = segment_sankey_figure(sankey_segments(marts), marts.stage_order).data[0]
    colours = {(label, colour) for label, colour in zip(trace.node.label, trace.node.color, strict=True)}
    assert {c for label, c in colours if label in ("(completed)", "(drop-off)")} == {GREEN, VERMILLION}
    assert ("(completed)", GREEN) in colours and ("(drop-off)", VERMILLION) in colours
    assert not any(c in (GREEN, VERMILLION) for label, c in colours if not label.startswith("("))  # stages
    text = (site / "sankey.html").read_text(encoding="utf-8")
    assert "(completed)" in text and "<b>(completed)</b> (green) when the" in text


def test_cohorts_younger_than_the_p90_time_to_convert_are_still_maturing(cfg: Config) -> None:
    # hours_to_convert: e 0, f 5 min, c 10 min, d 10 min, h 2 h; p90 (linear) = 1/6 + 0.6 × (2 − 1/6) = 1.2667 h.
    # 1 Nov needs until 2 Nov 01:16 and the data end at 1 Nov 12:00: maturing; 20 Oct has long matured.
    got = rows(cfg, "SELECT DISTINCT cohort_date, matured, p90_hours_to_convert FROM stage_conversion_daily "
                    "ORDER BY 1")
    p90 = 1 / 6 + 0.6 * (2 - 1 / 6)
    assert [(str(d), m) for d, m, _ in got] == [("2026-10-20", True), ("2026-11-01", False)]
    assert all(h == pytest.approx(p90) for *_, h in got)


def test_the_cli_leaves_out_what_is_not_configured(cfg: Config, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(analyze_cli, "ANALYSIS_MODULES", ("pain_points",))
    parser = argparse.ArgumentParser()
    analyze_cli.register_all(parser.add_subparsers(dest="command", required=True))
    out = tmp_path / "leaks.csv"
    args = parser.parse_args(["analyze", "pain-points", "--config", str(cfg.warehouse.parents[1] / "cjm.yaml"),
                              "--out", str(out)])
    assert args.func(args) == 0
    table = pd.read_csv(out)
    assert "support_share" not in table.columns and "low_score_share" not in table.columns
    assert table.stage.tolist() == ["browse", "cart"]
    printed = capsys.readouterr().out
    assert "support_share" not in printed and "0.0" not in printed.split("table:")[0].split("loopers")[1]
    page = (cfg.reports / "analysis-pain-points.html").read_text(encoding="utf-8")
    assert "not configured, so left out (unknown, not 0): support_share" in page.lower()


# ---- a real process log: road traffic fines (../shared/datasets, never copied) ----------------------------

FINES_CSV = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "road_traffic_fines_100" / \
    "road_traffic_fines_100.csv"


@pytest.mark.skipif(not FINES_CSV.is_file(), reason=f"real dataset absent: {FINES_CSV}")
def test_fines_paid_cases_complete_and_only_the_unpaid_are_lost(tmp_path: Path) -> None:
    # Cases that end paid are completed, cases sent for credit collection are lost (datasets README); every
    # expected figure is counted with pandas from the CSV.
    csv = pd.read_csv(FINES_CSV, dtype=str)
    paid = set(csv.loc[csv["concept:name"] == "Payment", "case:concept:name"])
    collected = set(csv.loc[csv["concept:name"] == "Send for Credit Collection", "case:concept:name"])
    assert (len(paid), len(collected), len(paid & collected)) == (48, 36, 0)
    (tmp_path / "fines").mkdir()
    (tmp_path / "fines" / "fines.csv").write_bytes(FINES_CSV.read_bytes())
    cfg = make_config(
        tmp_path, sources=[{"name": "fines", "kind": "crm", "path": "fines/*", "columns": {
            "customer_id": "case:concept:name", "event_name": "concept:name", "timestamp": "time:timestamp"}}],
        stages=[{"name": "created", "events": ["Create Fine"]},
                {"name": "notified", "events": ["Send Fine", "Insert Fine Notification"]},
                {"name": "penalty", "events": ["Add penalty"]},
                {"name": "collection", "events": ["Send for Credit Collection"]},
                {"name": "paid", "events": ["Payment"]}],
        goal="paid")
    run_steps(cfg, run_started=RUN_STARTED)
    sinks = dict(rows(cfg, "SELECT to_node, sum(customers) FROM sankey_links WHERE to_node LIKE '(%' GROUP BY 1"))
    assert sinks == {"(completed)": len(paid), "(drop-off)": csv["case:concept:name"].nunique() - len(paid)}
    assert rows(cfg, "SELECT stage, customers_lost FROM leaks WHERE stage = 'collection'") == [
        ("collection", len(collected))]
    assert "paid" not in {s for (s,) in rows(cfg, "SELECT stage FROM leaks")}
    assert rows(cfg, "SELECT worst_dropoff_stage FROM run_summary") == [("collection",)]


def test_the_two_funnels_state_their_rule_and_point_to_each_other(cfg: Config, site: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # The ladder: browse 9, cart 7, buy 5 (everyone up to their furthest stage). The ordered funnel browse → cart →
    # buy: 8 with a browse event (not e), then cart after browse 5 (b, c, d, g, h), then buy after cart 3 (c, d, h;
    # f bought without a cart, e without a browse). Different numbers for the same stages, each page says why.
    funnel_page = (site / "funnel.html").read_text(encoding="utf-8")
    assert "<b>Who and how:</b> all 9\njourney customers" in funnel_page
    assert 'href="analyses.html"' in funnel_page  # the list of the analysis pages, the ordered funnel's among them
    assert _cells(funnel_page, 0)[1][:3] == ["cart", "2", "7"]
    monkeypatch.setattr(analyze_cli, "ANALYSIS_MODULES", ("funnels",))
    parser = argparse.ArgumentParser()
    analyze_cli.register_all(parser.add_subparsers(dest="command", required=True))
    out = tmp_path / "funnel.csv"
    args = parser.parse_args(["analyze", "funnel", "--config", str(cfg.warehouse.parents[1] / "cjm.yaml"),
                              "--steps", "browse,cart,buy", "--out", str(out)])
    assert args.func(args) == 0
    assert pd.read_csv(out)["completed"].tolist() == [8, 5, 3]
    page = (cfg.reports / "analysis-funnel--steps-browse-cart-buy.html").read_text(encoding="utf-8")
    assert "Stage funnel page (funnel.html) counts differently" in page
