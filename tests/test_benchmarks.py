"""The benchmark's generator and pandas baseline (benchmarks/): deterministic, the advertised shape, and the
baseline agreeing with the product at a small size (it is an independent implementation of the definitions,
so it doubles as a correctness check of the pipeline). No timings are asserted."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

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


# --- the data shapes and what a user waits for (issue 16) ------------------------------------------------------

SMALL = 2_000


def _all_rows(data: Path, shape: str) -> pd.DataFrame:
    """Every row under the one-file shape's column names, in one order."""
    con = duckdb.connect()
    if shape == "one-file":
        sql = f"SELECT * EXCLUDE (device, page) FROM read_parquet('{data}/events/*.parquet')"
    else:
        sql = f"""SELECT event_id, anonymous_id, user_id, event, ts, channel, NULL AS deal_stage, NULL AS score
                  FROM read_parquet('{data}/clickstream/*.parquet')
                  UNION ALL
                  SELECT activity_id, NULL, customer_id, activity, make_timestamp(occurred_at * 1000), channel,
                         deal_stage, score FROM read_parquet('{data}/crm/*.parquet')"""
    return con.execute(f"SELECT * FROM ({sql}) ORDER BY event_id").df()


def test_the_one_file_shape_is_the_same_rows_in_one_file(tmp_path: Path) -> None:
    generate(tmp_path / "nightly", SMALL, seed=7)
    info = generate(tmp_path / "one", SMALL, seed=7, shape="one-file")
    assert [p.relative_to(tmp_path / "one").as_posix() for p in (tmp_path / "one").rglob("*.parquet")] == \
        ["events/events.parquet"]
    assert info["files"] == 1 and info["shape"] == "one-file"
    pd.testing.assert_frame_equal(_all_rows(tmp_path / "one", "one-file"), _all_rows(tmp_path / "nightly", ""),
                                  check_dtype=False)
    # One source, whose other columns (deal_stage, score) are the properties the stage rules test.
    cfg = parse_config(config_dict(tmp_path / "one", shape="one-file"), tmp_path, "benchmark config")
    assert [s.name for s in cfg.sources] == ["events"] and len(cfg.sources[0].files()) == 1


def test_the_anonymous_shape_is_mostly_anonymous_with_late_logins(tmp_path: Path) -> None:
    generate(tmp_path / "a", SMALL, seed=7, shape="anonymous")
    generate(tmp_path / "again", SMALL, seed=7, shape="anonymous")
    assert _files(tmp_path / "again") == _files(tmp_path / "a")  # reproducible from the seed
    generate(tmp_path / "d", SMALL, seed=7)
    default, anonymous = _all_rows(tmp_path / "d", ""), _all_rows(tmp_path / "a", "")
    share = {name: rows.user_id.isna().mean() for name, rows in (("default", default), ("anonymous", anonymous))}
    assert share["default"] < 0.6 < 0.75 < share["anonymous"]  # most events are anonymous

    # Visitors who log in later: anonymous ids seen without, then with a user id (stitching moves their history).
    def later_logins(rows: pd.DataFrame) -> int:
        web = rows[rows.anonymous_id.notna()]
        return len(set(web[web.user_id.isna()].anonymous_id) & set(web[web.user_id.notna()].anonymous_id))

    assert later_logins(anonymous) > 20
    assert len(anonymous) == SMALL


def _report(events: int, cjm_run: float, night: float | None = None) -> dict[str, object]:
    """A result as benchmarks.run writes it, with whole-process figures chosen by hand."""
    report: dict[str, object] = {
        "events": events,
        "floor_stored": {"seconds": 8.0, "cpu_seconds": 9.0, "process_seconds": 10.0, "process_cpu_seconds": 12.0,
                         "peak_rss_mb": 950.0},
        "cjm_run": {"seconds": cjm_run, "cpu_seconds": 60.0, "peak_rss_mb": 2500.0},
        # 130 s as a process, of which 5 s are the counts taken for the comparison (left out)
        "retentioneering": {"steps": [], "seconds": 100.0, "cpu_seconds": 110.0, "process_seconds": 130.0,
                            "process_cpu_seconds": 140.0, "peak_rss_mb": 6000.0, "counts": {"untimed_seconds": 5.0}},
    }
    if night is not None:
        report["cjm_run_night"] = {"seconds": night, "cpu_seconds": 3.0, "peak_rss_mb": 400.0, "fraction": 0.01}
    return report


