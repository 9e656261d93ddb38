"""The report site: reads the marts (run_summary, stage_funnel, stage_transitions, sankey_links) and writes
static HTML pages that share one local plotly.min.js, so the site opens from file:// with no network.

Every number on a page is a mart value or a share of two mart values; nothing is recomputed from events.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import plotly.graph_objects as go
import plotly.offline
from plotly.subplots import make_subplots

PLOTLY_JS = "plotly.min.js"

RUN_SUMMARY_COLUMNS = (
    "run_id",
    "run_started_at",
    "events_read",
    "events_loaded",
    "events_rejected",
    "events_duplicate",
    "customers",
    "journey_customers",
    "sessions",
    "converted",
    "conversion_rate",
    "worst_dropoff_stage",
    "worst_dropoff_rate",
)
STAGE_FUNNEL_COLUMNS = (
    "stage",
    "stage_order",
    "reached",
    "exited",
    "dropoff_rate",
    "conversion_to_next",
    "conversion_from_first",
)
STAGE_TRANSITIONS_COLUMNS = (
    "from_stage",
    "to_stage",
    "from_order",
    "to_order",
    "transitions",
    "customers",
    "probability",
    "median_hours",
)
SANKEY_LINKS_COLUMNS = ("from_step", "from_node", "to_step", "to_node", "customers")

DROP_OFF = "(drop-off)"
CONTINUES = "(continues)"
OTHER = "other"

# Red is kept for drop-off, greys for the catch-all nodes; stages cycle through the rest.
_STAGE_COLOURS = (
    "#4e79a7",
    "#59a14f",
    "#f28e2b",
    "#76b7b2",
    "#b07aa1",
    "#edc948",
    "#9c755f",
    "#ff9da7",
    "#17becf",
    "#bcbd22",
)
_SPECIAL_COLOURS = {DROP_OFF: "#d62728", CONTINUES: "#7f7f7f", OTHER: "#bab0ac"}
_LINK_ALPHA = 0.45

_PAGES = (
    ("index.html", "Overview"),
    ("sankey.html", "Journeys by step"),
    ("funnel.html", "Stage funnel"),
    ("transitions.html", "Stage transitions"),
)

# Every chart follows the width of the page. plotly.js 3 shows a "Share chart" button that uploads the
# figure to a server, and a logo linking to plotly.com: neither belongs in an offline report. Box and
# lasso select do nothing useful on these charts.
_PLOTLY_CONFIG: dict[str, Any] = {
    "responsive": True,
    "displaylogo": False,
    "showSendToCloud": False,
    "modeBarButtonsToRemove": ["sendChartToCloud", "select2d", "lasso2d"],
}


@dataclass(frozen=True)
class Marts:
    """The four mart tables the site is drawn from."""

    run_summary: Mapping[str, Any]
    stage_funnel: pd.DataFrame
    stage_transitions: pd.DataFrame
    sankey_links: pd.DataFrame


def read_marts(con: duckdb.DuckDBPyConnection) -> Marts:
    """Read the four marts the site needs; run_summary must hold exactly one row."""
    summary = con.execute(f"SELECT {', '.join(RUN_SUMMARY_COLUMNS)} FROM run_summary").fetchall()
    if len(summary) != 1:
        raise ValueError(f"run_summary holds {len(summary)} rows, expected 1: run the pipeline first")
    return Marts(
        run_summary=dict(zip(RUN_SUMMARY_COLUMNS, summary[0], strict=True)),
        stage_funnel=con.execute(
            f"SELECT {', '.join(STAGE_FUNNEL_COLUMNS)} FROM stage_funnel ORDER BY stage_order"
        ).fetchdf(),
        stage_transitions=con.execute(
            f"SELECT {', '.join(STAGE_TRANSITIONS_COLUMNS)} FROM stage_transitions"
            " ORDER BY from_order, transitions DESC, to_order, to_stage"
        ).fetchdf(),
        sankey_links=con.execute(
            f"SELECT {', '.join(SANKEY_LINKS_COLUMNS)} FROM sankey_links"
            " ORDER BY from_step, from_node, to_step, to_node"
        ).fetchdf(),
    )


# --- formatting -------------------------------------------------------------------------------------


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _number(value: Any) -> float | None:
    """A mart value as a float; None for NULL (None, NaN or pd.NA, depending on how the column was read)."""
    return None if _missing(value) else float(value)


def _count(value: Any) -> int:
    """A mart count as an int; NULL counts as 0 (only used where a count feeds a chart's geometry)."""
    return 0 if _missing(value) else int(value)


def fmt_int(value: Any) -> str:
    """A count with thousands separators; a dash for NULL."""
    number = _number(value)
    return "—" if number is None else f"{round(number):,}"


def fmt_pct(value: Any, digits: int = 1) -> str:
    """A rate (0..1) as a percentage; a dash for NULL."""
    number = _number(value)
    return "—" if number is None else f"{number:.{digits}%}"


def fmt_hours(value: Any) -> str:
    """Hours with one decimal; a dash for NULL."""
    number = _number(value)
    return "—" if number is None else f"{number:,.1f}"


def fmt_when(value: Any) -> str:
    """The run's start (a UTC TIMESTAMP) to the minute."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return "unknown time" if _missing(value) else str(value)


def _share(part: Any, whole: Any) -> float | None:
    p, w = _number(part), _number(whole)
    return None if p is None or not w else p / w


def plotly_text(name: object) -> str:
    """A data value made safe for plotly.js text, which reads a subset of HTML (<b>, <br>, entities).

    Only &, < and > are replaced: plotly.js decodes &amp; &lt; &gt; but not &quot;, so quotes stay as
    they are.
    """
    return str(name).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def stage_colours(stages: Iterable[str]) -> dict[str, str]:
    """One colour per stage name, in stage order, plus the fixed colours of the catch-all nodes."""
    colours = {stage: _STAGE_COLOURS[i % len(_STAGE_COLOURS)] for i, stage in enumerate(stages)}
    colours.update(_SPECIAL_COLOURS)
    return colours


# --- figures ----------------------------------------------------------------------------------------


def _no_data_figure(message: str, height: int = 320) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_layout(
        height=height,
        xaxis={"visible": False},
        yaxis={"visible": False},
        template="plotly_white",
    )
    return fig


def sankey_figure(links: pd.DataFrame, journey_customers: int, stage_order: Sequence[str] = ()) -> go.Figure:
    """The step Sankey: one node per (step, node) of sankey_links, steps in columns, links coloured by target.

    Every link joins step s to step s+1, so with left alignment a node's column is its step; plotly.js
    places the nodes within a column (given in stage order, then other, (continues), (drop-off)) so that
    links cross as little as possible. Fixed x/y positions would keep plotly.js's own link order and
    make links cross at their source.
    """
    if links.empty:
        return _no_data_figure("No journeys in this run.")

    step_nodes: dict[tuple[int, str], int] = {}
    inflow: dict[tuple[int, str], int] = {}
    outflow: dict[tuple[int, str], int] = {}
    rows = [
        (_count(r.from_step), str(r.from_node), _count(r.to_step), str(r.to_node), _count(r.customers))
        for r in links.itertuples(index=False)
    ]
    for from_step, from_node, to_step, to_node, customers in rows:
        step_nodes.setdefault((from_step, from_node), 0)
        step_nodes.setdefault((to_step, to_node), 0)
        outflow[(from_step, from_node)] = outflow.get((from_step, from_node), 0) + customers
        inflow[(to_step, to_node)] = inflow.get((to_step, to_node), 0) + customers

    rank = {stage: i for i, stage in enumerate(stage_order)}
    tail = {OTHER: len(rank), CONTINUES: len(rank) + 1, DROP_OFF: len(rank) + 2}
    # Stages missing from stage_order sort after the known ones, by name, before the catch-all nodes.
    nodes = sorted(
        step_nodes,
        key=lambda n: (n[0], tail.get(n[1], rank.get(n[1], len(rank) - 0.5)), n[1]),
    )
    index = {node: i for i, node in enumerate(nodes)}
    # A node's customers: what flows through it (in = out, except the first step and the sinks).
    node_customers = {n: max(inflow.get(n, 0), outflow.get(n, 0)) for n in nodes}
    colours = stage_colours(stage_order)
    extra = sorted({name for _, name in nodes} - colours.keys())
    for i, name in enumerate(extra, start=len(stage_order)):
        colours[name] = _STAGE_COLOURS[i % len(_STAGE_COLOURS)]

    steps = sorted({step for step, _ in nodes})
    first, last = steps[0], steps[-1]
    span = max(last - first, 1)

    def x_of(step: int) -> float:
        return (step - first) / span

    def node_hover(n: tuple[int, str]) -> str:
        step, name = n
        where = f"after step {step - 1}" if name in (DROP_OFF, CONTINUES) else f"step {step}"
        return (
            f"<b>{plotly_text(name)}</b> · {where}<br>"
            f"{fmt_int(node_customers[n])} customers<br>"
            f"{fmt_pct(_share(node_customers[n], journey_customers))} of journey customers"
        )

    def link_hover(from_n: tuple[int, str], to_n: tuple[int, str], customers: int) -> str:
        return (
            f"<b>{plotly_text(from_n[1])}</b> (step {from_n[0]}) → <b>{plotly_text(to_n[1])}</b>"
            f" (step {to_n[0]})<br>"
            f"{fmt_int(customers)} customers<br>"
            f"{fmt_pct(_share(customers, journey_customers))} of journey customers<br>"
            f"{fmt_pct(_share(customers, node_customers[from_n]))} of the customers at"
            f" {plotly_text(from_n[1])} (step {from_n[0]})"
        )

    fig = go.Figure(
        go.Sankey(
            # Stationary nodes, columns by step (see the docstring).
            arrangement="fixed",
            valueformat=",d",
            node={
                "label": [plotly_text(name) for _, name in nodes],
                "align": "left",
                "color": [colours[name] for _, name in nodes],
                "pad": 14,
                "thickness": 16,
                "line": {"width": 0.5, "color": "#ffffff"},
                "customdata": [node_hover(n) for n in nodes],
                "hovertemplate": "%{customdata}<extra></extra>",
            },
            link={
                "source": [index[(r[0], r[1])] for r in rows],
                "target": [index[(r[2], r[3])] for r in rows],
                "value": [r[4] for r in rows],
                "color": [_rgba(colours[r[3]], _LINK_ALPHA) for r in rows],
                "customdata": [link_hover((r[0], r[1]), (r[2], r[3]), r[4]) for r in rows],
                "hovertemplate": "%{customdata}<extra></extra>",
            },
        )
    )
    for step in steps:
        only_sinks = all(name in (DROP_OFF, CONTINUES) for s, name in nodes if s == step)
        fig.add_annotation(
            text=f"after step {step - 1}" if only_sinks else f"step {step}",
            x=x_of(step),
            y=1.0,
            xref="paper",
            yref="paper",
            yanchor="bottom",
            xanchor="left" if step == first else "right" if step == last else "center",
            showarrow=False,
            font={"size": 12, "color": "#555555"},
        )
    fig.update_layout(
        height=max(460, 120 + 44 * max(sum(1 for s, _ in nodes if s == step) for step in steps)),
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        font={"size": 12},
        paper_bgcolor="#ffffff",
    )
    return fig


def funnel_figure(funnel: pd.DataFrame) -> go.Figure:
    """Customers reaching each stage (a funnel) beside each stage's drop-off rate, both from stage_funnel."""
    if funnel.empty:
        return _no_data_figure("No stages configured.")
    stages = [plotly_text(s) for s in funnel["stage"]]
    hover = [
        f"<b>{plotly_text(r.stage)}</b> (stage {fmt_int(r.stage_order)})<br>"
        f"reached: {fmt_int(r.reached)} customers<br>"
        f"stopped here: {fmt_int(r.exited)}<br>"
        f"drop-off rate: {fmt_pct(r.dropoff_rate)}<br>"
        f"conversion to next stage: {fmt_pct(r.conversion_to_next)}<br>"
        f"conversion from first stage: {fmt_pct(r.conversion_from_first)}"
        for r in funnel.itertuples(index=False)
    ]
    fig = make_subplots(
        rows=1,
        cols=2,
        shared_yaxes=True,
        column_widths=[0.72, 0.28],
        horizontal_spacing=0.03,
        subplot_titles=("Customers reaching each stage", "Drop-off rate (stopped here / reached)"),
    )
    fig.add_trace(
        go.Funnel(
            name="reached",
            y=stages,
            x=[_count(v) for v in funnel["reached"]],
            text=[
                f"{fmt_int(r.reached)} · {fmt_pct(r.conversion_from_first)} of first stage"
                for r in funnel.itertuples(index=False)
            ],
            textinfo="text",
            textposition="auto",
            marker={"color": "#4e79a7"},
            connector={"fillcolor": "#dbe5f0", "line": {"width": 0}},
            customdata=hover,
            hovertemplate="%{customdata}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Bar(
            name="drop-off rate",
            orientation="h",
            y=stages,
            x=[_number(v) for v in funnel["dropoff_rate"]],
            text=[
                fmt_pct(v) if not _missing(v) else "(last stage)" if i == len(funnel) - 1 else "—"
                for i, v in enumerate(funnel["dropoff_rate"])
            ],
            textposition="outside",
            cliponaxis=False,
            marker={"color": "#d62728"},
            customdata=hover,
            hovertemplate="%{customdata}<extra></extra>",
        ),
        row=1,
        col=2,
    )
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False, row=1, col=1)
    fig.update_xaxes(tickformat=".0%", rangemode="tozero", showgrid=True, row=1, col=2)
    fig.update_yaxes(autorange="reversed", categoryorder="array", categoryarray=stages)
    fig.update_layout(
        height=max(320, 110 + 56 * len(stages)),
        showlegend=False,
        template="plotly_white",
        margin={"l": 10, "r": 40, "t": 50, "b": 30},
        font={"size": 12},
    )
    fig.update_yaxes(automargin=True)
    return fig


