"""The pages of `cjm analyze`: each analysis's chart, a pure function of its table, and the page that shows both.

The charts take the report's look (theme.TEMPLATE: the colour-blind-safe palette, vermillion for customers
lost) but not its figures: the nightly figures draw the marts with hover text built in Python, these draw any
table a command returns and keep every name in its own field (tests/test_analysis_escaping.py).

Charts on the page are plotly figures, and plotly.js reads a subset of HTML in every text it draws: a name
from the data (a channel, event, stage, segment value, touchpoint, or a step given on the command line)
reaches a figure only through plotly_names or the report's plotly_text, as in the nightly report
(tests/test_analysis_escaping.py).

Each analysis and set of parameters has a page of its own (page_stem), so a run with other parameters never
overwrites it; every page records what it answered (analysis, parameters, when) in a JSON block, from which
write_analyses_index lists them all on analyses.html, linked from every page's navigation bar.
"""

from __future__ import annotations

import fcntl
import hashlib
import html
import json
import os
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import duckdb
import pandas as pd
import plotly.graph_objects as go

from cjm_analytics.names import CUSTOMERS, Entity
from cjm_analytics.report import plotly_text, table_page, write_page
from cjm_analytics.report.figures import ATTRIBUTION_MODELS
from cjm_analytics.report.formatting import esc, fmt_int, fmt_num, fmt_p, fmt_rate, fmt_when, missing
from cjm_analytics.report.html import page_html, table_html
from cjm_analytics.report.pages import ANALYSES, NAV
from cjm_analytics.report.theme import BLUE, GREY, TEMPLATE, VERMILLION

# A horizontal legend under the plot, where the top holds a second axis (paths' coverage) or nothing.
LEGEND_BELOW = {"y": -0.1, "yanchor": "top"}


def plotly_names(values: pd.Series) -> pd.Series:
    """Names from the data as plotly text (plotly_text of each), keeping the index; NULL stays NULL."""
    # A NULL category must stay missing for plotly, not become the text "None".
    return values.map(lambda v: None if missing(v) else plotly_text(v))


def segment_label(segment: str, size: int, too_small: bool) -> str:
    """A legend entry (plotly text): the segment, its size, and a warning when it is too small to trust."""
    return f"{plotly_text(segment)} (n={size:,}{', too small' if too_small else ''})"


def grouped_bars(table: pd.DataFrame, x: str, y: str, y_title: str) -> go.Figure:
    """One bar per x and segment (too-small segments faded), e.g. conversion per stage and channel, with the rate's
    95% interval as an error bar where the table has one."""
    fig = go.Figure()
    for segment, rows in table.groupby("segment", sort=False):
        size, too_small = int(rows.segment_size.iloc[0]), bool(rows.too_small.iloc[0])
        # The rate's Wilson interval, where the table has one (stage_funnel_by_segment's <rate>_ci_low/high).
        error = ({"type": "data", "symmetric": False, "array": (rows[f"{y}_ci_high"] - rows[y]).tolist(),
                  "arrayminus": (rows[y] - rows[f"{y}_ci_low"]).tolist()}
                 if f"{y}_ci_low" in rows.columns else None)
        fig.add_bar(x=plotly_names(rows[x]), y=rows[y], name=segment_label(str(segment), size, too_small),
                    opacity=0.4 if too_small else 1.0, error_y=error)
    fig.update_layout(template=TEMPLATE, barmode="group", yaxis_title=y_title, legend_title="segment",
                      margin={"t": 30})
    fig.update_yaxes(tickformat=".0%")
    return fig


def ordered_funnel_figure(table: pd.DataFrame, entity: Entity = CUSTOMERS) -> go.Figure:
    """Funnel bars of customers per step; grouped bars of conversion from the first step per segment."""
    if "segment" in table.columns:
        return grouped_bars(table, "step_name", "conversion_from_first", f"share of step-1 {entity.plural}")
    fig = go.Figure(go.Funnel(y=plotly_names(table.step_name), x=table.completed, textinfo="value+percent initial"))
    fig.update_layout(template=TEMPLATE, margin={"t": 30})
    return fig


def stage_funnel_by_segment_figure(table: pd.DataFrame) -> go.Figure:
    """Grouped bars: the share of each segment reaching each stage, with its Wilson interval."""
    return grouped_bars(table, "stage", "conversion_from_first", "share of the segment reaching the stage")


