"""The seeded sample data set behind `cjm sample` and data/sample/: a small simulation of customers moving
through the stages, written as the clickstream and CRM exports a shop hands over, with a few planted bad rows.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

# ---- Parameters of the simulation -----------------------------------------------------------------------
START = datetime(2026, 11, 1, tzinfo=UTC)
# First visits are spread evenly over the window; every event falls in 2026-11-01 .. 2026-11-20 UTC, well
# before the run's "now". A journey that would run past the end starts that many days earlier instead.
DAYS = 20
# Chance to go on from each stage to the next: awareness -> consideration -> intent -> purchase ->
# retention -> advocacy. intent -> purchase is deliberately the weakest link (cart and checkout
# abandonment): the story the demo tells.
CONTINUE = (0.90, 0.46, 0.22, 0.42, 0.50)
CHANNELS = {"paid_search": 0.26, "organic_search": 0.24, "social": 0.13, "email": 0.09, "direct": 0.14,
            "referral": 0.08, "affiliate": 0.06}
RETURN_CHANNELS = {"direct": 0.40, "email": 0.20, "organic_search": 0.15, "paid_search": 0.15, "social": 0.10}
# Multiplies the consideration -> intent and intent -> purchase chances, by first-touch channel.
CHANNEL_LIFT = {"paid_search": 1.1, "organic_search": 1.0, "social": 0.6, "email": 1.3, "direct": 1.2,
                "referral": 1.15, "affiliate": 0.8}
CAMPAIGNS = {"paid_search": ("brand_exact", "generic_running_shoes", "bf_preview_2026"),
             "social": ("ig_autumn_lookbook", "tiktok_creator_collab"),
             "email": ("newsletter_w45", "winback_30d", "black_friday_teaser"),
             "affiliate": ("partner_deals_hub",)}
AD_CHANNELS = {"paid_search", "social", "affiliate"}  # visits from these begin with an ad_click
DEVICES = {"desktop": 0.50, "mobile": 0.42, "tablet": 0.08}
PAGES = ("/", "/category/shoes", "/category/apparel", "/about", "/shipping")
SHARE_PHONE_ONLY = 0.03  # order by phone: CRM rows only, never seen on the web
SHARE_SALES_LED = 0.08  # of visitors past awareness: a sales rep works them as a CRM deal
SHARE_SECOND_DEVICE = 0.25  # of visitors who log in
SHARE_OLD_ACCOUNT = 0.3  # of visitors who log in: the account predates the window, so login, not signup
SHARED_DEVICE_PAIRS = 8  # anonymous ids used by two customers, so "the last customer seen with it" decides
PLANTED_GAPS = (1800, 1800, 1800, 1801, 1801, 1801)  # seconds in a visit: at and just over the timeout
CRM_TZ = ZoneInfo("Europe/Berlin")

WEB_COLUMNS = ("event_id", "anonymous_id", "user_id", "event", "ts", "channel", "campaign", "device", "page")
CRM_COLUMNS = ("activity_id", "customer_id", "activity", "occurred_at", "channel", "deal_id", "deal_stage",
               "amount", "score", "survey")
# What each planted row should be rejected for, by its event id (data/sample/README.md lists them too).
PLANTED = {
    "bad-no-ids": "missing customer_id and anonymous_id",
    "bad-no-event": "missing event_name",
    "bad-ts-text": "unparseable timestamp",
    "bad-ts-2031": "timestamp more than 24 hours after the run started",
    "bad-ts-1970": "timestamp before 1990-01-01",
    "bad-too-many-cols": "TOO MANY COLUMNS (the CSV reader's; an unquoted comma in page)",
    "bad-too-few-cols": "MISSING COLUMNS (the CSV reader's; a line cut short)",
    "bad-crm-no-customer": "missing customer_id and anonymous_id",
}
LOGIN = "(login)"  # plan marker: the visitor logs in here (signs up the first time)

Step = tuple[str, str]  # event, page
Visit = tuple[str, str, list[Step]]  # channel, campaign, steps
Row = tuple[int, tuple[str, ...]]  # seconds since START; the file's columns but the id and the timestamp


class _Dice:
    """Every draw is built on random.Random.random(), the one stream Python promises to keep across
    versions, so the committed sample stays reproducible after an upgrade (numpy promises no such thing)."""

    def __init__(self, seed: int) -> None:
        self._r = random.Random(seed)

    def chance(self, p: float) -> bool:
        return self._r.random() < p

    def between(self, low: int, high: int) -> int:
        return low + int(self._r.random() * (high - low + 1))

    def pick(self, weights: dict[str, float] | tuple[str, ...]) -> str:
        w = weights if isinstance(weights, dict) else dict.fromkeys(weights, 1.0)
        x, total = self._r.random() * sum(w.values()), 0.0
        for key, weight in w.items():
            total += weight
            if x < total:
                return key
        return next(reversed(w))

    def wait(self, mean: float, least: float = 1) -> int:
        """Seconds until the next thing happens: `least` plus an exponential wait."""
        return int(least + mean * -math.log(1.0 - self._r.random()))

    def hex_id(self) -> str:
        return f"{int(self._r.random() * 2**48):012x}"


def _furthest_stage(d: _Dice, channel: str, start: int) -> int:
    """Climb the stage ladder from `start` until a continue draw fails (0 = awareness)."""
    stage = start
    while stage < len(CONTINUE) and d.chance(CONTINUE[stage] * (CHANNEL_LIFT[channel] if stage in (1, 2) else 1)):
        stage += 1
    return stage


def _browse(d: _Dice) -> list[Step]:
    steps = []
    for _ in range(d.between(1, 2)):
        kind = d.pick({"product_view": 0.55, "page_view": 0.2, "search": 0.12, "pricing_view": 0.13})
        page = {"product_view": f"/product/{d.between(100, 399)}", "search": "/search", "pricing_view": "/pricing"}
        steps.append((kind, page.get(kind) or d.pick(PAGES)))
    return steps


def _visit(d: _Dice, channel: str, first: bool = False) -> Visit:
    """A visit's opening: ad click and landing page for ads and first visits, else a plain page view."""
    campaign = d.pick(CAMPAIGNS[channel]) if channel in CAMPAIGNS else ""
    landing = f"/lp/{campaign}" if campaign else "/"
    steps = [("ad_click", landing)] if channel in AD_CHANNELS else []
    steps.append(("landing_page_view", landing) if first or steps else ("page_view", "/"))
    return channel, campaign, steps