def transitions_figure(transitions: pd.DataFrame) -> go.Figure:
    """The stage graph as a matrix: transition probability from each row's stage to each column's stage."""
    if transitions.empty:
        return _no_data_figure("No transitions in this run.")
    from_nodes = list(dict.fromkeys(transitions.sort_values(["from_order", "from_stage"])["from_stage"]))
    to_nodes = list(dict.fromkeys(transitions.sort_values(["to_order", "to_stage"])["to_stage"]))
    z: list[list[float | None]] = [[None] * len(to_nodes) for _ in from_nodes]
    text: list[list[str]] = [[""] * len(to_nodes) for _ in from_nodes]
    hover: list[list[str]] = [[""] * len(to_nodes) for _ in from_nodes]
    for r in transitions.itertuples(index=False):
        i, j = from_nodes.index(r.from_stage), to_nodes.index(r.to_stage)
        z[i][j] = _number(r.probability)
        text[i][j] = fmt_pct(r.probability, 0)
        hover[i][j] = (
            f"<b>{plotly_text(r.from_stage)}</b> → <b>{plotly_text(r.to_stage)}</b><br>"
            f"probability: {fmt_pct(r.probability)}<br>"
            f"transitions: {fmt_int(r.transitions)}<br>"
            f"customers: {fmt_int(r.customers)}<br>"
            f"median hours: {fmt_hours(r.median_hours)}"
        )
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[plotly_text(n) for n in to_nodes],
            y=[plotly_text(n) for n in from_nodes],
            text=text,
            texttemplate="%{text}",
            customdata=hover,
            hovertemplate="%{customdata}<extra></extra>",
            hoverongaps=False,
            colorscale="Blues",
            zmin=0,
            zmax=1,
            xgap=2,
            ygap=2,
            colorbar={"title": {"text": "probability"}, "tickformat": ".0%"},
        )
    )
    fig.update_layout(
        height=max(320, 120 + 44 * len(from_nodes)),
        template="plotly_white",
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis={"title": {"text": "to"}, "side": "top", "type": "category", "automargin": True},
        yaxis={"title": {"text": "from"}, "autorange": "reversed", "type": "category", "automargin": True},
        font={"size": 12},
    )
    return fig