def time_between_stages_figure(table: pd.DataFrame) -> go.Figure:
    """Median and p90 hours per transition; the median per segment when the table has segments."""
    transitions = plotly_names(table.from_stage) + " → " + plotly_names(table.to_stage)
    fig = go.Figure()
    if "segment" not in table.columns:
        fig.add_bar(x=transitions, y=table.median_hours, name="median")
        fig.add_bar(x=transitions, y=table.p90_hours, name="p90")
    else:
        for segment, rows in table.groupby("segment", sort=False):
            fig.add_bar(x=transitions[rows.index], y=rows.median_hours, name=f"{plotly_text(segment)} (median)")
    fig.update_layout(template=TEMPLATE, barmode="group", yaxis_title="hours", margin={"t": 30})
    return fig


def time_to_convert_figure(histogram: pd.DataFrame) -> go.Figure:
    """The share of converted customers per hours bin, one series per segment when the histogram has segments."""
    fig = go.Figure()
    segmented = "segment" in histogram.columns
    for segment, rows in histogram.groupby("segment", sort=False) if segmented else [(None, histogram)]:
        name = "converted" if not segmented else segment_label(
            str(segment), int(rows.converted.sum()), bool(rows.too_small.iloc[0]))
        fig.add_bar(x=plotly_names(rows.label), y=rows.share, name=name)
    fig.update_layout(template=TEMPLATE, barmode="group", xaxis_title="hours to convert",
                      yaxis_title="share of converted", margin={"t": 30})
    fig.update_yaxes(tickformat=".0%")
    return fig


def paths_figure(df: pd.DataFrame, title: str, coverage: bool = False, entity: Entity = CUSTOMERS) -> go.Figure:
    """Horizontal bars of customers per path (most common on top), with the cumulative coverage as a line.

    The title is plain text (it may hold a step from the command line): it is escaped here.
    """
    shown = df.iloc[::-1]
    paths = plotly_names(shown["path"])
    fig = go.Figure(go.Bar(x=shown["customers"], y=paths, orientation="h", name=entity.plural))
    if coverage:
        fig.add_trace(go.Scatter(x=shown["cumulative_share"], y=paths, mode="lines+markers",
                                 name="cumulative share of all paths", xaxis="x2"))
        # Its own ticks: by default an overlaying axis syncs its ticks to the customer axis' grid.
        fig.update_layout(xaxis2={"overlaying": "x", "side": "top", "range": [0, 1], "tickformat": ".0%",
                                  "tickmode": "linear", "tick0": 0, "dtick": 0.2, "showgrid": False,
                                  "title": "cumulative share"})
    fig.update_layout(template=TEMPLATE, title=plotly_text(title), xaxis_title=entity.plural,
                      height=max(320, 28 * len(df) + 160), legend=LEGEND_BELOW)
    return fig


def pain_points_figure(df: pd.DataFrame, entity: Entity = CUSTOMERS) -> go.Figure:
    """Customers lost per stage, biggest leak first, labelled with the share of those who reached it."""
    fig = go.Figure(go.Bar(
        x=plotly_names(df["stage"]), y=df["customers_lost"], name=f"{entity.plural} lost", marker={"color": VERMILLION},
        text=[f"{s:.0%} of reached" if pd.notna(s) else "" for s in df["share_of_reached"]],
        # Substituted into the hover template as they are: plotly text, like every name.
        customdata=df[["top_last_touchpoint", "top_lift_touchpoint"]].astype(object).fillna("-")
        .apply(plotly_names).to_numpy(),
        hovertemplate="%{x}: %{y} lost<br>last touchpoint: %{customdata[0]}<br>"
                      "highest lift: %{customdata[1]}<extra></extra>",
    ))
    fig.update_layout(template=TEMPLATE, title=f"Where {entity.plural} leave the funnel",
                      xaxis_title="stage (biggest leak first)", yaxis_title=f"{entity.plural} lost")
    return fig


def emotion_curve_figure(df: pd.DataFrame) -> go.Figure:
    """Mean normalized score per stage as a line, with its 95% interval as error bars."""
    fig = go.Figure(go.Scatter(
        x=plotly_names(df["stage"]), y=df["mean_score"], mode="lines+markers", name="mean score (0..1)",
        connectgaps=False,  # a stage without answers is unknown, not in between its neighbours
        error_y={"type": "data", "symmetric": False, "array": (df["ci_high"] - df["mean_score"]).tolist(),
                 "arrayminus": (df["mean_score"] - df["ci_low"]).tolist()},
        customdata=df[["responses"]].to_numpy(),
        hovertemplate="%{x}: %{y:.2f} (%{customdata[0]} responses)<extra></extra>",
    ))
    fig.update_layout(template=TEMPLATE, title="Emotion curve", xaxis_title="stage (journey order)",
                      yaxis={"title": "mean normalized score", "range": [0, 1.05]})
    return fig


