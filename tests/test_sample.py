"""The sample generator and the committed data/sample/: reproducible, in step with each other, and holding
what the demo and the README promise (identities to stitch, session edges, planted bad rows, a funnel story)."""

from __future__ import annotations

import csv
import fnmatch
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from cjm_analytics.config import load_config
from cjm_analytics.sample import CRM_COLUMNS, PLANTED, WEB_COLUMNS, generate

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
N_CUSTOMERS = 5000  # generate()'s default, which data/sample/ was made with
EVENTS = {"ad_click", "landing_page_view", "page_view", "product_view", "pricing_view", "search", "add_to_cart",
          "remove_from_cart", "checkout_start", "login", "signup", "order_completed"}
ACTIVITIES = {"lead_created", "deal_stage_changed", "deal_won", "deal_lost", "order_placed",
              "support_ticket_opened", "support_ticket_closed", "nps_response", "csat_response", "referral_made",
              "renewal"}
CHANNELS = {"paid_search", "organic_search", "social", "email", "direct", "referral", "affiliate"}


def _files(root: Path) -> dict[str, bytes]:
    """What generate() writes: the source files and cjm.yaml (not README.md, warehouse/ or reports/)."""
    found = [*root.glob("clickstream/*"), *root.glob("crm/*"), root / "cjm.yaml"]
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in found if p.is_file()}


def _records(pattern: str) -> list[list[str]]:
    """Every data record of the matching committed files, as split by a plain CSV reader."""
    out: list[list[str]] = []
    for path in sorted(SAMPLE.glob(pattern)):
        with path.open(newline="", encoding="utf-8") as f:
            out += list(csv.reader(f))[1:]
    return out


@pytest.fixture(scope="module")
def web() -> pd.DataFrame:
    """The committed clickstream rows that have the right number of fields (ts parsed where it can be)."""
    df = pd.DataFrame([r for r in _records("clickstream/*.csv") if len(r) == len(WEB_COLUMNS)],
                      columns=list(WEB_COLUMNS))
    df["t"] = pd.to_datetime(df["ts"], format="%Y-%m-%dT%H:%M:%SZ", utc=True, errors="coerce")
    return df


@pytest.fixture(scope="module")
def crm() -> pd.DataFrame:
    df = pd.DataFrame(_records("crm/*.csv"), columns=list(CRM_COLUMNS))
    local = pd.to_datetime(df["occurred_at"], format="%Y-%m-%d %H:%M:%S")
    df["t"] = local.dt.tz_localize("Europe/Berlin", ambiguous="raise", nonexistent="raise").dt.tz_convert("UTC")
    return df


@pytest.fixture(scope="module")
def events(web: pd.DataFrame, crm: pd.DataFrame) -> pd.DataFrame:
    """The rows the loader should accept, both sources, with customer_key by the stitching rule."""
    good_web = web[~web["event_id"].str.startswith("bad-")].drop_duplicates("event_id")
    good_crm = crm[~crm["activity_id"].str.startswith("bad-")]
    ev = pd.concat([
        pd.DataFrame({"event_id": good_web["event_id"], "customer_id": good_web["user_id"],
                      "anonymous_id": good_web["anonymous_id"], "event_name": good_web["event"],
                      "t": good_web["t"], "deal_stage": "", "score": ""}),
        pd.DataFrame({"event_id": good_crm["activity_id"], "customer_id": good_crm["customer_id"],
                      "anonymous_id": "", "event_name": good_crm["activity"], "t": good_crm["t"],
                      "deal_stage": good_crm["deal_stage"], "score": good_crm["score"]}),
    ], ignore_index=True)
    seen_together = ev[(ev["customer_id"] != "") & (ev["anonymous_id"] != "")].sort_values(["t", "event_id"])
    stitched = seen_together.groupby("anonymous_id")["customer_id"].last()
    ev["customer_key"] = ev["customer_id"].where(
        ev["customer_id"] != "", ev["anonymous_id"].map(stitched).fillna(ev["anonymous_id"]))
    return ev


# ---- the generator ----------------------------------------------------------------------------------------

