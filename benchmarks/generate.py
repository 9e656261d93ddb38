"""Seeded generator of realistic clickstream + CRM event logs at any size, written as Parquet.

    python -m benchmarks.generate --events 10000000 --out /path/to/dir [--seed 1]
    python -m benchmarks.generate --events 10000000 --night-fraction 0.01 --out /path/to/night [--seed 1]
    ... [--shape nightly-files|one-file|anonymous]   (the layout and the customer mix: SHAPES below)

What it writes (`<out>/clickstream/<day>.parquet`, `<out>/crm/<day>.parquet`, `<out>/cjm.yaml`,
`<out>/dataset.json`): exactly `--events` rows over 30 days (2026-10-01 .. 2026-10-30 UTC), one file per
source and day, ~20 events per customer, 35 event names (23 web, 12 CRM), and:

- customers of four kinds: anonymous visitors who never log in (~30%), anonymous visitors who log in later
  (`login`/`signup` event; from then on the rows carry anonymous_id + user_id), customers known from their
  first event (~30%), and a few CRM-only customers (phone orders, ~2%); some known customers use a second
  device (anonymous first, logged in later), and ~0.5% share a device with another customer, so that
  "the last customer seen with an anonymous id" decides;
- journeys drawn from a Markov chain over the web event names, restricted per customer to a furthest
  possible stage (a ladder: awareness 100% > consideration > intent > purchase > retention > advocacy);
- gaps between events that split sessions: most are seconds to minutes, ~15% hours, ~5% days, plus ties
  (~1%), and gaps of exactly 30:00 and 30:01 (the inactivity timeout's edge);
- a channel per web session (every row of the session carries it, 3% NULL), device and page properties;
- CRM events (a second source, ~8% of rows, epoch-millisecond timestamps): leads, e-mails, calls, deal
  stages (`deal_stage` property: proposal/negotiation map to intent), won/lost deals, tickets, NPS
  responses (`score` property: 9/10 map to advocacy), renewals.

Everything is vectorized numpy/pyarrow and written in chunks of CHUNK_CUSTOMERS customers (each chunk adds
one row group to every day file, so memory stays bounded at any size). The data is a function of
(events, seed) only: chunk k draws from `numpy.random.default_rng([seed, k])`.

With `--night-fraction F`, only the next night of that data set is written: round(F x events) new events on the
day after the history, one file per source, to load after it (see simulate_night: returning customers, anonymous
visitors who log in as existing customers or sign up, which moves their history, new visitors, CRM rows).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

GENERATOR_VERSION = 1  # bump when the data a seed produces changes (invalidates cached data sets)

# The data shapes (--shape). nightly-files: one file per source and day (60 files). one-file: the same rows in one
# Parquet file, one source (the CRM rows carry their deal_stage and score columns), as an export of history is.
# anonymous: heavy anonymous traffic: most customers are visitors who never log in or log in late, so most events
# are anonymous and stitching has many anonymous ids to resolve (nightly files).
SHAPES = ("nightly-files", "one-file", "anonymous")
DEFAULT_SHAPE = "nightly-files"
# Per shape: the shares of customer kinds (anonymous only, logs in later, known from the start, CRM only), and the
# exponent applied to the uniform draw of a later login's position (< 1: later in the journey).
CUSTOMER_MIX: dict[str, tuple[tuple[float, float, float, float], float]] = {
    "nightly-files": ((0.30, 0.38, 0.30, 0.02), 1.0),
    "one-file": ((0.30, 0.38, 0.30, 0.02), 1.0),
    "anonymous": ((0.55, 0.40, 0.03, 0.02), 0.5),
}
ONE_FILE = "events"  # the one-file shape's folder and source name

START = datetime(2026, 10, 1, tzinfo=UTC)
DAYS = 30
DAY_MS = 86_400_000
WINDOW_MS = DAYS * DAY_MS
START_MS = int(START.timestamp() * 1000)
MEAN_EVENTS_PER_CUSTOMER = 20
CHUNK_CUSTOMERS = 200_000
INACTIVITY_MS = 30 * 60_000

# --- event names -------------------------------------------------------------------------------------------
# Web events: (name, stage level 0..6 where 0 = no stage, weight in the Markov chain).
WEB_EVENTS: tuple[tuple[str, int, float], ...] = (
    ("page_view", 0, 3.0),
    ("ad_click", 1, 0.05),  # mostly opens a session (see ENTRY); rare inside one
    ("landing_page_view", 1, 0.6),
    ("category_view", 2, 1.5),
    ("product_list_view", 2, 1.5),
    ("product_view", 2, 3.0),
    ("product_compare", 2, 0.3),
    ("search", 2, 1.0),
    ("pricing_view", 2, 0.5),
    ("add_to_wishlist", 0, 0.3),
    ("add_to_cart", 3, 1.2),
    ("remove_from_cart", 0, 0.3),
    ("checkout_start", 3, 1.0),
    ("payment_info_added", 0, 0.3),
    ("order_completed", 4, 4.0),
    ("video_play", 0, 0.4),
    ("newsletter_signup", 0, 0.15),
    ("logout", 0, 0.1),
    ("subscription_renewed", 5, 5.0),
    ("referral_made", 6, 3.0),
    ("review_submitted", 6, 4.0),
)
LOGIN_EVENTS = ("login", "signup")  # put where a visitor logs in (no stage)
CRM_EVENTS = ("lead_created", "email_opened", "email_clicked", "call_logged", "meeting_booked",
              "deal_stage_changed", "deal_won", "deal_lost", "ticket_opened", "ticket_closed", "nps_response",
              "renewal")
WEB_NAMES = tuple(n for n, _, _ in WEB_EVENTS)
EVENT_NAMES = (*WEB_NAMES, *LOGIN_EVENTS, *CRM_EVENTS)
N_WEB = len(WEB_EVENTS)
LEVEL = np.array([lv for _, lv, _ in WEB_EVENTS], dtype=np.int64)
WEIGHT = np.array([w for _, _, w in WEB_EVENTS])
WEB_INDEX = {n: i for i, n in enumerate(WEB_NAMES)}

STAGE_NAMES = ("awareness", "consideration", "intent", "purchase", "retention", "advocacy")
# Share of customers by the furthest stage they can reach (0 = none); the chain decides whether they do.
CAP_SHARES = (0.03, 0.27, 0.33, 0.19, 0.10, 0.05, 0.03)

# CRM replacements by the web chain's stage level at that point: (event, deal_stage, score kind, weight).
# score kind: "" none, "hi" 9-10, "lo" 0-8.
CRM_BY_LEVEL: dict[int, tuple[tuple[str, str, str, float], ...]] = {
    0: (("email_opened", "", "", 0.4), ("email_clicked", "", "", 0.2), ("ticket_opened", "", "", 0.15),
        ("ticket_closed", "", "", 0.1), ("call_logged", "", "", 0.15)),
    1: (("email_opened", "", "", 0.5), ("email_clicked", "", "", 0.3), ("call_logged", "", "", 0.2)),
    2: (("lead_created", "", "", 0.3), ("email_opened", "", "", 0.25), ("call_logged", "", "", 0.2),
        ("meeting_booked", "", "", 0.1), ("deal_stage_changed", "qualification", "", 0.15)),
    3: (("deal_stage_changed", "proposal", "", 0.35), ("deal_stage_changed", "negotiation", "", 0.25),
        ("meeting_booked", "", "", 0.2), ("call_logged", "", "", 0.1), ("deal_lost", "", "", 0.1)),
    4: (("deal_won", "", "", 0.6), ("email_opened", "", "", 0.2), ("ticket_opened", "", "", 0.2)),
    5: (("renewal", "", "", 0.5), ("ticket_opened", "", "", 0.2), ("ticket_closed", "", "", 0.15),
        ("nps_response", "", "lo", 0.15)),
    6: (("nps_response", "", "hi", 0.6), ("email_clicked", "", "", 0.2), ("renewal", "", "", 0.2)),
}
CRM_CHANNEL = {"email_opened": "email", "email_clicked": "email", "call_logged": "phone",
               "meeting_booked": "sales", "deal_stage_changed": "sales", "deal_won": "sales", "deal_lost": "sales"}

CRM_CHANNELS = ("email", "phone", "sales")
CHANNELS = ("paid_search", "organic_search", "social", "email", "direct", "referral", "affiliate")
FIRST_TOUCH = (0.26, 0.24, 0.13, 0.09, 0.14, 0.08, 0.06)
RETURNING = (0.15, 0.15, 0.10, 0.20, 0.40, 0.0, 0.0)
AD_CHANNELS = (0, 2, 6)  # paid_search, social, affiliate: their sessions open with an ad click
DEVICES = ("desktop", "mobile", "tablet")
N_PRODUCTS, N_CATEGORIES = 5000, 40
DEAL_STAGES = ("qualification", "proposal", "negotiation")

# Low-cardinality columns are dictionary arrays here and dictionary-encoded strings in the files (written
# without the Arrow schema, so every reader sees plain strings).
_CODES = pa.dictionary(pa.int32(), pa.string())
WEB_SCHEMA = pa.schema([
    ("event_id", pa.string()), ("anonymous_id", pa.string()), ("user_id", pa.string()),
    ("event", _CODES), ("ts", pa.timestamp("ms")), ("channel", _CODES), ("device", _CODES), ("page", _CODES),
])
CRM_SCHEMA = pa.schema([
    ("activity_id", pa.string()), ("customer_id", pa.string()), ("activity", _CODES),
    ("occurred_at", pa.int64()), ("channel", _CODES), ("deal_stage", _CODES), ("score", _CODES),
])


def stages_config() -> list[dict[str, Any]]:
    """The stages of the benchmark config: globs, exact names and property conditions."""
    return [
        {"name": "awareness", "events": ["ad_click", "landing_page_view"]},
        {"name": "consideration", "events": ["product_*", "category_view", "search", "pricing_view", "lead_created"]},
        {"name": "intent", "events": ["add_to_cart", "checkout_start",
                                      {"name": "deal_stage_changed", "where": {"deal_stage": "proposal"}},
                                      {"name": "deal_stage_changed", "where": {"deal_stage": "negotiation"}}]},
        {"name": "purchase", "events": ["order_completed", "deal_won"]},
        {"name": "retention", "events": ["subscription_renewed", "renewal"]},
        {"name": "advocacy", "events": ["referral_made", "review_submitted",
                                        {"name": "nps_response", "where": {"score": "9"}},
                                        {"name": "nps_response", "where": {"score": "10"}}]},
    ]


def config_dict(data_dir: Path | str = ".", warehouse: str = "warehouse/cjm.duckdb",
                reports: str = "reports", shape: str = DEFAULT_SHAPE) -> dict[str, Any]:
    """The cjm config over a generated data set of `shape` (paths relative to `data_dir` unless absolute)."""
    d = Path(data_dir)
    one_file = [{"name": ONE_FILE, "kind": "clickstream", "path": str(d / ONE_FILE / "*.parquet"), "timezone": "UTC",
                 "columns": {"event_id": "event_id", "customer_id": "user_id", "anonymous_id": "anonymous_id",
                             "event_name": "event", "timestamp": "ts", "channel": "channel"}}]
    return {
        "warehouse": warehouse,
        "reports": reports,
        "sources": one_file if shape == "one-file" else [
            {"name": "web", "kind": "clickstream", "path": str(d / "clickstream" / "*.parquet"),
             "timezone": "UTC",
             "columns": {"event_id": "event_id", "customer_id": "user_id", "anonymous_id": "anonymous_id",
                         "event_name": "event", "timestamp": "ts", "channel": "channel"}},
            {"name": "crm", "kind": "crm", "path": str(d / "crm" / "*.parquet"), "timestamp_format": "epoch_ms",
             "columns": {"event_id": "activity_id", "customer_id": "customer_id", "event_name": "activity",
                         "timestamp": "occurred_at", "channel": "channel"}},
        ],
        "stages": stages_config(),
        "goal": "purchase",
        "sessions": {"inactivity_minutes": 30},
        "report": {"sankey_steps": 8, "title": "Benchmark journeys"},
    }


# --- small vectorized helpers -----------------------------------------------------------------------------


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """A bijection on uint64 that scatters bits: distinct inputs give distinct, random-looking ids."""
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


# Byte -> its two hex digits.
_HEX_PAIRS = np.frombuffer(b"".join(f"{i:02x}".encode() for i in range(256)), dtype=np.uint8).reshape(256, 2)


def _fixed_strings(chars: np.ndarray) -> pa.Array:
    """A (n, width) uint8 array of ASCII as a pyarrow string array, without Python objects."""
    n, width = chars.shape
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(chars)))


def hex_ids(values: np.ndarray, salt: int) -> pa.Array:
    """16 hex characters per value: splitmix64(value ^ salt)."""
    h = _splitmix64(values.astype(np.uint64) ^ np.uint64(salt))
    as_bytes = h.astype(">u8").view(np.uint8).reshape(len(h), 8)
    return _fixed_strings(_HEX_PAIRS[as_bytes].reshape(len(h), 16))


def decimal_ids(prefix: str, values: np.ndarray, digits: int) -> pa.Array:
    """`prefix` + the value zero-padded to `digits` digits, e.g. C000012345."""
    powers = 10 ** np.arange(digits - 1, -1, -1, dtype=np.int64)
    chars = ((values.astype(np.int64)[:, None] // powers[None, :]) % 10 + 48).astype(np.uint8)
    head = np.broadcast_to(np.frombuffer(prefix.encode(), dtype=np.uint8), (len(values), len(prefix)))
    return _fixed_strings(np.hstack([head, chars]))


def _draw_rows(rng: np.random.Generator, cum: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """One categorical draw per element, from row `rows[i]` of the cumulative table `cum` (R, K).

    Rows are laid end to end on [0, R) (row r's CDF shifted by r), so one searchsorted serves all rows;
    zero-probability categories are never drawn (side='right' skips repeated cumulative values).
    """
    r, k = cum.shape
    flat = (cum + np.arange(r)[:, None]).ravel()
    idx = np.searchsorted(flat, rows + rng.random(len(rows)), side="right")
    drawn: np.ndarray = np.minimum(idx - rows * k, k - 1)
    return drawn


def _cumulative(weights: np.ndarray) -> np.ndarray:
    w = weights / weights.sum(axis=-1, keepdims=True)
    cum = np.cumsum(w, axis=-1)
    cum[..., -1] = 1.0
    return cum


def _transition_tables() -> np.ndarray:
    """cum[cap * N_WEB + from] over the next web event, for each furthest-possible stage cap 0..6."""
    level_from = np.where(LEVEL > 0, LEVEL, 2)  # an event without a stage: treated as browsing
    d = LEVEL[None, :] - level_from[:, None]
    affinity = np.select([d == 0, d == 1, d == 2, d >= 3, d == -1], [1.0, 0.7, 0.05, 0.01, 0.35], 0.15)
    affinity = np.where(LEVEL[None, :] == 0, 0.5, affinity)
    np.fill_diagonal(affinity, np.where(LEVEL >= 3, 0.2, 1.0) * np.diag(affinity))  # few repeated orders
    base = WEIGHT[None, :] * affinity
    tables = []
    for cap in range(7):
        tables.append(_cumulative(np.where(LEVEL[None, :] <= cap, base, 0.0)))
    return np.concatenate(tables)


def _crm_table() -> tuple[np.ndarray, list[tuple[str, str, str]]]:
    """cum[level] over CRM replacement options, and the options (event, deal_stage, score kind)."""
    options = sorted({(e, s, k) for opts in CRM_BY_LEVEL.values() for e, s, k, _ in opts})
    weights = np.zeros((7, len(options)))
    for level, opts in CRM_BY_LEVEL.items():
        for e, s, k, w in opts:
            weights[level, options.index((e, s, k))] = w
    return _cumulative(weights), options


TRANSITIONS = _transition_tables()
CRM_CUM, CRM_OPTIONS = _crm_table()


# --- the simulation ----------------------------------------------------------------------------------------


def events_per_customer(events: int, seed: int) -> np.ndarray:
    """How many events each customer has, summing to exactly `events` (mean ~20, a quarter bounce)."""
    rng = np.random.default_rng([seed, 0x5EED])
    n = int(events / MEAN_EVENTS_PER_CUSTOMER * 1.1) + 16
    bounce = rng.random(n) < 0.25
    counts = np.where(bounce, rng.geometric(1 / 1.5, n),
                      1 + rng.negative_binomial(1.5, 1.5 / (1.5 + 24.8), n)).astype(np.int64)
    total = np.cumsum(counts)
    last = int(np.searchsorted(total, events))  # the customer whose events reach `events`
    counts = counts[: last + 1]
    counts[-1] -= int(total[last]) - events
    return counts


@dataclass
class Chunk:
    web: pa.Table
    crm: pa.Table
    web_day: np.ndarray
    crm_day: np.ndarray


@dataclass
class Customers:
    """Who a chunk's customers are (one element per customer), drawn first from the chunk's generator."""

    kind: np.ndarray  # 0 anonymous only, 1 logs in later, 2 known from the start, 3 CRM only
    login_at: np.ndarray  # position of the login event (counts: never; 0: known from the first event)
    second: np.ndarray  # uses a second device (anonymous first, logged in later)
    second_at: np.ndarray
    second_login: np.ndarray
    shared: np.ndarray  # device A is the previous customer's
    device_a: np.ndarray  # the customer number whose device A this customer uses
    crm_share: np.ndarray  # share of the known rows that are CRM rows
    cap: np.ndarray  # furthest stage the chain can reach


def draw_customers(rng: np.random.Generator, counts: np.ndarray, cust_no: np.ndarray,
                   shape: str = DEFAULT_SHAPE) -> Customers:
    """Who the customers are; the first draws of a chunk's generator (the night generator repeats them)."""
    n_cust = len(counts)
    shares, login_exponent = CUSTOMER_MIX[shape]
    kind = _draw_rows(rng, _cumulative(np.array([shares])), np.zeros(n_cust, dtype=np.int64))
    kind = np.where((kind == 1) & (counts < 2), 0, kind)
    later = rng.random(n_cust) ** login_exponent  # the same draws in every shape: only their use differs
    login_at = np.select([kind == 0, kind == 1], [counts, 1 + (later * (counts - 1)).astype(np.int64)], 0)
    # A second device (from position second_at, logged in from second_login on), for some known customers.
    second = (kind != 0) & (kind != 3) & (rng.random(n_cust) < 0.2) & (counts - login_at >= 3)
    second_at = np.where(
        second, login_at + 1 + (rng.random(n_cust) * (counts - login_at - 1)).astype(np.int64), counts)
    second_login = np.minimum(second_at + rng.geometric(0.5, n_cust) - 1, counts)
    shared = (rng.random(n_cust) < 0.005) & (kind != 3)
    shared[0] = False
    device_a = np.where(shared, cust_no - 1, cust_no)  # a shared device: the previous customer's
    crm_share = np.select([kind == 3, (kind != 0) & (rng.random(n_cust) < 0.4)], [1.0, 0.3], 0.0)
    cap = _draw_rows(rng, _cumulative(np.array([CAP_SHARES])), np.zeros(n_cust, dtype=np.int64))
    return Customers(kind, login_at, second, second_at, second_login, shared, device_a, crm_share, cap)


def walk_sessions(rng: np.random.Generator, counts: np.ndarray, starts: np.ndarray, cust: np.ndarray,
                  cap: np.ndarray, new_session: np.ndarray,
                  first_touch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: the web event (a Markov chain within each session) and the session number; per session: its
    channel. A session that opens where `first_touch` is true gets a first-touch channel, others a returning one."""
    n = len(cust)
    sess = np.cumsum(new_session) - 1
    sess_first = first_touch[new_session]
    sess_cap = cap[cust[new_session]]
    channel = np.where(
        sess_first,
        _draw_rows(rng, _cumulative(np.array([FIRST_TOUCH])), np.zeros(len(sess_first), dtype=np.int64)),
        _draw_rows(rng, _cumulative(np.array([RETURNING])), np.zeros(len(sess_first), dtype=np.int64)),
    )
    ad = np.isin(channel, AD_CHANNELS) & (rng.random(len(channel)) < 0.8)
    v = rng.random(len(channel))
    opening = np.select([ad, v < 0.45, v < 0.85, v < 0.93], [WEB_INDEX["ad_click"], WEB_INDEX["landing_page_view"],
                        WEB_INDEX["page_view"], WEB_INDEX["search"]], WEB_INDEX["product_view"])
    opening = np.where(LEVEL[opening] <= sess_cap, opening,
                       np.where(sess_cap >= 1, WEB_INDEX["landing_page_view"], WEB_INDEX["page_view"]))
    channel = np.where(rng.random(len(channel)) < 0.03, -1, channel)  # "(not set)"

    # What: the Markov chain over web events, one position of every customer at a time.
    name = np.empty(n, dtype=np.int64)
    name[new_session] = opening
    order = np.argsort(-counts, kind="stable")  # customers with more events first
    descending = -counts[order]
    for t in range(1, int(counts.max()) if n else 0):
        who = order[: np.searchsorted(descending, -t, side="left")]  # customers with more than t events
        idx = starts[who] + t
        idx = idx[~new_session[idx]]
        name[idx] = _draw_rows(rng, TRANSITIONS, cap[cust[idx]] * N_WEB + name[idx - 1])
    return name, sess, channel


def simulate_chunk(counts: np.ndarray, first_customer: int, seed: int, chunk_index: int,
                   shape: str = DEFAULT_SHAPE) -> Chunk:
    """The events of customers first_customer .. first_customer + len(counts) - 1 (global numbers)."""
    rng = np.random.default_rng([seed, chunk_index])
    n_cust = len(counts)
    cust_no = first_customer + np.arange(n_cust, dtype=np.int64)
    n = int(counts.sum())
    cust = np.repeat(np.arange(n_cust), counts)
    starts = np.cumsum(counts) - counts
    pos = np.arange(n) - starts[cust]
    k = counts[cust]
    who = draw_customers(rng, counts, cust_no, shape)
    kind, login_at, second, second_at = who.kind, who.login_at, who.second, who.second_at
    second_login, device_a, crm_share, cap = who.second_login, who.device_a, who.crm_share, who.cap

    # When: gaps between a customer's consecutive events.
    u = rng.random(n)
    gap = np.select(
        [u < 0.01, u < 0.012, u < 0.014, u < 0.80, u < 0.95],
        [0, INACTIVITY_MS, INACTIVITY_MS + 1000,
         1000 + rng.exponential(40_000, n), INACTIVITY_MS + 60_000 + rng.exponential(5 * 3_600_000, n)],
        INACTIVITY_MS + rng.exponential(2.5 * DAY_MS, n),
    ).astype(np.int64)
    gap[pos == 0] = 0
    span = np.add.reduceat(gap, starts) if n else gap
    limit = WINDOW_MS - 2 * 60_000
    too_long = span > limit
    if too_long.any():  # squeeze the rare journey longer than the window into it
        factor = np.where(too_long, limit / np.maximum(span, 1), 1.0)
        gap = (gap * factor[cust]).astype(np.int64)
        span = np.add.reduceat(gap, starts)
    first_ms = np.minimum((rng.random(n_cust) * WINDOW_MS).astype(np.int64), WINDOW_MS - 60_000 - span)
    offset = np.cumsum(gap) - np.cumsum(gap)[starts][cust]
    ts = first_ms[cust] + offset  # milliseconds since START; exact gaps and ties survive
    new_session = (pos == 0) | (gap > INACTIVITY_MS)

    # Sessions: a channel each (first touch, then returning visits), an opening event, then the chain.
    name, sess, channel = walk_sessions(rng, counts, starts, cust, cap, new_session, pos == 0)
    level = LEVEL[name]

    # Identity per row.
    has_cid = pos >= login_at[cust]
    on_b = second[cust] & (pos >= second_at[cust])
    has_cid &= ~(on_b & (pos < second_login[cust]))
    is_login = (pos == login_at[cust]) & (kind[cust] == 1)
    is_login |= on_b & (pos == second_login[cust]) & (second_login[cust] < k)

    # CRM rows: replace some of the known customers' events (all of the CRM-only customers').
    crm = has_cid & (rng.random(n) < crm_share[cust]) & ~is_login
    crm_option = _draw_rows(rng, CRM_CUM, level[crm])

    # ---- web table
    web = ~crm
    w_name = np.where(is_login[web], len(WEB_NAMES) + (rng.random(int(web.sum())) < 0.3), name[web])
    w_cust = cust[web]
    w_cid = has_cid[web]
    server_side = (w_name == WEB_INDEX["order_completed"]) & w_cid & (rng.random(len(w_name)) < 0.5)
    # Ids are made once per customer (device) and taken per row; a masked index gives NULL.
    user_ids = decimal_ids("C", cust_no, 9)
    devices = np.concatenate([device_a * 2, cust_no * 2 + 1])  # device A (maybe shared), device B
    w_device = np.where(on_b[web], n_cust + w_cust, w_cust)
    anon = hex_ids(devices, salt=seed * 7919 + 1).take(pa.array(w_device, mask=server_side))
    user = user_ids.take(pa.array(w_cust, mask=~w_cid))
    w_channel = channel[sess[web]]
    kind_of_device = (_splitmix64(devices) % np.uint64(100)).astype(np.int64)[w_device]
    device = np.select([kind_of_device < 50, kind_of_device < 92], [0, 1], 2)
    web_event_no = np.flatnonzero(web) + _event_base(first_customer)
    web_table = _web_table(rng, hex_ids(web_event_no, salt=seed * 104729 + 3), anon, user, w_name, ts[web],
                           w_channel, device)
    crm_event_no = np.flatnonzero(crm) + _event_base(first_customer)
    crm_table = _crm_table(rng, hex_ids(crm_event_no, salt=seed * 15485863 + 5), user_ids.take(pa.array(cust[crm])),
                           crm_option, ts[crm])
    return Chunk(web_table, crm_table, ts[web] // DAY_MS, ts[crm] // DAY_MS)


def _web_table(rng: np.random.Generator, event_ids: pa.Array, anon: pa.Array, user: pa.Array, names: np.ndarray,
               ts_ms: np.ndarray, channels: np.ndarray, devices: np.ndarray) -> pa.Table:
    """The clickstream rows (names, channels, devices as indices); draws each row's page."""
    return pa.table({
        "event_id": event_ids,
        "anonymous_id": anon,
        "user_id": user,
        "event": _dict(names, EVENT_NAMES),
        "ts": pa.array(START_MS + ts_ms, type=pa.timestamp("ms")),
        "channel": _dict(channels, CHANNELS),
        "device": _dict(devices, DEVICES),
        "page": _pages(rng, names),
    }, schema=WEB_SCHEMA)


def _crm_table(rng: np.random.Generator, activity_ids: pa.Array, customer_ids: pa.Array, crm_option: np.ndarray,
               ts_ms: np.ndarray) -> pa.Table:
    """The CRM rows of the drawn CRM_OPTIONS; draws the survey scores."""
    options = np.array([EVENT_NAMES.index(e) for e, _, _ in CRM_OPTIONS])
    deal = np.array([DEAL_STAGES.index(st) if st else -1 for _, st, _ in CRM_OPTIONS])
    score_kind = np.array([{"": 0, "lo": 1, "hi": 2}[sk] for _, _, sk in CRM_OPTIONS])
    c_name = options[crm_option]
    c_score_kind = score_kind[crm_option]
    score = np.select([c_score_kind == 2, c_score_kind == 1],
                      [9 + (rng.random(len(c_name)) < 0.5), (rng.random(len(c_name)) * 9).astype(np.int64)], -1)
    crm_channel = np.array([CRM_CHANNELS.index(CRM_CHANNEL[nm]) if nm in CRM_CHANNEL else -1 for nm in EVENT_NAMES])
    return pa.table({
        "activity_id": activity_ids,
        "customer_id": customer_ids,
        "activity": _dict(c_name, EVENT_NAMES),
        "occurred_at": pa.array(START_MS + ts_ms, type=pa.int64()),
        "channel": _dict(crm_channel[c_name], CRM_CHANNELS),
        "deal_stage": _dict(deal[crm_option], DEAL_STAGES),
        "score": _dict(score, tuple(str(i) for i in range(11))),
    }, schema=CRM_SCHEMA)


def _event_base(first_customer: int) -> int:
    """Event numbers are unique across chunks: customers number < 2**32 and events < 2**31 per chunk."""
    return first_customer << 31


def _dict(indices: np.ndarray, values: Sequence[str]) -> pa.Array:
    """Indices into `values` (-1 = NULL) as a dictionary array."""
    idx = pa.array(indices.astype(np.int32), mask=indices < 0)
    return pa.DictionaryArray.from_arrays(idx, pa.array(list(values), pa.string()))


def _pages(rng: np.random.Generator, names: np.ndarray) -> pa.Array:
    """A page path per web event: products and categories by number, the rest by what the event is."""
    fixed = {"page_view": "/", "landing_page_view": "/lp", "ad_click": "/lp", "search": "/search",
             "pricing_view": "/pricing", "add_to_cart": "/cart", "remove_from_cart": "/cart",
             "checkout_start": "/checkout", "payment_info_added": "/checkout/payment",
             "order_completed": "/checkout/complete", "login": "/login", "signup": "/signup",
             "logout": "/logout", "subscription_renewed": "/account", "referral_made": "/refer",
             "review_submitted": "/reviews", "video_play": "/video", "newsletter_signup": "/newsletter",
             "add_to_wishlist": "/wishlist", "product_compare": "/compare", "product_list_view": "/category"}
    pages = sorted(set(fixed.values()))
    product0 = len(pages)
    pages += [f"/product/{i}" for i in range(N_PRODUCTS)]
    category0 = len(pages)
    pages += [f"/category/{i}" for i in range(N_CATEGORIES)]
    by_name = np.array([pages.index(fixed[nm]) if nm in fixed else 0 for nm in EVENT_NAMES])
    idx = by_name[names]
    prod = names == WEB_INDEX["product_view"]
    idx[prod] = product0 + np.minimum(rng.zipf(1.3, int(prod.sum())) - 1, N_PRODUCTS - 1)
    cat = (names == WEB_INDEX["category_view"]) | (names == WEB_INDEX["product_list_view"])
    idx[cat] = category0 + rng.integers(0, N_CATEGORIES, int(cat.sum()))
    return _dict(idx, pages)


# --- writing -------------------------------------------------------------------------------------------------


def day_name(day: int) -> str:
    return f"{datetime.fromtimestamp((START_MS + day * DAY_MS) / 1000, UTC):%Y-%m-%d}"


def _write_day_groups(writers: dict[int, pq.ParquetWriter], folder: Path, schema: pa.Schema, table: pa.Table,
                      day: np.ndarray, ts: np.ndarray) -> None:
    """Append the chunk's rows of each day to that day's file as one row group, in time order."""
    order = np.lexsort((ts, day))
    table = table.take(pa.array(order))  # once; each day is then a zero-copy slice
    bounds = np.searchsorted(day[order], np.arange(DAYS + 1))
    for d in range(DAYS):
        if bounds[d + 1] == bounds[d]:
            continue
        if d not in writers:
            writers[d] = pq.ParquetWriter(folder / f"{day_name(d)}.parquet", schema, compression="snappy",
                                          store_schema=False)
        part = table.slice(bounds[d], bounds[d + 1] - bounds[d])
        writers[d].write_table(part, row_group_size=part.num_rows)


ONE_SCHEMA = pa.schema([
    ("event_id", pa.string()), ("anonymous_id", pa.string()), ("user_id", pa.string()), ("event", pa.string()),
    ("ts", pa.timestamp("ms")), ("channel", pa.string()), ("device", pa.string()), ("page", pa.string()),
    ("deal_stage", pa.string()), ("score", pa.string()),
])


def one_table(chunk: Chunk) -> pa.Table:
    """A chunk's web and CRM rows as one source's rows (ONE_SCHEMA), in time order: the CRM rows under the web
    columns' names, their timestamps as timestamps; what a row's source lacks is NULL."""
    web, crm = chunk.web, chunk.crm
    n_web, n_crm = web.num_rows, crm.num_rows

    def joined(field: pa.Field, parts: tuple[pa.ChunkedArray | pa.Array, ...]) -> pa.ChunkedArray:
        arrays = [part.cast(field.type) for part in parts]  # dictionary codes become their strings
        return pa.chunked_array([c for a in arrays for c in (a.chunks if isinstance(a, pa.ChunkedArray) else [a])],
                                field.type)

    columns = {
        "event_id": (web["event_id"], crm["activity_id"]),
        "anonymous_id": (web["anonymous_id"], pa.nulls(n_crm, pa.string())),
        "user_id": (web["user_id"], crm["customer_id"]),
        "event": (web["event"], crm["activity"]),
        "ts": (web["ts"], crm["occurred_at"]),
        "channel": (web["channel"], crm["channel"]),
        "device": (web["device"], pa.nulls(n_crm, pa.string())),
        "page": (web["page"], pa.nulls(n_crm, pa.string())),
        "deal_stage": (pa.nulls(n_web, pa.string()), crm["deal_stage"]),
        "score": (pa.nulls(n_web, pa.string()), crm["score"]),
    }
    table = pa.table([joined(field, columns[field.name]) for field in ONE_SCHEMA], schema=ONE_SCHEMA)
    order = np.argsort(table.column("ts").cast(pa.int64()).to_numpy(), kind="stable")
    return table.take(pa.array(order))


def generate(out: Path | str, events: int, seed: int = 1, quiet: bool = True,
             shape: str = DEFAULT_SHAPE) -> dict[str, Any]:
    """Write the data set to `out` (replacing what is there); returns its description (also dataset.json)."""
    out = Path(out)
    clock = time.perf_counter()
    folders = (ONE_FILE,) if shape == "one-file" else ("clickstream", "crm")
    for sub in ("clickstream", "crm", ONE_FILE):
        shutil.rmtree(out / sub, ignore_errors=True)
    for sub in folders:
        (out / sub).mkdir(parents=True)
    counts = events_per_customer(events, seed)
    web_writers: dict[int, pq.ParquetWriter] = {}
    crm_writers: dict[int, pq.ParquetWriter] = {}
    rows = {"web": 0, "crm": 0}
    try:
        for chunk_index, first in enumerate(range(0, len(counts), CHUNK_CUSTOMERS)):
            part = counts[first: first + CHUNK_CUSTOMERS]
            chunk = simulate_chunk(part, first, seed, chunk_index, shape)
            if shape == "one-file":  # one row group per chunk, in time order within it
                if 0 not in web_writers:
                    web_writers[0] = pq.ParquetWriter(out / ONE_FILE / f"{ONE_FILE}.parquet", ONE_SCHEMA,
                                                      compression="snappy", store_schema=False)
                table = one_table(chunk)
                web_writers[0].write_table(table, row_group_size=table.num_rows)
            else:
                web_ts = chunk.web.column("ts").cast(pa.int64()).to_numpy()
                _write_day_groups(web_writers, out / "clickstream", WEB_SCHEMA, chunk.web, chunk.web_day, web_ts)
                crm_ts = chunk.crm.column("occurred_at").to_numpy()
                _write_day_groups(crm_writers, out / "crm", CRM_SCHEMA, chunk.crm, chunk.crm_day, crm_ts)
            rows["web"] += chunk.web.num_rows
            rows["crm"] += chunk.crm.num_rows
            if not quiet:
                done = first + len(part)
                print(f"  {done:,}/{len(counts):,} customers, {rows['web'] + rows['crm']:,} events, "
                      f"{time.perf_counter() - clock:.1f} s", flush=True)
    finally:
        for w in (*web_writers.values(), *crm_writers.values()):
            w.close()
    files = sorted(p for p in out.rglob("*.parquet"))
    info = {
        "generator_version": GENERATOR_VERSION,
        "events": events,
        "seed": seed,
        "shape": shape,
        "customers": len(counts),
        "rows": rows,
        "days": DAYS,
        "start": START.date().isoformat(),
        "event_names": len(EVENT_NAMES),
        "files": len(files),
        "bytes": sum(p.stat().st_size for p in files),
        "seconds": round(time.perf_counter() - clock, 2),
    }
    (out / "cjm.yaml").write_text(_yaml(config_dict(".", shape=shape)), encoding="utf-8")
    (out / "dataset.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info


# --- the next night ------------------------------------------------------------------------------------------

NIGHT_VERSION = 1  # bump when the night an (events, seed, fraction) produces changes (invalidates cached nights)
NIGHT_DAY = DAYS  # the day after the history: 2026-10-31
# Who is active on the night, as shares of the night's customers.
NIGHT_MIX: tuple[tuple[str, float], ...] = (
    ("known", 0.50),  # returning customers known by their user id (one in ten on a new device, logging in)
    ("crm_only", 0.03),  # returning CRM-only customers: CRM rows only
    ("anonymous", 0.14),  # returning anonymous visitors who stay anonymous
    ("login_existing", 0.05),  # returning anonymous visitors who log in as an existing customer: history moves
    ("signup_returning", 0.03),  # returning anonymous visitors who sign up: their history becomes a new customer's
    ("new", 0.25),  # first-time visitors; half of them sign up tonight
)
NIGHT_CATEGORIES = tuple(name for name, _ in NIGHT_MIX)
NIGHT_MEAN_EVENTS = 0.25 * 1.5 + 0.75 * 6  # a quarter bounce (1-3 events), the rest 1 + geometric(mean 5)
# Night event and device numbers have the top bit set: the history's never do (see _event_base), so the night's
# ids can never collide with the history's. The fraction is part of them too.
_NIGHT_BIT = np.uint64(1 << 63)


def night_key(fraction: float) -> str:
    """How a night's fraction names it (its cache folder): 0.01 -> night-0.01."""
    return f"night-{fraction:g}"


def _night_ppm(fraction: float) -> int:
    ppm = round(fraction * 1_000_000)
    if not 0 < ppm <= 1_000_000:
        raise ValueError(f"night fraction {fraction} must be in (0, 1] (in steps of 1e-6)")
    return ppm


def history_customers(events: int, seed: int, shape: str = DEFAULT_SHAPE) -> tuple[np.ndarray, Customers]:
    """The history's customers (who they are, as generate() drew them) without simulating their events."""
    counts = events_per_customer(events, seed)
    parts = []
    for chunk_index, first in enumerate(range(0, len(counts), CHUNK_CUSTOMERS)):
        part = counts[first: first + CHUNK_CUSTOMERS]
        rng = np.random.default_rng([seed, chunk_index])
        parts.append(draw_customers(rng, part, first + np.arange(len(part), dtype=np.int64), shape))
    return counts, Customers(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Customers)))


def _pick(rng: np.random.Generator, pool: np.ndarray, wanted: int) -> np.ndarray:
    """Up to `wanted` distinct members of pool."""
    return rng.choice(pool, size=min(wanted, len(pool)), replace=False) if len(pool) else pool[:0]


def simulate_night(events: int, seed: int, fraction: float,
                   shape: str = DEFAULT_SHAPE) -> tuple[Chunk, dict[str, int]]:
    """The night after the history of (events, seed): round(events * fraction) events on day NIGHT_DAY.

    Its customers are drawn by NIGHT_MIX: returning customers of the history (known again from the first draws
    of their chunk's generator, see history_customers), of whom some anonymous visitors log in as an existing
    customer or sign up, so stitching moves their history; and first-time visitors. Returns the rows (as a
    Chunk) and how many customers of each kind the night has.
    """
    ppm = _night_ppm(fraction)
    target = max(1, round(events * fraction))
    hist_counts, who = history_customers(events, seed, shape)
    n_hist = len(hist_counts)
    rng = np.random.default_rng([seed, 0x916470, ppm])

    # The night's customers: how many events each, and of which kind (the last one trimmed to hit the target).
    m = int(target / NIGHT_MEAN_EVENTS * 1.5) + 64
    counts = np.where(rng.random(m) < 0.25, rng.geometric(1 / 1.5, m), 1 + rng.geometric(1 / 5, m)).astype(np.int64)
    total = np.cumsum(counts)
    last = int(np.searchsorted(total, target))
    counts = counts[: last + 1]
    counts[-1] -= int(total[last]) - target
    m = len(counts)
    cat = _draw_rows(rng, _cumulative(np.array([[w for _, w in NIGHT_MIX]])), np.zeros(m, dtype=np.int64))
    code = {name: i for i, name in enumerate(NIGHT_CATEGORIES)}

    # Returning customers, distinct, from the history's customers of the right kind; short pools make new ones.
    hist = np.full(m, -1, dtype=np.int64)
    known_pool = np.flatnonzero((who.kind == 1) | (who.kind == 2))
    for names, pool in ((("known",), known_pool), (("crm_only",), np.flatnonzero(who.kind == 3)),
                        (("anonymous", "login_existing", "signup_returning"), np.flatnonzero(who.kind == 0))):
        slots = np.flatnonzero(np.isin(cat, [code[nm] for nm in names]))
        chosen = _pick(rng, pool, len(slots))
        hist[slots[: len(chosen)]] = chosen
        cat[slots[len(chosen):]] = code["new"]
    is_ = {name: cat == code[name] for name in NIGHT_CATEGORIES}
    returning = hist >= 0

    # Logins: position of the login/signup event (counts: none), and the customer number the user id is of.
    login_at = np.minimum((rng.random(m) * counts).astype(np.int64), counts - 1)
    new_device = is_["known"] & (rng.random(m) < 0.1)
    signs_up = is_["signup_returning"] | (is_["new"] & (rng.random(m) < 0.5))
    logs_in = new_device | is_["login_existing"] | signs_up
    login_at = np.where(logs_in, login_at, counts)
    new_no = np.full(m, -1, dtype=np.int64)
    new_no[is_["new"] | signs_up] = n_hist + np.arange(int((is_["new"] | signs_up).sum()))
    # Whom an anonymous visitor logs in as: any known customer (maybe one who is also active tonight).
    target_of_login = known_pool[rng.integers(0, len(known_pool), m)] if len(known_pool) else np.full(m, -1)
    user_no = np.select([is_["known"] | is_["crm_only"], is_["login_existing"], signs_up],
                        [hist, target_of_login, new_no], -1)
    if not len(known_pool):  # nobody to log in as: they stay anonymous
        user_no = np.where(is_["login_existing"], -1, user_no)
        login_at = np.where(is_["login_existing"], counts, login_at)
    known_from_start = (is_["known"] & ~new_device) | is_["crm_only"]

    # Devices: a returning visitor's own (the second one sometimes), a new one for new visitors and new devices.
    safe_hist = np.maximum(hist, 0)
    own = np.where(who.second[safe_hist] & (rng.random(m) < 0.3), safe_hist * 2 + 1, who.device_a[safe_hist] * 2)
    fresh = _NIGHT_BIT | (np.uint64(ppm) << np.uint64(32)) | np.arange(m, dtype=np.uint64)
    device_no = np.where(is_["new"], (new_no * 2).astype(np.uint64),
                         np.where(new_device, fresh, own.astype(np.uint64)))
    cap = np.where(returning, who.cap[safe_hist],
                   _draw_rows(rng, _cumulative(np.array([CAP_SHARES])), np.zeros(m, dtype=np.int64)))
    crm_share = np.select(
        [is_["crm_only"], is_["known"], is_["login_existing"], signs_up],
        [1.0, who.crm_share[safe_hist], who.crm_share[np.clip(user_no, 0, n_hist - 1)],
         np.where(rng.random(m) < 0.4, 0.3, 0.0)], 0.0)

    # Rows: within the night, gaps of seconds to minutes, some over the inactivity timeout (a second visit).
    n = int(counts.sum())
    cust = np.repeat(np.arange(m), counts)
    starts = np.cumsum(counts) - counts
    pos = np.arange(n) - starts[cust]
    u = rng.random(n)
    gap = np.select([u < 0.01, u < 0.85], [0, 1000 + rng.exponential(40_000, n)],
                    INACTIVITY_MS + 60_000 + rng.exponential(2 * 3_600_000, n)).astype(np.int64)
    gap[pos == 0] = 0
    span = np.add.reduceat(gap, starts)
    limit = DAY_MS - 2 * 60_000
    if (span > limit).any():
        gap = (gap * np.where(span > limit, limit / np.maximum(span, 1), 1.0)[cust]).astype(np.int64)
        span = np.add.reduceat(gap, starts)
    first_ms = (rng.random(m) * (DAY_MS - 60_000 - span)).astype(np.int64)
    offset = np.cumsum(gap) - np.cumsum(gap)[starts][cust]
    ts = NIGHT_DAY * DAY_MS + first_ms[cust] + offset
    new_session = (pos == 0) | (gap > INACTIVITY_MS)
    name, sess, channel = walk_sessions(rng, counts, starts, cust, cap, new_session, (pos == 0) & is_["new"][cust])
    level = LEVEL[name]

    has_cid = known_from_start[cust] | (pos >= login_at[cust])
    has_cid &= user_no[cust] >= 0
    is_login = pos == login_at[cust]
    crm = has_cid & (rng.random(n) < crm_share[cust]) & ~is_login
    crm_option = _draw_rows(rng, CRM_CUM, level[crm])

    # ---- web table
    web = ~crm
    w_cust = cust[web]
    login_name = np.where(signs_up, EVENT_NAMES.index("signup"), EVENT_NAMES.index("login"))
    w_name = np.where(is_login[web], login_name[w_cust], name[web])
    w_cid = has_cid[web]
    server_side = (w_name == WEB_INDEX["order_completed"]) & w_cid & (rng.random(len(w_name)) < 0.5)
    anon = hex_ids(device_no, salt=seed * 7919 + 1).take(pa.array(w_cust, mask=server_side))
    user = decimal_ids("C", np.maximum(user_no, 0), 9).take(pa.array(w_cust, mask=~w_cid))
    kind_of_device = (_splitmix64(device_no) % np.uint64(100)).astype(np.int64)[w_cust]
    device = np.select([kind_of_device < 50, kind_of_device < 92], [0, 1], 2)
    night_no = _NIGHT_BIT | (np.uint64(ppm) << np.uint64(32))
    web_table = _web_table(rng, hex_ids(night_no | np.flatnonzero(web).astype(np.uint64), salt=seed * 104729 + 3),
                           anon, user, w_name, ts[web], channel[sess[web]], device)
    crm_table = _crm_table(rng, hex_ids(night_no | np.flatnonzero(crm).astype(np.uint64), salt=seed * 15485863 + 5),
                           decimal_ids("C", np.maximum(user_no, 0), 9).take(pa.array(cust[crm])), crm_option, ts[crm])
    mix = {name: int(is_[name].sum()) for name in NIGHT_CATEGORIES}
    mix.update(returning=int(returning.sum()), signups=int(signs_up.sum()),
               anonymous_ids_moving=int((is_["login_existing"] & (user_no >= 0)).sum() + is_["signup_returning"].sum()))
    day = np.full(n, NIGHT_DAY)
    return Chunk(web_table, crm_table, day[web], day[crm]), mix


def generate_night(out: Path | str, events: int, seed: int = 1, fraction: float = 0.01,
                   shape: str = DEFAULT_SHAPE) -> dict[str, Any]:
    """Write the night after the data set of (events, seed, shape) to `out` (replacing what is there): one Parquet
    file per source (`clickstream/<day>.parquet`, `crm/<day>.parquet`; one-file: `events/<day>.parquet`) of the
    same schema as the history's, to be loaded after it; returns its description (also night.json)."""
    out = Path(out)
    clock = time.perf_counter()
    chunk, mix = simulate_night(events, seed, fraction, shape)
    parts = ((ONE_FILE, one_table(chunk), "ts"),) if shape == "one-file" else \
        (("clickstream", chunk.web, "ts"), ("crm", chunk.crm, "occurred_at"))
    for sub, table, ts_column in parts:
        shutil.rmtree(out / sub, ignore_errors=True)
        (out / sub).mkdir(parents=True)
        order = np.argsort(table.column(ts_column).cast(pa.int64()).to_numpy(), kind="stable")
        pq.write_table(table.take(pa.array(order)), out / sub / f"{day_name(NIGHT_DAY)}.parquet",
                       compression="snappy", store_schema=False, row_group_size=CHUNK_CUSTOMERS * 5)
    files = sorted(p for p in out.rglob("*.parquet"))
    info = {
        "generator_version": GENERATOR_VERSION,
        "night_version": NIGHT_VERSION,
        "events": events,
        "seed": seed,
        "fraction": fraction,
        "shape": shape,
        "night_events": chunk.web.num_rows + chunk.crm.num_rows,
        "rows": {"web": chunk.web.num_rows, "crm": chunk.crm.num_rows},
        "day": day_name(NIGHT_DAY),
        "customers": mix,
        "files": len(files),
        "bytes": sum(p.stat().st_size for p in files),
        "seconds": round(time.perf_counter() - clock, 2),
    }
    (out / "night.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info


def _yaml(config: dict[str, Any]) -> str:
    import yaml

    header = "# The benchmark data set's config (benchmarks/generate.py): cjm run --config cjm.yaml\n"
    return header + yaml.safe_dump(config, sort_keys=False, width=120)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.generate", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, required=True, help="number of events (rows) to write")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True, help="directory to write (replaced)")
    parser.add_argument("--shape", choices=SHAPES, default=DEFAULT_SHAPE,
                        help="nightly-files: one file per source and day (default); one-file: every event in one "
                             "Parquet file; anonymous: most events anonymous, visitors who log in late")
    parser.add_argument("--night-fraction", type=float, metavar="F",
                        help="write only the night after the data set of --events and --seed: F x events new events "
                             "on the day after the history (e.g. 0.01), to load after it")
    args = parser.parse_args(argv)
    if args.night_fraction is not None:
        info = generate_night(args.out, args.events, args.seed, args.night_fraction, args.shape)
    else:
        info = generate(args.out, args.events, args.seed, quiet=False, shape=args.shape)
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