def _after_opening(steps: list[Step]) -> int:
    """Where a login goes in a visit: after the page it opened with (and the ad click that led there)."""
    return min(len(steps), 2 if steps[0][0] == "ad_click" else 1)


def _web_plan(d: _Dice, channel: str, stage: int, sales_led: bool) -> list[Visit]:
    """The visits of a visitor who gets as far as `stage` on the web (sales-led ones go on in the CRM)."""
    visits = [_visit(d, channel, first=True)]
    if stage == 0:
        return visits
    visits[0][2].extend(_browse(d))
    for _ in range(int(d.pick({"0": 0.5, "1": 0.35, "2": 0.15}))):  # coming back to browse
        visits.append(_visit(d, d.pick(RETURN_CHANNELS)))
        visits[-1][2].extend(_browse(d))
    if sales_led:  # signs up to ask for a quote; the CRM lead follows the signup
        visits[-1][2].insert(_after_opening(visits[-1][2]), (LOGIN, ""))
        return visits
    if stage >= 2:
        cart = _visit(d, d.pick(RETURN_CHANNELS)) if d.chance(0.6) else visits.pop()
        cart[2].extend([*_browse(d), ("add_to_cart", "/cart")])
        while d.chance(0.3):  # browse -> cart -> browse -> cart loops
            if d.chance(0.4):
                cart[2].append(("remove_from_cart", "/cart"))
            cart[2].extend([*_browse(d), ("add_to_cart", "/cart")])
        visits.append(cart)
        if stage >= 3 or d.chance(0.45):  # checkout asks for a login unless already logged in
            visits.append(_visit(d, d.pick(RETURN_CHANNELS)) if d.chance(0.35) else visits.pop())
            visits[-1][2].extend([(LOGIN, ""), ("checkout_start", "/checkout")])
    if stage >= 3:
        visits[-1][2].append(("order_completed", "/checkout/complete"))
        if d.chance(0.5):  # back to look at the order
            visits.append(_visit(d, d.pick(RETURN_CHANNELS)))
            visits[-1][2].append(("page_view", "/account/orders"))
    elif d.chance(0.2):  # an account holder who only browses
        steps = visits[d.between(0, len(visits) - 1)][2]
        steps.insert(_after_opening(steps), (LOGIN, ""))
    return visits


