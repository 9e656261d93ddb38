"""Process and service logs (issue 15): the config names the entity a journey belongs to (the report says "tickets",
never "customers"), and sessions can be switched off where they mean nothing.

Four tickets, events hours to days apart, counted by hand: with the default 30-minute rule t1 has 3 sessions,
t2 2, t3 and t4 1 each (7); with `sessions: off` each ticket is one session (4). A CSAT survey (rated, score 1-5)
and a support event (rated too) are configured, so that the emotion and support measures have something to show.
Stages open < triage < escalate < solve (goal); no event is escalated, which two health checks warn about.

    ticket  events (2026-11-..)                                           path                furthest  converted
    t1      opened 01 09:00, triaged 01 09:10, triaged 02 10:00,          open, triage,       solve     yes
            solved 05 16:00, rated 05 16:30 (4)                           solve
    t2      opened 01 10:00, triaged 03 10:00, rated 03 10:20 (2)         open, triage        triage    no
    t3      opened 02 08:00                                               open                open      no
    t4      opened 02 09:00, triaged 02 09:05, solved 02 09:20            open, triage, solve solve     yes
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from cjm_analytics import analyze_cli
from cjm_analytics.cli import format_summary
from cjm_analytics.config import Config, load_config
from cjm_analytics.nightly import run_summary
from cjm_analytics.report import PAGES, read_marts
from cjm_analytics.report.export import export_figures
from cjm_analytics.warehouse import connect
from tests.fixtures import RUN_STARTED, make_config, rows, run_steps, write_csv
from tests.test_incremental import differences, full_run_copy, refreshed_in_full

EVENTS = """
    event_id,anonymous_id,user_id,event,ts,channel,score
    1,,t1,opened,2026-11-01T09:00:00Z,email,
    2,,t1,triaged,2026-11-01T09:10:00Z,,
    3,,t1,triaged,2026-11-02T10:00:00Z,,
    4,,t1,solved,2026-11-05T16:00:00Z,,
    5,,t1,rated,2026-11-05T16:30:00Z,,4
    6,,t2,opened,2026-11-01T10:00:00Z,phone,
    7,,t2,triaged,2026-11-03T10:00:00Z,,
    8,,t2,rated,2026-11-03T10:20:00Z,,2
    9,,t3,opened,2026-11-02T08:00:00Z,portal,
    10,,t4,opened,2026-11-02T09:00:00Z,portal,
    11,,t4,triaged,2026-11-02T09:05:00Z,,
    12,,t4,solved,2026-11-02T09:20:00Z,,
