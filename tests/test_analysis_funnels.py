"""Ordered funnels on a fixture counted by hand, and against a plain-Python funnel on random events (hypothesis).

Stages: browse (product_*, landing) < cart (add_to_cart) < buy (order). Touchpoint = the event name, with
product_* cleaned to "product page". Funnel browse → cart → buy, window 1 day (24 h, inclusive). Times are
2026-11-01 unless said. Hours to cart / to buy are from the step-1 event of the attempt that counts.

    customer  events                                        ordered        strict         any
    c1 email  landing 10:00, add_to_cart 10:05,             3 (5m, 10m)    3              3
              order 10:10
    c2 email  product_view 10:00, login 10:01,              3 (2m, 3m)     1 (login is    3
              add_to_cart 10:02, order 10:03                               next, not cart)
    c3 email  add_to_cart 09:00, product_view 10:00,        1 (no cart     1              3 (from the cart:
              order 11:00                                   after browse)                 browse 1h, buy 2h)
    c4 social landing 10:00, add_to_cart 10:30,             2 (30m; buy    2              2
              order 11-02 10:00:01                          is 1 s late)
    c5 social landing 10:00, add_to_cart 12:00,             3 (2h, 24h:    3              3
              order 11-02 10:00:00                          just inside)
    c6 social login, order, add_to_cart, product_view, all  3 (0, 0)       3              3
              at 10:00:00; ids in that order (ties: funnel order first, other events last)
    c7        landing 10:00; landing 11-03 09:00,           2 (30m, from   2              2
              add_to_cart 11-03 09:30                       the 2nd try)
    c8        landing 10:00, remove_from_cart 10:01,        3 (2m, 3m)     1              3
              add_to_cart 10:02, order 10:03
    c9        landing 10:00, add_to_cart 10:05,             2 (5m)         2              2
              remove_from_cart 10:06
    c10       11-05: landing 10:00, remove_from_cart 10:01, 2 (2m, first   2 (30m: the    2
              add_to_cart 10:02; landing 12:00,             of two equal   1st try stops
              add_to_cart 12:30                             tries)         at remove)

Completed per step: ordered 10, 9, 5; strict 10, 7, 3; any 10, 10, 6.
Excluding remove_from_cart (ordered): c8's only try has it between landing and order: c8 leaves the funnel;
c9's comes after its last step (cart): stays; c10's 1st try is void, its 2nd counts (cart 30m) -> 9, 8, 4.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cjm_analytics import analyze_cli
from cjm_analytics.analysis.funnels import ordered_funnel, parse_step
from cjm_analytics.config import Config, load_config
from cjm_analytics.warehouse import connect
from tests.fixtures import RUN_STARTED, STAGES, WEB_COLUMNS, run_steps, write_csv

EVENTS = """
    event_id,anonymous_id,user_id,event,ts,channel
    c01a,,c1,landing,2026-11-01T10:00:00Z,email
    c01b,,c1,add_to_cart,2026-11-01T10:05:00Z,
    c01c,,c1,order,2026-11-01T10:10:00Z,
    c02a,,c2,product_view,2026-11-01T10:00:00Z,email
    c02b,,c2,login,2026-11-01T10:01:00Z,
    c02c,,c2,add_to_cart,2026-11-01T10:02:00Z,
    c02d,,c2,order,2026-11-01T10:03:00Z,
    c03a,,c3,add_to_cart,2026-11-01T09:00:00Z,email
    c03b,,c3,product_view,2026-11-01T10:00:00Z,
    c03c,,c3,order,2026-11-01T11:00:00Z,
    c04a,,c4,landing,2026-11-01T10:00:00Z,social
    c04b,,c4,add_to_cart,2026-11-01T10:30:00Z,
    c04c,,c4,order,2026-11-02T10:00:01Z,
    c05a,,c5,landing,2026-11-01T10:00:00Z,social
    c05b,,c5,add_to_cart,2026-11-01T12:00:00Z,
    c05c,,c5,order,2026-11-02T10:00:00Z,
    c06a,,c6,login,2026-11-01T10:00:00Z,social
    c06b,,c6,order,2026-11-01T10:00:00Z,
    c06c,,c6,add_to_cart,2026-11-01T10:00:00Z,
    c06d,,c6,product_view,2026-11-01T10:00:00Z,
    c07a,,c7,landing,2026-11-01T10:00:00Z,
    c07b,,c7,landing,2026-11-03T09:00:00Z,
    c07c,,c7,add_to_cart,2026-11-03T09:30:00Z,
    c08a,,c8,landing,2026-11-01T10:00:00Z,
    c08b,,c8,remove_from_cart,2026-11-01T10:01:00Z,
    c08c,,c8,add_to_cart,2026-11-01T10:02:00Z,
    c08d,,c8,order,2026-11-01T10:03:00Z,
    c09a,,c9,landing,2026-11-01T10:00:00Z,
    c09b,,c9,add_to_cart,2026-11-01T10:05:00Z,
    c09c,,c9,remove_from_cart,2026-11-01T10:06:00Z,
    c10a,,c10,landing,2026-11-05T10:00:00Z,
    c10b,,c10,remove_from_cart,2026-11-05T10:01:00Z,
    c10c,,c10,add_to_cart,2026-11-05T10:02:00Z,
    c10d,,c10,landing,2026-11-05T12:00:00Z,
    c10e,,c10,add_to_cart,2026-11-05T12:30:00Z,
