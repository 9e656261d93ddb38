"""The loader on hand-made files: every row loaded, rejected with its reason, or counted as a duplicate."""

from __future__ import annotations

import gzip
import json
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from tests.fixtures import RUN_STARTED, make_config, run_steps, table, write_csv

MIXED = """
    event_id,anonymous_id,user_id,event,ts,channel,page
    1,a1,,landing,2026-11-01T10:00:00Z,social,/
    2,,,product_view,2026-11-01T10:01:00Z,,/p/1
    3,a1,,product_view,not-a-date,,/p/1
    4,a1,,,2026-11-01T10:02:00Z,,/p/1
    5,a1,u1,add_to_cart
    6,a1,u1,add_to_cart,2026-11-01T10:03:00Z,,/cart,extra
    7,a1,u1,order,1970-01-01T00:00:00Z,,/thanks
    8,a1,u1,order,2031-01-01T00:00:00Z,,/thanks
    9,a1,u1,order,2026-11-01T10:04:00Z,,/thanks
    9,a1,u1,order,2026-11-01T10:04:00Z,,/thanks
    10,a1,u1,order,,,/thanks
"""


def test_every_row_is_loaded_rejected_or_duplicate(tmp_path: Path) -> None:
    write_csv(tmp_path / "web" / "day1.csv", MIXED)
    cfg = make_config(tmp_path)
    run_steps(cfg, until="load_sources", run_started=RUN_STARTED)

    manifest = table(cfg, "SELECT * FROM load_manifest").iloc[0]
    assert (manifest.rows_read, manifest.rows_loaded, manifest.rows_rejected, manifest.rows_duplicate) == (11, 2, 8, 1)

    rejects = table(cfg, "SELECT row_number, reason FROM rejects ORDER BY row_number")
    assert rejects.row_number.tolist() == [2, 3, 4, 5, 6, 7, 8, 11]
    reasons = dict(zip(rejects.row_number, rejects.reason, strict=True))
    assert reasons[2] == "missing customer_id and anonymous_id"
    assert reasons[3] == "unparseable timestamp"
    assert reasons[4] == "missing event_name"
    assert reasons[5].startswith("MISSING COLUMNS")
    assert reasons[6].startswith("TOO MANY COLUMNS")
    assert reasons[7] == "timestamp before 1990-01-01"
    assert reasons[8] == "timestamp more than 24 hours after the run started"
    assert reasons[11] == "missing timestamp"
    events = table(cfg, "SELECT event_id, row_number FROM raw_events ORDER BY row_number")
    assert events.values.tolist() == [["1", 1], ["9", 9]]


def test_raw_content_of_a_rejected_row_is_kept(tmp_path: Path) -> None:
    write_csv(tmp_path / "web" / "day1.csv", MIXED)
    cfg = make_config(tmp_path)
    run_steps(cfg, until="load_sources", run_started=RUN_STARTED)
    raw = table(cfg, "SELECT raw FROM rejects WHERE row_number = 3").raw[0]
    assert json.loads(raw)["ts"] == "not-a-date"
    assert table(cfg, "SELECT raw FROM rejects WHERE row_number = 5").raw[0] == "5,a1,u1,add_to_cart"


def test_same_files_twice_change_nothing(tmp_path: Path) -> None:
    write_csv(tmp_path / "web" / "day1.csv", MIXED)
    cfg = make_config(tmp_path)
    run_steps(cfg, run_started=RUN_STARTED)
    tables = ["raw_events", "rejects", "load_manifest", "events", "sessions", "journeys", "stage_funnel",
              "stage_transitions", "stage_conversion_daily", "sankey_links"]
    before = {t: table(cfg, f"SELECT * EXCLUDE (run_id) FROM {t}" if t in ("raw_events", "rejects",
              "load_manifest") else f"SELECT * FROM {t}") for t in tables}
    run_steps(cfg, run_started=RUN_STARTED)
    for t in tables:
        after = table(cfg, f"SELECT * EXCLUDE (run_id) FROM {t}" if t in ("raw_events", "rejects",
                      "load_manifest") else f"SELECT * FROM {t}")
        pd.testing.assert_frame_equal(
            before[t].sort_values(list(before[t].columns[:2])).reset_index(drop=True),
            after.sort_values(list(after.columns[:2])).reset_index(drop=True),
            obj=t,
        )


