"""sessions.from (issue 15): the tracker's own session id splits sessions; events without one keep the timeout."""

from __future__ import annotations

from pathlib import Path

import pytest

from cjm_analytics.config import Config
from cjm_analytics.errors import ConfigError
from tests.fixtures import RUN_STARTED, make_config, rows, run_steps, write_csv

# Customer u1: s1 twice two hours apart (one tracker session, two by the timeout), then s2, a CRM call without a
# session id two minutes later, and s2 again. Customer u2: only events without a session id, 10 min then 2 h apart.
EVENTS = """
    event_id,anonymous_id,user_id,event,ts,channel,sid
    1,,u1,landing,2026-11-01T10:00:00Z,ads,s1
    2,,u1,product_view,2026-11-01T12:00:00Z,,s1
    3,,u1,product_view,2026-11-01T12:01:00Z,,s2
    4,,u1,call,2026-11-01T12:03:00Z,,
    5,,u1,add_to_cart,2026-11-01T12:05:00Z,,s2
    6,,u2,landing,2026-11-01T10:00:00Z,,
    7,,u2,product_view,2026-11-01T10:10:00Z,,
    8,,u2,order,2026-11-01T12:10:00Z,,
"""
SESSIONS = "SELECT customer_key, session_number, n_events FROM sessions ORDER BY 1, 2"


def built(tmp_path: Path, sessions: dict[str, object]) -> Config:
    write_csv(tmp_path / "web" / "events.csv", EVENTS)
    config = make_config(tmp_path, sessions=sessions)
    run_steps(config, until="build_journeys", run_started=RUN_STARTED)
    return config


def test_the_trackers_session_id_decides_where_it_is_set(tmp_path: Path) -> None:
    config = built(tmp_path, {"from": "sid"})
    assert rows(config, SESSIONS) == [("u1", 1, 2), ("u1", 2, 3), ("u2", 1, 2), ("u2", 2, 1)]
    assert rows(config, "SELECT event_id, session_number FROM events WHERE customer_key = 'u1' ORDER BY ts") == [
        ("1", 1), ("2", 1), ("3", 2), ("4", 2), ("5", 2)]


def test_without_it_the_inactivity_rule(tmp_path: Path) -> None:
    config = built(tmp_path, {"inactivity_minutes": 30})
    assert rows(config, SESSIONS) == [("u1", 1, 1), ("u1", 2, 4), ("u2", 1, 2), ("u2", 2, 1)]


def test_changing_it_recomputes_every_customer(tmp_path: Path) -> None:
    built(tmp_path, {"inactivity_minutes": 30})
    config = make_config(tmp_path, sessions={"from": "sid"})
    run_steps(config, until="build_journeys", run_started=RUN_STARTED)
    assert rows(config, SESSIONS) == [("u1", 1, 2), ("u1", 2, 3), ("u2", 1, 2), ("u2", 2, 1)]


def test_an_empty_field_name_is_a_config_error(tmp_path: Path) -> None:
    write_csv(tmp_path / "web" / "events.csv", EVENTS)
    with pytest.raises(ConfigError, match=r"sessions\.from: String should have at least 1 character"):
        make_config(tmp_path, sessions={"from": ""})
