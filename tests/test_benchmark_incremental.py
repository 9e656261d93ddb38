"""The benchmark's next night (benchmarks/generate.py --night-fraction) and its incremental run (benchmarks/run.py
--incremental): the night is deterministic, shaped like a real next day (returning customers, anonymous visitors
whose history moves when they log in, new customers, CRM rows), and an incremental night over it gives exactly
the tables of a full refresh of history + night. No timings are asserted."""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from benchmarks import run, systems
from benchmarks.compare import compare_warehouses, warehouse_totals
from benchmarks.generate import config_dict, generate, generate_night
from cjm_analytics.config import parse_config
from cjm_analytics.nightly import NIGHTLY_STEPS, RunContext

pytestmark = pytest.mark.slow

EVENTS, SEED, FRACTION = 20_000, 7, 0.05


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("history") / "data"
    generate(out, EVENTS, seed=SEED)
    return out


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("night") / "data"
    generate_night(out, EVENTS, seed=SEED, fraction=FRACTION)
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.parquet"))}


def test_a_night_is_a_function_of_events_seed_and_fraction(night: Path, tmp_path: Path) -> None:
    generate_night(tmp_path / "again", EVENTS, seed=SEED, fraction=FRACTION)
    assert _files(tmp_path / "again") == _files(night)
    generate_night(tmp_path / "other", EVENTS, seed=SEED, fraction=0.02)
    assert _files(tmp_path / "other") != _files(night)
    with pytest.raises(ValueError, match="must be in"):
        generate_night(tmp_path / "bad", EVENTS, seed=SEED, fraction=0)


def test_the_night_is_the_next_day_of_the_same_customers(history: Path, night: Path) -> None:
    info = json.loads((night / "night.json").read_text(encoding="utf-8"))
    assert info["night_events"] == round(EVENTS * FRACTION)
    assert sorted(_files(night)) == ["clickstream/2026-10-31.parquet", "crm/2026-10-31.parquet"]
    for source in ("clickstream", "crm"):  # the history's schema: the same config reads both
        some_day = next((history / source).glob("*.parquet"))
        assert pq.read_schema(night / source / "2026-10-31.parquet") == pq.read_schema(some_day)
    con = duckdb.connect()
    con.execute(f"""
        CREATE VIEW h AS SELECT event_id AS id, user_id, anonymous_id, ts FROM read_parquet('{history}/clickstream/*')
            UNION ALL SELECT activity_id, customer_id, NULL, make_timestamp(occurred_at * 1000)
            FROM read_parquet('{history}/crm/*');
        CREATE VIEW n AS SELECT event_id AS id, user_id, anonymous_id, event, ts
            FROM read_parquet('{night}/clickstream/*')
            UNION ALL SELECT activity_id, customer_id, NULL, activity, make_timestamp(occurred_at * 1000)
            FROM read_parquet('{night}/crm/*');
    """)

    def one(sql: str) -> int:
        row = con.execute(sql).fetchone()
        assert row is not None
        return int(row[0])

    assert one("SELECT count(*) FROM n") == info["night_events"]
    assert one("SELECT count(DISTINCT id) FROM n") == info["night_events"]
    assert one("SELECT count(*) FROM n JOIN h USING (id)") == 0  # new event ids
    assert one("SELECT count(*) FROM n WHERE ts::DATE <> DATE '2026-10-31'") == 0
    assert one("SELECT count(*) FROM n WHERE ts::DATE = DATE '2026-10-31'") == info["night_events"]
    assert con.execute("SELECT max(ts) < (SELECT min(ts) FROM n) FROM h").fetchone() == (True,)
    users = "SELECT count(DISTINCT user_id) FROM n WHERE user_id {} (SELECT user_id FROM h WHERE user_id NOT NULL)"
    returning, new = one(users.format("IN")), one(users.format("NOT IN"))
    assert returning > 2 * new > 0  # mostly returning customers, some signing up
    # Anonymous visitors of the history who log in tonight: their history moves to a customer.
    moving = one("""SELECT count(DISTINCT anonymous_id) FROM n WHERE user_id IS NOT NULL AND anonymous_id IN
                    (SELECT anonymous_id FROM h GROUP BY 1 HAVING count(user_id) = 0)""")
    assert moving == info["customers"]["anonymous_ids_moving"] > 0
    assert one("SELECT count(*) FROM n WHERE event IN ('login', 'signup')") > 0
    assert one("SELECT count(DISTINCT anonymous_id) FROM n WHERE anonymous_id NOT IN "
               "(SELECT anonymous_id FROM h WHERE anonymous_id NOT NULL)") > 0  # new visitors and devices
    assert 0.02 < info["rows"]["crm"] / info["night_events"] < 0.3


