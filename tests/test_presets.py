"""Preset formats on small exports written from each public spec (tests/presets/): every number counted by hand."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cjm_analytics.config import Config
from cjm_analytics.errors import ConfigError
from tests.fixtures import RUN_STARTED, make_config, rows, run_steps, write_csv

FIXTURES = Path(__file__).with_name("presets")
TS = "strftime(ts, '%Y-%m-%d %H:%M:%S.%f')"  # every timestamp below is UTC, to the microsecond


def _config(tmp_path: Path, preset: str, files: list[str], stages: list[dict[str, Any]] | None = None,
            **source: Any) -> Config:
    """One source of the given preset over copies of the fixture files."""
    folder = tmp_path / preset
    folder.mkdir()
    for name in files:
        shutil.copy(FIXTURES / name, folder / name)
    kind = "crm" if preset == "crm_stage_history" else "clickstream"
    spec = {"name": preset, "kind": kind, "path": f"{preset}/*", "format": preset, **source}
    stages = stages or [{"name": "browse", "events": ["*"]}]
    return make_config(tmp_path, sources=[spec], stages=stages, goal=stages[-1]["name"])


def _manifest(cfg: Config) -> list[tuple[Any, ...]]:
    """(file name, read, loaded, rejected, duplicate) per file, after checking the reconciliation."""
    found = rows(cfg, "SELECT file, rows_read, rows_loaded, rows_rejected, rows_duplicate FROM load_manifest "
                      "ORDER BY file")
    for _, read, loaded, rejected, duplicate in found:
        assert read == loaded + rejected + duplicate
    return [(Path(f).name, *counts) for f, *counts in found]


def _properties(cfg: Config, event_id: str) -> dict[str, Any]:
    [(text,)] = rows(cfg, f"SELECT properties FROM raw_events WHERE event_id = '{event_id}'")
    return dict(json.loads(text))


SEGMENT_STAGES = [{"name": "browse", "events": ["page_viewed", "Product Viewed"]},
                  {"name": "buy", "events": ["Order Completed"]}]


def test_segment_messages(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "segment", ["segment_2026-11-01.jsonl"], SEGMENT_STAGES)
    run_steps(cfg, until="build_journeys", run_started=RUN_STARTED)

    assert rows(cfg, f"SELECT row_number, event_id, customer_id, anonymous_id, event_name, {TS}, channel "
                     "FROM raw_events ORDER BY row_number") == [
        (1, "ajs-msg-001", None, "anon-7f3a", "page_viewed", "2026-11-01 09:00:00.000000", "cpc"),
        (2, "ajs-msg-002", None, "anon-7f3a", "Product Viewed", "2026-11-01 09:02:30.250000", None),  # +01:00
        (3, "ajs-msg-003", "user-1001", "anon-7f3a", "identify", "2026-11-01 09:05:00.000000", None),
        (4, "ajs-msg-004", "user-1001", "anon-7f3a", "Order Completed", "2026-11-01 09:10:00.000000", None),
        (5, "ajs-msg-005", None, "anon-c41d", "page_viewed", "2026-11-01 10:30:00.000000", "email"),
        (6, "ajs-msg-006", "user-2002", "anon-c41d", "alias", "2026-11-01 11:00:00.000000", None),  # previousId
        (10, "ios-msg-010", "user-1001", None, "screen_viewed", "2026-11-02 08:00:00.000000", None),
    ]
    assert rows(cfg, "SELECT row_number, reason FROM rejects ORDER BY row_number") == [
        (7, "not a JSON object"),  # a truncated line
        (8, "missing customer_id and anonymous_id"),
    ]
    # Line 9 is Segment delivering ajs-msg-004 a second time.
    assert _manifest(cfg) == [("segment_2026-11-01.jsonl", 10, 7, 2, 1)]

    assert _properties(cfg, "ajs-msg-001") == {
        "name": "Home", "path": "/", "title": "Example Shop", "referrer": "https://www.google.com/",
        "url": "https://shop.example.com/?utm_source=google&utm_medium=cpc&utm_campaign=brand",
        "utm_source": "google", "utm_medium": "cpc", "utm_campaign": "brand",
    }
    # The sender's properties are kept as they are (nested values too); context.page.path fills in `path`.
    assert _properties(cfg, "ajs-msg-002") == {"product_id": "p-42", "sku": "SKU-42", "price": 19.99,
                                               "currency": "EUR", "path": "/product/42"}
    assert _properties(cfg, "ajs-msg-004")["products"] == [{"product_id": "p-42", "quantity": 1}]
    assert _properties(cfg, "ajs-msg-003") == {}  # identify's traits are not kept

    # identify stitches the anonymous visitor to user-1001, alias stitches anon-c41d to user-2002.
    assert rows(cfg, "SELECT anonymous_id, customer_id FROM identities ORDER BY 1") == [
        ("anon-7f3a", "user-1001"), ("anon-c41d", "user-2002")]
    assert rows(cfg, "SELECT event_id, customer_key FROM events ORDER BY event_id") == [
        ("ajs-msg-001", "user-1001"), ("ajs-msg-002", "user-1001"), ("ajs-msg-003", "user-1001"),
        ("ajs-msg-004", "user-1001"), ("ajs-msg-005", "user-2002"), ("ajs-msg-006", "user-2002"),
        ("ios-msg-010", "user-1001")]
    assert rows(cfg, "SELECT customer_key, stage_path, converted, first_channel FROM journeys ORDER BY 1") == [
        ("user-1001", ["browse", "buy"], True, "cpc"), ("user-2002", ["browse"], False, "email")]


GA4_JSON = "ga4_events_20261101.json"
GA4_PARQUET = "ga4_events_20261102.parquet"
GA4_DEVICE = {"platform": "WEB", "stream_id": "4178230516", "device_category": "desktop", "country": "Germany"}


def test_ga4_json_lines_and_parquet(tmp_path: Path) -> None:
    stages = [{"name": "browse", "events": ["page_view", "first_visit"]},
              {"name": "buy", "events": ["add_to_cart", "purchase"]}]
    cfg = _config(tmp_path, "ga4", [GA4_JSON, GA4_PARQUET], stages)
    run_steps(cfg, until="build_journeys", run_started=RUN_STARTED)

    got = rows(cfg, f"SELECT regexp_extract(file, '[^/]+$'), row_number, customer_id, anonymous_id, event_name, "
                    f"{TS}, channel FROM raw_events ORDER BY file, row_number")
    assert got == [
        (GA4_JSON, 1, None, "1458745290.1793523600", "session_start", "2026-11-01 09:00:00.000000", "cpc"),
        (GA4_JSON, 2, None, "1458745290.1793523600", "page_view", "2026-11-01 09:00:00.512345", "cpc"),
        (GA4_JSON, 3, "U-42", "1458745290.1793523600", "login", "2026-11-01 09:03:00.000000", "cpc"),
        (GA4_JSON, 4, "U-42", "1458745290.1793523600", "purchase", "2026-11-01 09:07:30.250000", "cpc"),
        # traffic_source is the user's first touch: (direct) / (none) ...
        (GA4_PARQUET, 1, None, "2093310477.1793610000", "first_visit", "2026-11-02 09:00:00.000000", "(none)"),
        # ... unless the event carries its own medium (collected_traffic_source).
        (GA4_PARQUET, 2, None, "2093310477.1793610000", "page_view", "2026-11-02 09:00:45.000000", "email"),
        (GA4_PARQUET, 3, "U-77", "2093310477.1793610000", "add_to_cart", "2026-11-02 09:02:00.000000", "(none)"),
    ]
    # Row 5: consent denied, no ids; row 6 repeats row 2 byte for byte.
    assert rows(cfg, "SELECT row_number, reason FROM rejects") == [(5, "missing customer_id and anonymous_id")]
    assert _manifest(cfg) == [(GA4_JSON, 6, 4, 1, 1), (GA4_PARQUET, 3, 3, 0, 0)]

    # GA4 has no event id: the hash of the source and the record's JSON text, exactly as exported.
    first_line = (FIXTURES / GA4_JSON).read_text().splitlines()[0]
    expected_id = hashlib.md5(("ga4" + chr(31) + first_line).encode()).hexdigest()
    assert rows(cfg, "SELECT event_id FROM raw_events WHERE row_number = 1 AND file LIKE '%.json'") == [(expected_id,)]

    [(purchase,)] = rows(cfg, "SELECT event_id FROM raw_events WHERE event_name = 'purchase'")
    assert _properties(cfg, purchase) == {
        **GA4_DEVICE, "first_user_source": "google", "first_user_medium": "cpc", "first_user_campaign": "brand",
        "ga_session_id": "1793523600", "transaction_id": "T-1001", "value": "49.9", "currency": "EUR"}
    # From Parquet: int_value and double_value arrive typed, and are kept as text like every property.
    [(cart,)] = rows(cfg, "SELECT event_id FROM raw_events WHERE event_name = 'add_to_cart'")
    assert _properties(cfg, cart) == {
        **GA4_DEVICE, "first_user_source": "(direct)", "first_user_medium": "(none)", "first_user_campaign": "(direct)",
        "ga_session_id": "1793610000", "value": "12.5", "currency": "EUR", "quantity": "2"}

    # The login (user_id with user_pseudo_id) stitches the session's anonymous events to U-42.
    assert rows(cfg, "SELECT customer_key, count(*) FROM events GROUP BY 1 ORDER BY 1") == [("U-42", 4), ("U-77", 3)]
    assert rows(cfg, "SELECT customer_key, stage_path, n_sessions FROM journeys ORDER BY 1") == [
        ("U-42", ["browse", "buy"], 1), ("U-77", ["browse", "buy"], 1)]


def test_the_parquet_fixture_holds_ga4s_nested_event_params() -> None:
    schema = pq.read_schema(FIXTURES / GA4_PARQUET)
    assert str(schema.field("event_params").type) == (
        "list<element: struct<key: string, value: struct<string_value: string, int_value: int64, "
        "float_value: double, double_value: double>>>")
    assert str(schema.field("event_timestamp").type) == "int64"


def test_a_ga4_export_delivered_twice_adds_nothing(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "ga4", [GA4_JSON])
    shutil.copy(FIXTURES / GA4_JSON, tmp_path / "ga4" / "ga4_events_20261101_retry.json")
    run_steps(cfg, until="load_sources", run_started=RUN_STARTED)
    assert _manifest(cfg) == [(GA4_JSON, 6, 4, 1, 1), ("ga4_events_20261101_retry.json", 6, 0, 1, 5)]


SNOWPLOW_JSON = "snowplow_sdk_2026-11-03.json"
SNOWPLOW_TSV = "snowplow_tsv_enriched_2026-11-04.tsv"


def test_snowplow_enriched_events_as_json_and_tsv(tmp_path: Path) -> None:
    stages = [{"name": "browse", "events": ["page_view", "link_click"]}, {"name": "cart", "events": ["event"]}]
    cfg = _config(tmp_path, "snowplow", [SNOWPLOW_JSON, SNOWPLOW_TSV], stages)
    run_steps(cfg, until="build_journeys", run_started=RUN_STARTED)

    got = rows(cfg, f"SELECT regexp_extract(file, '[^/]+$'), row_number, event_id, customer_id, anonymous_id, "
                    f"event_name, {TS}, channel FROM raw_events ORDER BY file, row_number")
    assert got == [
        # derived_tstamp, not collector_tstamp; refr_medium as the channel
        (SNOWPLOW_JSON, 1, "c6ef3124-b53a-4b13-a233-0088f79dcbcb", None, "dui-4b8e", "page_view",
         "2026-11-03 10:00:00.130000", "search"),
        # an 'internal' referrer is no channel
        (SNOWPLOW_JSON, 2, "4d1e5f3a-8a58-4f05-9a1b-6d5a7c2e9f10", None, "dui-4b8e", "link_click",
         "2026-11-03 10:01:10.000000", None),
        # no derived_tstamp: collector_tstamp; mkt_medium before refr_medium
        (SNOWPLOW_JSON, 3, "9a7b3c1d-2e4f-4a6b-8c0d-1e2f3a4b5c6d", "cust-9", "dui-4b8e", "page_view",
         "2026-11-03 10:05:00.000000", "email"),
        # an old enrichment without event_name: `event`
        (SNOWPLOW_JSON, 4, "e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a5b", None, "dui-77aa", "page_view",
         "2016-05-12 11:00:00.000000", "social"),
        # TSV times have no zone: they are UTC
        (SNOWPLOW_TSV, 1, "5b6c7d8e-9f0a-4b1c-8d2e-3f4a5b6c7d8e", None, "dui-4b8e", "page_view",
         "2026-11-04 08:00:00.450000", "cpc"),
        (SNOWPLOW_TSV, 2, "6c7d8e9f-0a1b-4c2d-9e3f-4a5b6c7d8e9f", "cust-9", "dui-4b8e", "event",
         "2026-11-04 08:03:00.000000", None),
    ]
    assert rows(cfg, "SELECT regexp_extract(file, '[^/]+$'), row_number, reason FROM rejects ORDER BY file") == [
        (SNOWPLOW_JSON, 5, "missing customer_id and anonymous_id"),  # a server-side event without a user
        (SNOWPLOW_TSV, 3, "MISSING COLUMNS: Expected Number of Columns: 131 Found: 130"),
    ]
    # TSV line 4 is JSON line 1 again (a collector retry): same event_id, a duplicate.
    assert _manifest(cfg) == [(SNOWPLOW_JSON, 5, 4, 1, 0), (SNOWPLOW_TSV, 4, 2, 1, 1)]

    assert _properties(cfg, "c6ef3124-b53a-4b13-a233-0088f79dcbcb") == {
        "event": "page_view", "app_id": "shop", "platform": "web", "network_userid": "nui-93d1",
        "domain_sessionid": "0b0d3c7e-5d4e-4f51-9bb5-1a1f0d3e2c11", "domain_sessionidx": "1",
        "page_url": "https://shop.example.com/", "page_urlpath": "/", "page_title": "Example Shop",
        "page_referrer": "https://www.google.com/", "refr_medium": "search", "refr_source": "Google",
        "refr_urlhost": "www.google.com"}
    assert _properties(cfg, "6c7d8e9f-0a1b-4c2d-9e3f-4a5b6c7d8e9f") == {
        "event": "struct", "app_id": "shop", "platform": "web", "network_userid": "nui-93d1",
        "domain_sessionid": "7c1a2b3d-4e5f-4a6b-9c8d-7e6f5a4b3c2d", "domain_sessionidx": "2",
        "page_urlpath": "/product/42", "se_category": "checkout", "se_action": "add-to-cart", "se_label": "SKU-42",
        "se_value": "19.99"}

    # cust-9 logged in on dui-4b8e: that browser's anonymous events are cust-9's.
    assert rows(cfg, "SELECT customer_key, count(*) FROM events GROUP BY 1 ORDER BY 1") == [
        ("cust-9", 5), ("dui-77aa", 1)]


HUBSPOT = "crm_hubspot_deal_stage_history.csv"
SALESFORCE = "crm_salesforce_opportunity_field_history.csv"


def test_crm_stage_history_with_two_header_variants(tmp_path: Path) -> None:
    stages = [{"name": "lead", "events": ["deal_stage:appointmentscheduled", "deal_stage:Prospecting"]},
              {"name": "proposal", "events": ["deal_stage:qualifiedtobuy", "deal_stage:Proposal*"]},
              {"name": "won", "events": ["deal_stage:closedwon", "deal_stage:Closed Won"]}]
    cfg = _config(tmp_path, "crm_stage_history", [HUBSPOT, SALESFORCE], stages, timezone="Europe/Berlin")
    run_steps(cfg, until="build_journeys", run_started=RUN_STARTED)

    got = rows(cfg, f"SELECT regexp_extract(file, '[^/]+$'), row_number, customer_id, event_name, {TS} "
                    "FROM raw_events ORDER BY file, row_number")
    assert got == [
        (HUBSPOT, 1, "C-100", "deal_stage:appointmentscheduled", "2026-10-01 09:15:00.000000"),
        (HUBSPOT, 2, "C-100", "deal_stage:qualifiedtobuy", "2026-10-04 13:40:00.000000"),
        (HUBSPOT, 3, "C-100", "deal_stage:closedwon", "2026-10-20 16:05:30.000000"),
        (HUBSPOT, 4, "C-200", "deal_stage:appointmentscheduled", "2026-10-02 08:00:00.000000"),  # Berlin, CEST
        (SALESFORCE, 2, "0010X00000Acc01QAF", "deal_stage:Prospecting", "2026-10-05 08:00:00.000000"),
        (SALESFORCE, 3, "0010X00000Acc01QAF", "deal_stage:Proposal/Price Quote", "2026-10-12 14:30:00.000000"),
        (SALESFORCE, 5, "0010X00000Acc01QAF", "deal_stage:Closed Won", "2026-10-30 17:45:00.000000"),
    ]
    assert rows(cfg, "SELECT regexp_extract(file, '[^/]+$'), row_number, reason FROM rejects ORDER BY file, 2") == [
        (HUBSPOT, 5, "missing event_name"),  # no stage
        (SALESFORCE, 1, "not a stage change (FIELD = created)"),
        (SALESFORCE, 4, "not a stage change (FIELD = Amount)"),
    ]
    # HubSpot row 6 is row 3 again: same deal, stage and time, so the same event id.
    assert _manifest(cfg) == [(HUBSPOT, 6, 4, 1, 1), (SALESFORCE, 5, 3, 2, 0)]
    expected_id = hashlib.md5(b"9001\x1fclosedwon\x1f2026-10-20T16:05:30.000Z").hexdigest()
    assert _properties(cfg, expected_id) == {"Pipeline": "default", "Amount": "1500", "deal_id": "9001",
                                             "from_stage": "qualifiedtobuy", "to_stage": "closedwon"}
    [(proposal,)] = rows(cfg, "SELECT event_id FROM raw_events WHERE event_name LIKE 'deal_stage:Proposal%'")
    assert _properties(cfg, proposal) == {"ID": "0170X00001AbCdGQAV", "deal_id": "0060X00000XyZ01QAF",
                                          "from_stage": "Prospecting", "to_stage": "Proposal/Price Quote"}
    assert rows(cfg, "SELECT customer_key, stage_path, converted FROM journeys ORDER BY 1") == [
        ("0010X00000Acc01QAF", ["lead", "proposal", "won"], True),
        ("C-100", ["lead", "proposal", "won"], True),
        ("C-200", ["lead"], False)]


def test_a_crm_file_without_a_stage_column_is_refused_whole(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "crm_stage_history", [HUBSPOT])
    write_csv(tmp_path / "crm_stage_history" / "deals.csv", """
        Deal ID,Company ID,Amount,Close Date
        9003,C-300,100,2026-10-01
    """)
    run_steps(cfg, until="load_sources", run_started=RUN_STARTED)
    assert rows(cfg, "SELECT regexp_extract(file, '[^/]+$'), reason FROM rejects WHERE row_number IS NULL") == [(
        "deals.csv",
        "file refused: columns missing from the file: to_stage (one of stage, to_stage, new_stage, deal_stage, "
        "dealstage, stagename, stage_name, new_value, newvalue); changed_at (one of changed_at, stage_changed_at, "
        "createddate, created_date, timestamp, date) (it has: Deal ID, Company ID, Amount, Close Date)")]
    assert rows(cfg, "SELECT regexp_extract(file, '[^/]+$'), status FROM load_manifest ORDER BY file") == [
        (HUBSPOT, "loaded"), ("deals.csv", "refused")]


@pytest.mark.parametrize(
    ("preset", "name", "records"),
    [
        ("segment", "segment_2026-11-01.jsonl", 10),
        ("ga4", GA4_JSON, 6),
        ("ga4", GA4_PARQUET, 3),
        ("snowplow", SNOWPLOW_JSON, 5),
        ("snowplow", SNOWPLOW_TSV, 4),
        ("crm_stage_history", HUBSPOT, 6),
        ("crm_stage_history", SALESFORCE, 5),
    ],
)
def test_every_record_of_every_fixture_is_accounted_for(tmp_path: Path, preset: str, name: str, records: int) -> None:
    cfg = _config(tmp_path, preset, [name])
    run_steps(cfg, until="load_sources", run_started=RUN_STARTED)
    [(_, read, loaded, rejected, _)] = _manifest(cfg)
    assert read == records
    assert rows(cfg, "SELECT count(*) FROM raw_events") == [(loaded,)]
    assert rows(cfg, "SELECT count(*) FROM rejects") == [(rejected,)]


@pytest.mark.parametrize(("preset", "name"), [("segment", "a.jsonl"), ("ga4", "a.parquet"), ("snowplow", "a.tsv"),
                                              ("crm_stage_history", "a.csv")])
def test_an_empty_file_loads_nothing(tmp_path: Path, preset: str, name: str) -> None:
    (tmp_path / preset).mkdir()
    (tmp_path / preset / name).write_bytes(b"")
    cfg = make_config(tmp_path, sources=[{"name": "s", "kind": "clickstream", "path": f"{preset}/*", "format": preset}])
    run_steps(cfg, until="load_sources", run_started=RUN_STARTED)
    assert _manifest(cfg) == [(name, 0, 0, 0, 0)]


def test_columns_override_a_presets_choice(tmp_path: Path) -> None:
    # channel from a property the preset builds; one event name for every stage change, the stage as a property.
    segment = _config(tmp_path, "segment", ["segment_2026-11-01.jsonl"], columns={"channel": "utm_source"})
    crm = _config(tmp_path, "crm_stage_history", [HUBSPOT], event_name="deal_stage_changed",
                  columns={"channel": "Pipeline"})
    cfg = make_config(tmp_path, sources=[*segment.sources, *crm.sources], stages=[
        {"name": "won", "events": [{"name": "deal_stage_changed", "where": {"to_stage": "closedwon"}}]}], goal="won")
    run_steps(cfg, until="build_journeys", run_started=RUN_STARTED)
    assert rows(cfg, "SELECT event_id, channel FROM raw_events WHERE source = 'segment' AND channel IS NOT NULL "
                     "ORDER BY 1") == [("ajs-msg-001", "google"), ("ajs-msg-005", "newsletter")]
    assert rows(cfg, "SELECT DISTINCT event_name, channel FROM raw_events WHERE source = 'crm_stage_history'") == [
        ("deal_stage_changed", "default")]
    assert rows(cfg, "SELECT customer_key, converted FROM journeys") == [("C-100", True)]


def _source_error(tmp_path: Path, source: dict[str, Any]) -> str:
    (tmp_path / "s").mkdir(exist_ok=True)
    (tmp_path / "s" / "a.jsonl").write_text("")
    with pytest.raises(ConfigError) as e:
        make_config(tmp_path, sources=[{"name": "s", "kind": "clickstream", "path": "s/*", **source}])
    return str(e.value)


def test_config_columns_with_and_without_a_preset(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "a.jsonl").write_text("")
    for preset in ("segment", "ga4", "snowplow", "crm_stage_history"):
        cfg = make_config(tmp_path, sources=[{"name": "s", "kind": "clickstream", "path": "s/*", "format": preset}])
        assert cfg.sources[0].columns is None
    assert _source_error(tmp_path, {"format": "json"}) == (
        "test.yaml: sources[0].columns: Field required (only a preset format has a mapping of its own: "
        "segment, ga4, snowplow, crm_stage_history)")
    assert _source_error(tmp_path, {"format": "segment", "columns": {"userid": "x"}}) == (
        "test.yaml: sources[0].columns.userid: unknown key")
    assert _source_error(tmp_path, {"format": "segment", "event_name": "x", "columns": {"event_name": "y"}}) == (
        "test.yaml: sources[0]: give columns.event_name (a column) or event_name (one name for every row), not both")
    assert _source_error(tmp_path, {"format": "segmnt"}).startswith(
        "test.yaml: sources[0].format: Input should be 'auto', 'csv', 'parquet', 'json', 'segment', 'ga4', ")


FUZZ_KEYS = {
    "segment": ["type", "messageId", "anonymousId", "userId", "previousId", "event", "name", "timestamp",
                "receivedAt", "properties", "context", "campaign", "medium", "page", "path"],
    "ga4": ["event_name", "event_timestamp", "user_id", "user_pseudo_id", "event_params", "key", "value",
            "string_value", "int_value", "double_value", "traffic_source", "collected_traffic_source", "medium"],
    "snowplow": ["event_id", "user_id", "domain_userid", "derived_tstamp", "collector_tstamp", "event_name", "event",
                 "mkt_medium", "refr_medium", "page_urlpath", "network_userid"],
}
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-(10**18), 10**18), st.floats(allow_nan=False),
                   st.text(max_size=10),
                   st.sampled_from(["2026-11-01T10:00:00Z", "1793523600000000", "2026-11-01 10:00:00.5", "page",
                                    "track", "alias", "identify", "internal", "a1", "u1"]))


def _json_value(keys: list[str]) -> st.SearchStrategy[Any]:
    return st.recursive(SCALAR, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.sampled_from(keys), inner, max_size=4), max_leaves=10)


@st.composite
def _export(draw: st.DrawFn) -> tuple[str, list[Any]]:
    preset = draw(st.sampled_from(sorted(FUZZ_KEYS)))
    keys = FUZZ_KEYS[preset]
    record = st.dictionaries(st.sampled_from(keys), _json_value(keys), max_size=8)
    return preset, draw(st.lists(record | _json_value(keys), max_size=12))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(export=_export())
def test_fuzzed_json_exports_never_crash_and_always_reconcile(tmp_path: Path, export: tuple[str, list[Any]]) -> None:
    preset, records = export
    root = tmp_path / "fuzz"
    shutil.rmtree(root, ignore_errors=True)
    (root / "s").mkdir(parents=True)
    (root / "s" / "export.json").write_text("".join(json.dumps(r) + "\n" for r in records))
    cfg = make_config(root, sources=[{"name": "s", "kind": "clickstream", "path": "s/*", "format": preset}])
    run_steps(cfg, until="load_sources", run_started=RUN_STARTED)
    assert rows(cfg, "SELECT status, rows_read FROM load_manifest") == [("loaded", len(records))]
    _manifest(cfg)


def _snowplow_export(folder: Path, name: str, header: bool, delimiter: str, order: list[str] | None = None,
                     upper: bool = False) -> None:
    """The TSV fixture's events as another export of the same table: with or without a header row, as TSV or
    quoted CSV, its columns in another order and case (a warehouse's export)."""
    import csv

    from cjm_analytics.presets import SNOWPLOW_TSV_COLUMNS

    names = order or list(SNOWPLOW_TSV_COLUMNS)
    lines = (FIXTURES / SNOWPLOW_TSV).read_text(encoding="utf-8").splitlines()
    records = [dict(zip(SNOWPLOW_TSV_COLUMNS, line.split("\t"), strict=False)) for line in lines]
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / name).open("w", encoding="utf-8", newline="") as f:
        if delimiter == "\t":
            if header:
                f.write("\t".join(n.upper() if upper else n for n in names) + "\n")
            for line, record in zip(lines, records, strict=True):  # the short line stays short
                f.write((line if order is None else "\t".join(record.get(n, "") for n in names)) + "\n")
        else:
            writer = csv.writer(f, delimiter=delimiter, lineterminator="\n")
            if header:
                writer.writerow([n.upper() if upper else n for n in names])
            for line, record in zip(lines, records, strict=True):
                writer.writerow(line.split("\t") if order is None else [record.get(n, "") for n in names])