def channel_attribution_figure(df: pd.DataFrame) -> go.Figure:
    """Grouped bars: conversions credited to each channel, one bar per model."""
    channels = plotly_names(df["channel"])
    fig = go.Figure([go.Bar(x=channels, y=df[column], name=label, marker={"color": colour})
                     for column, label, colour in ATTRIBUTION_MODELS])
    fig.update_layout(template=TEMPLATE, barmode="group", title="Conversions credited per channel, by model",
                      xaxis_title="channel", yaxis_title="conversions")
    return fig


DRIVERS_SHOWN = 25  # the candidates with the smallest p-values; the table has all


def drivers_figure(df: pd.DataFrame, entity: Entity = CUSTOMERS) -> go.Figure:
    """Odds ratio of conversion with a candidate against without it, on a log axis with its 95% interval; the
    candidates significant after the FDR correction in colour (blue above 1, vermillion below), the rest grey."""
    shown = df.head(DRIVERS_SHOWN).iloc[::-1]
    labels = plotly_names(shown["kind"]) + ": " + plotly_names(shown["candidate"])
    colours = [GREY if not sig else (BLUE if odds > 1 else VERMILLION)
               for sig, odds in zip(shown["significant"], shown["odds_ratio"], strict=True)]
    fig = go.Figure(go.Scatter(
        x=shown["odds_ratio"], y=labels, mode="markers", marker={"color": colours, "size": 9},
        error_x={"type": "data", "symmetric": False, "array": (shown["ci_high"] - shown["odds_ratio"]).tolist(),
                 "arrayminus": (shown["odds_ratio"] - shown["ci_low"]).tolist()},
        customdata=shown[["rate_with", "rate_without", "customers_with", "q_value"]].to_numpy(),
        hovertemplate="%{y}<br>odds ratio %{x:.2f}<br>converted with: %{customdata[0]:.1%} (%{customdata[2]} "
                      f"{entity.plural}), without: %{{customdata[1]:.1%}}<br>q = %{{customdata[3]:.3g}}"
                      "<extra></extra>",
    ))
    fig.add_vline(x=1, line={"color": GREY, "dash": "dot"})
    fig.update_layout(template=TEMPLATE, title="Odds of converting with the candidate against without it",
                      xaxis={"type": "log", "title": "odds ratio (95% interval), log scale"},
                      height=max(320, 26 * len(shown) + 160), margin={"l": 220})
    return fig


# ---- one page per analysis and parameters -----------------------------------------------------------------

Parameters = Sequence[tuple[str, str]]  # (option, value as given; "" for a flag), in the command's order
PREFIX = "analysis-"
MAX_STEM = 120  # file names stay well under the 255 bytes filesystems allow, and readable
_META = re.compile(r'<script type="application/json" id="cjm-analysis">(.*?)</script>', re.S)


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def _hash(analysis: str, parameters: Parameters) -> str:
    return hashlib.sha256(json.dumps([analysis, [list(p) for p in parameters]]).encode()).hexdigest()[:8]


def page_stem(analysis: str, parameters: Parameters) -> str:
    """The page's file name without .html: `analysis-funnel--steps-visit-cart-buy--order-strict`.

    Slugged (lowercase ASCII letters, digits, dashes); cut to MAX_STEM with a hash of the parameters when longer,
    and with the hash when a value slugs to nothing (`--steps ★`), so different parameters get different names.
    """
    parts = [PREFIX + _slug(analysis)]
    lossy = False
    for option, value in parameters:
        part = "--" + _slug(option) + (f"-{_slug(value)}" if value else "")
        lossy |= bool(value) and not _slug(value)
        parts.append(part)
    stem = "".join(parts)
    if len(stem) > MAX_STEM or lossy:
        stem = stem[: MAX_STEM - 9].rstrip("-") + "-" + _hash(analysis, parameters)
    return stem