def _play_web(d: _Dice, customer_id: str, account: bool, devices: list[str], shared: set[str],
              plan: list[Visit], t: int, gap: int | None) -> list[Row]:
    """Put a plan on the clock; rows carry user_id once their device is logged in (the login row too)."""
    rows: list[Row] = []
    kinds = [d.pick(DEVICES) for _ in devices]
    logged = dict.fromkeys(devices, False)
    for n, (channel, campaign, steps) in enumerate(plan):
        if n:
            t += d.wait(30 * 3600, least=3600)
        i = 1 if account and len(devices) > 1 and d.chance(0.5) else 0  # a second device only once known
        anon = devices[i]
        if anon in shared:  # a family computer: everyone logs out when done
            logged[anon] = False
        todo = list(steps)
        if account and not logged[anon] and anon not in shared:
            todo.insert(_after_opening(todo), (LOGIN, ""))  # on every device, so that each is stitched
        for j, (event, page) in enumerate(todo):
            if j:  # the planted gaps end the first visit, where a session boundary is easy to see
                t += gap if (gap and n == 0 and j == len(todo) - 1) else d.wait(45, least=3)
            if event == LOGIN:
                if logged[anon]:
                    continue
                event, page = ("login", "/login") if account else ("signup", "/signup")
                account = logged[anon] = True
            rows.append((t, (anon, customer_id if logged[anon] else "", event, channel, campaign, kinds[i], page)))
    return rows


def _play_crm(d: _Dice, customer_id: str, stage: int, t: int, how: str, deal_id: str) -> list[Row]:
    """CRM activities from time t. how: sales (a deal), phone (an order) or web (bought on the web at t)."""
    rows: list[Row] = []

    def add(activity: str, channel: str, deal_stage: str = "", amount: str = "", score: str = "",
            survey: str = "", deal: str = "") -> None:
        rows.append((t, (customer_id, activity, channel, deal, deal_stage, amount, score, survey)))

    if how == "sales":
        add("lead_created", "web")
        for deal_stage, reached in (("qualified", stage >= 2 or d.chance(0.6)), ("proposal", stage >= 2),
                                    ("negotiation", stage >= 3 or d.chance(0.5))):
            if not reached:
                break
            t += d.wait(2 * 86400, least=3600)
            add("deal_stage_changed", "sales", deal_stage=deal_stage, deal=deal_id)
        if stage < 3:
            if d.chance(0.6):
                t += d.wait(3 * 86400, least=3600)
                add("deal_lost", "sales", deal=deal_id)
            return rows
        t += d.wait(2 * 86400, least=3600)
        add("deal_won", "sales", amount=f"{d.between(40, 400) * 25}.00", deal=deal_id)
    elif how == "phone":
        add("order_placed", "phone", amount=f"{d.between(20, 300)}.{d.between(0, 99):02d}")
    if stage < 3:
        return rows
    bought = t
    if d.chance(0.25):
        t = bought + d.wait(3 * 86400, least=3600)
        add("support_ticket_opened", d.pick(("email", "phone")))
        t += d.wait(20 * 3600, least=1800)
        add("support_ticket_closed", "email")
        if d.chance(0.6):
            t += d.wait(6 * 3600, least=600)
            add("csat_response", "email", score=d.pick({"5": 4, "4": 3, "3": 1.5, "2": 0.8, "1": 0.7}),
                survey="csat")
    renews = stage == 4 or (stage == 5 and d.chance(0.7))  # some advocates never renew: purchase -> advocacy
    if renews:
        t = bought + d.wait(2 * 86400, least=4 * 86400)
        add("renewal", "email", amount=f"{d.between(10, 60)}.00")
    if stage == 5:  # an advocate answers the NPS survey with 9 or 10, refers a friend, or both
        promoter = d.chance(0.6)
        if promoter:
            t += d.wait(2 * 86400, least=3600)
            add("nps_response", "email", score=d.pick(("9", "10")), survey="nps")
        if not promoter or d.chance(0.4):
            t += d.wait(2 * 86400, least=3600)
            add("referral_made", d.pick(("email", "web")))
    elif d.chance(0.4):  # everyone else who answers scores 0..8, so that promoters are the advocates
        t = bought + d.wait(4 * 86400, least=86400)
        add("nps_response", "email", score=str(d.between(0, 8) if d.chance(0.4) else d.between(6, 8)),
            survey="nps")
    return rows