"""
STAGES = [
    {"name": "open", "events": ["opened"]},
    {"name": "triage", "events": ["triaged"]},
    # No event: the health checks say so (warnings, their messages listed on the overview).
    {"name": "escalate", "events": ["escalated"]},
    {"name": "solve", "events": ["solved"]},
]
# A survey (CSAT 1-5, the `score` column) and a support event, so that every page has something to say.
ANALYSIS = {"surveys": [{"event": "rated", "kind": "csat"}], "support_events": ["rated"]}
CHECKS = {"stage_unreached": "warning"}
TICKETS = {"singular": "ticket", "plural": "tickets"}


def built(root: Path, until: str = "aggregate", **overrides: Any) -> Config:
    write_csv(root / "web" / "events.csv", EVENTS)
    config = make_config(root, stages=STAGES, goal="solve", analysis=ANALYSIS, checks=CHECKS, **overrides)
    run_steps(config, until=until, run_started=RUN_STARTED)
    return config


# The nightly run, report included (publish_reports: the words reach the pages the way the title does).
@pytest.fixture(scope="module")
def tickets(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return built(tmp_path_factory.mktemp("tickets"), until="publish_marts", entity=TICKETS, sessions="off")


@pytest.fixture(scope="module")
def customers(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return built(tmp_path_factory.mktemp("customers"), until="publish_marts")


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


def test_sessions_off_makes_each_journey_one_session(customers: Config, tickets: Config) -> None:
    on, off = customers, tickets
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
    assert rows(on, "SELECT count(*) FROM sessions") == [(7,)]
    off = make_config(tmp_path, stages=STAGES, goal="solve", analysis=ANALYSIS, checks=CHECKS, sessions="off")
    ctx = run_steps(off, run_started=RUN_STARTED)
    assert refreshed_in_full(off, ctx.run_id)
    assert rows(off, "SELECT DISTINCT session_number FROM events") == [(1,)]
    assert differences(off.warehouse, full_run_copy(off)) == {}
    assert rows(off, "SELECT count(*) FROM sessions") == [(4,)]


def test_a_config_with_sessions_on_keeps_its_fingerprint(tmp_path: Path) -> None:
    """`enabled` is in the fingerprint only when off: a warehouse built before the setting existed is not rebuilt
    in full because of it (the sessions part of the fingerprint is what it was before the setting)."""
    write_csv(tmp_path / "web" / "a.csv", "event_id,anonymous_id,user_id,event,ts,channel")
    assert make_config(tmp_path).sessions.fingerprint() == {"inactivity_minutes": 30.0, "from_": None}
    assert make_config(tmp_path, sessions="off").sessions.fingerprint()["enabled"] is False


# --- the report says it -------------------------------------------------------------------------------------

ENTITY_WORD = {"customer": re.compile(r"\bcustomers?\b", re.I), "ticket": re.compile(r"\btickets?\b", re.I)}
# A string literal in a page's scripts (the figures' JSON, the run-status snippet): decoded, \u003c and all.
_JS_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


class _Text(HTMLParser):
    """What a reader sees or hears of a page: text outside <script> and <style>, and the attributes read out
    (title, aria-label, alt, placeholder); and every string of its scripts, which are the figures' titles, axis
    titles, labels, hover text and annotations (plus plotly's own keys, which are not English words)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in = tag if tag in ("script", "style") else None
        self.parts += [v for k, v in attrs if k in ("title", "aria-label", "alt", "placeholder") and v]

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "script":
            self.parts += [json.loads(m) for m in _JS_STRING.findall(data)]
        elif self._in is None:
            self.parts.append(data)


def human_text(page: Path) -> str:
    parser = _Text()
    parser.feed(page.read_text(encoding="utf-8"))
    return "\n".join(parser.parts)


def site(cfg: Config) -> Path:
    return cfg.reports / "index.html"


def pages(cfg: Config) -> dict[str, str]:
    return {p.name: human_text(cfg.reports / p.name) for p in PAGES}


def test_the_report_says_tickets_on_every_page_and_never_customers(customers: Config, tickets: Config) -> None:
    """No exclusion is needed: the fixture's data (events, stages, channels, touchpoints) hold neither word, and
    the marts' column names (customers, customers_lost, journey_customers) never reach a page."""
    said = pages(tickets)
    for name, text in said.items():
        assert not ENTITY_WORD["customer"].search(text), (name, ENTITY_WORD["customer"].findall(text))
        # Stricter still: nowhere in the page's source, scripts and figure JSON included.
        assert not ENTITY_WORD["customer"].search((tickets.reports / name).read_text(encoding="utf-8")), name
    default = pages(customers)
    for name in said:  # every page that speaks of customers by default speaks of tickets now, as often
        n_default = len(ENTITY_WORD["customer"].findall(default[name]))
        assert n_default > 0, name
        assert len(ENTITY_WORD["ticket"].findall(said[name])) >= n_default, name
        assert not ENTITY_WORD["ticket"].search(default[name]), name
    # Capitalised where a label or a sentence starts; the site's title from the word too.
    assert "<dt>Tickets</dt>" in (tickets.reports / "index.html").read_text(encoding="utf-8")
    assert "<dt>Journey tickets</dt>" in (tickets.reports / "index.html").read_text(encoding="utf-8")
    assert tickets.report.title == "Ticket journeys" and customers.report.title == "Customer journeys"
    assert '<span class="site">Ticket journeys</span>' in (tickets.reports / "funnel.html").read_text("utf-8")
    # The health checks' messages too (table run_checks), those the overview lists and the others.
    assert "<li>stage escalate: no event of any ticket is at this stage, yet later stages have some" in (
        tickets.reports / "index.html").read_text("utf-8")
    messages = [m for (m,) in rows(tickets, "SELECT message FROM run_checks")]
    assert len(messages) > 10 and not any(ENTITY_WORD["customer"].search(m) for m in messages)


def test_the_journey_map_names_everyone_in_the_word_but_the_mart_keeps_its_values(tickets: Config) -> None:
    text = (tickets.reports / "journey-map.html").read_text(encoding="utf-8")
    assert "All tickets:" in text and ">all tickets <span" in text and "<b>all tickets</b>: 4 journey tickets" in text
    # A dashboard's SQL does not change with the word: the mart's columns and values are the same.
    assert rows(tickets, "SELECT DISTINCT persona FROM journey_map WHERE persona_type = 'all'") == [
        ("all customers",)]


def test_the_run_summary_line_says_tickets_and_no_session_count(customers: Config, tickets: Config) -> None:
    said = format_summary(tickets, "run-1", [], run_summary(tickets.warehouse))
    assert "4 tickets, sessions: off" in said and "journeys: 4 tickets, 2 reached solve" in said
    assert not ENTITY_WORD["customer"].search(said)
    default = format_summary(customers, "run-1", [], run_summary(customers.warehouse))
    assert "4 customers, 7 sessions" in default


def test_with_sessions_off_no_page_shows_a_session_measure(customers: Config, tickets: Config) -> None:
    index = (tickets.reports / "index.html").read_text(encoding="utf-8")
    assert re.search(r'<dt>Sessions</dt><dd><span class="value">not used</span><span class="detail">sessions: off '
                     r"in the config: each journey is one session</span></dd>", index)
    assert re.search(r'<dt>Sessions</dt><dd><span class="value">7</span>',
                     (customers.reports / "index.html").read_text(encoding="utf-8"))
    jm = (tickets.reports / "journey-map.html").read_text(encoding="utf-8")
    assert "share of the stage&#x27;s sessions" not in jm
    assert "by the channel of their first event (sessions: off)" in jm
    assert "share of the stage&#x27;s sessions" in (customers.reports / "journey-map.html").read_text("utf-8")
    attribution = (tickets.reports / "attribution.html").read_text(encoding="utf-8")
    assert "<b>Sessions: not used</b> (sessions: off in the config)" in attribution
    assert "Sessions: not used" not in (customers.reports / "attribution.html").read_text(encoding="utf-8")
    # No page counts sessions: no number of them anywhere (the default's cjm run line has one, see above).
    for name, text in pages(tickets).items():
        assert not re.search(r"\d\s*sessions?\b|sessions?\W+\d", text, re.I), name


def test_the_exported_charts_say_tickets(tickets: Config) -> None:
    """`cjm report --export` draws the site's charts again, from the marts and the words (export_figures)."""
    con = connect(tickets.warehouse, read_only=True)
    try:
        marts = dataclasses.replace(read_marts(con), entity=tickets.entity.words)
    finally:
        con.close()
    figures = export_figures(marts)
    assert len(figures) >= 8
    for stem, fig in figures:
        assert not ENTITY_WORD["customer"].search(fig.to_json()), stem
    assert any(ENTITY_WORD["ticket"].search(fig.to_json()) for _, fig in figures)


def test_cjm_analyze_attribution_says_sessions_are_not_used(customers: Config, tickets: Config) -> None:
    def intro(cfg: Config) -> str:
        con = connect(cfg.warehouse, read_only=True)
        try:
            return analyze_cli._attribution(con, cfg, argparse.Namespace()).intro
        finally:
            con.close()

    assert "Sessions are not used (sessions: off in the config): each ticket's path is one touch" in intro(tickets)
    assert "Sessions are not used" not in intro(customers)