def test_the_issues_ratios_are_between_whole_processes_and_marked_against_their_targets() -> None:
    from benchmarks.compare import targets

    at_10m = {t["ratio"]: t for t in targets(_report(10_000_000, cjm_run=25.0, night=2.0))}
    assert at_10m["cjm_run_over_floor"]["value"] == 2.5 and at_10m["cjm_run_over_floor"]["cpu"] == 5.0  # 25/10, 60/12
    assert not at_10m["cjm_run_over_floor"]["met"] and at_10m["cjm_run_over_floor"]["limit"] == 2
    assert at_10m["retentioneering_over_cjm_run"]["value"] == 5.0  # (130 - 5) / 25
    assert at_10m["retentioneering_over_cjm_run"]["cpu"] == round(140 / 60, 2)
    assert at_10m["retentioneering_over_cjm_run"]["met"]  # at least 5
    assert at_10m["cjm_run_peak_rss_mb"]["value"] == 2500.0 and not at_10m["cjm_run_peak_rss_mb"]["met"]
    assert at_10m["night_over_full_run"]["value"] == 0.08 and at_10m["night_over_full_run"]["met"]
    assert at_10m["night_over_full_run"]["cpu"] == 0.05 and "0.01" in at_10m["night_over_full_run"]["target"]
    # Below 10M the floor's limit is 3 (fixed costs); a night that was not measured has no target line.
    at_1m = {t["ratio"]: t for t in targets(_report(1_000_000, cjm_run=25.0))}
    assert at_1m["cjm_run_over_floor"]["limit"] == 3 and at_1m["cjm_run_over_floor"]["met"]
    assert "night_over_full_run" not in at_1m
    # A failed cjm run has no ratios: nothing is marked as met on figures that do not exist.
    failed = _report(1_000_000, cjm_run=25.0)
    failed["cjm_run"] = {"failed": "boom", "seconds": 1.0, "cpu_seconds": 1.0, "peak_rss_mb": 1.0}
    assert targets(failed) == []


def test_the_benchmark_times_cjm_run_and_its_night_as_whole_processes(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from benchmarks import run

    out = tmp_path / "result.json"
    assert run.main(["--events", str(SMALL), "--seed", "7", "--shape", "one-file", "--data-dir", str(tmp_path / "d"),
                     "--skip", "pipeline,pandas,publish,retentioneering,floor_memory", "--incremental", "0.05",
                     "--floor-memory-limit", "1GB", "--out", str(out), "--keep"]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    # Only the stored floor, the issue's yardstick, under a limit of its own; cjm run keeps DuckDB's defaults.
    assert "floor" not in report and report["settings"]["floor_memory_limit"] == "1GB"
    assert report["settings"]["memory_limit"] is None
    runs = {key: report[key] for key in ("cjm_run", "cjm_run_night")}
    for r in runs.values():
        assert "failed" not in r and r["seconds"] > 0 and r["cpu_seconds"] > 0
        assert r["peak_rss_mb"] >= r["hwm_mb"] > 50  # a Python process with DuckDB: tens of MB at least
    assert "--no-prefect" in runs["cjm_run"]["command"]
    # Where its time went, from the product's run_log: every step of the run, and the rest outside them.
    steps = [s["step"] for s in runs["cjm_run"]["steps"]]
    assert steps[0] == "load_sources" and {"sessionize", "publish_reports", "publish_marts"} <= set(steps)
    assert runs["cjm_run"]["outside_steps_seconds"] == pytest.approx(
        runs["cjm_run"]["seconds"] - sum(s["seconds"] for s in runs["cjm_run"]["steps"]), abs=0.01)
    assert runs["cjm_run"]["outside_steps_seconds"] > 0
    # The command did everything on its own warehouse: the history, then the night, and published the marts.
    folder = Path(report["workdir"]) / "cjm_run"
    con = duckdb.connect(str(folder / "warehouse" / "cjm.duckdb"), read_only=True)
    row = con.execute("SELECT (SELECT count(*) FROM events), "
                      "(SELECT count(DISTINCT run_id) FROM load_manifest)").fetchone()
    con.close()
    assert row == (SMALL + round(SMALL * 0.05), 2)
    assert (folder / "reports" / "index.html").is_file()
    fl = report["floor_stored"]
    assert fl["rows"] == SMALL and fl["process_seconds"] > fl["seconds"]  # the process: start, import, query
    ratios = report["ratios"]
    assert ratios["cjm_run_over_floor"] == round(runs["cjm_run"]["seconds"] / fl["process_seconds"], 2)
    assert ratios["night_over_full_run"] == round(runs["cjm_run_night"]["seconds"] / runs["cjm_run"]["seconds"], 3)
    assert [t["ratio"] for t in report["targets"]] == ["cjm_run_over_floor", "cjm_run_peak_rss_mb",
                                                       "night_over_full_run"]
    printed = capsys.readouterr().out
    assert "issue 16's targets" in printed and "cjm run / floor" in printed
    assert ("PASS" in printed) or ("short" in printed)


def test_an_in_memory_floor_that_cannot_fit_is_left_out_with_its_reason(data: Path, tmp_path: Path) -> None:
    # At 100M the in-memory database cannot hold the sorted table (it cannot spill it): the run goes on with the
    # stored floor, the issue's yardstick, and says why the other is missing. The stored one failing still stops it.
    from benchmarks import systems

    common = {"config": config_dict(data), "base_dir": str(tmp_path)}

    def settings(limit: dict[str, str | None]) -> Any:
        return lambda key: {"memory_limit": limit[key], "threads": 1, "max_temp_directory_size": None, "extra": {},
                            "temp_directory": str(tmp_path / f"tmp-{key}")}

    out = systems.measure_floor(common, tmp_path, settings({"floor": "1MB", "floor_stored": None}), EVENTS,
                                lambda _: None)
    assert "floor" not in out and "Out of Memory" in out["floor_failed"]
    assert out["floor_stored"]["rows"] == EVENTS
    with pytest.raises(RuntimeError, match="floor_stored failed"):
        systems.measure_floor(common, tmp_path, settings({"floor": None, "floor_stored": "a lot"}), EVENTS,
                              lambda _: None)
