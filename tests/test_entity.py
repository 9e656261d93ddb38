"""Process and service logs (issue 15): the config names the entity a journey belongs to (the report says "tickets",
never "customers"), and sessions can be switched off where they mean nothing.

Four tickets, events hours to days apart, counted by hand: with the default 30-minute rule t1 has 3 sessions,
t2 2, t3 and t4 1 each (7); with `sessions: off` each ticket is one session (4).

    ticket  events (2026-11-..)                                           path                furthest  converted
    t1      opened 01 09:00, triaged 01 09:10, triaged 02 10:00,          open, triage,       solve     yes
            solved 05 16:00                                               solve
    t2      opened 01 10:00, triaged 03 10:00                             open, triage        triage    no
    t3      opened 02 08:00                                               open                open      no
    t4      opened 02 09:00, triaged 02 09:05, solved 02 09:20            open, triage, solve solve     yes
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from cjm_analytics.config import Config, load_config
from tests.fixtures import RUN_STARTED, make_config, rows, run_steps, table, write_csv
from tests.test_incremental import differences, full_run_copy, refreshed_in_full

EVENTS = """
    event_id,anonymous_id,user_id,event,ts,channel
    1,,t1,opened,2026-11-01T09:00:00Z,email
    2,,t1,triaged,2026-11-01T09:10:00Z,
    3,,t1,triaged,2026-11-02T10:00:00Z,
    4,,t1,solved,2026-11-05T16:00:00Z,
    5,,t2,opened,2026-11-01T10:00:00Z,phone
    6,,t2,triaged,2026-11-03T10:00:00Z,
    7,,t3,opened,2026-11-02T08:00:00Z,portal
    8,,t4,opened,2026-11-02T09:00:00Z,portal
    9,,t4,triaged,2026-11-02T09:05:00Z,
    10,,t4,solved,2026-11-02T09:20:00Z,