@pytest.mark.parametrize(("name", "header", "delimiter", "reordered", "upper"), [
    pytest.param("events.tsv", True, "\t", False, False, id="tsv-with-header"),
    pytest.param("events.csv", True, ",", True, True, id="csv-with-header-reordered-upper-case"),
    pytest.param("events.csv", False, ",", False, False, id="csv-without-header"),
])
def test_snowplow_exports_with_or_without_a_header_load_the_same_events(
        tmp_path: Path, name: str, header: bool, delimiter: str, reordered: bool, upper: bool) -> None:
    from cjm_analytics.presets import SNOWPLOW_TSV_COLUMNS

    # A warehouse export holds the columns it was asked for, in its own order.
    order = sorted(set(SNOWPLOW_TSV_COLUMNS) - {"user_ipaddress", "useragent"}, reverse=True) if reordered else None
    _snowplow_export(tmp_path / "snowplow", name, header, delimiter, order, upper)
    cfg = make_config(tmp_path, sources=[{"name": "sp", "kind": "clickstream", "path": "snowplow/*",
                                          "format": "snowplow"}],
                      stages=[{"name": "browse", "events": ["*"]}], goal="browse")
    run_steps(cfg, until="load_sources", run_started=RUN_STARTED)
    got = rows(cfg, f"SELECT row_number, event_id, customer_id, anonymous_id, event_name, {TS}, channel "
                    "FROM raw_events ORDER BY row_number")
    line_1, line_2, line_4 = (
        (1, "5b6c7d8e-9f0a-4b1c-8d2e-3f4a5b6c7d8e", None, "dui-4b8e", "page_view", "2026-11-04 08:00:00.450000",
         "cpc"),
        (2, "6c7d8e9f-0a1b-4c2d-9e3f-4a5b6c7d8e9f", "cust-9", "dui-4b8e", "event", "2026-11-04 08:03:00.000000",
         None),
        (4, "c6ef3124-b53a-4b13-a233-0088f79dcbcb", None, "dui-4b8e", "page_view", "2026-11-03 10:00:00.130000",
         "search"),
    )
    if order is None:  # line 3 is one value short: where the columns are counted, it is a reject of its own
        assert got == [line_1, line_2, line_4]
        assert _manifest(cfg) == [(name, 4, 3, 1, 0)]
        assert rows(cfg, "SELECT row_number, reason FROM rejects") == [
            (3, "MISSING COLUMNS: Expected Number of Columns: 131 Found: 130")]
    else:  # the export wrote every column it was asked for: line 3 is whole
        assert got == [line_1, line_2, (3, "7d8e9f0a-1b2c-4d3e-8f4a-5b6c7d8e9f0a", None, "dui-4b8e", "page_view",
                                        "2026-11-04 08:04:00.000000", None), line_4]
        assert _manifest(cfg) == [(name, 4, 4, 0, 0)]
    assert _properties(cfg, "6c7d8e9f-0a1b-4c2d-9e3f-4a5b6c7d8e9f")["se_action"] == "add-to-cart"