def _fit_window(rows: list[Row], shift_from: list[Row]) -> list[Row]:
    """A journey that runs past the window's end moves earlier by whole days (so it keeps its hours of the day
    and is seen whole, not cut off half way); only what is longer than the window itself is cut."""
    end = DAYS * 86400 - 1
    last, first = max(t for t, _ in shift_from), min(t for t, _ in shift_from)
    shift = 86400 * min(-(-(last - end) // 86400), first // 86400) if last > end else 0
    return [(t - shift, f) for t, f in rows if t - shift <= end]


def _crm_time(t: int) -> str:
    """Berlin wall-clock time as the CRM exports it; never the repeated hour when summer time ends."""
    local = (START + timedelta(seconds=t)).astimezone(CRM_TZ)
    if local.replace(fold=0).utcoffset() != local.replace(fold=1).utcoffset():
        local += timedelta(hours=1)
    return local.strftime("%Y-%m-%d %H:%M:%S")


def _plant(lines: list[list[str]], columns: tuple[str, ...], at: float, event_id: str, **changes: str) -> None:
    """Insert a broken copy of the line at fraction `at` of the file (columns changed by name)."""
    i = int(len(lines) * at)
    row = dict(zip(columns, lines[i], strict=True)) | changes | {columns[0]: event_id}
    lines.insert(i, list(row.values()))


CONFIG = """\
# The sample's config: `cjm run --config data/sample/cjm.yaml`. Paths are relative to this file.
warehouse: warehouse/cjm.duckdb
reports: reports/
sources:
  - name: web
    kind: clickstream
    path: clickstream/*.csv
    timezone: UTC
    timestamp_format: auto
    columns: {event_id: event_id, customer_id: user_id, anonymous_id: anonymous_id, event_name: event,
              timestamp: ts, channel: channel}
  - name: crm
    kind: crm
    path: crm/*.csv
    timezone: Europe/Berlin  # the CRM exports naive Berlin wall-clock times
    columns: {event_id: activity_id, customer_id: customer_id, event_name: activity, timestamp: occurred_at,
              channel: channel}
stages:
  - {name: awareness, events: [ad_click, landing_page_view]}
  - {name: consideration, events: ["product_*", pricing_view, search, lead_created]}
  - name: intent
    events: [add_to_cart, checkout_start, {name: deal_stage_changed, where: {deal_stage: proposal}},
             {name: deal_stage_changed, where: {deal_stage: negotiation}}]
  - {name: purchase, events: [order_completed, order_placed, deal_won]}
  - {name: retention, events: [renewal]}
  - name: advocacy
    events: [referral_made, {name: nps_response, where: {score: "10"}}, {name: nps_response, where: {score: "9"}}]
goal: purchase
sessions: {inactivity_minutes: 30}
report: {sankey_steps: 8}
# Paths and pain points by page; CRM activities have no page, so theirs is the activity name.
touchpoints:
  field: page
  clean:
    - {pattern: "/product/[0-9]+", alias: "/product/*"}
    - {pattern: "/lp/.+", alias: "/lp/*"}
analysis:
  surveys:
    - {event: nps_response, score: score, kind: nps}  # 0-10
    - {event: csat_response, score: score, kind: csat}  # 1-5
  support_events: [support_ticket_opened]
"""


def _simulate(d: _Dice, n_customers: int) -> tuple[list[Row], list[Row]]:
    """Clickstream and CRM rows of n customers, each as (seconds since START, columns)."""
    people: list[tuple[str, int, list[Visit]]] = []  # (how, furthest stage, web plan)
    for _ in range(n_customers):
        channel = d.pick(CHANNELS)
        if d.chance(SHARE_PHONE_ONLY):
            people.append(("phone", _furthest_stage(d, channel, 3), []))
            continue
        stage = _furthest_stage(d, channel, 0)
        how = "sales" if stage >= 1 and d.chance(SHARE_SALES_LED) else "web"
        people.append((how, stage, _web_plan(d, channel, stage, how == "sales")))
    seen: set[str] = set()

    def new_anonymous_id() -> str:
        while (anon := d.hex_id()) in seen:
            pass
        seen.add(anon)
        return anon

    devices = [[new_anonymous_id()] for _ in people]
    logs_in = [i for i, p in enumerate(people) if any(e == LOGIN for v in p[2] for e, _ in v[2])]
    old_account = {i for i in logs_in if d.chance(SHARE_OLD_ACCOUNT)}
    two_devices = [i for i in logs_in if d.chance(SHARE_SECOND_DEVICE)]
    for i in two_devices:
        devices[i].append(new_anonymous_id())
    one_device = sorted(set(logs_in) - set(two_devices))  # shared computers go to these, to keep it simple
    shared = set()
    for k in range(SHARED_DEVICE_PAIRS):  # the later customer of each pair uses the earlier one's computer
        a, b = one_device[k * len(one_device) // (2 * SHARED_DEVICE_PAIRS)], one_device[-1 - k]
        devices[b][0] = devices[a][0]
        shared.add(devices[a][0])
    web: list[Row] = []
    crm: list[Row] = []
    gaps = list(PLANTED_GAPS)
    for i, (how, stage, plan) in enumerate(people):
        customer_id = f"C{i + 1:05d}"
        t = d.between(0, DAYS - 1) * 86400 + d.between(7 * 3600, 23 * 3600)
        gap = gaps.pop() if gaps and stage >= 1 and how == "web" else None
        clicks = _play_web(d, customer_id, i in old_account, devices[i], shared, plan, t, gap)
        if how == "sales":  # the lead follows the web signup or login
            t = next(r[0] for r in clicks if r[1][1]) + d.wait(600, least=60)
        elif how == "web" and stage >= 3:
            t = next(r[0] for r in clicks if r[1][2] == "order_completed")
        activities = _play_crm(d, customer_id, stage, t, how, f"D{i + 1:05d}")
        web += _fit_window(clicks, clicks + activities)
        crm += _fit_window(activities, clicks + activities)
    return sorted(web), sorted(crm)


def generate(out_dir: Path, n_customers: int = 5000, seed: int = 20261123) -> dict[str, int]:
    """Write the sample (clickstream/, crm/, cjm.yaml) into out_dir; the same seed gives the same bytes."""
    if n_customers < 100:
        raise ValueError("n_customers: use at least 100, so that every file has rows to plant bad ones among")
    web, crm = _simulate(_Dice(seed), n_customers)
    weeks: dict[str, list[list[str]]] = {f"clickstream/web_events_2026-11-{1 + 7 * w:02d}.csv": [] for w in range(3)}
    by_week = list(weeks.values())
    for k, (t, f) in enumerate(web):
        ts = (START + timedelta(seconds=t)).strftime("%Y-%m-%dT%H:%M:%SZ")
        by_week[min(t // (7 * 86400), 2)].append([f"w{k + 1:06d}", *f[:3], ts, *f[3:]])
    crm_lines = [[f"a{k + 1:06d}", *f[:2], _crm_time(t), *f[2:]] for k, (t, f) in enumerate(crm)]
    first, second, third = by_week
    _plant(first, WEB_COLUMNS, 0.4, "bad-no-ids", anonymous_id="", user_id="")
    _plant(first, WEB_COLUMNS, 0.7, "bad-no-event", event="")
    _plant(second, WEB_COLUMNS, 0.2, "bad-ts-text", ts="not-a-date")
    _plant(second, WEB_COLUMNS, 0.5, "bad-ts-2031", ts="2031-06-01T09:00:00Z")
    _plant(second, WEB_COLUMNS, 0.8, "bad-too-many-cols", page="/search?q=red,shoes")  # written unquoted
    _plant(third, WEB_COLUMNS, 0.3, "bad-ts-1970", ts="1970-01-01T00:00:00Z")
    cut = int(len(third) * 0.6)  # an export cut short mid-line: the first four fields only
    third.insert(cut, ["bad-too-few-cols", *third[cut][1:4]])
    again = int(len(third) * 0.75)  # the same row (and event_id) a second time, a few lines on
    third.insert(again + 5, list(third[again]))
    _plant(crm_lines, CRM_COLUMNS, 0.5, "bad-crm-no-customer", customer_id="")
    files = {**weeks, "crm/crm_activities.csv": crm_lines}
    for name, lines in files.items():
        header = CRM_COLUMNS if name.startswith("crm") else WEB_COLUMNS
        (out_dir / name).parent.mkdir(parents=True, exist_ok=True)
        # No value holds a comma or a quote, so plain joins are valid CSV (and the planted comma stays bare).
        (out_dir / name).write_bytes("".join(",".join(x) + "\n" for x in [list(header), *lines]).encode())
    (out_dir / "cjm.yaml").write_bytes(CONFIG.encode())
    known = {f[1] for _, f in web if f[1]} | {f[0] for _, f in crm}
    return {
        "customers": n_customers,
        "known_customers": len(known),
        "anonymous_only_customers": n_customers - len(known),
        "clickstream_rows": sum(len(lines) for lines in weeks.values()),
        "crm_rows": len(crm_lines),
        "malformed_rows": len(PLANTED),
        "duplicate_rows": 1,
    }