"""
STAGES = [
    {"name": "open", "events": ["opened"]},
    {"name": "triage", "events": ["triaged"]},
    {"name": "solve", "events": ["solved"]},
]
TICKETS = {"singular": "ticket", "plural": "tickets"}


def built(root: Path, **overrides: Any) -> Config:
    write_csv(root / "web" / "events.csv", EVENTS)
    config = make_config(root, stages=STAGES, goal="solve", **overrides)
    run_steps(config, run_started=RUN_STARTED)
    return config


def sessions_by_hand(events_csv: str, inactivity_minutes: float | None) -> dict[str, int]:
    """Sessions per ticket computed in pandas: a new one after a gap over the timeout; None: no split."""
    lines = [line.strip() for line in events_csv.strip().splitlines()]
    df = pd.DataFrame([line.split(",") for line in lines[1:]], columns=lines[0].split(","))
    df["ts"] = pd.to_datetime(df["ts"])
    df = df.sort_values(["user_id", "ts"])
    if inactivity_minutes is None:
        return {str(k): 1 for k in df["user_id"].unique()}
    gap = df.groupby("user_id")["ts"].diff()
    starts = gap.isna() | (gap > pd.Timedelta(minutes=inactivity_minutes))
    return {str(k): int(v) for k, v in starts.groupby(df["user_id"]).sum().items()}


# --- config --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "singular", "plural"),
    [
        (None, "customer", "customers"),
        ("case", "case", "cases"),
        ("policy", "policy", "policies"),
        ("process", "process", "processes"),
        ("SLA case", "SLA case", "SLA cases"),
        ({"singular": "person", "plural": "people"}, "person", "people"),
        ({"singular": "claim"}, "claim", "claims"),
    ],
)
def test_the_entity_is_named_by_a_word_or_both_forms(tmp_path: Path, written: Any, singular: str,
                                                     plural: str) -> None:
    path = tmp_path / "cjm.yaml"
    write_csv(tmp_path / "web" / "a.csv", "event_id,anonymous_id,user_id,event,ts,channel")
    entity = "" if written is None else f"entity: {written if isinstance(written, str) else dict(written)}\n"
    path.write_text(
        "warehouse: w.duckdb\nreports: r\ngoal: buy\nstages: [{name: buy, events: [order]}]\n" + entity
        + "sources: [{name: web, kind: clickstream, path: web/*.csv, columns: {customer_id: user_id, "
        "event_name: event, timestamp: ts}}]\n", encoding="utf-8")
    cfg = load_config(path)
    assert (cfg.entity.singular, cfg.entity.plural) == (singular, plural)


def test_sessions_off_is_written_as_yaml_reads_it(tmp_path: Path) -> None:
    write_csv(tmp_path / "web" / "a.csv", "event_id,anonymous_id,user_id,event,ts,channel")
    for written in ("off", "false", "'off'", "none", "{enabled: false}"):
        path = tmp_path / "cjm.yaml"
        path.write_text(
            f"warehouse: w.duckdb\nreports: r\ngoal: buy\nstages: [{{name: buy, events: [order]}}]\n"
            f"sessions: {written}\nsources: [{{name: web, kind: clickstream, path: web/*.csv, columns: "
            "{customer_id: user_id, event_name: event, timestamp: ts}}]\n", encoding="utf-8")
        assert load_config(path).sessions.off, written


# --- sessions off --------------------------------------------------------------------------------------------


def test_sessions_off_makes_each_journey_one_session(tmp_path: Path) -> None:
    on = built(tmp_path / "on")
    off = built(tmp_path / "off", sessions="off")
    for cfg, minutes in ((on, 30.0), (off, None)):
        expected = sessions_by_hand(EVENTS, minutes)
        got = dict(rows(cfg, "SELECT customer_key, count(*) FROM sessions GROUP BY 1"))
        assert got == expected
        assert dict(rows(cfg, "SELECT customer_key, n_sessions FROM journeys")) == expected
    assert sessions_by_hand(EVENTS, 30.0) == {"t1": 3, "t2": 2, "t3": 1, "t4": 1}  # the switch changes something
    assert rows(off, "SELECT DISTINCT session_number FROM events") == [(1,)]
    # The marts do not count sessions that mean nothing; the other figures are the same either way.
    assert rows(on, "SELECT sessions FROM run_summary") == [(7,)]
    assert rows(off, "SELECT sessions FROM run_summary") == [(None,)]
    same = "SELECT customers, journey_customers, converted FROM run_summary"
    assert rows(on, same) == rows(off, same) == [(4, 4, 2)]


def test_switching_sessions_off_rebuilds_everything(tmp_path: Path) -> None:
    on = built(tmp_path)
    off = make_config(tmp_path, stages=STAGES, goal="solve", sessions="off")
    ctx = run_steps(off, run_started=RUN_STARTED)
    assert refreshed_in_full(off, ctx.run_id)
    assert rows(off, "SELECT DISTINCT session_number FROM events") == [(1,)]
    assert differences(off.warehouse, full_run_copy(off)) == {}
    ctx = run_steps(on, run_started=RUN_STARTED)  # and on again
    assert refreshed_in_full(on, ctx.run_id)
    assert table(on, "SELECT count(*) AS n FROM sessions")["n"].iloc[0] == 7


def test_a_config_with_sessions_on_keeps_its_fingerprint(tmp_path: Path) -> None:
    """`enabled` is in the fingerprint only when off: a warehouse built before the setting existed is not rebuilt
    in full because of it (the sessions part of the fingerprint is what it was before the setting)."""
    write_csv(tmp_path / "web" / "a.csv", "event_id,anonymous_id,user_id,event,ts,channel")
    assert make_config(tmp_path).sessions.fingerprint() == {"inactivity_minutes": 30.0, "from_": None}
    assert make_config(tmp_path, sessions="off").sessions.fingerprint()["enabled"] is False
