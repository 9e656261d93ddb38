"""The real Prefect flow on data/sample/, compared with the independent pandas oracle (tests/reference.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest

from cjm_analytics.config import Config, load_config
from tests.browser import Visit
from tests.conftest import copy_sample
from tests.fixtures import table
from tests.reference import reference_figures, reference_load

if TYPE_CHECKING:
    from playwright.sync_api import Browser

# `make test` runs with --dist loadfile: this whole file is on one worker, so the flow runs once.
pytestmark = [pytest.mark.flow, pytest.mark.slow]


@dataclass
class FlowRun:
    cfg: Config
    first: dict[str, Any]
    second: dict[str, Any]
    snapshot_after_first: dict[str, pd.DataFrame]
    expected: dict[str, pd.DataFrame]
    expected_events: pd.DataFrame
    expected_rejects: pd.DataFrame


MARTS = ("stage_funnel", "stage_transitions", "stage_conversion_daily", "sankey_links", "journeys", "sessions")


def _snapshot(cfg: Config) -> dict[str, pd.DataFrame]:
    out = {}
    for name in ("raw_events", "rejects", "load_manifest", "events", *MARTS):
        df = table(cfg, f"SELECT * FROM {name}")
        df = df.drop(columns=[c for c in ("run_id", "loaded_at") if c in df.columns])
        out[name] = df.sort_values(list(df.columns[:3])).reset_index(drop=True)
    return out


# Session scope: built once per test process, even if other files run in between.
@pytest.fixture(scope="session")
def flow_run(prefect_harness: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlowRun]:
    from pipelines.nightly import nightly_flow

    config_path = copy_sample(tmp_path_factory.mktemp("sample")) / "cjm.yaml"
    cfg = load_config(config_path)
    first = nightly_flow(config_path=str(config_path))
    snapshot = _snapshot(cfg)
    second = nightly_flow(config_path=str(config_path))
    run_started = pd.Timestamp(first["summary"]["run_started_at"]).to_pydatetime()
    events, rejects = reference_load(cfg, run_started)
    yield FlowRun(cfg, first, second, snapshot, reference_figures(events, cfg), events, rejects)


def test_every_input_row_is_accounted_for(flow_run: FlowRun) -> None:
    m = table(flow_run.cfg, "SELECT * FROM load_manifest")
    assert (m.rows_read == m.rows_loaded + m.rows_rejected + m.rows_duplicate).all()
    assert m.rows_loaded.sum() == len(flow_run.expected_events)
    assert m.rows_rejected.sum() == len(flow_run.expected_rejects)
    assert table(flow_run.cfg, "SELECT count(*) AS n FROM rejects").n[0] == len(flow_run.expected_rejects)


def test_rejects_match_the_oracle_row_by_row(flow_run: FlowRun) -> None:
    ours = table(flow_run.cfg, "SELECT source, file, row_number FROM rejects")
    theirs = flow_run.expected_rejects[["source", "file", "row_number"]]
    key = ["source", "file", "row_number"]
    pd.testing.assert_frame_equal(
        ours.astype(str).sort_values(key).reset_index(drop=True),
        theirs.astype(str).sort_values(key).reset_index(drop=True),
    )


def test_stage_funnel_equals_the_oracle(flow_run: FlowRun) -> None:
    ours = table(flow_run.cfg, "SELECT * FROM stage_funnel ORDER BY stage_order")
    theirs = flow_run.expected["stage_funnel"].sort_values("stage_order").reset_index(drop=True)
    cols = ["stage", "stage_order", "reached", "exited", "dropoff_rate", "conversion_to_next", "conversion_from_first"]
    pd.testing.assert_frame_equal(ours[cols], theirs[cols], check_dtype=False)


def test_stage_transitions_equal_the_oracle(flow_run: FlowRun) -> None:
    key = ["from_stage", "to_stage"]
    cols = [*key, "from_order", "to_order", "transitions", "customers", "probability", "median_hours"]
    ours = table(flow_run.cfg, "SELECT * FROM stage_transitions")[cols].sort_values(key).reset_index(drop=True)
    theirs = flow_run.expected["stage_transitions"][cols].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(ours, theirs, check_dtype=False)


def test_sessions_equal_the_oracle(flow_run: FlowRun) -> None:
    key = ["customer_key", "session_start"]
    cols = [*key, "session_end", "n_events", "first_event", "last_event", "channel"]
    ours = table(flow_run.cfg, "SELECT * FROM sessions")[cols].sort_values(key).reset_index(drop=True)
    theirs = flow_run.expected["sessions"][cols].sort_values(key).reset_index(drop=True)
    assert len(ours) == len(theirs)
    pd.testing.assert_frame_equal(ours.astype(str), theirs.astype(str))


def test_journeys_equal_the_oracle(flow_run: FlowRun) -> None:
    cols = ["customer_key", "first_ts", "last_ts", "path_length", "furthest_stage", "furthest_stage_order",
            "converted", "converted_at", "n_sessions", "n_events", "first_channel"]
    ours = table(flow_run.cfg, "SELECT * FROM journeys").sort_values("customer_key").reset_index(drop=True)
    theirs = flow_run.expected["journeys"].sort_values("customer_key").reset_index(drop=True)
    pd.testing.assert_frame_equal(ours[cols].astype(str), theirs[cols].astype(str))
    assert [list(p) for p in ours.stage_path] == [list(p) for p in theirs.stage_path]
    pd.testing.assert_series_equal(ours.hours_to_convert, theirs.hours_to_convert, check_dtype=False,
                                   check_names=False)


def test_identities_equal_the_oracle(flow_run: FlowRun) -> None:
    ours = table(flow_run.cfg, "SELECT anonymous_id, customer_id FROM identities ORDER BY 1")
    theirs = flow_run.expected["identities"][["anonymous_id", "customer_id"]].sort_values("anonymous_id")
    assert len(ours) > 0
    pd.testing.assert_frame_equal(ours.astype(str), theirs.reset_index(drop=True).astype(str))


def test_daily_conversion_and_sankey_equal_the_oracle(flow_run: FlowRun) -> None:
    key = ["cohort_date", "stage_order"]
    ours = table(flow_run.cfg, "SELECT * FROM stage_conversion_daily").sort_values(key).reset_index(drop=True)
    theirs = flow_run.expected["stage_conversion_daily"].sort_values(key).reset_index(drop=True)
    cols = ["stage", "stage_order", "reached", "exited", "dropoff_rate"]
    pd.testing.assert_frame_equal(ours[cols], theirs[cols], check_dtype=False)
    assert (pd.to_datetime(ours.cohort_date) == pd.to_datetime(theirs.cohort_date)).all()
    key = ["from_step", "from_node", "to_node"]
    ours = table(flow_run.cfg, "SELECT * FROM sankey_links").sort_values(key).reset_index(drop=True)
    theirs = flow_run.expected["sankey_links"].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(ours, theirs[ours.columns], check_dtype=False)


def test_run_summary_equals_the_oracle(flow_run: FlowRun) -> None:
    s = flow_run.first["summary"]
    e = flow_run.expected["run_summary"]
    e = e.iloc[0].to_dict() if isinstance(e, pd.DataFrame) else e
    for k in ("customers", "journey_customers", "sessions", "converted", "worst_dropoff_stage"):
        assert s[k] == e[k], k
    assert s["conversion_rate"] == pytest.approx(e["conversion_rate"])
    assert s["worst_dropoff_rate"] == pytest.approx(e["worst_dropoff_rate"])


def test_the_second_run_loads_nothing_and_changes_nothing(flow_run: FlowRun) -> None:
    files = flow_run.second["steps"][0].counts["files"]
    assert {f["status"] for f in files} == {"unchanged"}
    after = _snapshot(flow_run.cfg)
    for name, before in flow_run.snapshot_after_first.items():
        pd.testing.assert_frame_equal(before, after[name], obj=name)


def test_the_run_log_has_every_step_of_both_runs(flow_run: FlowRun) -> None:
    log = table(flow_run.cfg, "SELECT run_id, step FROM run_log")
    assert log.run_id.nunique() == 2
    assert sorted(log.step.unique()) == sorted(
        ["load_sources", "stitch_identities", "sessionize", "build_journeys", "aggregate", "check_health",
         "publish_reports", "publish_marts"])


def test_the_report_and_graph_are_published(flow_run: FlowRun) -> None:
    reports = flow_run.cfg.reports
    for name in ("index.html", "sankey.html", "funnel.html", "transitions.html", "plotly.min.js",
                 "stage_graph.graphml"):
        assert (reports / name).is_file(), name
    import networkx as nx

    g = nx.read_graphml(reports / "stage_graph.graphml")
    funnel = flow_run.expected["stage_funnel"].set_index("stage")
    for stage, row in funnel.iterrows():
        assert g.nodes[stage]["reached"] == row.reached



@pytest.mark.browser
@pytest.mark.parametrize("name", ["index.html", "sankey.html", "funnel.html", "transitions.html"])
def test_the_published_pages_open_cleanly_in_chromium(flow_run: FlowRun, browser: Browser, name: str) -> None:
    visit = Visit(browser, (flow_run.cfg.reports / name).as_uri())
    if name != "index.html":
        visit.page.wait_for_selector(".plotly-graph-div .main-svg")
    visit.page.wait_for_timeout(300)
    visit.assert_clean()
    visit.page.close()


@pytest.mark.browser
def test_the_published_sankey_draws_every_node_of_the_mart(flow_run: FlowRun, browser: Browser) -> None:
    links = flow_run.expected["sankey_links"]
    nodes = set(zip(links.from_step, links.from_node, strict=True)) | set(
        zip(links.to_step, links.to_node, strict=True))
    visit = Visit(browser, (flow_run.cfg.reports / "sankey.html").as_uri())
    visit.page.wait_for_selector("g.sankey-node")
    assert visit.page.locator("g.sankey-node").count() == len(nodes)
    assert visit.page.locator(".sankey-link").count() == len(links)
    visit.assert_clean()


def test_a_night_that_fails_its_checks_fails_the_flow_run_with_their_summary(
        prefect_harness: None, tmp_path: Path) -> None:
    """docs/checks.md: the flow run ends Failed, its message the checks' one line; nothing is published."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.sorting import FlowRunSort

    from cjm_analytics.errors import ChecksFailedError
    from pipelines.nightly import nightly_flow

    config_path = copy_sample(tmp_path / "sample") / "cjm.yaml"
    broken = config_path.read_text().replace("event_name: event,", "event_name: event_type,")
    assert broken != config_path.read_text()
    config_path.write_text(broken)
    with pytest.raises(ChecksFailedError, match=r"failed: .*source web: 3 file\(s\) refused"):
        nightly_flow(config_path=str(config_path))
    with get_client(sync_client=True) as client:  # the flow run as Prefect recorded it
        latest = client.read_flow_runs(sort=FlowRunSort.START_TIME_DESC, limit=1)[0]
    assert latest.state is not None and latest.state.is_failed()
    assert "source web: 3 file(s) refused" in (latest.state.message or "")
    assert not (config_path.parent / "marts" / "current").exists()
