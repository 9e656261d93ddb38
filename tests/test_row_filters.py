"""Row filters (issue 15): a source's where / where_not leave rows out, counted as filtered, never silently."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cjm_analytics.config import Config
from cjm_analytics.errors import ConfigError
from tests.fixtures import RUN_STARTED, WEB_COLUMNS, make_config, rows, run_steps, write_csv

# 8 rows: 2 bots (one with a broken timestamp), 1 test user, 1 other app, 1 without an app, 3 real events of
# which one is a duplicate of another (same event_id) and one has no timestamp (a reject).
EVENTS = """
    event_id,anonymous_id,user_id,event,ts,channel,app,agent
    1,a1,,landing,2026-11-01T10:00:00Z,ads,shop,Mozilla
    2,a2,,landing,2026-11-01T10:01:00Z,ads,shop,Googlebot/2.1
    3,a3,,landing,not a time,ads,shop,AhrefsBot
    4,,test-7,order,2026-11-01T10:03:00Z,,shop,Mozilla
    5,a5,,landing,2026-11-01T10:04:00Z,,blog,Mozilla
    6,a6,,landing,2026-11-01T10:05:00Z,,,Mozilla
    7,a7,u7,order,,,shop,Mozilla
    1,a1,,landing,2026-11-01T10:00:00Z,ads,shop,Mozilla
"""
FILTER: dict[str, Any] = {"where": {"app": "shop"}, "where_not": {"agent": ["*bot*", "*Bot*"], "customer_id": "test-*"}}


def config(tmp_path: Path, **source: Any) -> Config:
    return make_config(tmp_path, sources=[{"name": "web", "kind": "clickstream", "path": "web/*",
                                           "columns": WEB_COLUMNS, **source}])


def manifest(cfg: Config) -> list[tuple[Any, ...]]:
    found = rows(cfg, "SELECT rows_read, rows_loaded, rows_rejected, rows_duplicate, rows_filtered "
                      "FROM load_manifest ORDER BY file")
    for read, loaded, rejected, duplicate, filtered in found:
        assert read == loaded + rejected + duplicate + filtered
    return found


def test_filtered_rows_are_counted_neither_events_nor_rejects(tmp_path: Path) -> None:
    write_csv(tmp_path / "web" / "events.csv", EVENTS)
    cfg = config(tmp_path, **FILTER)
    run_steps(cfg, until="load_sources", run_started=RUN_STARTED)
    # Left out: 2 and 3 (bots; 3's broken timestamp is no reject), 4 (test user), 5 (blog), 6 (no app).
    assert manifest(cfg) == [(8, 1, 1, 1, 5)]
    assert rows(cfg, "SELECT event_id FROM raw_events") == [("1",)]
    assert rows(cfg, "SELECT row_number, reason FROM rejects") == [(7, "missing timestamp")]


def test_no_filter_loads_every_row(tmp_path: Path) -> None:
    write_csv(tmp_path / "web" / "events.csv", EVENTS)
    cfg = config(tmp_path)
    run_steps(cfg, until="load_sources", run_started=RUN_STARTED)
    assert manifest(cfg) == [(8, 5, 2, 1, 0)]


def test_changing_the_filter_reads_the_files_again(tmp_path: Path) -> None:
    write_csv(tmp_path / "web" / "events.csv", EVENTS)
    run_steps(config(tmp_path, **FILTER), until="load_sources", run_started=RUN_STARTED)
    cfg = config(tmp_path, where_not={"agent": "*ot*"})  # the test user and every app are events now
    run_steps(cfg, until="aggregate", run_started=RUN_STARTED)
    assert manifest(cfg) == [(8, 4, 1, 1, 2)]
    assert rows(cfg, "SELECT event_id FROM raw_events ORDER BY 1") == [("1",), ("4",), ("5",), ("6",)]
    assert rows(cfg, "SELECT count(*) FROM journeys") == [(4,)]


def test_a_filter_on_a_property_of_a_preset(tmp_path: Path) -> None:
    """Snowplow keeps platform as a property: where platform is web leaves the server-side event out (JSON line 5,
    without a user: a reject when unfiltered), counted as filtered, no longer a reject."""
    from tests.test_presets import SNOWPLOW_JSON, SNOWPLOW_TSV, _config

    cfg = _config(tmp_path, "snowplow", [SNOWPLOW_JSON, SNOWPLOW_TSV], where={"platform": "web"})
    run_steps(cfg, until="load_sources", run_started=RUN_STARTED)
    assert manifest(cfg) == [(5, 4, 0, 0, 1), (4, 2, 1, 1, 0)]  # test_presets: (5, 4, 1, 0) and (4, 2, 1, 1)
    assert rows(cfg, "SELECT regexp_extract(file, '[^/]+$'), row_number FROM rejects") == [(SNOWPLOW_TSV, 3)]


def test_a_filter_value_must_be_text_or_a_list(tmp_path: Path) -> None:
    write_csv(tmp_path / "web" / "events.csv", EVENTS)
    with pytest.raises(ConfigError, match=r"sources\[0\]\.where\.app"):
        config(tmp_path, where={"app": None})