# --- pages ------------------------------------------------------------------------------------------

_CSS = """
:root { --fg: #1f2933; --muted: #5f6b7a; --line: #d9dee5; --accent: #2f5d8a; --bg: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: #fff; line-height: 1.45;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
nav { display: flex; flex-wrap: wrap; gap: .25rem 1.25rem; align-items: baseline; padding: .7rem 1.5rem;
  background: var(--accent); }
nav .site { color: #fff; font-weight: 600; margin-right: 1rem; }
nav a { color: #dce8f3; text-decoration: none; padding: .1rem 0; border-bottom: 2px solid transparent; }
nav a:hover { color: #fff; }
nav a[aria-current="page"] { color: #fff; border-bottom-color: #fff; }
main { max-width: 1280px; margin: 0 auto; padding: 1.2rem 1.5rem 2rem; }
h1 { font-size: 1.5rem; margin: .2rem 0 .2rem; }
h2 { font-size: 1.15rem; margin: 1.8rem 0 .6rem; }
.when { color: var(--muted); margin: 0 0 1.2rem; }
p.note { color: var(--muted); max-width: 60rem; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(14rem, 1fr)); gap: .9rem; margin: 0; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: .8rem 1rem; background: var(--bg);
  margin: 0; }
.card dt { color: var(--muted); font-size: .85rem; }
.card dd { margin: .15rem 0 0; }
.card .value { font-size: 1.6rem; font-weight: 600; font-variant-numeric: tabular-nums; }
.card .detail { display: block; color: var(--muted); font-size: .85rem; }
.card.alert { border-color: #e7b3b3; background: #fdf3f3; }
ul.pages { padding-left: 1.2rem; }
ul.pages li { margin: .3rem 0; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; margin: .5rem 0 1rem; }
th, td { padding: .3rem .7rem; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { background: var(--bg); font-weight: 600; }
td.num, th.num { text-align: right; }
tbody tr:hover { background: #f0f4f8; }
.chart { border: 1px solid var(--line); border-radius: 6px; padding: .5rem; }
footer { color: var(--muted); font-size: .8rem; max-width: 1280px; margin: 0 auto; padding: 0 1.5rem 1.5rem; }
"""

