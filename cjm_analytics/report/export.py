"""The report's charts as PNG, PDF or SVG files for slides and e-mail (optional extra `export`: kaleido ≥ 1).

kaleido renders each figure with plotly.js in a headless Chrome (through choreographer): here the system
Chromium, plotly.js from the installed plotly package and no MathJax, so an export fetches nothing.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import plotly
import plotly.graph_objects as go

from cjm_analytics.errors import CjmError
from cjm_analytics.names import CUSTOMERS, Entity
from cjm_analytics.report.figures import (
    attribution_figure,
    emotion_figure,
    funnel_figure,
    leaks_figure,
    transitions_figure,
    trends_figure,
)
from cjm_analytics.report.marts import Marts, read_marts
from cjm_analytics.report.network import transition_network_figure
from cjm_analytics.report.pages.charts import data_when, sankey_segments
from cjm_analytics.report.sankey import segment_sankey_figure

EXPORT_FORMATS = ("png", "pdf", "svg")
EXPORT_DIR = "export"
WIDTH = 1200


class ExportError(CjmError):
    """The charts cannot be exported: kaleido or Chromium is missing, or rendering failed."""


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "segment"


def export_figures(marts: Marts) -> list[tuple[str, go.Figure]]:
    """(file stem, figure) of every chart of the site; the Sankey once per segment, without its selector."""
    when, e = data_when(marts), marts.entity
    figures: list[tuple[str, go.Figure]] = []
    stems: set[str] = set()
    for i, segment in enumerate(sankey_segments(marts)):
        stem = "sankey" if i == 0 else f"sankey-{_slug(segment.label)}"
        stem = stem if stem not in stems else f"{stem}-{i}"
        stems.add(stem)
        figures.append((stem, segment_sankey_figure([segment], marts.stage_order, when, e)))
    figures += [
        ("funnel", funnel_figure(marts.stage_funnel, when, e)),
        ("trends", trends_figure(marts.stage_conversion_daily, e)),
        ("pain-points", leaks_figure(marts.leaks, when, e)),
    ]
    if marts.emotion_curve is not None:
        figures.append(("emotion", emotion_figure(marts.emotion_curve, when, e)))
    figures += [
        ("attribution", attribution_figure(marts.channel_attribution, when)),
        ("transitions-network", transition_network_figure(marts.stage_transitions, marts.stage_funnel, when, e)),
        ("transitions-matrix", transitions_figure(marts.stage_transitions, when, e)),
    ]
    return figures


# kaleido 1.5 can call its page's script before the page has run it ("ReferenceError: kaleido_scopes is not
# defined"): it takes the JavaScript context Chromium reports first, which on a loaded machine can still be the
# blank page's. Seen once in a full test run on 2 busy cores; the same export passes alone. Each attempt starts
# Chromium afresh, so the export is tried again, a bounded number of times, on that error only.
_PAGE_NOT_READY = "kaleido_scopes is not defined"
EXPORT_ATTEMPTS = 3


def find_chromium(chromium: Path | None = None) -> Path:
    """The Chrome or Chromium to render with: the argument, else $BROWSER_PATH, else chromium on the PATH."""
    for candidate in (chromium, os.environ.get("BROWSER_PATH"), shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise ExportError("no Chromium to render the charts with: install chromium or set BROWSER_PATH")


def export_charts(
    con: duckdb.DuckDBPyConnection,
    out_dir: Path,
    formats: Sequence[str] = ("png",),
    chromium: Path | None = None,
    scale: float = 2.0,
    entity: Entity = CUSTOMERS,
) -> list[Path]:
    """Write every chart of the site to out_dir/export/<chart>.<format>, speaking of the entity in its words
    (config `entity`); returns the files written."""
    unknown = sorted(set(formats) - set(EXPORT_FORMATS))
    if unknown:
        raise ExportError(f"cannot export {', '.join(unknown)}: choose from {', '.join(EXPORT_FORMATS)}")
    try:
        import kaleido
    except ImportError as e:
        raise ExportError("chart export needs kaleido: pip install 'cjm-analytics[export]'") from e
    browser = find_chromium(chromium)
    plotly_js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    figures = export_figures(dataclasses.replace(read_marts(con), entity=entity))
    target = out_dir / EXPORT_DIR
    target.mkdir(parents=True, exist_ok=True)
    jobs: list[dict[str, Any]] = []
    written: list[Path] = []
    for fmt in formats:
        for stem, fig in figures:
            path = target / f"{stem}.{fmt}"
            opts = {"format": fmt, "width": WIDTH, "height": int(fig.layout.height or 500), "scale": scale}
            jobs.append({"fig": fig, "path": path, "opts": opts})
            written.append(path)
    kopts: dict[str, Any] = {"path": str(browser), "mathjax": False}
    if plotly_js.is_file():
        kopts["plotlyjs"] = plotly_js
    for attempt in range(1, EXPORT_ATTEMPTS + 1):
        try:
            kaleido.write_fig_from_object_sync(jobs, kopts=kopts, cancel_on_error=True)
            break
        except Exception as e:  # kaleido raises its own and choreographer's errors; the user needs one line
            if attempt < EXPORT_ATTEMPTS and _PAGE_NOT_READY in str(e):
                continue
            raise ExportError(f"exporting the charts with {browser} failed: {type(e).__name__}: {e}") from e
    missing = [p for p in written if not p.is_file()]
    if missing:
        raise ExportError(f"exporting the charts with {browser} wrote no {', '.join(p.name for p in missing)}")
    return written