def test_same_seed_gives_the_same_bytes(tmp_path: Path) -> None:
    counts_a = generate(tmp_path / "a", n_customers=300, seed=7)
    counts_b = generate(tmp_path / "b", n_customers=300, seed=7)
    generate(tmp_path / "c", n_customers=300, seed=8)
    assert counts_a == counts_b
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert _files(tmp_path / "a") != _files(tmp_path / "c")


def test_too_few_customers_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="n_customers"):
        generate(tmp_path, n_customers=10)


def test_committed_sample_is_what_the_generator_writes(tmp_path: Path) -> None:
    # If this fails after a change to sample.py, regenerate: `cjm sample --out data/sample`.
    counts = generate(tmp_path)
    fresh, committed = _files(tmp_path), _files(SAMPLE)
    assert sorted(committed) == sorted(fresh)
    for name in fresh:
        assert committed[name] == fresh[name], f"data/sample/{name} differs from a fresh generate()"
    assert counts["customers"] == N_CUSTOMERS
    assert counts["malformed_rows"] == len(PLANTED)
    assert counts["clickstream_rows"] == len(_records("clickstream/*.csv"))
    assert counts["crm_rows"] == len(_records("crm/*.csv"))
    assert sum(len(b) for b in fresh.values()) < 4_000_000


def test_sample_config_validates() -> None:
    cfg = load_config(SAMPLE / "cjm.yaml")
    assert [s.name for s in cfg.sources] == ["web", "crm"]
    assert [len(s.files()) for s in cfg.sources] == [3, 1]
    assert cfg.stage_names == ["awareness", "consideration", "intent", "purchase", "retention", "advocacy"]
    assert cfg.goal == "purchase"
    assert cfg.sources[1].timezone == "Europe/Berlin"
    assert cfg.warehouse == SAMPLE / "warehouse" / "cjm.duckdb"


# ---- what the committed sample holds -----------------------------------------------------------------------

@pytest.mark.parametrize(("pattern", "columns"), [("clickstream/*.csv", WEB_COLUMNS), ("crm/*.csv", CRM_COLUMNS)])
def test_headers_are_exactly_the_documented_columns(pattern: str, columns: tuple[str, ...]) -> None:
    for path in SAMPLE.glob(pattern):
        assert path.read_text(encoding="utf-8").splitlines()[0] == ",".join(columns), path.name


def test_each_planted_row_is_present_and_broken_as_documented(web: pd.DataFrame, crm: pd.DataFrame) -> None:
    rows = {r[0]: r for r in [*_records("clickstream/*.csv"), *_records("crm/*.csv")] if r[0].startswith("bad-")}
    assert sorted(rows) == sorted(PLANTED)
    by_id = web.set_index("event_id")
    assert by_id.loc["bad-no-ids", ["anonymous_id", "user_id"]].tolist() == ["", ""]
    assert by_id.loc["bad-no-event", "event"] == ""
    assert by_id.loc["bad-ts-text", "ts"] == "not-a-date"
    assert by_id.loc["bad-ts-2031", "ts"].startswith("2031-")
    assert by_id.loc["bad-ts-1970", "ts"].startswith("1970-01-01")
    assert len(rows["bad-too-many-cols"]) == len(WEB_COLUMNS) + 1
    assert len(rows["bad-too-few-cols"]) < len(WEB_COLUMNS)
    assert crm.set_index("activity_id").loc["bad-crm-no-customer", "customer_id"] == ""
    # Apart from the planted ones, every row is well formed.
    good = web[~web["event_id"].str.startswith("bad-")]
    assert good["t"].notna().all() and (good["event"] != "").all()
    assert ((good["anonymous_id"] != "") | (good["user_id"] != "")).all()


def test_one_exact_duplicate_row(web: pd.DataFrame) -> None:
    times_seen = Counter(tuple(r) for r in _records("clickstream/*.csv"))
    assert sorted(n for n in times_seen.values() if n > 1) == [2]
    assert web["event_id"].duplicated().sum() == 1  # so it is the same event, not two with one id


