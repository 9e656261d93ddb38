"""Channel attribution: the Markov removal effects of the ChannelAttribution vignette / Anderl et al. (2016) example
worked by hand, the same figures through the warehouse, and the sample against an independent absorbing chain.

The hand example: three paths, C1 > C2 > C3 -> conversion, C1 -> null, C2 > C3 -> null.

    transition counts              probabilities
    (start) -> C1  2               2/3
    (start) -> C2  1               1/3
    C1 -> C2       1               1/2
    C1 -> (null)   1               1/2
    C2 -> C3       2               1
    C3 -> (conv)   1               1/2
    C3 -> (null)   1               1/2

    P(conversion)          = 2/3 x 1/2 x 1 x 1/2 + 1/3 x 1 x 1/2 = 1/6 + 1/6 = 1/3
    without C1 (-> null)   = 1/3 x 1 x 1/2 = 1/6     removal effect 1 - (1/6)/(1/3) = 1/2
    without C2             = 0                       removal effect 1
    without C3             = 0                       removal effect 1
    credit (1 conversion)  C1 1 x 0.5/2.5 = 0.2, C2 1 x 1/2.5 = 0.4, C3 0.4
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Iterator
from itertools import groupby, pairwise
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from cjm_analytics import analyze_cli
from cjm_analytics.analysis.attribution import (
    channel_attribution,
    channel_paths,
    channel_transitions,
    markov_attribution,
)
from cjm_analytics.config import Config
from cjm_analytics.warehouse import connect
from tests.fixtures import RUN_STARTED, make_config, run_steps, write_csv

VIGNETTE = pd.DataFrame(
    [("(start)", "C1", 2), ("(start)", "C2", 1), ("C1", "C2", 1), ("C1", "(null)", 1), ("C2", "C3", 2),
     ("C3", "(conversion)", 1), ("C3", "(null)", 1)],
    columns=["from_state", "to_state", "transitions"],
)


def _rows(df: pd.DataFrame) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in df.itertuples(index=False)]


def test_the_vignette_example_by_hand() -> None:
    df = markov_attribution(VIGNETTE)
    assert _rows(df) == [pytest.approx(r) for r in [("C1", 0.2, 0.5), ("C2", 0.4, 1.0), ("C3", 0.4, 1.0)]]


def test_repeats_do_not_change_the_markov_credit() -> None:
    # A self-loop C2 -> C2 leaves every absorption probability as it was (so collapsing repeats is safe).
    looped = pd.concat([VIGNETTE, pd.DataFrame([("C2", "C2", 5)], columns=VIGNETTE.columns)])
    assert _rows(markov_attribution(looped)) == [pytest.approx(r) for r in _rows(markov_attribution(VIGNETTE))]


def test_no_conversions_credit_nothing() -> None:
    df = markov_attribution(pd.DataFrame([("(start)", "C1", 3), ("C1", "(null)", 3)], columns=VIGNETTE.columns))
    assert df.markov.tolist() == [0.0] and df.removal_effect.isna().all()


# The vignette's paths as sessions (channel = the session's first channel; a gap of a day starts a session),
# with what the definitions add: repeats collapse, sessions without a channel are skipped, sessions after the
# conversion do not count, a converter without any channel has no path, and a customer with no stage event
# (f) still has a channel path that did not convert.
#
#   customer  sessions (channel)                       path                 converted
#   a         C1 | C2 | C3 + order                     C1 > C2 > C3         yes
#   b         C1                                       C1                   no
#   c         C2 | C3                                  C2 > C3              no
#   d         C1 | (none) | C1 | C2 | C3 + order | C2  C1 > C2 > C3         yes (the last C2 is after it)
#   e         order (no channel)                       -                    yes, but not attributable
#   f         login C4 (no stage event)                C4                   no
#
# Transitions: (start)->C1 3, (start)->C2 1, (start)->C4 1, C1->C2 2, C1->(null) 1, C2->C3 3, C3->(conv) 2,
# C3->(null) 1, C4->(null) 1. P(conversion) = 3/5 x 2/3 x 2/3 + 1/5 x 2/3 = 2/5. Without C1: 1/5 x 2/3 = 2/15,
# effect 1 - (2/15)/(2/5) = 2/3; without C2 or C3: 0, effect 1; without C4: 2/5, effect 0.
# Markov credit of 2 conversions: C1 2 x (2/3)/(8/3) = 0.5, C2 and C3 2 x 1/(8/3) = 0.75, C4 0.
EVENTS = """
    event_id,anonymous_id,user_id,event,ts,channel
    e01,,a,landing,2026-11-01T10:00:00Z,C1
    e02,,a,landing,2026-11-02T10:00:00Z,C2
    e03,,a,landing,2026-11-03T10:00:00Z,C3
    e04,,a,order,2026-11-03T10:05:00Z,
    e05,,b,landing,2026-11-01T10:00:00Z,C1
    e06,,c,landing,2026-11-01T10:00:00Z,C2
    e07,,c,landing,2026-11-02T10:00:00Z,C3
    e08,,d,landing,2026-11-01T10:00:00Z,C1
    e09,,d,landing,2026-11-01T12:00:00Z,
    e10,,d,landing,2026-11-01T14:00:00Z,C1
    e11,,d,landing,2026-11-02T10:00:00Z,C2
    e12,,d,landing,2026-11-03T10:00:00Z,C3
    e13,,d,order,2026-11-03T10:10:00Z,
    e14,,d,landing,2026-11-04T10:00:00Z,C2
    e15,,e,order,2026-11-01T10:00:00Z,
    e16,,f,login,2026-11-01T10:00:00Z,C4