# No fetches, frames or foreign scripts: the site is offline by construction, not just by habit.
_CSP = (
    "default-src 'none'; script-src 'self' file: 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src 'self' file: data: blob:; font-src data:"
)


def _page(
    *,
    site_title: str,
    page_title: str,
    active: str,
    summary: Mapping[str, Any],
    body: str,
    uses_plotly: bool,
) -> str:
    when = fmt_when(summary.get("run_started_at"))
    current = ' aria-current="page"'
    nav = "".join(f'<a href="{href}"{current if href == active else ""}>{_esc(label)}</a>' for href, label in _PAGES)
    script = f'<script src="{PLOTLY_JS}" charset="utf-8"></script>\n' if uses_plotly else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<title>{_esc(page_title)} · {_esc(site_title)} · run of {_esc(when)}</title>
<style>{_CSS}</style>
{script}</head>
<body>
<nav><span class="site">{_esc(site_title)}</span>{nav}</nav>
<main>
<h1>{_esc(page_title)}</h1>
<p class="when">Run <code>{_esc(summary.get("run_id"))}</code>, started {_esc(when)}</p>
{body}
</main>
<footer>Generated by cjm-analytics from the run's marts (run_summary, stage_funnel, stage_transitions,
sankey_links). Times are UTC.</footer>
</body>
</html>
"""


def _chart(fig: go.Figure, div_id: str) -> str:
    # plotly serialises <, > and / in strings as \u003c-style escapes, so data cannot close its <script>;
    # the replace is a second guard in case a future plotly stops doing that.
    snippet: str = fig.to_html(
        include_plotlyjs=False,
        full_html=False,
        config=_PLOTLY_CONFIG,
        div_id=div_id,
        default_height=f"{fig.layout.height or 450}px",
    )
    head, sep, script = snippet.partition("<script")
    script_body, end, tail = script.rpartition("</script>")
    script_body = script_body.replace("</", "<\\/")
    return f'<div class="chart">{head}{sep}{script_body}{end}{tail}</div>'


def _table(headers: Sequence[tuple[str, bool]], rows: Iterable[Sequence[str]]) -> str:
    """An HTML table; headers are (label, numeric) and every cell is escaped here."""
    numeric = ' class="num"'
    head = "".join(f"<th{numeric if num else ''}>{_esc(h)}</th>" for h, num in headers)
    body = "".join(
        "<tr>"
        + "".join(f"<td{numeric if num else ''}>{_esc(cell)}</td>" for cell, (_, num) in zip(row, headers, strict=True))
        + "</tr>\n"
        for row in rows
    )
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>"


def index_page(marts: Marts, title: str) -> str:
    """The headline figures of the run and links to the other pages."""
    s = marts.run_summary

    def card(label: str, value: str, detail: str = "", alert: bool = False) -> str:
        extra = f'<span class="detail">{detail}</span>' if detail else ""
        cls = "card alert" if alert else "card"
        return f'<div class="{cls}"><dt>{_esc(label)}</dt><dd><span class="value">{value}</span>{extra}</dd></div>'

    worst = s.get("worst_dropoff_stage")
    cards = [
        card(
            "Events loaded",
            _esc(fmt_int(s.get("events_loaded"))),
            f"of {_esc(fmt_int(s.get('events_read')))} read · "
            f"{_esc(fmt_int(s.get('events_rejected')))} rejected · "
            f"{_esc(fmt_int(s.get('events_duplicate')))} duplicates",
        ),
        card("Events rejected", _esc(fmt_int(s.get("events_rejected"))), "input rows refused, with a reason"),
        card("Customers", _esc(fmt_int(s.get("customers")))),
        card(
            "Journey customers",
            _esc(fmt_int(s.get("journey_customers"))),
            "customers with at least one event mapped to a stage",
        ),
        card("Sessions", _esc(fmt_int(s.get("sessions")))),
        card(
            "Converted",
            _esc(fmt_int(s.get("converted"))),
            f"conversion rate {_esc(fmt_pct(s.get('conversion_rate')))}",
        ),
        card(
            "Worst drop-off",
            "—" if _missing(worst) else _esc(worst),
            f"{_esc(fmt_pct(s.get('worst_dropoff_rate')))} of the customers reaching it go no further"
            if not _missing(worst)
            else "no stage before the last",
            alert=not _missing(worst),
        ),
    ]
    body = f"""<dl class="cards">
{chr(10).join(cards)}
</dl>
<h2>Pages</h2>
<ul class="pages">
<li><a href="sankey.html">Journeys by step</a>: where journey customers go at each step of their stage path,
and where they drop off.</li>
<li><a href="funnel.html">Stage funnel</a>: customers reaching each stage and the drop-off rate of each
stage.</li>
<li><a href="transitions.html">Stage transitions</a>: the stage graph as a table and matrix of transition
probabilities, with the median time between stages.</li>
</ul>"""
    return _page(
        site_title=title,
        page_title="Overview",
        active="index.html",
        summary=s,
        body=body,
        uses_plotly=False,
    )


def sankey_page(marts: Marts, title: str) -> str:
    """The step Sankey of journeys."""
    journey_customers = marts.run_summary.get("journey_customers")
    fig = sankey_figure(
        marts.sankey_links,
        _count(journey_customers),
        [str(s) for s in marts.stage_funnel["stage"]],
    )
    body = f"""<p class="note">Each column is one step of the customers' collapsed stage paths (step 1 is