def test_values_are_from_the_documented_vocabularies(web: pd.DataFrame, crm: pd.DataFrame) -> None:
    good_web = web[~web["event_id"].str.startswith("bad-")]
    good_crm = crm[~crm["activity_id"].str.startswith("bad-")]
    assert set(good_web["event"]) == EVENTS
    assert set(good_web["channel"]) == CHANNELS
    assert set(good_web["device"]) == {"desktop", "mobile", "tablet"}
    assert set(good_crm["activity"]) == ACTIVITIES
    assert (good_crm["customer_id"] != "").all()
    assert set(good_crm.loc[good_crm["activity"] == "deal_stage_changed", "deal_stage"]) == {
        "qualified", "proposal", "negotiation"}
    nps = good_crm[good_crm["activity"] == "nps_response"]
    csat = good_crm[good_crm["activity"] == "csat_response"]
    assert (nps["survey"] == "nps").all() and set(nps["score"].astype(int)) == set(range(11))
    assert (csat["survey"] == "csat").all() and set(csat["score"].astype(int)) == set(range(1, 6))


def test_timestamps_lie_in_november_2026(web: pd.DataFrame, crm: pd.DataFrame) -> None:
    good = pd.concat([web.loc[~web["event_id"].str.startswith("bad-"), "t"], crm["t"]])
    assert good.min() >= pd.Timestamp("2026-11-01", tz="UTC")
    assert good.max() < pd.Timestamp("2026-11-21", tz="UTC")
    # The crm fixture has already read every Berlin wall-clock time, raising on a repeated or skipped hour.


def test_identities_to_stitch(web: pd.DataFrame, events: pd.DataFrame) -> None:
    good = web[~web["event_id"].str.startswith("bad-")]
    logins = good[good["event"].isin(["login", "signup"])]
    assert len(logins) > 1000 and ((logins["anonymous_id"] != "") & (logins["user_id"] != "")).all()
    together = good[(good["anonymous_id"] != "") & (good["user_id"] != "")]
    assert (together.groupby("user_id")["anonymous_id"].nunique() >= 2).sum() >= 50  # two devices
    assert (together.groupby("anonymous_id")["user_id"].nunique() == 2).sum() == 8  # shared computers
    anonymous_only = events.loc[~events["customer_key"].str.startswith("C"), "customer_key"].nunique()
    assert 0.4 * N_CUSTOMERS < anonymous_only < 0.7 * N_CUSTOMERS
    # Every simulated customer is one customer_key: each anonymous id of a known customer is seen with them.
    assert events["customer_key"].nunique() == N_CUSTOMERS


def test_some_buy_without_a_web_history(web: pd.DataFrame, crm: pd.DataFrame) -> None:
    buyers = set(crm.loc[crm["activity"].isin(["order_placed", "deal_won"]), "customer_id"])
    assert len(buyers - set(web["user_id"])) >= 50


def test_gaps_at_the_session_timeout(web: pd.DataFrame) -> None:
    good = web[~web["event_id"].str.startswith("bad-")].sort_values(["anonymous_id", "t"])
    gaps = good.groupby("anonymous_id")["t"].diff().dt.total_seconds()
    assert (gaps == 1800).sum() >= 3  # exactly 30 minutes: the same session
    assert (gaps == 1801).sum() >= 3  # one second more: a new session


def test_the_funnel_tells_its_story(events: pd.DataFrame) -> None:
    """Stage shares as the brief asks, and the worst drop-off clearly at intent (checkout abandonment)."""
    stages = load_config(SAMPLE / "cjm.yaml").stages

    def stage_order(row: pd.Series) -> int:
        for order, stage in enumerate(stages, start=1):
            for rule in stage.events:
                if fnmatch.fnmatchcase(row["event_name"], rule.name) and all(
                        row.get(k, "") == v for k, v in rule.where.items()):
                    return order
        return 0

    orders = events.apply(stage_order, axis=1)
    furthest = orders[orders > 0].groupby(events["customer_key"]).max()
    reached = [(furthest >= k).mean() for k in range(1, 7)]
    assert 0.85 < reached[1] < 0.95  # consideration
    assert 0.35 < reached[2] < 0.45  # intent
    assert 0.12 < reached[3] < 0.20  # purchase
    assert 0.3 < reached[4] / reached[3] < 0.5  # buyers who come back
    assert 0 < reached[5] < reached[4]  # advocacy
    dropoff = [1 - reached[k + 1] / reached[k] for k in range(5)]
    assert max(range(5), key=dropoff.__getitem__) == 2
    assert dropoff[2] - sorted(dropoff)[-2] > 0.1