"""

FUNNEL = ["browse", "cart", "buy"]
M = 1 / 60  # a minute, in hours


def write_fixture(root: Path, events: str, until: str = "aggregate") -> Config:
    """The events as web/events.csv, a cjm.yaml beside them, and the warehouse built from them."""
    write_csv(root / "web" / "events.csv", events)
    data = {
        "warehouse": "warehouse/cjm.duckdb", "reports": "reports", "stages": STAGES, "goal": "buy",
        "sources": [{"name": "web", "kind": "clickstream", "path": "web/*", "columns": WEB_COLUMNS}],
        "touchpoints": {"clean": [{"pattern": "product_.*", "alias": "product page"}]},
        "analysis": {"min_segment_size": 3},
    }
    (root / "cjm.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    cfg = load_config(root / "cjm.yaml")
    run_steps(cfg, until=until, run_started=RUN_STARTED)
    return cfg


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return write_fixture(tmp_path_factory.mktemp("funnels"), EVENTS)


def _p90(values: list[float]) -> float:
    return float(np.percentile(values, 90))  # linear interpolation, numpy's default


# Hours to each step among its completers, counted by hand from the table in the docstring.
ORDERED_CART = [5 * M, 2 * M, 30 * M, 2, 0, 30 * M, 2 * M, 5 * M, 2 * M]  # c1 c2 c4 c5 c6 c7 c8 c9 c10
ORDERED_BUY = [10 * M, 3 * M, 24, 0, 3 * M]  # c1 c2 c5 c6 c8
STRICT_CART = [5 * M, 30 * M, 2, 0, 30 * M, 5 * M, 30 * M]  # c1 c4 c5 c6 c7 c9 c10
STRICT_BUY = [10 * M, 24, 0]  # c1 c5 c6
ANY_2 = [5 * M, 2 * M, 1, 30 * M, 2, 0, 30 * M, 2 * M, 5 * M, 2 * M]  # c1 c2 c3 c4 c5 c6 c7 c8 c9 c10
ANY_3 = [10 * M, 3 * M, 2, 24, 0, 3 * M]  # c1 c2 c3 c5 c6 c8
EXCL_CART = [5 * M, 2 * M, 30 * M, 2, 0, 30 * M, 5 * M, 30 * M]  # c1 c2 c4 c5 c6 c7 c9 c10 (2nd try)
EXCL_BUY = [10 * M, 3 * M, 24, 0]  # c1 c2 c5 c6

CASES = [
    pytest.param(dict(order="ordered"), [10, 9, 5], [ORDERED_CART, ORDERED_BUY], id="ordered"),
    pytest.param(dict(order="strict"), [10, 7, 3], [STRICT_CART, STRICT_BUY], id="strict"),
    pytest.param(dict(order="any"), [10, 10, 6], [ANY_2, ANY_3], id="any"),
    pytest.param(dict(exclusions=["remove_from_cart"]), [9, 8, 4], [EXCL_CART, EXCL_BUY], id="exclusion"),
    # The latest event is c10's 11-05 12:30: both of c10's tries end after it and are left out.
    pytest.param(dict(hide_unelapsed=True), [9, 8, 5], [ORDERED_CART[:-1], ORDERED_BUY], id="hide-unelapsed"),
    # By 11-03 12:00 c7's 2nd try (11-03 09:00) has not ended either: c7 counts by its 1st, which stops at browse.
    pytest.param(dict(hide_unelapsed=True, now=datetime(2026, 11, 3, 12, tzinfo=UTC)), [9, 7, 5],
                 [ORDERED_CART[:5] + ORDERED_CART[6:8], ORDERED_BUY], id="hide-unelapsed-at-now"),
    # 24 h minus a second: c5's order at exactly 24 h drops out too.
    pytest.param(dict(window_days=1 - 1 / 86400), [10, 9, 4], [ORDERED_CART, [10 * M, 3 * M, 0, 3 * M]],
                 id="window-1s-shorter"),
]


@pytest.mark.parametrize(("kwargs", "completed", "hours"), CASES)
def test_ordered_funnel_counted_by_hand(con: duckdb.DuckDBPyConnection, kwargs: dict[str, Any],
                                        completed: list[int], hours: list[list[float]]) -> None:
    f = ordered_funnel(con, FUNNEL, **{"window_days": 1, **kwargs})
    assert list(f.columns) == ["step", "step_name", "entered", "completed", "conversion_from_first",
                               "conversion_from_previous", "median_hours_to_convert", "p90_hours_to_convert",
                               "dropped"]
    names = FUNNEL if kwargs.get("order") != "any" else ["1 of 3 steps", "2 of 3 steps", "3 of 3 steps"]
    assert f.step.tolist() == [1, 2, 3] and f.step_name.tolist() == names
    assert f.completed.tolist() == completed
    assert f.entered.tolist() == [completed[0], completed[0], completed[1]]
    assert f.dropped.tolist() == [0, completed[0] - completed[1], completed[1] - completed[2]]
    assert f.conversion_from_first.tolist() == pytest.approx([1, completed[1] / completed[0],
                                                              completed[2] / completed[0]])
    assert f.conversion_from_previous.tolist() == pytest.approx([1, completed[1] / completed[0],
                                                                 completed[2] / completed[1]])
    assert f.median_hours_to_convert.isna()[0] and f.p90_hours_to_convert.isna()[0]  # the clock starts at step 1
    assert len(hours[0]) == completed[1] and len(hours[1]) == completed[2]
    assert f.median_hours_to_convert[1:].tolist() == pytest.approx([float(np.median(h)) for h in hours])
    assert f.p90_hours_to_convert[1:].tolist() == pytest.approx([_p90(h) for h in hours])


STEP_NAMES = [
    # product_view is the touchpoint "product page": c2, c3, c6 -> cart after it: c2, c6 (a tie).
    pytest.param(["touchpoint:product page", "cart"], [3, 2], id="touchpoint"),
    # landing is not a stage: its event name. c1, c4, c5, c7, c8, c9, c10 land, and all add to cart within
    # 3 days (c7 47.5 h later); c1, c4, c5, c8 order.
    pytest.param(["landing", "event:add_to_cart", "stage:buy"], [7, 7, 4], id="event-names"),
    # The same step twice needs two events: c7 and c10 land twice (c7's are 47 h apart: window 3 days).
    pytest.param(["landing", "landing"], [7, 2], id="repeated-step"),
    # login is unmapped: c2 (then cart 10:02), c6 (all at 10:00: taken in funnel order, login then cart).
    pytest.param(["login", "cart"], [2, 2], id="unmapped-event"),
]


@pytest.mark.parametrize(("steps", "completed"), STEP_NAMES)
def test_steps_name_stages_events_and_touchpoints(con: duckdb.DuckDBPyConnection, steps: list[str],
                                                  completed: list[int]) -> None:
    assert ordered_funnel(con, steps, window_days=3).completed.tolist() == completed


def test_segment_breakdown_adds_up(con: duckdb.DuckDBPyConnection) -> None:
    f = ordered_funnel(con, FUNNEL, window_days=1, segment="first_touch_channel", min_segment_size=4)
    got = {(r.segment, r.step): (r.segment_size, r.too_small, r.completed) for r in f.itertuples()}
    # email: c1 3, c2 3, c3 1; social: c4 2, c5 3, c6 3; no channel: c7 2, c8 3, c9 2, c10 2.
    assert got == {
        ("(none)", 1): (4, False, 4), ("(none)", 2): (4, False, 4), ("(none)", 3): (4, False, 1),
        ("email", 1): (3, True, 3), ("email", 2): (3, True, 2), ("email", 3): (3, True, 2),
        ("social", 1): (3, True, 3), ("social", 2): (3, True, 3), ("social", 3): (3, True, 2),
    }
    assert f.groupby("step").completed.sum().tolist() == [10, 9, 5]


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(steps=["browse", "chekout"]), "'chekout': no such stage"),
    (dict(steps=["stage:add_to_cart"]), "no such stage"),
    (dict(steps=["browse"], exclusions=["refund"]), "'refund'"),
    (dict(steps=["browse", "cart"], exclusions=["cart"]), "also a step"),
    (dict(steps=[]), "at least one step"),
    (dict(steps=["browse"], window_days=0), "window_days"),
    (dict(steps=["browse"], window_days=float("inf")), "window_days"),
    (dict(steps=["browse"], order="loose"), "order"),
    (dict(steps=["event:"]), "give a name"),
])
def test_bad_funnels_are_refused(con: duckdb.DuckDBPyConnection, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ordered_funnel(con, **kwargs)


def test_parse_step() -> None:
    assert parse_step("stage:intent") == ("stage", "intent")
    assert parse_step("touchpoint:/product/*") == ("touchpoint", "/product/*")
    assert parse_step("intent") == ("auto", "intent")
    assert parse_step("http://x") == ("auto", "http://x")  # not a known prefix: part of the name


def test_a_stage_nobody_reached_counts_zero(tmp_path: Path) -> None:
    cfg = write_fixture(tmp_path, """
        event_id,anonymous_id,user_id,event,ts,channel
        1,,u1,landing,2026-11-01T10:00:00Z,
    """, until="build_journeys")  # the funnel reads only the core tables
    c = connect(cfg.warehouse, read_only=True)
    try:
        f = ordered_funnel(c, FUNNEL)
    finally:
        c.close()
    assert f.completed.tolist() == [1, 0, 0]
    assert f.conversion_from_previous[1] == 0 and pd.isna(f.conversion_from_previous[2])  # 0 / 0


def test_cli_writes_the_table_and_the_page(cfg: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(analyze_cli, "ANALYSIS_MODULES", ("funnels", "segments", "timing"))
    parser = argparse.ArgumentParser()
    analyze_cli.register_all(parser.add_subparsers(dest="command", required=True))
    out = tmp_path / "funnel.csv"
    args = parser.parse_args(["analyze", "funnel", "--config", str(cfg.config_path), "--out", str(out),
                              "--steps", "browse,cart,buy", "--window-days", "1", "--order", "strict",
                              "--exclude", "remove_from_cart", "--segment", "first_touch_channel"])
    assert args.func(args) == 0
    table = pd.read_csv(out)
    # As strict without the exclusion: c8's and c10's first tries stop at browse, before remove_from_cart.
    assert table.groupby("step").completed.sum().tolist() == [10, 7, 3]
    # Named by its parameters, in the order of --help (not of the command line); --out, --config are not in it.
    # Longer than 120 characters: cut, with a hash of the parameters.
    page = (cfg.reports / "analysis-funnel--steps-browse-cart-buy--window-days-1--order-strict--exclude-"
                          "remove-from-cart--segment-first-to-6a4eac46.html").read_text(encoding="utf-8")
    assert "plotly" in page and "browse → cart → buy" in page
    assert "page:" in capsys.readouterr().out
    for name, extra, stem in [
        ("funnel-by-segment", ["--by", "cohort_week"], "funnel-by-segment--by-cohort-week"),
        ("time-between-stages", [], "time-between-stages"),
        ("time-to-convert", ["--segment", "first_touch_channel", "--bins", "0,1,inf"],
         "time-to-convert--segment-first-touch-channel--bins-0-1-inf"),
    ]:
        args = parser.parse_args(["analyze", name, "--config", str(cfg.config_path), *extra])
        assert args.func(args) == 0
        assert (cfg.reports / "analysis" / f"{stem}.csv").exists()  # the table is named as its page
        assert "plotly" in (cfg.reports / f"analysis-{stem}.html").read_text(encoding="utf-8")


def test_cli_turns_a_bad_step_into_a_one_line_error(cfg: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    from cjm_analytics.errors import AnalysisError

    monkeypatch.setattr(analyze_cli, "ANALYSIS_MODULES", ("funnels",))
    parser = argparse.ArgumentParser()
    analyze_cli.register_all(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["analyze", "funnel", "--config", str(cfg.config_path), "--steps", "browse,nope"])
    with pytest.raises(AnalysisError, match="'nope'"):
        args.func(args)


# ---- against a plain-Python funnel on random events ----------------------------------------------------------

STAGE_OF = {"a": ("s1", 1), "b": ("s2", 2)}  # event name -> stage; c and x are unmapped
TOUCHPOINT_OF = {"c": "p"}  # c's touchpoint is "p"; every other touchpoint is the event name
SPECS = ["a", "b", "c", "x", "s1", "stage:s2", "event:c", "touchpoint:p", "p"]
T0 = datetime(2026, 11, 1)


@dataclass(frozen=True)
class Event:
    customer: str
    event_id: str
    name: str
    ts: datetime

    @property
    def stage(self) -> str | None:
        return STAGE_OF[self.name][0] if self.name in STAGE_OF else None

    @property
    def touchpoint(self) -> str:
        return TOUCHPOINT_OF.get(self.name, self.name)


def _matches(e: Event, spec: str) -> bool:
    kind, sep, value = spec.partition(":")
    if not sep:
        kind, value = ("stage" if spec in ("s1", "s2") else "name"), spec
    return {"stage": e.stage == value, "event": e.name == value, "touchpoint": e.touchpoint == value,
            "name": value in (e.name, e.touchpoint)}[kind]


def python_funnel(events: list[Event], steps: list[str], window: timedelta, order: str, exclusions: list[str],
                  now: datetime | None) -> tuple[list[int], list[list[float]]]:
    """Completed per step and hours to each step, one customer at a time, trying every possible start."""
    n = len(steps)
    completed: list[int] = [0] * n
    hours: list[list[float]] = [[] for _ in range(n)]
    for customer in sorted({e.customer for e in events}):
        mine = [e for e in events if e.customer == customer]
        step_sets = {e: {k for k, s in enumerate(steps, 1) if _matches(e, s)} for e in mine}
        excluded = {e: any(_matches(e, x) for x in exclusions) for e in mine}

        # At one time: events of earlier steps first, then exclusions, then every other event.
        ranks = {e: min(step_sets[e]) if step_sets[e] else (n + 1 if excluded[e] else n + 2) for e in mine}
        order_key = {e: (e.ts, ranks[e], e.event_id) for e in mine}
        seq = sorted(mine, key=order_key.__getitem__)
        best: list[datetime] = []
        for i, first in enumerate(seq):
            if not (1 in step_sets[first] or (order == "any" and step_sets[first])):
                continue
            if now is not None and first.ts + window > now:
                continue
            end = first.ts + window
            if order == "any":
                found: dict[int, int] = {}
                for j in range(i, len(seq)):
                    if seq[j].ts > end:
                        break
                    for k in step_sets[seq[j]]:
                        found.setdefault(k, j)
                done = sorted(found.values())
            else:
                done = [i]
                while len(done) < n:
                    want = len(done) + 1
                    later = range(done[-1] + 1, len(seq)) if order == "ordered" else range(done[-1] + 1,
                                                                                          done[-1] + 2)
                    nxt = next((j for j in later if j < len(seq) and want in step_sets[seq[j]]), None)
                    if nxt is None or seq[nxt].ts > end:
                        break
                    done.append(nxt)
            if any(excluded[seq[j]] for j in range(i + 1, done[-1])):
                continue
            if len(done) > len(best):
                best = [seq[j].ts for j in done]
        for k, ts in enumerate(best):
            completed[k] += 1
            hours[k].append((ts - best[0]) / timedelta(hours=1))
    return completed, hours


def completed_steps(f: pd.DataFrame) -> list[int]:
    """The steps someone completed (0 when nobody did step 1)."""
    return [0, *f.step[f.completed > 0].tolist()]


@st.composite
def funnels(draw: st.DrawFn) -> dict[str, Any]:
    n_events = draw(st.integers(0, 24))
    events = [
        Event(customer=f"u{draw(st.integers(1, 3))}", event_id=f"e{i:02d}", name=draw(st.sampled_from("aabbbccx")),
              ts=T0 + timedelta(hours=draw(st.integers(0, 8))))  # few distinct times: many ties
        for i in range(n_events)
    ]
    steps = draw(st.lists(st.sampled_from(SPECS[:4] * 2 + SPECS[4:]), min_size=2, max_size=4))
    exclusions = draw(st.lists(st.sampled_from([s for s in SPECS if s not in steps]), max_size=1))
    return dict(events=events, steps=steps, exclusions=exclusions, window_hours=draw(st.integers(1, 5)),
                order=draw(st.sampled_from(["ordered", "strict", "any"])), hide_unelapsed=draw(st.booleans()),
                now=draw(st.none() | st.just(T0 + timedelta(hours=6))))


@pytest.fixture(scope="module")
def scratch() -> Iterator[duckdb.DuckDBPyConnection]:
    c = duckdb.connect()
    c.execute("SET TimeZone = 'UTC'")
    c.execute("CREATE TABLE stage_list AS SELECT * FROM (VALUES ('s1', 1), ('s2', 2)) AS t(stage, stage_order)")
    yield c
    c.close()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=funnels())
def test_ordered_funnel_equals_a_plain_python_funnel(scratch: duckdb.DuckDBPyConnection,
                                                     case: dict[str, Any]) -> None:
    check_against_python(scratch, case)


@pytest.mark.slow
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=funnels())
def test_ordered_funnel_equals_a_plain_python_funnel_at_length(scratch: duckdb.DuckDBPyConnection,
                                                               case: dict[str, Any]) -> None:
    check_against_python(scratch, case)


def check_against_python(scratch: duckdb.DuckDBPyConnection, case: dict[str, Any]) -> None:
    """ordered_funnel on the random events equals python_funnel: counts, median and p90 of every step."""
    events: list[Event] = case["events"]
    frame = pd.DataFrame({
        "customer_key": [e.customer for e in events], "event_id": [e.event_id for e in events],
        "source": "web", "event_name": [e.name for e in events], "touchpoint": [e.touchpoint for e in events],
        "ts": pd.Series([e.ts for e in events], dtype="datetime64[us]"),
        "stage": pd.Series([e.stage for e in events], dtype=object),
        "stage_order": pd.Series([STAGE_OF[e.name][1] if e.stage else None for e in events], dtype="Int32"),
    })
    scratch.register("random_events", frame)
    # event_number as sql/core/events.sql defines it: the customer's events by (ts, event_id, source).
    scratch.execute("CREATE OR REPLACE TABLE events AS SELECT *, row_number() OVER (PARTITION BY customer_key "
                    "ORDER BY ts, event_id, source) AS event_number FROM random_events")
    window = timedelta(hours=case["window_hours"])
    # hide_unelapsed: up to the latest event by default, or to a given `now`.
    now = (case["now"] or max((e.ts for e in events), default=None)) if case["hide_unelapsed"] else None
    nameless = [s for s in case["steps"] + case["exclusions"]
                if s not in ("s1", "stage:s2") and not any(_matches(e, s) for e in events)]
    try:
        got = ordered_funnel(scratch, case["steps"], window / timedelta(days=1), case["order"],
                             case["exclusions"], case["hide_unelapsed"], now=case["now"])
    except ValueError as e:
        assert nameless, e
        event("refused: a step names nothing")
        return
    assert not nameless
    event(f"compared, {case['order']}, furthest step reached: {max(completed_steps(got))}")
    completed, hours = python_funnel(events, case["steps"], window, case["order"], case["exclusions"], now)
    assert got.completed.tolist() == completed
    for k in range(1, len(completed)):
        median, p90 = got.median_hours_to_convert[k], got.p90_hours_to_convert[k]
        if hours[k]:
            assert (median, p90) == pytest.approx((np.median(hours[k]), _p90(hours[k])))
        else:
            assert pd.isna(median) and pd.isna(p90)
