"""The overview's body (index.html): the run's health, its headline figures against earlier runs, and the pages."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from cjm_analytics.names import Entity
from cjm_analytics.report.formatting import esc, fmt_date_range, fmt_int, fmt_num, fmt_pct, fmt_when, missing
from cjm_analytics.report.html import RUN_STATUS_JS, Page, card
from cjm_analytics.report.kpis import KPIS, Change, Kpi, change, earlier_runs, fmt_kpi
from cjm_analytics.report.marts import Marts

_ARROWS = {"up": "▲", "down": "▼", "same": "=", "none": "–"}


def delta_html(c: Change, versus: str) -> str:
    """One change as arrow, signed text and word (never colour alone), e.g. `▲ +0.8 pp better vs previous night`."""
    verdict = c.verdict
    word = f' <span class="verdict">{verdict}</span>' if verdict in ("better", "worse") else ""
    return (
        f'<li class="delta {verdict}"><span class="arrow" aria-hidden="true">{_ARROWS[c.direction]}</span>'
        f"{esc(c.text)}{word} <span class=\"vs\">vs {esc(versus)}</span></li>"
    )


def _kpi_detail(kpi: Kpi, s: Mapping[str, Any], e: Entity) -> str:
    if kpi.column == "events_loaded":
        return (
            f"of {esc(fmt_int(s.get('events_read')))} read · {esc(fmt_int(s.get('events_rejected')))} rejected · "
            f"{esc(fmt_int(s.get('events_duplicate')))} duplicates"
        )
    if kpi.column == "events_rejected":
        return "input rows refused, with a reason"
    if kpi.column == "journey_customers":
        return f"{e.plural} with at least one event mapped to a stage"
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


# Contributors named per stage in "What changed" (ranked by |mix + rate|; the mart holds them all).
CHANGE_CONTRIBUTORS = 2


def _points(x: Any) -> str:
    return "—" if missing(x) else f"{100 * float(x):+.1f}"


def _what_changed_html(change: Any, e: Entity) -> str:
    """Each stage's conversion tonight against the last good run, on the same cohort days, split into mix and rate
    per first-touch channel, with the largest contributors (analysis/what-changed.md). Empty on a first night."""
    if change is None or change.empty:
        return ""
    items = []
    for _, rows in change.groupby("stage_order", sort=True):
        head = rows.iloc[0]
        top = rows.sort_values("contributor_rank", kind="stable").head(CHANGE_CONTRIBUTORS)
        named = ", ".join(
            f"<b>{esc(r['segment'])}</b> {esc(_points(r['total_effect']))} (mix {esc(_points(r['mix_effect']))},"
            f" rate {esc(_points(r['rate_effect']))})" for _, r in top.iterrows())
        items.append(
            f"<li><b>{esc(head['from_stage'])} → {esc(head['to_stage'])}</b>: {esc(fmt_pct(head['conversion_before']))}"
            f" → {esc(fmt_pct(head['conversion_after']))} ({esc(_points(head['conversion_change']))} points): mix"
            f" {esc(_points(rows['mix_effect'].sum()))}, rate {esc(_points(rows['rate_effect'].sum()))}; largest: "
            f"{named}</li>")
    first, last = change["first_cohort_date"].iloc[0], change["last_cohort_date"].iloc[0]
    return f"""<h2>What changed since the last good run</h2>
<p class="note">Each stage's conversion on the cohort days both runs hold whole ({esc(fmt_date_range(first, last))}:
newer cohorts are still converting and are left out, so they never read as a drop), split into <b>mix</b> (the
first-touch channels' shares of the {e.plural} moved) and <b>rate</b> (the channels' own conversion moved); in
points, mix + rate = the change. The goal's line is conversion from the first stage.</p>
<ul class="changes">
{chr(10).join(items)}
</ul>"""


def overview_body(marts: Marts, pages: Sequence[Page]) -> str:
    """The headline figures of the run, each against the previous night and 7 days ago, and what each of the
    pages shows (with the biggest leak and the most credited channel)."""
    s, e = marts.run_summary, marts.entity
    night, week = earlier_runs(marts.run_history, s)
    cards = []
    for kpi in KPIS:
        if kpi.column == "sessions" and marts.sessions_off:  # a count of them would be the journeys again
            cards.append(card(kpi.label, "not used", "sessions: off in the config: each journey is one session", ""))
            continue
        deltas = (
            '<ul class="deltas">'
            + delta_html(change(kpi, s, night), "previous night")
            + delta_html(change(kpi, s, week), "7 days ago")
            + "</ul>"
        )
        if kpi.column == "worst_dropoff_rate":
            worst = s.get("worst_dropoff_stage")
            goal = esc(marts.goal) if marts.goal else "the goal"
            detail = (
                f"no stage before {goal}"
                if missing(worst)
                else f"{esc(fmt_pct(s.get('worst_dropoff_rate')))} of the {e.plural} reaching it go no further"
                f" (the worst of the stages before {goal}; {e.plural} who stop at or after {goal} have completed:"
                " retention, on the pain points page)"
            )
            for label, run in (("previous night", night), ("7 days ago", week)):
                earlier = None if run is None else run.get("worst_dropoff_stage")
                if not missing(earlier) and earlier != worst:  # the rate's change compares two stages
                    detail += f" · {esc(label)} it was {esc(earlier)}"
            value = "—" if missing(worst) else esc(worst)
            cards.append(card(kpi.label, value, detail, deltas, alert=not missing(worst)))
        else:
            cards.append(card(e.say(kpi.label), esc(fmt_kpi(kpi, s.get(kpi.column))), _kpi_detail(kpi, s, e), deltas))

    leaks = marts.leaks.sort_values("rank", kind="stable")
    top_leak = (
        f" Biggest leak: <b>{esc(leaks.iloc[0]['stage'])}</b>, {esc(fmt_int(leaks.iloc[0]['customers_lost']))}"
        f" {e.plural} lost."
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
    headline = {"pain-points.html": top_leak, "attribution.html": top_channel}
    listed = "\n".join(
        f'<li><a href="{p.name}">{esc(p.label)}</a>: {e.say(p.description)}{headline.get(p.name, "")}</li>'
        for p in pages
    )
    return f"""{_health_html(marts)}
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
{_what_changed_html(marts.conversion_change, e)}
<h2>Pages</h2>
<ul class="pages">
{listed}
</ul>"""