their first stage). Loops are shown, not hidden: a customer who goes back to an earlier stage appears at
it again in the next column. <b>(drop-off)</b> holds the paths that ended at the previous step,
<b>(continues)</b> the paths longer than the last step shown, and <b>other</b> the stages too small to
draw on their own. Hover a node or a link for its customers, as a share of the
{_esc(fmt_int(journey_customers))} journey customers and of the node it leaves.</p>
{_chart(fig, "sankey-chart")}"""
    return _page(
        site_title=title,
        page_title="Journeys by step",
        active="sankey.html",
        summary=marts.run_summary,
        body=body,
        uses_plotly=True,
    )


def funnel_page(marts: Marts, title: str) -> str:
    """The stage funnel as a chart and a table."""
    f = marts.stage_funnel
    table = _table(
        [
            ("stage", False),
            ("order", True),
            ("reached", True),
            ("stopped here", True),
            ("drop-off rate", True),
            ("conversion to next", True),
            ("conversion from first", True),
        ],
        (
            [
                str(r.stage),
                fmt_int(r.stage_order),
                fmt_int(r.reached),
                fmt_int(r.exited),
                fmt_pct(r.dropoff_rate),
                fmt_pct(r.conversion_to_next),
                fmt_pct(r.conversion_from_first),
            ]
            for r in f.itertuples(index=False)
        ),
    )
    body = f"""<p class="note">A customer has reached a stage when their furthest stage is that stage or
