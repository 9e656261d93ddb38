"""The BI examples (examples/dashboard/, docs/dashboards.md) against real published marts.

Superset and any SQLAlchemy tool through duckdb-engine, and the Streamlit app through streamlit.testing (headless, no
browser). The marts are published once per module by an in-process run of the nightly steps, on four customers whose
figures are counted by hand below; the swap test runs a second night on a copy. duckdb-engine, SQLAlchemy and Streamlit
come with the `bi` extra, which `dev` (make test) includes: a missing one fails these tests, it does not skip them.
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool, QueuePool
from streamlit.testing.v1 import AppTest

from cjm_analytics.catalog import TABLES
from cjm_analytics.config import Config
from cjm_analytics.publish import LISTING
from cjm_analytics.publish import PUBLISHED as CATALOG_PUBLISHED
from tests.conftest import REPO
from tests.fixtures import PUBLISH_EVENTS, RUN_STARTED, make_config, run_steps, write_csv

EXAMPLES = REPO / "examples" / "dashboard"
APP = EXAMPLES / "streamlit_app.py"
# A stage name that is HTML: a dashboard shows it as these characters, never as bold text.
CART = "<b>cart</b>"
# What the fixture's night publishes: the catalog's published tables but the optional ones (no surveys: no
# emotion_curve), and the listing that says so.
PUBLISHED = [*(t for t in CATALOG_PUBLISHED if not TABLES[t].optional), LISTING]
STAGES = [
    {"name": "browse", "events": ["product_*", "landing"]},
    {"name": CART, "events": ["add_to_cart"]},
    {"name": "buy", "events": ["order"]},
]
# PUBLISH_EVENTS by hand: u1 (a1 stitched) browses on 10-31 and reaches the cart; a2 browses on 11-01; u3 buys on
# 11-02 (reaching every stage). Reached: browse 3, cart 2, buy 1; exited: a2 at browse, u1 at cart, u3 at buy.
FUNNEL = [("browse", 3, 1, 1 / 3), (CART, 2, 1, 1 / 2), ("buy", 1, 1, None)]
# The goal is the cart (not the last stage): u1 and u3 converted. One journey per cohort date; who of them reached
# the cart, and who reached buy.
DAILY_CART = [("2026-10-31", 1, 1), ("2026-11-01", 1, 0), ("2026-11-02", 1, 1)]
DAILY_BUY = [("2026-10-31", 1, 0), ("2026-11-01", 1, 0), ("2026-11-02", 1, 1)]
# The second night: a2 comes back and reaches the cart, a new customer u4 browses.
NIGHT_2 = """
    event_id,anonymous_id,user_id,event,ts,channel
    5,a2,,add_to_cart,2026-11-03T10:00:00Z,
    6,,u4,landing,2026-11-03T11:00:00Z,ads
"""


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Config:
    """One night run through publish_marts: `<root>/marts/current -> runs/<run_id>`. Read it only."""
    root = tmp_path_factory.mktemp("bi")
    write_csv(root / "web" / "a.csv", PUBLISH_EVENTS)
    cfg = make_config(root, stages=STAGES, goal=CART)
    run_steps(cfg, until="publish_marts", run_started=RUN_STARTED)
    return cfg


def _root(cfg: Config) -> Path:
    return cfg.marts.parent  # make_config's marts: marts/ beside the config


def _copy(cfg: Config, to: Path) -> Config:
    """The module's project (events, warehouse, marts with their links) as a copy a test may run on."""
    shutil.copytree(_root(cfg), to, symlinks=True)
    return make_config(to, stages=STAGES, goal=CART)


def _next_night(cfg: Config) -> None:
    write_csv(_root(cfg) / "web" / "b.csv", NIGHT_2)
    run_steps(cfg, until="publish_marts", run_started=RUN_STARTED + timedelta(days=1))


def _rounded(rows: Any) -> list[tuple[Any, ...]]:
    return [tuple(round(v, 9) if isinstance(v, float) else v for v in row) for row in rows]


def _run_id(marts: Path) -> str:
    return (marts / "current").resolve().name


# --- Superset / SQLAlchemy via duckdb-engine ------------------------------------------------------------------------