"""


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    root = tmp_path_factory.mktemp("attribution")
    write_csv(root / "web" / "events.csv", EVENTS)
    cfg = make_config(root)
    run_steps(cfg, run_started=RUN_STARTED)
    c = connect(cfg.warehouse, read_only=True)
    yield c
    c.close()


def test_channel_paths(con: duckdb.DuckDBPyConnection) -> None:
    assert _rows(channel_paths(con)) == [("C1 > C2 > C3", 2, 0), ("C1", 0, 1), ("C2 > C3", 0, 1), ("C4", 0, 1)]


def test_core_channel_touches(con: duckdb.DuckDBPyConnection) -> None:
    # (customer, touch, n_touches, channel, prev_channel, converted): the paths above, one row per touch
    rows = con.execute("SELECT * FROM channel_touches ORDER BY customer_key, touch").fetchall()
    assert rows == [
        ("a", 1, 3, "C1", None, True), ("a", 2, 3, "C2", "C1", True), ("a", 3, 3, "C3", "C2", True),
        ("b", 1, 1, "C1", None, False),
        ("c", 1, 2, "C2", None, False), ("c", 2, 2, "C3", "C2", False),
        # the session without a channel is skipped, C1 twice is one touch, the C2 after the order does not count
        ("d", 1, 3, "C1", None, True), ("d", 2, 3, "C2", "C1", True), ("d", 3, 3, "C3", "C2", True),
        ("f", 1, 1, "C4", None, False),  # no stage event: a path that did not convert
    ]


def test_channel_transitions(con: duckdb.DuckDBPyConnection) -> None:
    got = {(f, t): n for f, t, n in _rows(channel_transitions(con))}
    assert got == {("(start)", "C1"): 3, ("(start)", "C2"): 1, ("(start)", "C4"): 1, ("C1", "C2"): 2,
                   ("C1", "(null)"): 1, ("C2", "C3"): 3, ("C3", "(conversion)"): 2, ("C3", "(null)"): 1,
                   ("C4", "(null)"): 1}


def test_channel_attribution(con: duckdb.DuckDBPyConnection) -> None:
    df = channel_attribution(con)
    assert list(df.columns) == ["channel", "first_touch", "last_touch", "linear", "markov", "removal_effect"]
    # channel, first touch, last touch, linear (a third of each converting path), markov, removal effect
    assert _rows(df) == [pytest.approx(r) for r in [
        ("C2", 0, 0, 2 / 3, 0.75, 1.0),
        ("C3", 0, 2, 2 / 3, 0.75, 1.0),
        ("C1", 2, 0, 2 / 3, 0.5, 2 / 3),
        ("C4", 0, 0, 0, 0, 0),
    ]]


# ---- the sample ---------------------------------------------------------------------------------------------

def _independent_paths(sessions: pd.DataFrame) -> list[tuple[list[str], bool]]:
    """Each customer's collapsed channel path up to the conversion, written out with plain Python."""
    out = []
    for _, s in sessions.sort_values(["customer_key", "session_number"]).groupby("customer_key"):
        converted_at = s.converted_at.iloc[0]
        converted = pd.notna(converted_at)
        kept = [ch for ch, start in zip(s.channel, s.session_start, strict=True)
                if pd.notna(ch) and (not converted or start <= converted_at)]
        if kept:
            out.append(([ch for ch, _ in groupby(kept)], bool(converted)))
    return out