a later one (stages are a ladder), and stopped there when it is their furthest stage. Drop-off rate =
stopped here / reached.</p>
{_chart(funnel_figure(f), "funnel-chart")}
<h2>Stage funnel table</h2>
{table}"""
    return _page(
        site_title=title,
        page_title="Stage funnel",
        active="funnel.html",
        summary=marts.run_summary,
        body=body,
        uses_plotly=True,
    )


def transitions_page(marts: Marts, title: str) -> str:
    """The stage-transition graph as a matrix and a table."""
    t = marts.stage_transitions.sort_values(
        ["from_order", "transitions", "to_order", "to_stage"],
        ascending=[True, False, True, True],
        kind="stable",
    )
    table = _table(
        [
            ("from", False),
            ("to", False),
            ("transitions", True),
            ("customers", True),
            ("probability", True),
            ("median hours", True),
        ],
        (
            [
                str(r.from_stage),
                str(r.to_stage),
                fmt_int(r.transitions),
                fmt_int(r.customers),
                fmt_pct(r.probability),
                fmt_hours(r.median_hours),
            ]
            for r in t.itertuples(index=False)
        ),
    )
    body = f"""<p class="note">Every customer's collapsed stage path runs from (start) through its stages
to (end). Probability = transitions on the edge / all transitions out of its <i>from</i> stage, so each
row sums to 100%; the (end) column is the exit probability. Median hours: from the last event at the
<i>from</i> stage to the first event at the <i>to</i> stage.</p>
{_chart(transitions_figure(t), "transitions-chart")}
<h2>Transition table</h2>
{table}"""
    return _page(
        site_title=title,
        page_title="Stage transitions",
        active="transitions.html",
        summary=marts.run_summary,
        body=body,
        uses_plotly=True,
    )


MAX_TABLE_ROWS = 500


def _cell(value: Any) -> str:
    if _missing(value):
        return ""
    if isinstance(value, float):
        return f"{value:,.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table_page(
    *,
    site_title: str,
    page_title: str,
    summary: Mapping[str, Any],
    intro: str,
    table: pd.DataFrame,
    figure: go.Figure | None = None,
) -> str:
    """A page of one analysis: its question in words, an optional chart and its table (every cell escaped)."""
    shown = table.head(MAX_TABLE_ROWS)
    headers = [(str(c), pd.api.types.is_numeric_dtype(table[c])) for c in table.columns]
    rows = ([_cell(v) for v in record] for record in shown.itertuples(index=False))
    note = (f"<p>First {MAX_TABLE_ROWS:,} of {len(table):,} rows; the full table is in the CSV/Parquet output.</p>"
            if len(table) > MAX_TABLE_ROWS else "")
    chart = _chart(figure, "analysis-chart") if figure is not None else ""
    body = f"<p>{_esc(intro)}</p>\n{chart}\n{_table(headers, rows)}\n{note}"
    return _page(site_title=site_title, page_title=page_title, active="", summary=summary, body=body,
                 uses_plotly=figure is not None)


def write_page(out_dir: Path, name: str, html_text: str) -> Path:
    """Write one page into the report site (beside the shared plotly.min.js, written if missing)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if not (out_dir / PLOTLY_JS).exists():
        _write(out_dir / PLOTLY_JS, plotly.offline.get_plotlyjs())
    return _write(out_dir / name, html_text)


def _write(path: Path, text: str) -> Path:
    # Write beside the target and rename, so a published site never holds a half-written page.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def build_report(con: duckdb.DuckDBPyConnection, out_dir: Path, title: str = "Customer journeys") -> list[Path]:
    """Write the report site (index, sankey, funnel, transitions pages and one plotly.min.js) into out_dir."""
    marts = read_marts(con)
    out_dir.mkdir(parents=True, exist_ok=True)
    return [
        _write(out_dir / PLOTLY_JS, plotly.offline.get_plotlyjs()),
        _write(out_dir / "index.html", index_page(marts, title)),
        _write(out_dir / "sankey.html", sankey_page(marts, title)),
        _write(out_dir / "funnel.html", funnel_page(marts, title)),
        _write(out_dir / "transitions.html", transitions_page(marts, title)),
    ]