def _example(name: str = "superset_sqlalchemy") -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_uri_is_absolute_read_only_and_goes_through_current(published: Config,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(_root(published))
    uri = _example().marts_uri(Path("marts"))  # relative, as a user may give it
    assert uri == f"duckdb:///{_root(published) / 'marts' / 'current' / 'marts.duckdb'}" \
                  "?access_mode=read_only"
    url = sa.make_url(uri)
    assert url.database is not None and Path(url.database).is_absolute()


def test_sqlalchemy_reads_the_funnel_and_every_published_table(published: Config) -> None:
    engine = _example().marts_engine(published.marts)
    assert isinstance(engine.pool, NullPool)
    with engine.connect() as con:
        assert set(sa.inspect(con).get_table_names()) == set(PUBLISHED)
        funnel = con.execute(sa.text(
            "SELECT stage, reached, exited, dropoff_rate FROM stage_funnel ORDER BY stage_order")).fetchall()
        assert _rounded(funnel) == _rounded(FUNNEL)
        daily = con.execute(sa.text("SELECT strftime(cohort_date, '%Y-%m-%d'), reached, "
                                    "(SELECT reached FROM stage_conversion_daily b WHERE b.cohort_date = a.cohort_date "
                                    "AND b.stage = :goal) FROM stage_conversion_daily a WHERE stage_order = 1 "
                                    "ORDER BY 1"), {"goal": "buy"}).fetchall()
        assert [tuple(r) for r in daily] == DAILY_BUY
        run_ids = con.execute(sa.text("SELECT DISTINCT run_id FROM stage_funnel")).fetchall()
        assert run_ids == [(_run_id(published.marts),)]


def test_a_dashboard_cannot_write_through_the_uri(published: Config) -> None:
    engine = _example().marts_engine(published.marts)
    with engine.connect() as con, pytest.raises(sa.exc.DBAPIError, match="read-only"):
        con.execute(sa.text("DELETE FROM stage_funnel"))


def test_the_example_prints_the_uri_and_the_funnel(published: Config, capsys: pytest.CaptureFixture[str]) -> None:
    _example().main(published.marts)
    out = capsys.readouterr().out
    assert "SQLAlchemy URI: duckdb:///" in out and "current/marts.duckdb?access_mode=read_only" in out
    assert "  browse                3  drop-off 33.3%" in out
    assert f"  {CART:<15}       2  drop-off 50.0%" in out


# --- Parquet views (the init SQL for the in-memory DuckDB of Metabase or Evidence) ------------------------------------


def test_the_parquet_views_equal_the_published_tables(published: Config) -> None:
    con = duckdb.connect()
    con.execute(_example("parquet_views").parquet_views(published.marts))
    views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    assert views == set(PUBLISHED)
    con.execute(f"ATTACH '{published.marts / 'current' / 'marts.duckdb'}' AS m (READ_ONLY)")
    for table in PUBLISHED:
        for a, b in ((table, f"m.{table}"), (f"m.{table}", table)):
            assert con.execute(f"SELECT count(*) FROM (FROM {a} EXCEPT ALL FROM {b})").fetchone() == (0,), table
    assert con.execute("SELECT stage, reached FROM stage_funnel ORDER BY stage_order").fetchall() \
        == [f[:2] for f in FUNNEL]
    con.close()


# --- Streamlit --------------------------------------------------------------------------------------------------------


def _app(marts: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("CJM_MARTS", str(marts))
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _elements(node: Any) -> list[Any]:
    children = getattr(node, "children", None)
    if not children:
        return [node]
    return [e for child in children.values() for e in _elements(child)]


def test_the_streamlit_app_shows_the_funnel_and_daily_conversion(published: Config,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    at = _app(published.marts, monkeypatch)
    assert at.text[0].value == f"Run {_run_id(published.marts)}"
    assert [m.value for m in at.metric] == ["3", "2", "66.7%"]  # 3 journeys, u1 and u3 converted
    # The worst drop-off is chosen before the goal (the cart): u1 stopping at the cart has completed, not dropped.
    assert "Worst drop-off: browse, 33.3% of those who reach it go no further" in [t.value for t in at.text]
    funnel = at.dataframe[0].value
    assert list(zip(funnel.stage, funnel.reached, funnel.exited, strict=True)) == [f[:3] for f in FUNNEL]
    assert funnel.dropoff_rate.tolist()[:2] == pytest.approx([1 / 3, 1 / 2])

    stage = at.selectbox(key="stage")
    assert stage.options == [CART, "buy"] and stage.value == CART  # the goal, shown first
    daily = at.dataframe[1].value
    assert [(f"{d:%Y-%m-%d}", j, r) for d, j, r in zip(daily.cohort_date, daily.journeys, daily.reached, strict=True)] \
        == DAILY_CART
    assert daily.conversion_rate.tolist() == [1, 0, 1]
    stage.select("buy").run()
    assert at.dataframe[1].value.reached.tolist() == [r for _, _, r in DAILY_BUY]

    # Names from the data as text: no element allows HTML, and none renders the stage name as markdown.
    elements = _elements(at.main)
    assert not [e for e in elements if getattr(getattr(e, "proto", None), "allow_html", False)]
    assert not [e for e in elements if e.type in ("html", "markdown") and CART in str(getattr(e, "value", ""))]


def test_the_streamlit_app_lists_every_published_table(published: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _app(published.marts, monkeypatch)
    table = at.selectbox(key="table")
    assert sorted(table.options) == sorted(PUBLISHED)
    for name in PUBLISHED:
        table.select(name).run()
        assert not at.exception, name
        columns, rows = at.dataframe[2].value, at.dataframe[3].value
        assert "run_id" in columns.column_name.tolist() and "run_date" in columns.column_name.tolist(), name
        assert list(rows.columns) == columns.column_name.tolist(), name
    table.select("journeys").run()
    assert sorted(at.dataframe[3].value.customer_key) == ["a2", "u1", "u3"]


def test_the_streamlit_app_says_when_nothing_is_published(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CJM_MARTS", str(tmp_path / "marts"))
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    assert not at.exception
    assert "cjm run" in at.error[0].value
    assert not at.dataframe


# --- the nightly swap -------------------------------------------------------------------------------------------------


def test_after_the_nightly_swap(published: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What docs/dashboards.md tells users: a connection opened before the swap stays on its night until reopened;
    the Streamlit app and a NullPool engine (Superset's default) show the new night at the next query."""
    cfg = _copy(published, tmp_path / "project")
    night_1 = _run_id(cfg.marts)
    # The app first: in one process DuckDB refuses a second open of a file with other settings (duckdb-engine adds
    # its user agent) while the pooled connection below holds it.
    at = _app(cfg.marts, monkeypatch)
    assert at.text[0].value == f"Run {night_1}"
    uri = _example().marts_uri(cfg.marts)
    pooled = sa.create_engine(uri)  # duckdb-engine's default for a file: QueuePool, connections kept open
    assert isinstance(pooled.pool, QueuePool)
    fresh = _example().marts_engine(cfg.marts)
    views = duckdb.connect()  # a BI tool's in-memory DuckDB, kept open, with the Parquet views as its init SQL
    views.execute(_example("parquet_views").parquet_views(cfg.marts))
    sql = sa.text("SELECT max(run_id), sum(reached) FILTER (WHERE stage_order = 1) FROM stage_funnel")
    with pooled.connect() as con:
        assert con.execute(sql).one() == (night_1, 3)
    with fresh.connect() as con:
        assert con.execute(sql).one() == (night_1, 3)
    assert views.execute(str(sql)).fetchone() == (night_1, 3)

    _next_night(cfg)
    night_2 = _run_id(cfg.marts)
    assert night_2 != night_1
    with pooled.connect() as con:  # the pool hands back the connection opened before the swap
        assert con.execute(sql).one() == (night_1, 3)
    with fresh.connect() as con:  # browse: u1, a2, u3 and the new u4
        assert con.execute(sql).one() == (night_2, 4)
    assert views.execute(str(sql)).fetchone() == (night_2, 4)  # the views read `current` again at every query
    at.run()  # the next page view, in the same server process (st.cache_data kept)
    assert not at.exception
    assert at.text[0].value == f"Run {night_2}"
    assert at.dataframe[0].value.reached.tolist() == [4, 3, 1]  # u4 browses, a2 reaches the cart

    pooled.dispose()  # what a restart or a pool recycle does
    with pooled.connect() as con:
        assert con.execute(sql).one() == (night_2, 4)
    pooled.dispose()