def test_new_and_changed_files(tmp_path: Path) -> None:
    day1 = write_csv(tmp_path / "web" / "day1.csv", """
        event_id,anonymous_id,user_id,event,ts,channel
        1,a1,,landing,2026-11-01T10:00:00Z,social
        2,a1,,product_view,bad,
    """)
    cfg = make_config(tmp_path)
    run_steps(cfg, until="load_sources", run_started=RUN_STARTED)
    write_csv(tmp_path / "web" / "day2.csv", """
        event_id,anonymous_id,user_id,event,ts,channel
        1,a1,,landing,2026-11-01T10:00:00Z,social
        3,a1,,product_view,2026-11-02T10:00:00Z,
    """)
    # day1 is re-exported with the bad row fixed: its old rows are replaced, its reject goes.
    write_csv(day1, """
        event_id,anonymous_id,user_id,event,ts,channel
        1,a1,,landing,2026-11-01T10:00:00Z,social
        2,a1,,product_view,2026-11-01T10:01:00Z,
    """)
    run_steps(cfg, until="load_sources", run_started=RUN_STARTED)
    assert sorted(table(cfg, "SELECT event_id FROM raw_events").event_id) == ["1", "2", "3"]
    assert len(table(cfg, "SELECT * FROM rejects")) == 0
    manifest = table(cfg, "SELECT file, rows_read, rows_loaded, rows_duplicate FROM load_manifest ORDER BY file")
    assert manifest[["rows_read", "rows_loaded", "rows_duplicate"]].values.tolist() == [[2, 2, 0], [2, 1, 1]]


@pytest.mark.parametrize(
    ("text", "timezone", "fmt", "expected_utc"),
    [
        ("2026-11-03T14:05:09Z", "UTC", "auto", "2026-11-03 14:05:09"),
        ("2026-11-03 14:05:09 UTC", "Europe/Berlin", "auto", "2026-11-03 14:05:09"),
        ("2026-11-03T14:05:09+02:00", "UTC", "auto", "2026-11-03 12:05:09"),
        ("2026-11-03T14:05:09.123456-05:00", "UTC", "auto", "2026-11-03 19:05:09.123456"),
        ("2026-11-03 14:05:09", "Europe/Berlin", "auto", "2026-11-03 13:05:09"),  # CET = UTC+1
        ("2026-07-03 14:05:09", "Europe/Berlin", "auto", "2026-07-03 12:05:09"),  # CEST = UTC+2
        ("2018-02-01", "UTC", "auto", "2018-02-01 00:00:00"),
        ("1762178709", "UTC", "auto", "2025-11-03 14:05:09"),
        ("1762178709123", "UTC", "auto", "2025-11-03 14:05:09.123"),
        ("1762178709", "UTC", "epoch_s", "2025-11-03 14:05:09"),
        ("1762178709123", "UTC", "epoch_ms", "2025-11-03 14:05:09.123"),
        ("03/11/2026 14:05", "Europe/Berlin", "%d/%m/%Y %H:%M", "2026-11-03 13:05:00"),
        ("2026-11-03 14:05:09 +0100", "UTC", "%Y-%m-%d %H:%M:%S %z", "2026-11-03 13:05:09"),
    ],
)
def test_timestamps_are_stored_in_utc(tmp_path: Path, text: str, timezone: str, fmt: str, expected_utc: str) -> None:
    write_csv(tmp_path / "crm" / "a.csv", f'customer_id,activity,at\nc1,lead,"{text}"')
    source = {"name": "crm", "kind": "crm", "path": "crm/*.csv", "timezone": timezone, "timestamp_format": fmt,
              "columns": {"customer_id": "customer_id", "event_name": "activity", "timestamp": "at"}}
    cfg = make_config(tmp_path, sources=[source])
    run_steps(cfg, until="load_sources", run_started=RUN_STARTED)
    ts = table(cfg, "SELECT ts FROM raw_events").ts
    assert len(ts) == 1, table(cfg, "SELECT * FROM rejects").to_string()
    assert ts[0] == pd.Timestamp(expected_utc)


