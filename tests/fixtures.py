"""Tiny hand-made inputs: write CSV tables and a config around them, run steps, read tables back."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from cjm_analytics.config import Config, parse_config
from cjm_analytics.nightly import NIGHTLY_STEPS, RunContext

WEB_COLUMNS = {
    "event_id": "event_id", "customer_id": "user_id", "anonymous_id": "anonymous_id",
    "event_name": "event", "timestamp": "ts", "channel": "channel",
}
# Two days of four customers' events, each stage reached once: the publishing tests' warehouse.
PUBLISH_EVENTS = """
    event_id,anonymous_id,user_id,event,ts,channel
    1,a1,,landing,2026-10-31T10:00:00Z,ads
    2,a1,u1,add_to_cart,2026-11-01T10:05:00Z,
    3,a2,,product_view,2026-11-01T11:00:00Z,email
    4,,u3,order,2026-11-02T09:00:00Z,
"""
STAGES = [
    {"name": "browse", "events": ["product_*", "landing"]},
    {"name": "cart", "events": ["add_to_cart"]},
    {"name": "buy", "events": ["order"]},
]


def write_csv(path: Path, text: str) -> Path:
    """Write a CSV table given as text (leading indentation and blank edges removed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [line.strip() for line in text.strip().splitlines()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_config(tmp_path: Path, sources: list[dict[str, Any]] | None = None, **overrides: Any) -> Config:
    """A config over files already written below tmp_path (default: one web source, web/*.csv)."""
    data: dict[str, Any] = {
        "warehouse": "warehouse/cjm.duckdb",
        "reports": "reports",
        "sources": sources or [{"name": "web", "kind": "clickstream", "path": "web/*", "columns": WEB_COLUMNS}],
        "stages": STAGES,
        "goal": "buy",
    }
    data.update(overrides)
    return parse_config(data, tmp_path, origin="test.yaml")


def run_steps(cfg: Config, until: str = "aggregate", run_started: datetime | None = None,
              full_refresh: bool = False, reload: bool = False) -> RunContext:
    """Run the nightly steps without Prefect up to and including `until`."""
    ctx = RunContext.start(cfg, full_refresh, reload)
    if run_started is not None:
        ctx = RunContext(cfg, ctx.run_id, run_started, ctx.full_refresh, reload)
    for name, step in NIGHTLY_STEPS:
        step(ctx)
        if name == until:
            break
    return ctx


def built_warehouse(root: Path, events_csv: str, **overrides: Any) -> Config:
    """The events as web/events.csv, the test config with these overrides, and the warehouse built from them."""
    write_csv(root / "web" / "events.csv", events_csv)
    config = make_config(root, **overrides)
    run_steps(config, run_started=RUN_STARTED)
    return config


def table(cfg: Config, sql: str) -> pd.DataFrame:
    """Query the warehouse read-only."""
    con = duckdb.connect(str(cfg.warehouse), read_only=True)
    try:
        return con.execute(sql).fetchdf()
    finally:
        con.close()


RUN_STARTED = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def rows(cfg: Config, sql: str) -> list[tuple[Any, ...]]:
    """Query the warehouse read-only, as plain tuples (NULL stays None)."""
    con = duckdb.connect(str(cfg.warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def without_progress(err: str) -> str:
    """stderr without progress.py's lines (a step longer than 5 s writes one every 5 s when stderr is not a terminal,
    as on a loaded machine), so that a test checks the error alone is one line."""
    return "".join(line for line in err.splitlines(keepends=True) if not line.startswith("progress: "))
