"""Process and service logs (issue 15): the pages of `cjm analyze` speak of the configured entity too ("tickets"),
in their intros, charts (titles, axes, legends, hover text) and the analyses index; their tables keep their
column names (customers, customers_lost), as the CSV does.

The four tickets of tests/test_entity.py, with sessions on, so that the two configs differ in the word only:
every analysis is run once per config, and each page must say "ticket" exactly as often as its default twin says
"customer".
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
from pathlib import Path

import pytest
import yaml

from cjm_analytics import cli
from cjm_analytics.config import Config, load_config
from tests.fixtures import RUN_STARTED, WEB_COLUMNS, run_steps, write_csv
from tests.test_entity import ANALYSIS, CHECKS, ENTITY_WORD, EVENTS, STAGES, TICKETS, _Text, human_text

# Every `cjm analyze` command, with the options that put each kind of sentence on its page (segments,
# exclusions, the any-order rule, touchpoint paths). test_every_analysis_is_run keeps the list whole.
RUNS: list[tuple[str, ...]] = [
    ("funnel", "--steps", "open,triage,solve", "--segment", "first_touch_channel", "--exclude", "rated"),
    ("funnel", "--steps", "open,triage,solve", "--order", "any"),
    ("funnel-by-segment", "--by", "first_touch_channel"),
    ("time-between-stages", "--segment", "first_touch_channel"),
    ("time-to-convert", "--segment", "first_touch_channel"),
    ("paths",),
    ("paths", "--level", "touchpoint"),
    ("paths-around", "--anchor", "triage"),
    ("paths-between", "--start", "open", "--end", "solve"),
    ("pain-points",),
    ("emotion-curve",),
    ("attribution",),
    ("drivers", "--from", "open", "--to", "solve"),
    ("time-to-next",),
    ("audience", "--dropped-at", "triage"),
]
_THEAD = re.compile(r"<thead>.*?</thead>", re.S)


def _config(root: Path, name: str, **extra: object) -> Config:
    data = {"warehouse": "warehouse/cjm.duckdb", "reports": f"reports-{name}", "stages": STAGES, "goal": "solve",
            "sources": [{"name": "web", "kind": "clickstream", "path": "web/*", "columns": WEB_COLUMNS}],
            "analysis": ANALYSIS, "checks": CHECKS, **extra}
    (root / f"{name}.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    return load_config(root / f"{name}.yaml")


def _analyze_all(config: Config) -> dict[tuple[str, ...], Path]:
    """Run every command of RUNS in this process; the page each wrote."""
    written = {}
    for argv in RUNS:
        before = {p: p.stat().st_mtime_ns for p in config.reports.glob("analysis-*.html")}
        with contextlib.redirect_stdout(io.StringIO()):
            assert cli.main(["analyze", *argv, "--config", str(config.config_path)]) == 0, argv
        new = [p for p in config.reports.glob("analysis-*.html") if before.get(p) != p.stat().st_mtime_ns]
        assert len(new) == 1, (argv, new)
        written[argv] = new[0]
    return written


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One warehouse for both configs (the word is not in it: `cjm analyze` says it), each its own reports."""
    root = tmp_path_factory.mktemp("entity_analyze")
    write_csv(root / "web" / "events.csv", EVENTS)
    run_steps(_config(root, "tickets", entity=TICKETS), run_started=RUN_STARTED)
    return root


@pytest.fixture(scope="module")
def tickets(root: Path) -> tuple[Config, dict[tuple[str, ...], Path]]:
    config = _config(root, "tickets", entity=TICKETS)
    return config, _analyze_all(config)


@pytest.fixture(scope="module")
def customers(root: Path) -> tuple[Config, dict[tuple[str, ...], Path]]:
    config = _config(root, "customers")
    return config, _analyze_all(config)


def said(page: Path) -> str:
    """What a reader sees of an analysis page (text, attributes read out, figure strings) but its table's header,
    which is the table's column names, as in the CSV."""
    parser = _Text()
    parser.feed(_THEAD.sub("", page.read_text(encoding="utf-8")))
    return "\n".join(parser.parts)


def test_every_analysis_is_run() -> None:
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    analyze = commands.choices["analyze"]
    analyses = next(a for a in analyze._actions if isinstance(a, argparse._SubParsersAction))
    assert set(analyses.choices) == {argv[0] for argv in RUNS}


def test_every_analysis_page_says_tickets_where_the_default_says_customers(
        tickets: tuple[Config, dict[tuple[str, ...], Path]],
        customers: tuple[Config, dict[tuple[str, ...], Path]]) -> None:
    for argv in RUNS:
        ticket_page, customer_page = tickets[1][argv], customers[1][argv]
        text, default = said(ticket_page), said(customer_page)
        assert not ENTITY_WORD["customer"].search(text), (argv, ENTITY_WORD["customer"].findall(text))
        assert not ENTITY_WORD["ticket"].search(default), argv
        # Every word turned, none dropped: as many tickets as the default page has customers (its site title
        # included); more than the title's two, so the intro or the chart says it (the attribution page speaks of
        # conversions and channels only).
        n_default = len(ENTITY_WORD["customer"].findall(default))
        assert len(ENTITY_WORD["ticket"].findall(text)) == n_default, argv
        assert n_default > 2 or argv == ("attribution",), argv
        # Nowhere in the page's source either (scripts and figure JSON as written), but the table's header.
        assert not ENTITY_WORD["customer"].search(_THEAD.sub("", ticket_page.read_text(encoding="utf-8"))), argv
        # The header is the table's column names, whatever the word.
        assert _THEAD.findall(ticket_page.read_text("utf-8")) == _THEAD.findall(customer_page.read_text("utf-8"))


def test_the_charts_name_the_entity(tickets: tuple[Config, dict[tuple[str, ...], Path]]) -> None:
    pages = tickets[1]
    assert '"title":{"text":"tickets"}' in pages[("paths",)].read_text("utf-8").replace(" ", "")
    pain = pages[("pain-points",)].read_text("utf-8")
    assert "Where tickets leave the funnel" in pain and '"name":"tickets lost"' in pain
    assert "tickets), without:" in pages[("drivers", "--from", "open", "--to", "solve")].read_text("utf-8")
    audience = pages[("audience", "--dropped-at", "triage")].read_text("utf-8")
    assert "%{x} tickets" in audience
    funnel = pages[RUNS[0]].read_text("utf-8")
    assert "share of step-1 tickets" in funnel
    # The table keeps its column names, on the page and in its CSV.
    assert 'class="num">customers</th>' in pages[("paths",)].read_text("utf-8")
    csv = tickets[0].reports / "analysis" / "paths.csv"
    assert csv.read_text("utf-8").splitlines()[0] == "rank,path,customers,share,cumulative_share"


def test_the_index_and_the_cli_lines_say_tickets(tickets: tuple[Config, dict[tuple[str, ...], Path]],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    config = tickets[0]
    index = human_text(config.reports / "analyses.html")
    assert not ENTITY_WORD["customer"].search(index)
    assert "Ticket journeys" in index
    # An analysis' one-line error speaks of the entity too.
    assert cli.main(["analyze", "audience", "--dropped-at", "solve", "--config", str(config.config_path)]) != 0
    err = capsys.readouterr().err
    assert "tickets who stop there have completed" in err and not ENTITY_WORD["customer"].search(err)
    # `cjm validate` does not speak of customers (its column names, customer_id, are the config's keys).
    cli.main(["validate", "--allow-empty-stages", "--config", str(config.config_path)])
    out = capsys.readouterr()
    assert "journeys: 4" in out.out and not ENTITY_WORD["customer"].search(out.out + out.err)
