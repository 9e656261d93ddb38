"""A `'`, a `"`, a `;` and spaces are data wherever a user or a file can put them: in the project's folder, in file
names, in mapped and unmapped column names, in ids, event names and channels, in stage names and rules. The real
nightly run (`cjm run --no-prefect`, through publishing) keeps every one of them exactly (docs/adr/0001)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml

from benchmarks import profiling
from benchmarks.retentioneering_baseline import stage_sql
from benchmarks.systems import floor_sql
from cjm_analytics import warehouse
from cjm_analytics.cli import main
from cjm_analytics.config import load_config
from tests.fixtures import make_config, rows

pytestmark = pytest.mark.slow

ODD = "it's \"odd\"; x"  # every character that ends a literal, an identifier or a statement, and a space
# Mapped columns (canonical name -> the file's column name) and an unmapped one (a property).
COLUMNS = {
    "event_id": 'event "id"', "customer_id": "user's id", "anonymous_id": "anon; id",
    "event_name": "event 'name' \"x\"", "timestamp": 'at "ts"; 1', "channel": "chan'nel; \"x\"",
}
PROPERTY = "it's \"prop\"; x"
LANDING, CART, ORDER = "it's \"landing\"; 1", "add 'to' \"cart\"; 2", "order \"x\"; 'y'"
CHANNEL, CUSTOMER, ANON = "e'mail \"x\"; y", "o'brien \"c\"; 1", "a'1 \"x\"; y"
PAID = "v'1 \"w\"; z"  # the property's value a stage rule asks for
STAGES = {"browse": "it's \"browse\"", "cart": 'cart "x"; y', "buy": "buy 'it'; \"now\""}


def _write(root: Path) -> tuple[Path, Path]:
    """One CSV and one Parquet file, both named with the odd characters, with a journey each."""
    web = root / f"web {ODD}"
    web.mkdir(parents=True)
    c = COLUMNS
    csv = pd.DataFrame({
        c["event_id"]: ["e'1", 'e"2', "e;3"], c["customer_id"]: [None, None, CUSTOMER], c["anonymous_id"]: [ANON] * 3,
        c["event_name"]: [LANDING, CART, ORDER],
        c["timestamp"]: ["2026-11-01T10:00:00Z", "2026-11-01T10:05:00Z", "2026-11-01T10:10:00Z"],
        c["channel"]: [CHANNEL, None, CHANNEL], PROPERTY: [ODD, None, PAID],
    })
    csv_path = web / f"day {ODD}.csv"
    csv.to_csv(csv_path, index=False)
    parquet = pd.DataFrame({
        c["event_id"]: ["p'1", 'p"2'], c["customer_id"]: [None, None], c["anonymous_id"]: ["b'2", "b'2"],
        c["event_name"]: [LANDING, ORDER], c["timestamp"]: ["2026-11-02T09:00:00Z", "2026-11-02T09:30:00Z"],
        c["channel"]: [CHANNEL, CHANNEL], PROPERTY: ["no", "not paid"],
    })
    parquet_path = web / f"day {ODD}.parquet"
    parquet.to_parquet(parquet_path)
    return csv_path, parquet_path


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """The project in a folder named with the odd characters, run once through publishing."""
    root = tmp_path_factory.mktemp("quoting") / f"project {ODD}"
    csv_path, parquet_path = _write(root)
    config = {
        "warehouse": f"warehouse {ODD}/cjm.duckdb", "reports": f"reports {ODD}", "marts": f"marts {ODD}",
        "sources": [{"name": "web", "kind": "clickstream", "path": f"web {ODD}/*", "columns": COLUMNS}],
        "stages": [
            {"name": STAGES["browse"], "events": [LANDING]},
            {"name": STAGES["cart"], "events": ["add 'to' *"]},  # a glob with a quote
            {"name": STAGES["buy"], "events": [{"name": ORDER, "where": {PROPERTY: PAID}}]},
        ],
        "goal": STAGES["buy"],
        "touchpoints": {"field": PROPERTY},
    }
    (root / "cjm.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    assert main(["run", "--config", str(root / "cjm.yaml"), "--no-prefect"]) == 0
    return root, csv_path, parquet_path


def test_files_and_folders_named_with_quotes_load(project: tuple[Path, Path, Path]) -> None:
    root, csv_path, parquet_path = project
    cfg = load_config(root / "cjm.yaml")
    assert rows(cfg, "SELECT source, file, status, rows_loaded, rows_rejected FROM load_manifest ORDER BY file") == [
        ("web", str(csv_path), "loaded", 3, 0), ("web", str(parquet_path), "loaded", 2, 0)]
    assert rows(cfg, "SELECT count(*) FROM rejects") == [(0,)]


def test_names_and_values_with_quotes_are_kept_exactly(project: tuple[Path, Path, Path]) -> None:
    root, csv_path, _ = project
    cfg = load_config(root / "cjm.yaml")
    raw = rows(cfg, "SELECT event_id, customer_id, anonymous_id, event_name, channel, properties, file "
                    "FROM raw_events ORDER BY ts")
    assert [r[:5] for r in raw] == [
        ("e'1", None, ANON, LANDING, CHANNEL), ('e"2', None, ANON, CART, None), ("e;3", CUSTOMER, ANON, ORDER, CHANNEL),
        ("p'1", None, "b'2", LANDING, CHANNEL), ('p"2', None, "b'2", ORDER, CHANNEL)]
    # The unmapped column is a property under its own name.
    assert [json.loads(r[5]) for r in raw] == [{PROPERTY: ODD}, {PROPERTY: None}, {PROPERTY: PAID}, {PROPERTY: "no"},
                                               {PROPERTY: "not paid"}]
    assert raw[0][6] == str(csv_path)
    # Stitching, stage rules (a name, a glob, a property condition) and sessions over the odd values.
    assert rows(cfg, "SELECT customer_key, event_name, stage FROM events ORDER BY ts") == [
        (CUSTOMER, LANDING, STAGES["browse"]), (CUSTOMER, CART, STAGES["cart"]), (CUSTOMER, ORDER, STAGES["buy"]),
        ("b'2", LANDING, STAGES["browse"]), ("b'2", ORDER, None)]


def test_stage_marts_name_the_stages_exactly(project: tuple[Path, Path, Path]) -> None:
    cfg = load_config(project[0] / "cjm.yaml")
    assert rows(cfg, "SELECT stage, reached FROM stage_funnel ORDER BY stage_order") == [
        (STAGES["browse"], 2), (STAGES["cart"], 1), (STAGES["buy"], 1)]
    assert rows(cfg, "SELECT from_stage, to_stage, transitions FROM stage_transitions "
                     "ORDER BY from_order, to_order") == [
        ("(start)", STAGES["browse"], 2), (STAGES["browse"], STAGES["cart"], 1), (STAGES["browse"], "(end)", 1),
        (STAGES["cart"], STAGES["buy"], 1), (STAGES["buy"], "(end)", 1)]


def test_published_marts_and_report_are_written_in_the_odd_folders(project: tuple[Path, Path, Path]) -> None:
    root = project[0]
    con = duckdb.connect(str(root / f"marts {ODD}" / "current" / "marts.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT stage, reached FROM stage_funnel ORDER BY stage_order").fetchall() == [
            (STAGES["browse"], 2), (STAGES["cart"], 1), (STAGES["buy"], 1)]
    finally:
        con.close()
    funnel = pd.read_parquet(root / f"marts {ODD}" / "current" / "parquet" / "stage_funnel")
    assert funnel.sort_values("stage_order").stage.tolist() == list(STAGES.values())
    assert (root / f"reports {ODD}" / "index.html").is_file()


# --- the benchmark: the same characters in its folders, the config's column names and the stage rules --------


def test_the_floor_reads_any_column_names_and_folders(tmp_path: Path) -> None:
    _, parquet_path = _write(tmp_path / f"data {ODD}")
    cfg = make_config(parquet_path.parents[1], sources=[{"name": "web", "kind": "clickstream",
                                                         "path": f"web {ODD}/*.parquet", "columns": COLUMNS}])
    sql, params = floor_sql(cfg)
    con = duckdb.connect()
    con.execute(sql, params)
    sorted_ = con.execute("SELECT * FROM sorted").df()
    assert sorted_[["source", "event_id", "anonymous_id", "event_name", "channel", PROPERTY]].values.tolist() == [
        ["web", "p'1", "b'2", LANDING, CHANNEL, "no"], ["web", 'p"2', "b'2", ORDER, CHANNEL, "not paid"]]


def test_retentioneerings_stage_rules_take_any_names() -> None:
    stages = [{"name": STAGES["browse"], "events": [LANDING]}, {"name": STAGES["cart"], "events": ["add 'to' *"]},
              {"name": STAGES["buy"], "events": [{"name": ORDER, "where": {PROPERTY: PAID}}]}]
    eventstream = pd.DataFrame({"event": [LANDING, CART, ORDER, ORDER, "other"],
                                PROPERTY: [None, None, PAID, "not paid", None], "n": range(5)})
    con = duckdb.connect()
    con.register("eventstream", eventstream)
    mapped = con.execute(stage_sql(stages, list(eventstream.columns)) + " ORDER BY n").fetchall()
    assert [(row[0], row[2]) for row in mapped] == [(STAGES["browse"], 0), (STAGES["cart"], 1), (STAGES["buy"], 2)]


def test_the_benchmarks_hook_sets_and_profiles_the_products_connections(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(warehouse, "CONNECT_HOOKS", [])  # this test's hook only, gone after it
    profiles = tmp_path / f"profiles {ODD}"
    profiles.mkdir()
    profiling.add_to_connections({"checkpoint_threshold": "1GB", "preserve_insertion_order": "false"},
                                 (profiles, "step"))
    con = warehouse.connect(tmp_path / f"w {ODD}.duckdb")
    try:
        assert con.execute("SELECT current_setting('checkpoint_threshold'), "
                           "current_setting('preserve_insertion_order')").fetchone() == ("953.6 MiB", False)
        con.execute("SELECT $text", {"text": ODD})
    finally:
        con.close()
    summary = profiling.summarize(profiles, "step")
    assert summary["statements"] == 2 and "SELECT $text" in {k["sql"] for k in summary["by_statement"]}
