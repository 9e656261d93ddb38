"""The site's HTML: one template (navigation bar, styles, footer) and one function per page.

Every page is a pure function of the marts; names from the data are escaped here (HTML) or by the figure
functions (plotly text), and charts are plotly JSON that plotly.min.js draws, so a page never runs data.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from cjm_analytics.report.figures import (
    TREND_DAYS,
    attribution_figure,
    emotion_figure,
    funnel_figure,
    leaks_figure,
    transitions_figure,
    trend_window,
    trends_figure,
)
from cjm_analytics.report.formatting import (
    as_date,
    count,
    esc,
    fmt_date,
    fmt_date_range,
    fmt_hours,
    fmt_int,
    fmt_num,
    fmt_pct,
    fmt_when,
    missing,
    share,
)
from cjm_analytics.report.kpis import KPIS, Change, Kpi, change, earlier_runs, fmt_kpi
from cjm_analytics.report.marts import Marts
from cjm_analytics.report.network import transition_network_figure
from cjm_analytics.report.sankey import SankeySegment, segment_sankey_figure
from cjm_analytics.report.theme import BAD_TEXT, GOOD_TEXT, MUTED_TEXT, PLOTLY_CONFIG, split_title

PLOTLY_JS = "plotly.min.js"
# The latest run's verdict, beside the pages; a night whose checks fail rewrites the shown site's copy, so the
# overview can say it shows the last good run (docs/checks.md).
RUN_STATUS_JS = "run_status.js"

# Every page of the site, in the order of the navigation bar.
PAGES = (
    ("index.html", "Overview"),
    ("sankey.html", "Journeys by step"),
    ("funnel.html", "Stage funnel"),
    ("trends.html", "Daily trends"),
    ("pain-points.html", "Pain points"),
    ("emotion.html", "Emotion curve"),
    ("attribution.html", "Channel attribution"),
    ("transitions.html", "Stage transitions"),
)

_CSS = f"""
:root {{ --fg: #1f2933; --muted: {MUTED_TEXT}; --line: #d9dee5; --accent: #22496e; --bg: #f6f8fa;
  --good: {GOOD_TEXT}; --bad: {BAD_TEXT}; }}