def _absorption(counts: Counter[tuple[str, str]], removed: str | None = None) -> float:
    """P(reaching (conversion) from (start)) by iterating a(s) = sum_t p(s, t) a(t) until it settles."""
    out: dict[str, Counter[str]] = {}
    for (f, t), n in counts.items():
        out.setdefault(f, Counter())[t] += n
    a = dict.fromkeys(out, 0.0) | {"(conversion)": 1.0, "(null)": 0.0}
    for _ in range(100_000):
        new = {s: 0.0 if s == removed else sum(n * a[t] for t, n in nxt.items()) / sum(nxt.values())
               for s, nxt in out.items()}
        delta = max(abs(new[s] - a[s]) for s in new)
        a.update(new)
        if delta < 1e-15:
            break
    return a["(start)"]


@pytest.mark.slow
def test_attribution_on_the_sample_against_an_independent_chain(sample: Config) -> None:
    c = connect(sample.warehouse, read_only=True)
    try:
        df = channel_attribution(c)
        sessions = c.execute("""
            SELECT s.customer_key, s.session_number, s.session_start, s.channel,
                   CASE WHEN j.converted THEN j.converted_at END AS converted_at
            FROM sessions AS s LEFT JOIN journeys AS j ON s.customer_key = j.customer_key""").fetchdf()
    finally:
        c.close()
    paths = _independent_paths(sessions)
    conversions = sum(converted for _, converted in paths)
    assert conversions > 500
    for model in ("first_touch", "last_touch", "linear", "markov"):
        assert df[model].sum() == pytest.approx(conversions), model
    counts: Counter[tuple[str, str]] = Counter()
    for path, converted in paths:
        states = ["(start)", *path, "(conversion)" if converted else "(null)"]
        counts.update(pairwise(states))
    p = _absorption(counts)
    assert p == pytest.approx(conversions / len(paths))  # a chain fitted to whole paths keeps their rate
    effects = {ch: 1 - _absorption(counts, removed=ch) / p for ch in df.channel}
    assert dict(zip(df.channel, df.removal_effect, strict=True)) == pytest.approx(effects, abs=1e-9)
    first = Counter(path[0] for path, converted in paths if converted)
    assert dict(zip(df.channel, df.first_touch, strict=True)) == {ch: first.get(ch, 0) for ch in df.channel}


@pytest.mark.slow
def test_cli(sample: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(analyze_cli, "ANALYSIS_MODULES", ("attribution",))
    parser = argparse.ArgumentParser()
    analyze_cli.register_all(parser.add_subparsers(dest="command", required=True))
    out = tmp_path / "attribution.csv"
    args = parser.parse_args(["analyze", "attribution", "--config", str(sample.config_path), "--out", str(out)])
    assert args.func(args) == 0
    table = pd.read_csv(out)
    assert table.columns.tolist() == ["channel", "first_touch", "last_touch", "linear", "markov", "removal_effect"]
    assert (sample.reports / "analysis-attribution.html").exists()


def test_no_channel_at_all_gives_an_empty_table(tmp_path: Path) -> None:
    """A CRM-only or channel-less warehouse: every model is empty, nothing crashes (the nightly marts use this)."""
    write_csv(tmp_path / "web" / "a.csv", """
        event_id,anonymous_id,user_id,event,ts,channel
        1,a1,u1,landing,2026-11-01T10:00:00Z,
        2,a1,u1,order,2026-11-01T10:05:00Z,
    """)
    cfg = make_config(tmp_path)
    run_steps(cfg, until="aggregate", run_started=RUN_STARTED)
    con = duckdb.connect(str(cfg.warehouse), read_only=True)
    try:
        assert channel_attribution(con).empty
    finally:
        con.close()