def test_snowplow_identity_fields_can_be_chosen(tmp_path: Path) -> None:
    """docs/presets.md, Choosing the identity fields: network_userid instead of domain_userid."""
    cfg = _config(tmp_path, "snowplow", [SNOWPLOW_JSON, SNOWPLOW_TSV], columns={"anonymous_id": "network_userid"})
    run_steps(cfg, until="build_journeys", run_started=RUN_STARTED)
    assert rows(cfg, "SELECT regexp_extract(file, '[^/]+$'), row_number, customer_id, anonymous_id FROM raw_events "
                     "ORDER BY file, row_number") == [
        (SNOWPLOW_JSON, 1, None, "nui-93d1"), (SNOWPLOW_JSON, 2, None, "nui-93d1"),
        (SNOWPLOW_JSON, 3, "cust-9", "nui-93d1"), (SNOWPLOW_TSV, 1, None, "nui-93d1"),
        (SNOWPLOW_TSV, 2, "cust-9", "nui-93d1")]
    # JSON line 4 has a domain_userid but no network_userid: now it has no id at all.
    assert rows(cfg, "SELECT regexp_extract(file, '[^/]+$'), row_number, reason FROM rejects ORDER BY file, "
                     "row_number") == [
        (SNOWPLOW_JSON, 4, "missing customer_id and anonymous_id"),
        (SNOWPLOW_JSON, 5, "missing customer_id and anonymous_id"),
        (SNOWPLOW_TSV, 3, "MISSING COLUMNS: Expected Number of Columns: 131 Found: 130")]
    # cust-9 logged in on the nui-93d1 cookie: every event of that cookie is cust-9's.
    assert rows(cfg, "SELECT customer_key, count(*) FROM events GROUP BY 1 ORDER BY 1") == [("cust-9", 5)]
