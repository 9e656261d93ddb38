"""A broken night never reaches a dashboard: each health check fires when it should and stays quiet when it should,
the verdict stops publishing, and alerts reach a command (docs/checks.md)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from cjm_analytics.checks import check_run
from cjm_analytics.cli import main
from cjm_analytics.config import Config, load_config
from cjm_analytics.errors import ChecksFailedError
from cjm_analytics.nightly import run_nightly
from cjm_analytics.warehouse import connect, open_warehouse
from tests.conftest import copy_sample
from tests.fixtures import make_config, rows, run_steps, without_progress, write_csv

HEADER = "event_id,anonymous_id,user_id,event,ts,channel"


def _checks(cfg: Config, run_id: str | None = None) -> dict[tuple[str, str], tuple[str, str]]:
    """(check, subject) -> (status, message) of a run (default: the latest)."""
    where = f"run_id = '{run_id}'" if run_id else "run_id = (SELECT arg_max(run_id, run_started) FROM run_checks)"
    return {(c, s): (st, m) for c, s, st, m in rows(cfg, f"SELECT check_name, subject, status, message FROM run_checks "
                                                         f"WHERE {where}")}


def _failed(cfg: Config) -> dict[tuple[str, str], str]:
    return {k: m for k, (st, m) in _checks(cfg).items() if st not in ("pass", "info")}


def _tiny(root: Path, lines: list[str], **overrides: Any) -> Config:
    write_csv(root / "web" / "a.csv", "\n".join([HEADER, *lines]))
    return make_config(root, **overrides)


JOURNEY = ["1,a1,,landing,2026-11-01T10:00:00Z,", "2,a1,,add_to_cart,2026-11-01T10:05:00Z,",
           "3,a1,,order,2026-11-01T10:10:00Z,", "4,a2,,product_view,2026-11-01T11:00:00Z,"]


def test_a_clean_night_passes_every_check(tmp_path: Path) -> None:
    cfg = _tiny(tmp_path, JOURNEY)
    run_nightly(cfg)
    assert _failed(cfg) == {}
    names = {c for c, _ in _checks(cfg)}
    assert names == {"source_empty", "refused_files", "reject_rate", "stage_rules", "stage_unreached", "late_data"}


# --- the sample's broken-config cases: exit 7, nothing published ------------------------------------------

def _broken(config: Path, source: int, **changes: Any) -> None:
    data = yaml.safe_load(config.read_text())
    for key, value in changes.items():
        if key == "columns":
            data["sources"][source]["columns"] |= value
        else:
            data["sources"][source][key] = value
    config.write_text(yaml.safe_dump(data))


def _published(root: Path) -> tuple[str, str]:
    """The run the marts show and the run the report shows."""
    marts = duckdb.connect(str(root / "marts" / "current" / "marts.duckdb"), read_only=True)
    try:
        run_id = marts.execute("SELECT run_id FROM run_summary").fetchall()[0][0]
    finally:
        marts.close()
    page = (root / "reports" / "index.html").read_text()
    return str(run_id), page.split("Run <code>")[1].split("</code>")[0]


@pytest.mark.parametrize(("case", "changes", "fired"), [
    ("wrong column", {"columns": {"event_name": "event_type"}}, {"refused_files", "source_empty"}),
    ("wrong delimiter", {"delimiter": ";"}, {"refused_files", "source_empty"}),
    ("wrong timestamp format", {"timestamp_format": "%d/%m/%Y %H:%M"}, {"reject_rate", "source_empty"}),
])
def test_a_broken_config_ends_in_exit_7_and_publishes_nothing(tmp_path: Path, case: str, changes: dict[str, Any],
                                                                fired: set[str],
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    root = copy_sample(tmp_path / "sample")
    config = root / "cjm.yaml"
    assert main(["run", "--config", str(config), "--no-prefect"]) == 0
    good = _published(root)
    assert good[0] == good[1]
    capsys.readouterr()
    _broken(config, 0, **changes)  # the web source
    assert main(["run", "--config", str(config), "--no-prefect"]) == 7
    err = without_progress(capsys.readouterr().err)
    assert err.count("\n") == 1 and err.startswith("cjm: error: run ") and "nothing was published" in err, err
    assert _published(root) == good  # marts and report still on the last good run
    cfg = load_config(config)
    assert {c for c, s in _failed(cfg) if s == "web"} == fired
    # The report that stays shown now says a later night failed (run_status.js beside its pages).
    status = (root / "reports" / "run_status.js").read_text()
    assert '"verdict": "failed"' in status and good[0] not in status
    # The next good night publishes again (the refused files are read again with the fixed config).
    config.write_text((Path(__file__).parents[1] / "data" / "sample" / "cjm.yaml").read_text())
    assert main(["run", "--config", str(config), "--no-prefect"]) == 0
    now = _published(root)
    assert now[0] == now[1] != good[0]
    assert rows(cfg, "SELECT conversion_rate FROM run_summary") == rows(cfg, f"SELECT conversion_rate FROM "
                                                                            f"run_history WHERE run_id = '{good[0]}'")


def test_force_publish_publishes_a_failed_night_with_a_banner(tmp_path: Path) -> None:
    root = copy_sample(tmp_path / "sample")
    config = root / "cjm.yaml"
    _broken(config, 0, columns={"event_name": "event_type"})
    assert main(["run", "--config", str(config), "--no-prefect", "--force-publish"]) == 0
    run_id, shown = _published(root)
    assert run_id == shown
    page = (root / "reports" / "index.html").read_text()
    assert "published anyway (cjm run --force-publish)" in page and "file(s) refused" in page


# --- stage rules ------------------------------------------------------------------------------------------

def test_a_misspelled_stage_event_warns_with_the_name_it_meant(tmp_path: Path) -> None:
    stages = [{"name": "browse", "events": ["landing", "product_veiw"]}, {"name": "cart", "events": ["add_to_cart"]},
              {"name": "buy", "events": ["order"]}]
    cfg = _tiny(tmp_path, [*JOURNEY, "5,a3,,product_view,2026-11-01T12:00:00Z,"], stages=stages)
    run_nightly(cfg)  # a warning publishes
    assert _failed(cfg) == {("stage_rules", "browse: product_veiw"):
                            "stage browse: rule product_veiw matches no event in the data (did you mean product_view?)"}
    assert Path(cfg.marts / "current" / "marts.duckdb").exists()


def test_a_stage_nobody_reached_yet_is_not_an_error(tmp_path: Path) -> None:
    cfg = _tiny(tmp_path, JOURNEY[:2] + JOURNEY[3:])  # nobody bought yet
    run_nightly(cfg)
    assert _failed(cfg) == {("stage_rules", "buy: order"): "stage buy: rule order matches no event in the data"}
    assert _checks(cfg)[("stage_unreached", "buy")] == ("pass", "stage buy: no customer has reached it yet")


def test_a_stage_skipped_by_every_journey_is_an_error(tmp_path: Path) -> None:
    stages = [{"name": "browse", "events": ["landing"]}, {"name": "cart", "events": ["ad_to_cart"]},
              {"name": "buy", "events": ["order"]}]
    cfg = _tiny(tmp_path, JOURNEY, stages=stages)
    with pytest.raises(ChecksFailedError, match="stage cart: no event of any customer is at this stage, yet later"):
        run_nightly(cfg)
    assert not (cfg.marts / "current").exists()
    assert set(_failed(cfg)) == {("stage_rules", "cart: ad_to_cart"), ("stage_unreached", "cart")}


# --- history: volume and KPIs against the runs that passed ------------------------------------------------

def _history(cfg: Config, nights: list[dict[str, float]], last: datetime) -> None:
    """Earlier good runs' metrics, one a day up to the day before `last`: each night's metric -> value."""
    with open_warehouse(cfg.warehouse) as con:
        for i, metrics in enumerate(reversed(nights), start=1):
            started = (last - timedelta(days=i)).replace(tzinfo=None)
            for metric, value in metrics.items():
                name, _, subject = metric.partition(":")
                con.execute("INSERT INTO run_metrics VALUES ($run, $at, $metric, $subject, $value)",
                            {"run": f"old-{i:02d}", "at": started, "metric": name, "subject": subject,
                             "value": value})


def _check_now(cfg: Config, tonight: datetime) -> dict[tuple[str, str], tuple[str, str]]:
    ctx = run_steps(cfg, run_started=tonight)  # up to the marts
    with open_warehouse(cfg.warehouse) as con:
        health = check_run(con, cfg, ctx.run_id, tonight)
    return {(c.check, c.subject): (c.status, c.message) for c in health.checks}


TONIGHT = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # a Monday


@pytest.mark.parametrize(("nights", "fires"), [
    pytest.param([5] * 3, False, id="first-nights-never"),
    pytest.param([100, 110, 95, 105, 98, 102, 97, 103, 101, 99], True, id="far-below-usual"),
    pytest.param([4, 5, 4, 6, 5, 4, 5, 4, 5, 6], False, id="usual"),
    pytest.param([6, 6, 6, 6, 6, 3, 3, 6, 6, 6, 6, 6, 3], False, id="quiet-weekend-is-usual"),
    pytest.param([1, 1, 1, 1, 1, 1, 1, 1], True, id="constant-history-any-jump"),
])
def test_volume_against_the_sources_own_recent_nights(tmp_path: Path, nights: list[float], fires: bool) -> None:
    cfg = _tiny(tmp_path, JOURNEY)  # tonight loads 4 rows
    _history(cfg, [{"rows_loaded:web": n} for n in nights], TONIGHT)
    found = _check_now(cfg, TONIGHT)
    status, message = found.get(("volume", "rows_loaded:web"), ("-", ""))
    assert (status == "warning") == fires, message
    if len(nights) < 7:
        assert ("volume", "rows_loaded:web") not in found


@pytest.mark.parametrize(("earlier", "fires"), [(0.25, True), (0.45, False), (None, False)])
def test_conversion_moving_more_than_the_limit_warns(tmp_path: Path, earlier: float | None, fires: bool) -> None:
    cfg = _tiny(tmp_path, JOURNEY)  # tonight: 1 of 2 journeys converted, 50%
    if earlier is not None:
        _history(cfg, [{"conversion_rate": 0.40}] * 6 + [{"conversion_rate": earlier}], TONIGHT)
    found = _check_now(cfg, TONIGHT.replace(hour=23))
    kpi = {k: v for k, v in found.items() if k[0] == "kpi_change" and k[1].startswith("conversion")}
    if earlier is None:
        assert kpi == {}  # no earlier good night: nothing to compare
        return
    assert kpi[("kpi_change", "conversion vs the last good night")][0] == ("warning" if fires else "pass")
    # A week before: 0.40, 10 points away exactly: within the limit.
    assert kpi[("kpi_change", "conversion vs a week before")][0] == "pass"
    if fires:
        assert kpi[("kpi_change", "conversion vs the last good night")][1] == (
            "conversion: 50.0% this run, 25.0% on the last good night (2026-11-22): +25.0 points")


def test_failed_nights_are_not_the_history(tmp_path: Path) -> None:
    cfg = _tiny(tmp_path, JOURNEY)
    _history(cfg, [{"conversion_rate": 0.5}] * 6 + [{"conversion_rate": 0.1}], TONIGHT)
    with open_warehouse(cfg.warehouse) as con:  # the night before failed its checks
        con.execute("INSERT INTO run_checks VALUES ('old-01', TIMESTAMP '2026-11-22 02:00', 'refused_files', 'web', "
                    "'error', 'error', 1, '0', 'refused')")
    found = _check_now(cfg, TONIGHT.replace(hour=23))
    assert found[("kpi_change", "conversion vs the last good night")] == (
        "pass", "conversion: 50.0% this run, 50.0% on the last good night (2026-11-21): +0.0 points")


def test_late_data_is_counted(tmp_path: Path) -> None:
    cfg = _tiny(tmp_path, JOURNEY)
    run_nightly(cfg)
    write_csv(tmp_path / "web" / "b.csv", "\n".join([HEADER, "9,a9,,landing,2026-10-30T10:00:00Z,",
                                                     "10,a9,,landing,2026-11-02T10:00:00Z,"]))
    run_nightly(cfg)
    late = _checks(cfg)[("late_data", "")]
    assert late == ("info", "1 event(s) arrived for days already shown (from 2026-10-30): a change in recent "
                            "cohorts may be late data, not a trend")


def test_a_check_can_be_switched_off_or_made_a_warning(tmp_path: Path) -> None:
    stages = [{"name": "browse", "events": ["landing"]}, {"name": "cart", "events": ["ad_to_cart"]},
              {"name": "buy", "events": ["order"]}]
    cfg = _tiny(tmp_path, JOURNEY, stages=stages, checks={"stage_unreached": "warning", "stage_rules": "off"})
    run_nightly(cfg)  # publishes: only warnings
    assert _failed(cfg) == {("stage_unreached", "cart"): (
        "stage cart: no event of any customer is at this stage, yet later stages have some (its rules match "
        "nothing?): the funnel would show everyone who got further as passing it")}


# --- alerts -----------------------------------------------------------------------------------------------

def test_alert_commands_get_the_checks_on_stdin(tmp_path: Path) -> None:
    got = tmp_path / "alert.json"
    stages = [{"name": "browse", "events": ["landing", "product_veiw"]}, {"name": "cart", "events": ["add_to_cart"]},
              {"name": "buy", "events": ["order"]}]
    alerts = {"on_warning": f"cat > {got}", "on_failure": f"cat > {got}.failed"}
    cfg = _tiny(tmp_path, JOURNEY, stages=stages, alerts=alerts)
    run_nightly(cfg)
    warned = json.loads(got.read_text())
    assert warned["verdict"] == "warning" and "product_veiw" in warned["summary"]
    assert {c["check"] for c in warned["checks"] if c["status"] == "warning"} == {"stage_rules"}
    bad = cfg.model_copy(update={"stages": [s.model_copy(update={"events": [e.model_copy(update={"name": "nope"})
                                                                            for e in s.events]})
                                            if s.name == "cart" else s for s in cfg.stages]})
    with pytest.raises(ChecksFailedError):
        run_nightly(bad)
    failed = json.loads(Path(f"{got}.failed").read_text())
    assert failed["verdict"] == "failed" and "stage cart" in failed["summary"]


def test_a_failing_alert_command_is_one_line_and_changes_nothing(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    stages = [{"name": "browse", "events": ["landing", "product_veiw"]}, {"name": "cart", "events": ["add_to_cart"]},
              {"name": "buy", "events": ["order"]}]
    cfg = _tiny(tmp_path, JOURNEY, stages=stages, alerts={"on_warning": "echo no mail server >&2; exit 3"})
    run_nightly(cfg)
    assert capsys.readouterr().err == ("cjm: warning: alert command exited 3: echo no mail server >&2; exit 3 "
                                       "(no mail server)\n")


def test_the_checks_are_published_for_dashboards(tmp_path: Path) -> None:
    cfg = _tiny(tmp_path, JOURNEY)
    ctx, _ = run_nightly(cfg)
    con = connect(cfg.marts / "current" / "marts.duckdb", read_only=True)
    try:
        assert con.execute("SELECT count(*), count(*) FILTER (WHERE status = 'pass') FROM run_checks "
                           "WHERE run_id = $r", {"r": ctx.run_id}).fetchall()[0][0] > 0
    finally:
        con.close()
    assert os.path.exists(cfg.reports / "run_status.js")
