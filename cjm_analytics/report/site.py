"""Writing the report site: every page of PAGES and the one plotly.min.js they share, each file atomically.

build_report fills one folder; cjm_analytics.publish has it write a version of the site and shows that version
whole (reports/site -> sites/<version>). write_page adds a page (cjm analyze) beside the published pages.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb
import plotly.offline

from cjm_analytics.names import CUSTOMERS, Entity
from cjm_analytics.report.html import PLOTLY_JS, RUN_STATUS_JS
from cjm_analytics.report.marts import read_marts
from cjm_analytics.report.pages import PAGES, site_page

# No page may be bigger than this (tested on the hand-made marts and on the sample); plotly.js is not in it.
PAGE_BUDGET_BYTES = 300_000


def _write(path: Path, text: str) -> Path:
    # Write beside the target and rename, so a published site never holds a half-written page.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def write_page(out_dir: Path, name: str, html_text: str) -> Path:
    """Write one page into the report site (beside the shared plotly.min.js, written if missing)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if not (out_dir / PLOTLY_JS).exists():
        _write(out_dir / PLOTLY_JS, plotly.offline.get_plotlyjs())
    return _write(out_dir / name, html_text)


def build_report(con: duckdb.DuckDBPyConnection, out_dir: Path, title: str | None = None, *,
                 entity: Entity = CUSTOMERS, sessions_off: bool = False) -> list[Path]:
    """Write the report site (plotly.min.js, then every page of PAGES) into out_dir; returns the files written.
    The pages name the journeys' entity in its words (config `entity`) and, with sessions_off, show no session
    measure."""
    marts = dataclasses.replace(read_marts(con), entity=entity, sessions_off=sessions_off)
    title = f"{entity.Singular} journeys" if title is None else title
    pages = [(page.name, site_page(page, marts, title)) for page in PAGES]  # all built before any is written
    out_dir.mkdir(parents=True, exist_ok=True)
    return [
        _write(out_dir / PLOTLY_JS, plotly.offline.get_plotlyjs()),
        write_run_status(out_dir, marts.status()),
        *(_write(out_dir / name, text) for name, text in pages),
    ]


def run_status_js(status: Mapping[str, Any]) -> str:
    """run_status.js: the latest run's verdict as a global the overview reads (data, so JSON: nothing runs)."""
    return "window.cjmLatestRun = " + json.dumps(dict(status), default=str).replace("</", "<\\/") + ";\n"


def write_run_status(out_dir: Path, status: dict[str, Any]) -> Path:
    """The latest run's verdict beside the pages (run_status.js), replaced in one rename."""
    return _write(out_dir / RUN_STATUS_JS, run_status_js(status))