* {{ box-sizing: border-box; }}
body {{ margin: 0; color: var(--fg); background: #fff;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }}
nav {{ display: flex; flex-wrap: wrap; gap: .3rem 1.1rem; align-items: baseline; padding: .7rem 1.5rem;
  background: var(--accent); }}
nav .site {{ color: #fff; font-weight: 600; margin-right: .8rem; }}
nav a {{ color: #dce8f3; text-decoration: none; padding: .1rem 0; border-bottom: 2px solid transparent;
  white-space: nowrap; }}
nav a:hover, nav a:focus {{ color: #fff; border-bottom-color: #9cc3e6; }}
nav a[aria-current="page"] {{ color: #fff; border-bottom-color: #fff; }}
main {{ max-width: 1280px; margin: 0 auto; padding: 1.2rem 1.5rem 2rem; }}
h1 {{ font-size: 1.5rem; margin: .2rem 0 .2rem; }}
h2 {{ font-size: 1.15rem; margin: 1.8rem 0 .6rem; }}
.when {{ color: var(--muted); margin: 0 0 1.2rem; }}
p.note {{ color: var(--muted); max-width: 62rem; }}
code {{ overflow-wrap: anywhere; }}
.cards {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(15rem, 1fr)); gap: .9rem; margin: 0; }}
.card {{ border: 1px solid var(--line); border-radius: 6px; padding: .8rem 1rem; background: var(--bg); margin: 0; }}
.card dt {{ color: var(--muted); font-size: .85rem; }}
.card dd {{ margin: .15rem 0 0; }}
.card .value {{ font-size: 1.6rem; font-weight: 600; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }}
.card .detail {{ display: block; color: var(--muted); font-size: .85rem; }}
.card.alert {{ border-color: #e9c2a6; background: #fdf5ef; }}
.health {{ border: 1px solid var(--line); border-left-width: 5px; border-radius: 6px; padding: .5rem 1rem;
  margin: 0 0 1rem; max-width: 62rem; }}
.health.ok {{ border-left-color: var(--good); }}
.health.warn {{ border-left-color: #b58100; background: #fffaf0; }}
.health.bad {{ border-left-color: var(--bad); background: #fdf3f3; }}
.health p {{ margin: .2rem 0; }}
.health ul {{ margin: .3rem 0; padding-left: 1.2rem; }}
.deltas {{ list-style: none; margin: .45rem 0 0; padding: .4rem 0 0; border-top: 1px solid var(--line);
  font-size: .85rem; font-variant-numeric: tabular-nums; }}
.deltas li {{ margin: .1rem 0; }}
.delta .arrow {{ display: inline-block; width: 1.1em; font-weight: 700; }}
.delta.better {{ color: var(--good); }}
.delta.worse {{ color: var(--bad); }}
.delta.neutral, .delta.none {{ color: var(--muted); }}
.delta .verdict {{ font-weight: 600; }}
.delta .vs {{ color: var(--muted); white-space: nowrap; }}
ul.pages {{ padding-left: 1.2rem; max-width: 62rem; }}
ul.pages li {{ margin: .35rem 0; }}
.table-wrap {{ overflow-x: auto; max-width: 100%; margin: .5rem 0 1rem; }}
table {{ border-collapse: collapse; font-variant-numeric: tabular-nums; }}
th, td {{ padding: .3rem .7rem; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }}
th {{ background: var(--bg); font-weight: 600; }}
td.num, th.num {{ text-align: right; }}
td.num {{ white-space: nowrap; }}
tbody tr:hover {{ background: #f0f4f8; }}
.chart {{ border: 1px solid var(--line); border-radius: 6px; padding: .6rem .5rem .5rem; margin: 0 0 1rem; }}
.chart figcaption {{ padding: 0 .4rem .3rem; }}
.chart .chart-title {{ display: block; font-weight: 600; }}
.chart .chart-when {{ display: block; color: var(--muted); font-size: .85rem; }}
.chart .plot {{ overflow-x: auto; }}
.chart.wide .plot > div {{ min-width: 760px; }}
.scroll-hint {{ display: none; margin: 0 .4rem .3rem; color: var(--muted); font-size: .8rem; }}
@media (max-width: 800px) {{ .scroll-hint {{ display: block; }} }}
.empty {{ border: 1px dashed var(--line); border-radius: 6px; padding: 1.2rem; color: var(--muted); }}
details summary {{ cursor: pointer; color: var(--accent); margin: .6rem 0; }}
dl.defs {{ display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; max-width: 70rem;
  font-size: .9rem; }}
dl.defs dt {{ font-weight: 600; }}
dl.defs dd {{ margin: 0; color: var(--muted); }}
footer {{ color: var(--muted); font-size: .8rem; max-width: 1280px; margin: 0 auto; padding: 0 1.5rem 1.5rem; }}
@media (max-width: 640px) {{
  nav {{ padding: .6rem .9rem; gap: .25rem .9rem; }}
  main {{ padding: .9rem .9rem 1.5rem; }}
  footer {{ padding: 0 .9rem 1.2rem; }}
  h1 {{ font-size: 1.3rem; }}
  .cards {{ grid-template-columns: 1fr; }}
  .chart {{ padding: .4rem .25rem .25rem; }}
  dl.defs {{ grid-template-columns: 1fr; }}
  dl.defs dd {{ margin: 0 0 .4rem; }}
}}
"""

# No fetches, frames or foreign scripts: the site is offline by construction, not just by habit.
_CSP = (
    "default-src 'none'; script-src 'self' file: 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src 'self' file: data: blob:; font-src data:"
)


def page_html(
    *,
    site_title: str,
    page_title: str,
    active: str,
    summary: Mapping[str, Any],
    body: str,
    uses_plotly: bool,
    sources: Sequence[str] = (),
) -> str:
    """A whole page: the navigation bar over every page, the heading and run, the body and a footer."""
    when = fmt_when(summary.get("run_started_at"))
    current = ' aria-current="page"'
    nav = "".join(f'<a href="{href}"{current if href == active else ""}>{esc(label)}</a>' for href, label in PAGES)
    script = f'<script src="{PLOTLY_JS}" charset="utf-8"></script>\n' if uses_plotly else ""
    drawn_from = (
        f"Drawn from the marts {esc(', '.join(sources))} of the run." if sources else "Drawn from the warehouse."
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<title>{esc(page_title)} · {esc(site_title)} · run of {esc(when)}</title>
<style>{_CSS}</style>
{script}</head>
<body>
<nav aria-label="Report pages"><span class="site">{esc(site_title)}</span>{nav}</nav>
<main>
<h1>{esc(page_title)}</h1>
<p class="when">Run <code>{esc(summary.get("run_id"))}</code>, started {esc(when)}</p>
{body}
</main>
<footer>Generated by cjm-analytics. {drawn_from} Times are UTC.</footer>
</body>
</html>
"""


def site_page(
    marts: Marts, title: str, active: str, body: str, sources: Sequence[str], uses_plotly: bool = True
) -> str:
    """One of the site's own pages: its heading is its label in PAGES, its run the marts' run_summary."""
    return page_html(site_title=title, page_title=dict(PAGES)[active], active=active, summary=marts.run_summary,
                     body=body, uses_plotly=uses_plotly, sources=sources)


def chart_html(fig: go.Figure, div_id: str, wide: bool = False) -> str:
    """A figure under its title (lifted into HTML, where it wraps on a phone) and the one call that draws it.

    A wide chart (Sankey, network) keeps a minimum width and scrolls sideways on a narrow screen.
    """
    heading, when, fig = split_title(fig)
    caption = (
        f'<figcaption><span class="chart-title">{esc(heading)}</span>'
        + (f'<span class="chart-when">{esc(when)}</span>' if when else "")
        + "</figcaption>"
        if heading
        else ""
    )
    config = {**PLOTLY_CONFIG, "toImageButtonOptions": {**PLOTLY_CONFIG["toImageButtonOptions"], "filename": div_id}}
    snippet: str = fig.to_html(
        include_plotlyjs=False,
        full_html=False,
        config=config,
        div_id=div_id,
        default_height=f"{fig.layout.height or 450}px",
    )
    # plotly serialises <, > and / in strings as \u003c-style escapes, so data cannot close its <script>;
    # the replace is a second guard in case a future plotly stops doing that.
    head, sep, script = snippet.partition("<script")
    script_body, end, tail = script.rpartition("</script>")
    script_body = script_body.replace("</", "<\\/")
    plot = f'<div class="plot">{head}{sep}{script_body}{end}{tail}</div>'
    hint = '<p class="scroll-hint">Wider than the screen: scroll the chart sideways.</p>' if wide else ""
    return f'<figure class="chart{" wide" if wide else ""}">{caption}{hint}{plot}</figure>'


def table_html(headers: Sequence[tuple[str, bool]], rows: Iterable[Sequence[str]]) -> str:
    """An HTML table that scrolls sideways on a narrow screen; headers are (label, numeric), cells escaped here."""
    numeric = ' class="num"'
    head = "".join(f"<th{numeric if num else ''}>{esc(h)}</th>" for h, num in headers)
    body = "".join(
        "<tr>"
        + "".join(f"<td{numeric if num else ''}>{esc(cell)}</td>" for cell, (_, num) in zip(row, headers, strict=True))
        + "</tr>\n"
        for row in rows
    )
    return (
        f'<div class="table-wrap"><table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table></div>'
    )


def run_date(marts: Marts) -> str:
    return fmt_date(marts.run_summary.get("run_started_at"))


def data_when(marts: Marts) -> str:
    """When the charted journeys are from: the cohort dates of stage_conversion_daily, and the run's date."""
    first, last = marts.cohort_dates
    span = fmt_date_range(first, last) if first is not None else "no journeys"
    return f"journeys starting {span} · run of {run_date(marts)}"


# --- overview ---------------------------------------------------------------------------------------

_ARROWS = {"up": "▲", "down": "▼", "same": "=", "none": "–"}


def delta_html(c: Change, versus: str) -> str:
    """One change as arrow, signed text and word (never colour alone), e.g. `▲ +0.8 pp better vs previous night`."""
    verdict = c.verdict
    word = f' <span class="verdict">{verdict}</span>' if verdict in ("better", "worse") else ""
    return (
        f'<li class="delta {verdict}"><span class="arrow" aria-hidden="true">{_ARROWS[c.direction]}</span>'
        f"{esc(c.text)}{word} <span class=\"vs\">vs {esc(versus)}</span></li>"
    )


def _card(label: str, value: str, detail: str = "", deltas: str = "", alert: bool = False) -> str:
    extra = f'<span class="detail">{detail}</span>' if detail else ""
    cls = "card alert" if alert else "card"
    return f'<div class="{cls}"><dt>{esc(label)}</dt><dd><span class="value">{value}</span>{extra}{deltas}</dd></div>'


def _kpi_detail(kpi: Kpi, s: Mapping[str, Any]) -> str:
    if kpi.column == "events_loaded":
        return (
            f"of {esc(fmt_int(s.get('events_read')))} read · {esc(fmt_int(s.get('events_rejected')))} rejected · "
            f"{esc(fmt_int(s.get('events_duplicate')))} duplicates"
        )
    if kpi.column == "events_rejected":
        return "input rows refused, with a reason"
    if kpi.column == "journey_customers":
        return "customers with at least one event mapped to a stage"
    if kpi.column == "converted":
        return f"conversion rate {esc(fmt_pct(s.get('conversion_rate')))}"
    if kpi.column == "conversion_rate":
        return f"{esc(fmt_int(s.get('converted')))} converted of {esc(fmt_int(s.get('journey_customers')))}"
    return ""


def _compared_with(label: str, run: Mapping[str, Any] | None) -> str:
    if run is None:
        return f"<li>{esc(label)}: no earlier run</li>"
    started = fmt_when(run.get("run_started_at"))
    return f"<li>{esc(label)}: run <code>{esc(run.get('run_id'))}</code>, started {esc(started)}</li>"


def run_status_js(status: Mapping[str, Any]) -> str:
    """run_status.js: the latest run's verdict as a global the overview reads (data, so JSON: nothing runs)."""
    return "window.cjmLatestRun = " + json.dumps(dict(status), default=str).replace("</", "<\\/") + ";\n"


def _health_html(marts: Marts) -> str:
    """Which run this is, where its data ends and whether it passed its checks; and, from run_status.js, a later
    night that failed its checks (the report then still shows this, the last good run)."""
    checks = marts.run_checks
    end = "—" if missing(marts.data_end) else fmt_when(marts.data_end)
    if checks.empty:
        cls, verdict, items = "health", "not checked (this warehouse's runs predate health checks)", []
    else:
        failed, warned = checks[checks.status == "error"], checks[checks.status == "warning"]
        if len(failed):
            cls, verdict = "health bad", f"{len(failed)} failed, published anyway (cjm run --force-publish)"
        elif len(warned):
            cls, verdict = "health warn", f"passed with {len(warned)} warning(s)"
        else:
            cls, verdict = "health ok", f"all {len(checks)} passed"
        items = [*failed.message, *warned.message, *checks[checks.status == "info"].message]
    listed = ("<ul>" + "".join(f"<li>{esc(m)}</li>" for m in items) + "</ul>") if items else ""
    here = json.dumps(str(marts.run_summary.get("run_id"))).replace("</", "<\\/")
    return f"""<div id="latest-run" class="health bad" role="alert" hidden></div>
<script src="{RUN_STATUS_JS}"></script>
<script>
(function () {{
  var latest = window.cjmLatestRun, here = {here};
  if (!latest || latest.run_id === here) return;
  var box = document.getElementById("latest-run");
  box.textContent = latest.verdict === "failed"
    ? "The run of " + latest.run_started + " (" + latest.run_id + ") failed its checks and was not published: "
      + latest.summary + ". This report still shows the last good run, below."
    : "A later run (" + latest.run_id + ", " + latest.run_started + ") has not been published; this report shows "
      + "the run below.";
  box.hidden = false;
}})();
</script>
<div class="{cls}"><p>Data up to <b>{esc(end)}</b> · health checks: <b>{esc(verdict)}</b>
(table <code>run_checks</code>)</p>{listed}</div>"""


def index_page(marts: Marts, title: str) -> str:
    """The headline figures of the run, each against the previous night and 7 days ago, and the pages."""
    s = marts.run_summary
    night, week = earlier_runs(marts.run_history, s)
    cards = []
    for kpi in KPIS:
        deltas = (
            '<ul class="deltas">'
            + delta_html(change(kpi, s, night), "previous night")
            + delta_html(change(kpi, s, week), "7 days ago")
            + "</ul>"
        )
        if kpi.column == "worst_dropoff_rate":
            worst = s.get("worst_dropoff_stage")
            detail = (
                "no stage before the last"
                if missing(worst)
                else f"{esc(fmt_pct(s.get('worst_dropoff_rate')))} of the customers reaching it go no further"
            )
            for label, run in (("previous night", night), ("7 days ago", week)):
                earlier = None if run is None else run.get("worst_dropoff_stage")
                if not missing(earlier) and earlier != worst:  # the rate's change compares two stages
                    detail += f" · {esc(label)} it was {esc(earlier)}"
            value = "—" if missing(worst) else esc(worst)
            cards.append(_card(kpi.label, value, detail, deltas, alert=not missing(worst)))
        else:
            cards.append(_card(kpi.label, esc(fmt_kpi(kpi, s.get(kpi.column))), _kpi_detail(kpi, s), deltas))

    leaks = marts.leaks.sort_values("rank", kind="stable")
    top_leak = (
        f" Biggest leak: <b>{esc(leaks.iloc[0]['stage'])}</b>, {esc(fmt_int(leaks.iloc[0]['customers_lost']))}"
        " customers lost."
        if not leaks.empty
        else ""
    )
    attribution = marts.channel_attribution
    top_channel = (
        f" Most credited by the Markov model: <b>{esc(attribution.iloc[0]['channel'])}</b>"
        f" ({esc(fmt_num(attribution.iloc[0]['markov'], 1))} conversions)."
        if not attribution.empty
        else ""
    )
    first, last = marts.cohort_dates
    started = esc(fmt_date_range(first, last)) if first is not None else "— (no journeys)"
    body = f"""{_health_html(marts)}
<p class="note">Journeys in this run started {started}. Each figure is compared with an earlier
run of the nightly pipeline (run_history): the <b>previous night</b> is the latest run that started on an
earlier day (UTC), <b>7 days ago</b> the latest run that started at least 7 days before this one.
▲ up, ▼ down, = no change; <span class="delta better">better</span> and <span class="delta worse">worse</span>
are said in words too.</p>
<ul class="compared">
{_compared_with("Previous night", night)}
{_compared_with("7 days ago", week)}
</ul>
<dl class="cards">
{chr(10).join(cards)}
</dl>
<h2>Pages</h2>
<ul class="pages">
<li><a href="sankey.html">Journeys by step</a>: where journey customers go at each step of their stage path, and
where they drop off, for all journeys and for the largest first-touch channels.</li>
<li><a href="funnel.html">Stage funnel</a>: customers reaching each stage and the drop-off rate of each stage.</li>
<li><a href="trends.html">Daily trends</a>: new journeys per day and the share of each day's cohort reaching each
stage, last {TREND_DAYS} days.</li>
<li><a href="pain-points.html">Pain points</a>: the ranked leak table: where customers are lost and what they did
last.{top_leak}</li>
<li><a href="emotion.html">Emotion curve</a>: survey scores (NPS, CSAT) at each stage of the journey.</li>
<li><a href="attribution.html">Channel attribution</a>: conversions credited to channels by first touch, last touch,
linear and Markov models.{top_channel}</li>
<li><a href="transitions.html">Stage transitions</a>: the stage graph as a network, a matrix of transition
probabilities and a table, with exit probabilities and the median time between stages.</li>
</ul>"""
    sources = ("run_summary", "run_history", "stage_conversion_daily", "leaks", "channel_attribution")
    return site_page(marts, title, "index.html", body, sources, uses_plotly=False)


# --- journeys ---------------------------------------------------------------------------------------


def sankey_segments(marts: Marts) -> list[SankeySegment]:
    """All journeys (sankey_links), then each first-touch channel of sankey_segment_links, largest first."""
    segments = [
        SankeySegment("all journeys", marts.sankey_links, count(marts.run_summary.get("journey_customers")))
    ]
    links = marts.sankey_segment_links
    channels = links[links["segment_type"] == "first_channel"]
    sized = []
    for name, group in channels.groupby("segment", sort=True):
        size = marts.segment_size("first_channel", str(name))
        if size is None:  # every journey of a segment is at step 1: its links out of step 1 are its journeys
            first_step = group["from_step"].min()
            size = count(group[group["from_step"] == first_step]["customers"].sum())
        sized.append((str(name), group, size))
    for name, group, size in sorted(sized, key=lambda t: (-t[2], t[0])):
        segments.append(
            SankeySegment(
                f"first touch: {name}",
                group[list(links.columns[2:])].reset_index(drop=True),
                size,
                f"journeys first touched via {name}",
            )
        )
    return segments


def sankey_page(marts: Marts, title: str) -> str:
    """The step Sankey of journeys, with a selector of the top first-touch segments."""
    journey_customers = marts.run_summary.get("journey_customers")
    segments = sankey_segments(marts)
    fig = segment_sankey_figure(segments, marts.stage_order, data_when(marts))
    selector = (
        f"""Use the menu at the top left of the chart to show only the journeys of one of the
{len(segments) - 1} largest first-touch channels (the channel of the customer's first event)."""
        if len(segments) > 1
        else ""
    )
    body = f"""<p class="note">Each column is one step of the customers' collapsed stage paths (step 1 is
their first stage). Loops are shown, not hidden: a customer who goes back to an earlier stage appears at
it again in the next column. <b>(drop-off)</b> (red) holds the paths that ended at the previous step,
<b>(continues)</b> the paths longer than the last step shown, and <b>other</b> the stages too small to
draw on their own. Hover a node or a link for its customers, as a share of the
{esc(fmt_int(journey_customers))} journey customers (or of the segment's) and of the node it leaves.
{selector}</p>
{chart_html(fig, "sankey-chart", wide=True)}"""
    sources = ("sankey_links", "sankey_segment_links", "stage_funnel_by_segment", "run_summary")
    return site_page(marts, title, "sankey.html", body, sources)


def funnel_page(marts: Marts, title: str) -> str:
    """The stage funnel as a chart and a table."""
    f = marts.stage_funnel
    table = table_html(
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
stopped here / reached. The funnel's labels are customers reached · share of the first stage.</p>
{chart_html(funnel_figure(f, data_when(marts)), "funnel-chart")}
<h2>Stage funnel table</h2>
{table}"""
    return site_page(marts, title, "funnel.html", body, ("stage_funnel",))


def trends_page(marts: Marts, title: str) -> str:
    """New journeys per cohort date and the share of each cohort reaching each stage, last TREND_DAYS days."""
    window = trend_window(marts.stage_conversion_daily)
    table = ""
    if not window.empty:
        days = window.assign(day=window["cohort_date"].map(as_date))
        stages = list(dict.fromkeys(days.sort_values("stage_order")["stage"].map(str)))
        reached = days.pivot_table(index="day", columns="stage", values="reached", aggfunc="first")
        rows = []
        later = stages[1:]
        for day in sorted(reached.index, reverse=True):
            first = reached.at[day, stages[0]]
            rows.append(
                [fmt_date(day)]
                + [fmt_int(first)]
                + [f"{fmt_int(reached.at[day, st])} ({fmt_pct(share(reached.at[day, st], first))})" for st in later]
            )
        table = f"""<details>
<summary>The numbers: reached per stage for each cohort date (newest first)</summary>
{table_html([("cohort date", False), ("new journeys", True), *((f"reached {st}", True) for st in stages[1:])], rows)}
</details>"""
    body = f"""<p class="note">A cohort is the customers whose first stage event fell on that day (UTC). The bars
are each day's new journeys; the lines the share of that day's cohort that has reached each later stage by
this run (stage_conversion_daily: reached at the stage / reached at the first stage). Recent cohorts have
had less time to get far, so their shares are still growing; small cohorts jump about. Last {TREND_DAYS} days
up to the latest cohort date.</p>
{chart_html(trends_figure(marts.stage_conversion_daily), "trends-chart")}
{table}"""
    return site_page(marts, title, "trends.html", body, ("stage_conversion_daily",))


_LEAK_DEFINITIONS = (
    ("customers lost", "journey customers whose furthest stage is this one (exited of the stage funnel)"),
    ("share of reached", "customers lost / customers who reached the stage (the drop-off rate)"),
    ("top last touchpoint", "the touchpoint the lost customers most often ended on"),
    (
        "top lift touchpoint",
        "the touchpoint most over-represented at the end of lost journeys compared with the customers who went on"
        " (among touchpoints with enough customers)",
    ),
    ("contacted support", "share of the lost customers with a support event"),
    ("low survey score", "share of the lost customers with a survey answer below its 'low' threshold"),
    ("loopers", "lost customers who went back and forth between two stages more than the loop threshold"),
    ("median hours since last event", "how long ago the lost customers were last seen, up to the end of the data"),
)


def pain_points_page(marts: Marts, title: str) -> str:
    """The ranked leak table with a bar chart of customers lost."""
    leaks = marts.leaks.sort_values("rank", kind="stable")
    table = table_html(
        [
            ("rank", True),
            ("stage", False),
            ("customers lost", True),
            ("share of reached", True),
            ("top last touchpoint", False),
            ("top lift touchpoint", False),
            ("contacted support", True),
            ("low survey score", True),
            ("loopers", True),
            ("median hours since last event", True),
        ],
        (
            [
                fmt_int(r.rank),
                str(r.stage),
                fmt_int(r.customers_lost),
                fmt_pct(r.share_of_reached),
                "—" if missing(r.top_last_touchpoint) else str(r.top_last_touchpoint),
                "—" if missing(r.top_lift_touchpoint) else str(r.top_lift_touchpoint),
                fmt_pct(r.support_share),
                fmt_pct(r.low_score_share),
                fmt_int(r.loopers),
                fmt_hours(r.median_hours_since_last_event),
            ]
            for r in leaks.itertuples(index=False)
        ),
    )
    defs = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in _LEAK_DEFINITIONS)
    body = f"""<p class="note">Where customers are lost: every stage before the last, ranked by the customers
whose journey got no further, with what they did last and what sets them apart. The bars are labelled
customers lost · share of those who reached the stage.</p>
{chart_html(leaks_figure(leaks, data_when(marts)), "leaks-chart")}
<h2>Leak table</h2>
{table}
<dl class="defs">{defs}</dl>"""
    return site_page(marts, title, "pain-points.html", body, ("leaks",))


def emotion_page(marts: Marts, title: str) -> str:
    """The emotion curve with its intervals and the NPS/CSAT table, or why there is none."""
    curve = marts.emotion_curve
    if curve is None:
        body = """<p class="empty">No surveys configured, so there is no emotion curve. Add the survey events
under <code>analysis.surveys</code> in the config (see docs/analysis/emotion.md) and the next run draws it.</p>"""
        return site_page(marts, title, "emotion.html", body, (), uses_plotly=False)
    rows = curve.sort_values("stage_order", kind="stable")
    table = table_html(
        [
            ("stage", False),
            ("answers", True),
            ("mean score", True),
            ("95% interval", True),
            ("NPS", True),
            ("NPS answers", True),
            ("CSAT mean", True),
            ("CSAT answers", True),
            ("invalid answers", True),
        ],
        (
            [
                str(r.stage),
                fmt_int(r.responses),
                fmt_num(r.mean_score, 2),
                "—" if missing(r.ci_low) else f"{fmt_num(r.ci_low, 2)}–{fmt_num(r.ci_high, 2)}",
                fmt_num(r.nps, 0),
                fmt_int(r.nps_responses),
                fmt_num(r.csat_mean, 2),
                fmt_int(r.csat_responses),
                fmt_int(r.invalid_responses),
            ]
            for r in rows.itertuples(index=False)
        ),
    )
    body = f"""<p class="note">Survey answers placed at the stage each customer was at when answering. Scores
are normalized to 0–1 (lowest to highest answer of each survey) so NPS and CSAT share one scale; the bars
are the 95% confidence interval of the mean (none with fewer than 2 answers). A stage without answers is
a gap. NPS = % promoters (9–10) − % detractors (0–6), on the raw 0–10 answers; CSAT = mean raw score.</p>
{chart_html(emotion_figure(rows, data_when(marts)), "emotion-chart")}
<h2>Scores by stage</h2>
{table}"""
    return site_page(marts, title, "emotion.html", body, ("emotion_curve",))


def attribution_page(marts: Marts, title: str) -> str:
    """Channel attribution: grouped bars per model and the table."""
    a = marts.channel_attribution
    table = table_html(
        [
            ("channel", False),
            ("first touch", True),
            ("last touch", True),
            ("linear", True),
            ("Markov chain", True),
            ("removal effect", True),
        ],
        (
            [
                str(r.channel),
                fmt_num(r.first_touch, 1),
                fmt_num(r.last_touch, 1),
                fmt_num(r.linear, 1),
                fmt_num(r.markov, 1),
                fmt_pct(r.removal_effect),
            ]
            for r in a.itertuples(index=False)
        ),
    )
    body = f"""<p class="note">Which channels bring the conversions. A touch is a session with a channel; each
model shares out the conversions among the channels of the converters' paths: <b>first touch</b> and
<b>last touch</b> give each conversion to one channel, <b>linear</b> splits it equally over the path's touches,
and the <b>Markov chain</b> model credits each channel by its removal effect (the share of conversions lost
if the channel were taken out of every path). Every model's credits add up to the same conversions.</p>
{chart_html(attribution_figure(a, data_when(marts)), "attribution-chart")}
<h2>Conversions credited per channel</h2>
{table}"""
    return site_page(marts, title, "attribution.html", body, ("channel_attribution",))


def transitions_page(marts: Marts, title: str) -> str:
    """The stage-transition graph as a network, a matrix and a table."""
    t = marts.stage_transitions.sort_values(
        ["from_order", "transitions", "to_order", "to_stage"],
        ascending=[True, False, True, True],
        kind="stable",
    )
    table = table_html(
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
    when = data_when(marts)
    body = f"""<p class="note">Every customer's collapsed stage path runs from (start) through its stages
to (end). In the network, stages sit in journey order; arcs above the line go forward, arcs below go back
to an earlier stage, red arcs leave the journey to (end); an arc's width is proportional to its transitions
and the triangle on it points the way (hover it for the figures). Under each stage: its exit probability.
Probability = transitions on the edge / all transitions out of its <i>from</i> stage, so each row of the
matrix sums to 100% and its (end) column is the exit probability. Median hours: from the last event at the
<i>from</i> stage to the first event at the <i>to</i> stage.</p>
{chart_html(transition_network_figure(t, marts.stage_funnel, when), "network-chart", wide=True)}
{chart_html(transitions_figure(t, when), "transitions-chart", wide=True)}
<h2>Transition table</h2>
{table}"""
    return site_page(marts, title, "transitions.html", body, ("stage_transitions", "stage_funnel"))


# The pages build_report writes, in the order of PAGES.
PAGE_BUILDERS = {
    "index.html": index_page,
    "sankey.html": sankey_page,
    "funnel.html": funnel_page,
    "trends.html": trends_page,
    "pain-points.html": pain_points_page,
    "emotion.html": emotion_page,
    "attribution.html": attribution_page,
    "transitions.html": transitions_page,
}

# --- analysis pages (`cjm analyze`) -------------------------------------------------------------------

MAX_TABLE_ROWS = 500


def _cell(value: Any) -> str:
    if missing(value):
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
    note = (
        f"<p>First {MAX_TABLE_ROWS:,} of {len(table):,} rows; the full table is in the CSV/Parquet output.</p>"
        if len(table) > MAX_TABLE_ROWS
        else ""
    )
    chart = chart_html(figure, "analysis-chart") if figure is not None else ""
    body = f"<p>{esc(intro)}</p>\n{chart}\n{table_html(headers, rows)}\n{note}"
    return page_html(
        site_title=site_title,
        page_title=page_title,
        active="",
        summary=summary,
        body=body,
        uses_plotly=figure is not None,
    )