def test_an_incremental_night_equals_a_full_refresh(history: Path, night: Path, tmp_path: Path) -> None:
    sources = tmp_path / "sources"
    systems.link_files(history, sources)
    config = config_dict(sources, warehouse=str(tmp_path / "w" / "cjm.duckdb"), reports=str(tmp_path / "reports"))
    steps = [step for name, step in NIGHTLY_STEPS if name not in ("publish_reports", "publish_marts")]
    cfg = parse_config(config, tmp_path, "test")
    full = RunContext.start(cfg)
    for step in steps:
        step(full)
    systems.link_files(night, sources)
    incremental = RunContext.start(cfg)
    results = {r.step: r.counts for r in (step(incremental) for step in steps)}
    assert sum(f["rows_loaded"] for f in results["load_sources"]["files"]) == round(EVENTS * FRACTION)
    assert 0 < results["sessionize"]["customers_recomputed"] < 0.5 * warehouse_totals(cfg.warehouse)["customers"]

    refreshed = tmp_path / "refresh" / "cjm.duckdb"
    refreshed.parent.mkdir()
    refreshed.write_bytes(cfg.warehouse.read_bytes())
    refresh_cfg = cfg.model_copy(update={"warehouse": refreshed})
    refresh = RunContext(refresh_cfg, "refresh", incremental.run_started, full_refresh=True)
    for step in steps:
        step(refresh)
    check = compare_warehouses(cfg.warehouse, refreshed)
    assert check["equal"], check
    assert check["tables"]["events"]["rows"] == EVENTS + round(EVENTS * FRACTION)


def test_the_benchmark_reports_the_night_and_checks_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    skip = ",".join(s for s in run.SYSTEMS if s != "pipeline")
    out = tmp_path / "result.json"
    data = tmp_path / "data it's \"odd\"; x"  # its folders reach the SQL of the run, the profiles and the check
    assert run.main(["--events", str(EVENTS), "--seed", str(SEED), "--data-dir", str(data), "--skip", skip,
                     "--incremental", str(FRACTION), "--check-incremental", "--out", str(out), "--profile",
                     "--set", "checkpoint_threshold=1GB"]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    inc = report["incremental"]
    assert inc["completed"] and inc["check"]["equal"]
    assert [s["step"] for s in inc["steps"]] == list(systems.PIPELINE_STEPS)
    for figure in ("seconds", "cpu_seconds", "peak_rss_mb", "spill_max_mb"):
        assert all(figure in s for s in inc["steps"]) and figure in inc["total"]
    assert inc["recomputed"]["events_loaded"] == round(EVENTS * FRACTION)
    assert 0 < inc["recomputed"]["customers_recomputed"] < inc["recomputed"]["customers_total"]
    assert set(inc["ratios"]) == {"incremental_over_full", "incremental_over_full_cpu"}
    assert report["ratios"]["incremental_over_full"] == inc["ratios"]["incremental_over_full"]
    # --profile and --set reach every step's connections through the product's connect hook.
    for profile in (report["profile"], inc["profile"]):
        assert list(profile) == list(systems.PIPELINE_STEPS) and all(p["statements"] > 0 for p in profile.values())
    # The cached data set is left as generated: the night lives beside it.
    assert len(list(data.glob(f"events-{EVENTS}-seed-{SEED}-v*-night-{FRACTION:g}-n*"))) == 1
    printed = capsys.readouterr().out
    assert "incremental / full: wall" in printed and re.search(r"^night +end to end", printed, re.MULTILINE)
    assert "incremental night vs full refresh of history + night: equal" in printed