def test_horizon_is_configurable(tmp_path: Path) -> None:
    write_csv(tmp_path / "web" / "a.csv", """
        event_id,anonymous_id,user_id,event,ts,channel
        1,a1,,landing,1985-06-01T00:00:00Z,
        2,a1,,landing,2026-11-24T11:00:00Z,
        3,a1,,landing,2026-11-24T13:00:00Z,
    """)
    source = {"name": "web", "kind": "clickstream", "path": "web/*", "min_timestamp": "1980-01-01",
              "max_future_hours": 24, "columns": {"event_id": "event_id", "anonymous_id": "anonymous_id",
                                                  "event_name": "event", "timestamp": "ts"}}
    cfg = make_config(tmp_path, sources=[source])
    run_steps(cfg, until="load_sources", run_started=datetime.fromisoformat("2026-11-23T12:00:00+00:00"))
    assert sorted(table(cfg, "SELECT event_id FROM raw_events").event_id) == ["1", "2"]
    assert table(cfg, "SELECT row_number FROM rejects").row_number.tolist() == [3]


def test_a_file_missing_configured_columns_is_refused_whole_and_the_others_load(tmp_path: Path) -> None:
    write_csv(tmp_path / "web" / "good.csv", """
        event_id,anonymous_id,user_id,event,ts,channel
        1,a1,,landing,2026-11-01T10:00:00Z,social
    """)
    write_csv(tmp_path / "web" / "wrong.csv", """
        id,visitor,name,when
        1,a1,landing,2026-11-01T10:00:00Z
    """)
    cfg = make_config(tmp_path)
    run_steps(cfg, until="load_sources", run_started=RUN_STARTED)
    assert table(cfg, "SELECT count(*) AS n FROM raw_events").n[0] == 1
    refused = table(cfg, "SELECT file, reason FROM rejects")
    assert refused.file[0].endswith("wrong.csv")
    assert "columns missing from the file: event_id, user_id, anonymous_id, event, ts, channel" in refused.reason[0]
    status = table(cfg, "SELECT status FROM load_manifest ORDER BY file").status.tolist()
    assert status == ["loaded", "refused"]


def test_hashed_event_ids_make_identical_rows_duplicates(tmp_path: Path) -> None:
    write_csv(tmp_path / "web" / "a.csv", """
        anonymous_id,event,ts
        a1,landing,2026-11-01T10:00:00Z
        a1,landing,2026-11-01T10:00:00Z
        a1,landing,2026-11-01T10:00:01Z
    """)
    write_csv(tmp_path / "web" / "b.csv", """
        anonymous_id,event,ts
        a1,landing,2026-11-01T10:00:01Z
    """)
    source = {"name": "web", "kind": "clickstream", "path": "web/*",
              "columns": {"anonymous_id": "anonymous_id", "event_name": "event", "timestamp": "ts"}}
    cfg = make_config(tmp_path, sources=[source])
    run_steps(cfg, until="load_sources", run_started=RUN_STARTED)
    manifest = table(cfg, "SELECT rows_read, rows_loaded, rows_duplicate FROM load_manifest ORDER BY file")
    assert manifest.values.tolist() == [[3, 2, 1], [1, 0, 1]]


