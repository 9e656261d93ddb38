"""Paths (top paths with coverage, paths around an anchor, paths between two steps) on a fixture counted by hand,
and top paths on the sample against a plain-Python computation.

Stages: browse (product_*, landing) < cart (add_to_cart) < buy (order). Touchpoint = the page, with
/product/<digits> cleaned to /product/*. All times 2026-11-01 UTC.

    customer  events (time page)                                   stage path / touchpoint path (collapsed)
    c1        landing 10:00 /, product_view 10:01 /product/1,      browse,cart,buy
              product_view 10:02 /product/2, add_to_cart 10:03     / > /product/* > /cart > /done
              /cart, order 10:10 /done
    c2        landing 10:00 /, add_to_cart 10:05 /cart,            browse,cart,buy
              order 12:00 /done                                    / > /cart > /done
    c3        product_view 09:00 /product/3, add_to_cart 09:01,    browse,cart,browse,cart
              product_view 09:02 /product/4, add_to_cart 09:03     /product/* > /cart > /product/* > /cart
    c4        landing 08:00 /, add_to_cart 08:30 /cart             browse,cart
                                                                   / > /cart
    c5        login 08:00 /login (unmapped: no journey)            -
                                                                   /login
    c6        landing 08:00 /, add_to_cart 08:40 /cart             browse,cart
                                                                   / > /cart
    c7        landing 08:00 /                                      browse
                                                                   /
    c8        product_view 07:00 /product/5, add_to_cart 07:10,    browse,cart,browse,cart,buy
              landing 07:20 /, add_to_cart 07:30, order 08:00      /product/* > /cart > / > /cart > /done

Journey customers: 7 (all but c5); customers with events: 8. c1's uncollapsed touchpoint path repeats /product/*.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from itertools import groupby
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from cjm_analytics import analyze_cli
from cjm_analytics.analysis.paths import paths_around, paths_between, top_paths
from cjm_analytics.config import Config
from cjm_analytics.errors import AnalysisError
from cjm_analytics.warehouse import connect
from tests.fixtures import RUN_STARTED, make_config, run_steps, write_csv

EVENTS = """
    event_id,anonymous_id,user_id,event,ts,channel,page
    e01,,c1,landing,2026-11-01T10:00:00Z,,/
    e02,,c1,product_view,2026-11-01T10:01:00Z,,/product/1
    e03,,c1,product_view,2026-11-01T10:02:00Z,,/product/2
    e04,,c1,add_to_cart,2026-11-01T10:03:00Z,,/cart
    e05,,c1,order,2026-11-01T10:10:00Z,,/done
    e06,,c2,landing,2026-11-01T10:00:00Z,,/
    e07,,c2,add_to_cart,2026-11-01T10:05:00Z,,/cart
    e08,,c2,order,2026-11-01T12:00:00Z,,/done
    e09,,c3,product_view,2026-11-01T09:00:00Z,,/product/3
    e10,,c3,add_to_cart,2026-11-01T09:01:00Z,,/cart
    e11,,c3,product_view,2026-11-01T09:02:00Z,,/product/4
    e12,,c3,add_to_cart,2026-11-01T09:03:00Z,,/cart
    e13,,c4,landing,2026-11-01T08:00:00Z,,/
    e14,,c4,add_to_cart,2026-11-01T08:30:00Z,,/cart
    e15,,c5,login,2026-11-01T08:00:00Z,,/login
    e16,,c6,landing,2026-11-01T08:00:00Z,,/
    e17,,c6,add_to_cart,2026-11-01T08:40:00Z,,/cart
    e18,,c7,landing,2026-11-01T08:00:00Z,,/
    e19,,c8,product_view,2026-11-01T07:00:00Z,,/product/5
    e20,,c8,add_to_cart,2026-11-01T07:10:00Z,,/cart
    e21,,c8,landing,2026-11-01T07:20:00Z,,/
    e22,,c8,add_to_cart,2026-11-01T07:30:00Z,,/cart
    e23,,c8,order,2026-11-01T08:00:00Z,,/done