def page_path(reports: Path, analysis: str, parameters: Parameters) -> Path:
    """Where the page of this analysis and parameters goes: its own page if it has one already, else page_stem's,
    with the hash added when that name holds the page of other parameters that slug alike (`a,b` and `a-b`)."""
    path = reports / f"{page_stem(analysis, parameters)}.html"
    recorded = read_meta(path)
    if recorded is not None and recorded.get("parameters") is not None and (
            recorded.get("analysis"), [tuple(p) for p in recorded["parameters"]]) != (analysis, list(parameters)):
        path = path.with_name(f"{path.stem}-{_hash(analysis, parameters)}.html")
    return path


def read_meta(page: Path) -> dict[str, Any] | None:
    """What a page of write_analysis_page records about itself; None for a page without it (an earlier release's)
    or one that cannot be read."""
    try:
        found = _META.search(page.read_text(encoding="utf-8", errors="replace"))
        meta = json.loads(found.group(1)) if found else None
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _meta_html(meta: Mapping[str, Any]) -> str:
    # Data, not code: a JSON block is never run, and <, > and & are escaped so no value can close it.
    text = json.dumps(dict(meta), default=str, ensure_ascii=False)
    text = text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
    return f'<script type="application/json" id="cjm-analysis">{text}</script>\n'


def command_line(analysis: str, parameters: Parameters) -> str:
    """The parameters as the command line that gives them (plain text, for esc)."""
    return " ".join(["cjm analyze", analysis, *(f"{o} {_quoted(v)}" if v else o for o, v in parameters)])


def _quoted(value: str) -> str:
    return value if re.fullmatch(r"[\w.,:=/+*-]+", value) else "'" + value.replace("'", "'\\''") + "'"