def test_json_lines_parquet_and_gzip(tmp_path: Path) -> None:
    (tmp_path / "web").mkdir()
    rows = [
        {"event_id": "j1", "anonymous_id": "a1", "event": "landing", "ts": "2026-11-01T10:00:00Z", "utm": "x"},
        [1, 2, 3],
        {"event_id": "j2", "user_id": "u1", "event": "order", "ts": "2026-11-01T10:05:00Z"},
    ]
    (tmp_path / "web" / "a.ndjson").write_text("\n".join(json.dumps(r) for r in rows) + "\nnot json\n")
    pd.DataFrame({"event_id": ["p1"], "anonymous_id": ["a2"], "user_id": [None], "event": ["landing"],
                  "ts": ["2026-11-01T11:00:00Z"], "channel": ["email"]}).to_parquet(tmp_path / "web" / "b.parquet")
    with gzip.open(tmp_path / "web" / "c.csv.gz", "wt") as f:
        f.write("event_id,anonymous_id,user_id,event,ts,channel\ng1,a3,,landing,2026-11-01T12:00:00Z,\n")
    cfg = make_config(tmp_path)
    run_steps(cfg, until="load_sources", run_started=RUN_STARTED)
    events = table(cfg, "SELECT event_id, properties FROM raw_events ORDER BY event_id")
    assert events.event_id.tolist() == ["g1", "j1", "j2", "p1"]
    assert json.loads(events.properties[1]) == {"utm": "x"}
    rejects = table(cfg, "SELECT row_number, reason FROM rejects ORDER BY row_number")
    assert rejects.values.tolist() == [[2, "not a JSON object"], [4, "not a JSON object"]]


def test_names_that_look_like_sql_or_html_are_data(tmp_path: Path) -> None:
    write_csv(tmp_path / "web" / "a.csv", """
        event_id,anonymous_id,user_id,event,ts,channel
        1,a1,,"'; drop table events; --",2026-11-01T10:00:00Z,<script>alert(1)</script>
    """)
    cfg = make_config(tmp_path)
    run_steps(cfg, run_started=RUN_STARTED)
    row = table(cfg, "SELECT event_name, channel FROM events")
    assert row.values.tolist() == [["'; drop table events; --", "<script>alert(1)</script>"]]


@pytest.mark.parametrize(
    ("policy", "wall", "expected"),
    [
        # Europe/Berlin: 2026-10-25 03:00 CEST -> 02:00 CET, so 02:30 happens twice (00:30 and 01:30 UTC).
        ("reject", "2026-10-25 02:30:00", "ambiguous local time in Europe/Berlin (clocks moved back); "
                                          "set ambiguous_times: earliest or latest to accept"),
        ("earliest", "2026-10-25 02:30:00", pd.Timestamp("2026-10-25 00:30:00")),
        ("latest", "2026-10-25 02:30:00", pd.Timestamp("2026-10-25 01:30:00")),
        # 2026-03-29 02:00 CET -> 03:00 CEST: 02:30 never happens.
        ("earliest", "2026-03-29 02:30:00", "nonexistent local time in Europe/Berlin (clocks moved forward)"),
        ("reject", "2026-10-25 01:59:59", pd.Timestamp("2026-10-24 23:59:59")),
        ("reject", "2026-10-25 03:00:00", pd.Timestamp("2026-10-25 02:00:00")),
    ],
)
def test_daylight_saving_changes(tmp_path: Path, policy: str, wall: str, expected: object) -> None:
    write_csv(tmp_path / "crm" / "a.csv", f"customer_id,activity,at\nc1,lead,{wall}")
    source = {"name": "crm", "kind": "crm", "path": "crm/*.csv", "timezone": "Europe/Berlin",
              "ambiguous_times": policy,
              "columns": {"customer_id": "customer_id", "event_name": "activity", "timestamp": "at"}}
    cfg = make_config(tmp_path, sources=[source])
    run_steps(cfg, until="load_sources", run_started=RUN_STARTED)
    if isinstance(expected, str):
        assert table(cfg, "SELECT reason FROM rejects").reason.tolist() == [expected]
    else:
        assert table(cfg, "SELECT ts FROM raw_events").ts.tolist() == [expected]