"""

BCB = "browse > cart > buy"
BCBC = "browse > cart > browse > cart"


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    root = tmp_path_factory.mktemp("paths")
    write_csv(root / "web" / "events.csv", EVENTS)
    cfg = make_config(root, touchpoints={"field": "page", "clean": [{"pattern": r"/product/\d+",
                                                                      "alias": "/product/*"}]})
    run_steps(cfg, run_started=RUN_STARTED)
    c = connect(cfg.warehouse, read_only=True)
    yield c
    c.close()


def _rows(df: pd.DataFrame) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in df.itertuples(index=False)]


# Each expected row: (rank, path, customers, share, cumulative_share); shares of 7 journeys / 8 customers.
TOP_PATHS = [
    pytest.param(dict(level="stage"), [
        (1, "browse > cart", 2, 2 / 7, 2 / 7),  # c4, c6; ties go by path
        (2, BCB, 2, 2 / 7, 4 / 7),  # c1, c2
        (3, "browse", 1, 1 / 7, 5 / 7),  # c7
        (4, BCBC, 1, 1 / 7, 6 / 7),  # c3
        (5, BCBC + " > buy", 1, 1 / 7, 7 / 7),  # c8
    ], id="stage"),
    pytest.param(dict(level="stage", n=2), [
        (1, "browse > cart", 2, 2 / 7, 2 / 7),
        (2, BCB, 2, 2 / 7, 4 / 7),
    ], id="stage-top-2"),
    pytest.param(dict(level="stage", max_length=2), [
        (1, "browse > cart > …", 4, 4 / 7, 4 / 7),  # c1, c2, c3, c8 go on after two steps
        (2, "browse > cart", 2, 2 / 7, 6 / 7),
        (3, "browse", 1, 1 / 7, 7 / 7),
    ], id="stage-max-length"),
    pytest.param(dict(level="stage", collapse_loops=False), [  # stage paths always collapse
        (1, "browse > cart", 2, 2 / 7, 2 / 7),
        (2, BCB, 2, 2 / 7, 4 / 7),
        (3, "browse", 1, 1 / 7, 5 / 7),
        (4, BCBC, 1, 1 / 7, 6 / 7),
        (5, BCBC + " > buy", 1, 1 / 7, 7 / 7),
    ], id="stage-always-collapsed"),
    pytest.param(dict(level="touchpoint"), [
        (1, "/ > /cart", 2, 2 / 8, 2 / 8),  # c4, c6
        (2, "/", 1, 1 / 8, 3 / 8),  # c7
        (3, "/ > /cart > /done", 1, 1 / 8, 4 / 8),  # c2
        (4, "/ > /product/* > /cart > /done", 1, 1 / 8, 5 / 8),  # c1: /product/1, /product/2 are one step
        (5, "/login", 1, 1 / 8, 6 / 8),  # c5 has no journey, but has events
        (6, "/product/* > /cart > / > /cart > /done", 1, 1 / 8, 7 / 8),  # c8
        (7, "/product/* > /cart > /product/* > /cart", 1, 1 / 8, 8 / 8),  # c3
    ], id="touchpoint"),
    pytest.param(dict(level="touchpoint", n=3, collapse_loops=False), [
        (1, "/ > /cart", 2, 2 / 8, 2 / 8),
        (2, "/", 1, 1 / 8, 3 / 8),
        (3, "/ > /cart > /done", 1, 1 / 8, 4 / 8),
    ], id="touchpoint-uncollapsed-top-3"),
    pytest.param(dict(level="touchpoint", n=None, max_length=1, collapse_loops=False), [
        (1, "/ > …", 4, 4 / 8, 4 / 8),  # c1, c2, c4, c6 start at / and go on; c7 ends there
        (2, "/product/* > …", 2, 2 / 8, 6 / 8),  # c3, c8
        (3, "/", 1, 1 / 8, 7 / 8),
        (4, "/login", 1, 1 / 8, 8 / 8),
    ], id="touchpoint-first-step"),
]


@pytest.mark.parametrize(("kwargs", "expected"), TOP_PATHS)
def test_top_paths(con: duckdb.DuckDBPyConnection, kwargs: dict[str, Any], expected: list[tuple[Any, ...]]) -> None:
    df = top_paths(con, **kwargs)
    assert list(df.columns) == ["rank", "path", "customers", "share", "cumulative_share"]
    assert _rows(df) == [pytest.approx(row) for row in expected]


def test_uncollapsed_touchpoint_paths_keep_repeats(con: duckdb.DuckDBPyConnection) -> None:
    df = top_paths(con, "touchpoint", n=None, collapse_loops=False)
    assert "/ > /product/* > /product/* > /cart > /done" in set(df.path)  # c1
    assert df.customers.sum() == 8


# Each expected row: (path, customers, share of the customers who had the anchor).
AROUND = [
    pytest.param(dict(anchor="cart", before=1, after=1, level="stage"), [
        ("browse > cart > (end)", 2, 2 / 6),  # c4, c6: the path ends at cart
        ("browse > cart > browse", 2, 2 / 6),  # c3, c8
        ("browse > cart > buy", 2, 2 / 6),  # c1, c2
    ], id="stage"),
    pytest.param(dict(anchor="/cart", before=2, after=0, level="touchpoint"), [
        ("(start) > / > /cart", 3, 3 / 6),  # c2, c4, c6: only one step before /cart
        ("(start) > /product/* > /cart", 2, 2 / 6),  # c3, c8
        ("/ > /product/* > /cart", 1, 1 / 6),  # c1
    ], id="touchpoint-before"),
    pytest.param(dict(anchor="buy", before=0, after=0, level="stage"), [
        ("buy", 3, 3 / 3),  # c1, c2, c8; (end) only marks a window that reaches past the last step
    ], id="anchor-only"),
    pytest.param(dict(anchor="browse", before=0, after=1, level="stage", n=1), [
        ("browse > cart", 6, 6 / 7),  # everyone but c7 (browse > (end))
    ], id="top-1"),
]


def test_an_anchor_no_stage_or_touchpoint_has_is_a_typo_not_an_empty_answer(con: duckdb.DuckDBPyConnection) -> None:
    # Issue 15: an unknown anchor used to answer an empty table; it is a one-line error naming the closest one.
    with pytest.raises(AnalysisError, match=r"anchor: 'checkout' is no stage \(--level touchpoint\?\)"):
        paths_around(con, anchor="checkout", before=1, after=1, level="stage")
    with pytest.raises(AnalysisError, match=r"anchor: 'brwse' is no stage \(did you mean 'browse'\?\)"):
        paths_around(con, anchor="brwse", before=1, after=1, level="stage")


@pytest.mark.parametrize(("kwargs", "expected"), AROUND)
def test_paths_around(con: duckdb.DuckDBPyConnection, kwargs: dict[str, Any], expected: list[tuple[Any, ...]]) -> None:
    df = paths_around(con, **kwargs)
    assert list(df.columns) == ["path", "customers", "share"]
    assert _rows(df) == [pytest.approx(row) for row in expected]


# Each expected row: (path, customers, share of those who got from start to end, median_hours).
BETWEEN = [
    pytest.param(dict(start="browse", end="buy", level="stage"), [
        (BCB, 2, 2 / 3, (10 / 60 + 2) / 2),  # c1 10:00 -> 10:10, c2 10:00 -> 12:00
        (BCBC + " > buy", 1, 1 / 3, 1.0),  # c8 07:00 -> 08:00
    ], id="stage"),
    pytest.param(dict(start="/product/*", end="/cart", level="touchpoint", collapse_loops=False), [
        ("/product/* > /cart", 2, 2 / 3, (1 / 60 + 10 / 60) / 2),  # c3 09:00 -> 09:01, c8 07:00 -> 07:10
        ("/product/* > /product/* > /cart", 1, 1 / 3, 2 / 60),  # c1 10:01 -> 10:03
    ], id="touchpoint-uncollapsed"),
    pytest.param(dict(start="cart", end="browse", level="stage"), [
        ("cart > browse", 2, 1.0, (1 / 60 + 10 / 60) / 2),  # c3 09:01 -> 09:02, c8 07:10 -> 07:20
    ], id="going-back"),
    pytest.param(dict(start="/cart", end="/cart", level="touchpoint"), [
        ("/cart > / > /cart", 1, 0.5, 20 / 60),  # c8 07:10 -> 07:30
        ("/cart > /product/* > /cart", 1, 0.5, 2 / 60),  # c3 09:01 -> 09:03
    ], id="same-step-twice"),
    pytest.param(dict(start="buy", end="browse", level="stage"), [], id="never"),
]


@pytest.mark.parametrize(("kwargs", "expected"), BETWEEN)
def test_paths_between(con: duckdb.DuckDBPyConnection, kwargs: dict[str, Any], expected: list[tuple[Any, ...]]) -> None:
    df = paths_between(con, **kwargs)
    assert list(df.columns) == ["path", "customers", "share", "median_hours"]
    assert _rows(df) == [pytest.approx(row) for row in expected]


@pytest.mark.parametrize("call", [
    lambda c: top_paths(c, "page"),  # type: ignore[arg-type]
    lambda c: top_paths(c, "stage", n=0),
    lambda c: top_paths(c, "stage", max_length=0),
    lambda c: paths_around(c, "cart", -1, 1, "stage"),
])
def test_bad_arguments_are_refused(con: duckdb.DuckDBPyConnection, call: Any) -> None:
    with pytest.raises(ValueError):
        call(con)


# ---- the sample ---------------------------------------------------------------------------------------------

def _read(cfg: Config, sql: str) -> pd.DataFrame:
    c = connect(cfg.warehouse, read_only=True)
    try:
        return c.execute(sql).fetchdf()
    finally:
        c.close()


@pytest.mark.slow
def test_top_stage_paths_on_the_sample_equal_a_groupby_of_journeys(sample: Config) -> None:
    journeys = _read(sample, "SELECT customer_key, stage_path FROM journeys")
    expected = journeys.stage_path.map(" > ".join).value_counts()
    c = connect(sample.warehouse, read_only=True)
    try:
        df = top_paths(c, "stage", n=None)
    finally:
        c.close()
    assert dict(zip(df.path, df.customers, strict=True)) == expected.to_dict()
    assert df.customers.is_monotonic_decreasing
    assert df.cumulative_share.iloc[-1] == pytest.approx(1.0)
    assert df.share.to_numpy() == pytest.approx((df.customers / len(journeys)).to_numpy())


@pytest.mark.slow
def test_top_touchpoint_paths_on_the_sample_equal_plain_python(sample: Config) -> None:
    events = _read(sample, "SELECT customer_key, touchpoint, ts, event_id, source FROM events")
    paths: dict[str, int] = {}
    for _, group in events.sort_values(["customer_key", "ts", "event_id", "source"]).groupby("customer_key"):
        path = " > ".join(t for t, _ in groupby(group.touchpoint))  # consecutive repeats collapse
        paths[path] = paths.get(path, 0) + 1
    c = connect(sample.warehouse, read_only=True)
    try:
        df = top_paths(c, "touchpoint", n=None)
    finally:
        c.close()
    assert dict(zip(df.path, df.customers, strict=True)) == paths
    assert not any("/product/1" in p for p in paths)  # cleaned at mapping time


@pytest.mark.slow
@pytest.mark.parametrize("argv", [
    ["paths", "--level", "stage", "--n", "5"],
    ["paths-around", "--anchor", "intent", "--before", "1", "--after", "1"],
    ["paths-between", "--start", "/cart", "--end", "/checkout", "--level", "touchpoint", "--n", "3"],
])
def test_cli(sample: Config, argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(analyze_cli, "ANALYSIS_MODULES", ("paths",))
    parser = argparse.ArgumentParser()
    analyze_cli.register_all(parser.add_subparsers(dest="command", required=True))
    out = tmp_path / "out.csv"
    args = parser.parse_args(["analyze", *argv, "--config", str(sample.config_path), "--out", str(out)])
    assert args.func(args) == 0
    table = pd.read_csv(out)
    assert len(table) > 0 and {"path", "customers", "share"} <= set(table.columns)
    printed = capsys.readouterr().out
    page = Path(printed.split("page: ")[1].strip()).read_text(encoding="utf-8")
    assert "plotly" in page


def test_cli_refuses_a_zero_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(analyze_cli, "ANALYSIS_MODULES", ("paths",))
    parser = argparse.ArgumentParser()
    analyze_cli.register_all(parser.add_subparsers(dest="command", required=True))
    with pytest.raises(SystemExit):
        parser.parse_args(["analyze", "paths", "--config", "x.yaml", "--n", "0"])