def summary_of(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """The run a page is of (run_id, run_started_at); empty for a warehouse without run_summary."""
    try:
        df = con.execute("SELECT run_id, run_started_at FROM run_summary").fetchdf()
    except duckdb.Error:
        return {}
    return {str(k): v for k, v in df.iloc[0].to_dict().items()} if len(df) else {}


def write_analysis_page(
    con: duckdb.DuckDBPyConnection,
    reports: Path,
    name: str,
    title: str,
    intro: str,
    table: pd.DataFrame,
    figure: go.Figure | None = None,
    site_title: str = "Customer journeys",
    *,
    analysis: str = "",
    parameters: Parameters = (),
    nulls: Mapping[str, str] | None = None,
    rates: Sequence[str] = (),
    note: str = "",
) -> Path:
    """reports/<name>.html: the question, the parameters, an optional chart and the table (its numbers formatted,
    see cell_formats); then analyses.html, which lists it, is written again. `note` is plain text."""
    summary = summary_of(con)
    analysis = analysis or name.removeprefix(PREFIX)
    meta = {"analysis": analysis, "title": title, "parameters": [list(p) for p in parameters],
            "written": datetime.now(UTC).isoformat(timespec="seconds")}
    shown = ", ".join(f"{o} {v}" if v else o for o, v in parameters) or "none (every option at its default)"
    extra = (f'<p class="note">Parameters: {esc(shown)}. Command: <code>{esc(command_line(analysis, parameters))}'
             f"</code></p>\n" + (f'<p class="note">{esc(note)}</p>\n' if note else "") + _meta_html(meta))
    page = table_page(site_title=site_title, page_title=title, summary=summary, intro=intro,
                      table=table, figure=figure, formats=cell_formats(table, nulls, rates), extra=extra)
    path = write_page(reports, f"{name}.html", page)
    write_analyses_index(reports, site_title, summary)
    return path


# ---- analyses.html: the index of the analysis pages ----------------------------------------------------------

@dataclass(frozen=True)
class Listed:
    """An analysis page as analyses.html lists it."""

    file: str
    title: str
    parameters: str
    written: datetime


def listed_pages(reports: Path) -> list[Listed]:
    """Every analysis page in reports/, newest first. A page without a record (written by an earlier release)
    is listed by its heading and file time; nothing on a page can break the index."""
    found = []
    for path in reports.glob(f"{PREFIX}*.html"):
        try:
            mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        except OSError:
            continue  # removed meanwhile
        meta = read_meta(path) or {}
        heading = _META_H1.search(path.read_text(encoding="utf-8", errors="replace")) if not meta else None
        title = str(meta.get("title") or (html.unescape(heading.group(1)) if heading else path.stem))
        params = meta.get("parameters")
        try:
            shown = (", ".join(f"{o} {v}" if v else str(o) for o, v in params) or "defaults") if params is not None \
                else "not recorded (an earlier release's page)"
            written = datetime.fromisoformat(str(meta["written"])) if "written" in meta else mtime
        except (TypeError, ValueError):
            shown, written = "not recorded", mtime
        found.append(Listed(path.name, title, shown, written if written.tzinfo else written.replace(tzinfo=UTC)))
    return sorted(found, key=lambda p: (p.written, p.file), reverse=True)


_META_H1 = re.compile(r"<h1>(.*?)</h1>", re.S)


def analyses_html(pages: Sequence[Listed], site_title: str, summary: Mapping[str, Any]) -> str:
    """analyses.html: a table of the analysis pages (title linked, parameters, when written)."""
    if pages:
        rows = "".join(
            f'<tr><td><a href="{esc(quote(p.file))}">{esc(p.title)}</a></td><td>{esc(p.parameters)}</td>'
            f"<td>{esc(fmt_when(p.written.astimezone(UTC).replace(tzinfo=None)))}</td></tr>\n" for p in pages)
        table = table_html([("analysis", False), ("parameters", False), ("written", False)], [])
        body = table.replace("<tbody>\n", "<tbody>\n" + rows)  # cells with links: built (and escaped) above
    else:
        body = "<p>No analysis page yet.</p>"
    intro = ("<p>The pages of <code>cjm analyze &lt;name&gt; --config …</code>: one per analysis and parameters, "
             "each kept until the same analysis is run with the same parameters again. Their tables are in "
             "<code>analysis/</code> beside them.</p>")
    return page_html(nav=NAV, active=ANALYSES.name, site_title=site_title, page_title=ANALYSES.label,
                     summary=summary, body=intro + "\n" + body)


def write_analyses_index(reports: Path, site_title: str, summary: Mapping[str, Any]) -> Path:
    """Write reports/analyses.html from the pages there now; called after each analysis page and each publish.

    Under a lock on the folder, so two writers (two `cjm analyze`, a nightly publish) never leave an index
    made before the other's page: the last to write has listed every page written before it.
    """
    reports.mkdir(parents=True, exist_ok=True)
    fd = os.open(reports, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with suppress(OSError):  # a filesystem without flock: the index may miss a page until the next write
            fcntl.flock(fd, fcntl.LOCK_EX)
        return write_page(reports, ANALYSES.name, analyses_html(listed_pages(reports), site_title, summary))
    finally:
        os.close(fd)


# ---- the numbers in an analysis table ------------------------------------------------------------------------

def cell_formats(table: pd.DataFrame, nulls: Mapping[str, str] | None = None, rates: Sequence[str] = ()
                 ) -> dict[str, Callable[[Any], str]]:
    """How the page writes each column: see column_format; `nulls` names the text of NULL per column (default a
    dash), `rates` the columns that are rates beyond those column_format knows by name (a curve's ci_low)."""
    nulls = nulls or {}
    return {str(c): column_format(str(c), table[c], nulls.get(str(c), "—"), rate=str(c) in rates)
            for c in table.columns}



# Column names that hold rates (0..1), p- or q-values, and durations, across the analyses' tables
# (docs/analysis/): conversion_from_first, dropoff_rate, share_of_reached, km_conversion, rate_with, ...
_RATE = re.compile(r"(^|_)(rate|share|conversion)(_|$)")
_P_VALUE = re.compile(r"(^|_)[pq]_value$")
_DURATION = re.compile(r"(^|_)(hours|days)(_|$)")


def column_format(name: str, values: pd.Series, null: str = "—", rate: bool = False) -> Callable[[Any], str]:
    """How a column is written on the page (the CSV/Parquet keep the raw numbers): rates as percentages, p- and
    q-values in scientific notation when small, hours and days with one decimal, counts with thousands
    separators, yes/no for flags, other numbers with two decimals; NULL as `null`."""
    write: Callable[[Any], str]
    if pd.api.types.is_bool_dtype(values):
        write = lambda v: "yes" if v else "no"  # noqa: E731
    elif not pd.api.types.is_numeric_dtype(values):
        write = str
    elif _P_VALUE.search(name):
        write = fmt_p
    elif rate or _RATE.search(name):
        write = fmt_rate
    elif _DURATION.search(name):
        write = fmt_num
    elif pd.api.types.is_integer_dtype(values) or bool((values.dropna() % 1 == 0).all()):
        write = fmt_int  # a count read as float because it has NULLs
    else:
        write = _decimal
    return lambda v: null if missing(v) else write(v)


def _decimal(value: Any) -> str:
    n = float(value)
    return f"{n:.2g}" if 0 < abs(n) < 0.01 else fmt_num(n, 2)
