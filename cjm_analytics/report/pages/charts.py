"""The body of each chart page of the site: a pure function of the marts, its charts and its tables.

Names from the data are escaped by html's components (HTML) or by the figure functions (plotly text).
"""

from __future__ import annotations

from cjm_analytics.report.figures import (
    MIN_BIN_JOURNEYS,
    attribution_figure,
    configured,
    emotion_figure,
    funnel_figure,
    leaks_figure,
    transitions_figure,
    trend_bins,
    trends_figure,
)
from cjm_analytics.report.formatting import (
    count,
    esc,
    fmt_date,
    fmt_date_range,
    fmt_hours,
    fmt_int,
    fmt_num,
    fmt_pct,
    missing,
    share,
)
from cjm_analytics.report.html import chart_html, table_html
from cjm_analytics.report.marts import Marts
from cjm_analytics.report.network import transition_network_figure
from cjm_analytics.report.sankey import SankeySegment, segment_sankey_figure


def run_date(marts: Marts) -> str:
    return fmt_date(marts.run_summary.get("run_started_at"))


def data_when(marts: Marts) -> str:
    """When the charted journeys are from: the cohort dates of stage_conversion_daily, and the run's date."""
    first, last = marts.cohort_dates
    span = fmt_date_range(first, last) if first is not None else "no journeys"
    return f"journeys starting {span} · run of {run_date(marts)}"



def sankey_segments(marts: Marts) -> list[SankeySegment]:
    """All journeys (sankey_links), then each first-touch channel of sankey_segment_links, largest first."""
    segments = [
        SankeySegment("all journeys", marts.sankey_links, count(marts.run_summary.get("journey_customers")),
                      f"journey {marts.entity.plural}")
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


def sankey_body(marts: Marts) -> str:
    """The step Sankey of journeys, with a selector of the top first-touch segments."""
    journey_customers = marts.run_summary.get("journey_customers")
    goal, e = marts.goal or "the goal stage", marts.entity
    segments = sankey_segments(marts)
    fig = segment_sankey_figure(segments, marts.stage_order, data_when(marts), e)
    selector = (
        f"""Use the menu at the top left of the chart to show only the journeys of one of the
{len(segments) - 1} largest first-touch channels (the channel of the {e.singular}'s first event)."""
        if len(segments) > 1
        else ""
    )
    return f"""<p class="note">Each column is one step of the collapsed stage paths of the {e.plural} (step 1
is their first stage). Loops are shown, not hidden: {e.plural} who go back to an earlier stage appear at
it again in the next column. A path that ends goes to one of two sinks: <b>(completed)</b> (green) when the
{e.singular} had reached the goal ({esc(goal)}), whatever came after it, and <b>(drop-off)</b> (red) when they had
not: only those are {e.plural} lost. <b>(continues)</b> holds the paths longer than the last step shown, and
<b>other</b> the stages too small to draw on their own. Hover a node or a link for its {e.plural}, as a share of the
{esc(fmt_int(journey_customers))} journey {e.plural} (or of the segment's) and of the node it leaves.
{selector}</p>
{chart_html(fig, "sankey-chart", wide=True)}"""


def funnel_body(marts: Marts) -> str:
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
                fmt_int(r.exited) if r.before_goal else f"{fmt_int(r.exited)} completed",
                fmt_pct(r.dropoff_rate) if r.before_goal or missing(r.dropoff_rate) else "— (after the goal)",
                fmt_pct(r.conversion_to_next),
                fmt_pct(r.conversion_from_first),
            ]
            for r in f.itertuples(index=False)
        ),
    )
    goal, e = marts.goal or "the goal stage", marts.entity
    return f"""<p class="note"><b>Who and how:</b> all {esc(fmt_int(marts.run_summary.get("journey_customers")))}
journey {e.plural}, each counted at every stage up to their furthest one (a ladder: no order, no time limit).
The ordered funnel of <code>cjm analyze funnel</code> counts differently (steps done in order within a
conversion window, 14 days by default), so for the same stages its counts are lower or equal; its page,
listed on <a href="analyses.html">Analyses</a>, is written beside this one when you run it.</p>
<p class="note">{e.Plural} have reached a stage when their furthest stage is that stage or
a later one (stages are a ladder), and stopped there when it is their furthest stage. Drop-off rate =
stopped here / reached, for the stages before the goal ({esc(goal)}): those {e.plural} are lost. From the goal on,
stopping is not a drop-off: those {e.plural} completed and went no further (retention, in green). The funnel's
labels are {e.plural} reached · share of the first stage.</p>
{chart_html(funnel_figure(f, data_when(marts), e), "funnel-chart")}
<h2>Stage funnel table</h2>
{table}"""


def trends_body(marts: Marts) -> str:
    """New journeys per cohort bin and the share of each cohort reaching each stage, binned by trend_bins."""
    binned = trend_bins(marts.stage_conversion_daily)
    table = rule = ""
    if binned is not None:
        rows_ = binned.rows
        stages = list(dict.fromkeys(rows_.sort_values("stage_order")["stage"].map(str)))
        reached = rows_.pivot_table(index="bin", columns="stage", values="reached", aggfunc="first")
        maturing = set(binned.maturing)
        rows = []
        later = stages[1:]
        for b in sorted(reached.index, reverse=True):
            first = reached.at[b, stages[0]]
            rows.append(
                [binned.label(b) + (" (still maturing)" if b in maturing else "")]
                + [fmt_int(first)]
                + [f"{fmt_int(reached.at[b, st])} ({fmt_pct(share(reached.at[b, st], first))})" for st in later]
            )
        table = f"""<details>
<summary>The numbers: reached per stage for each cohort (newest first)</summary>
{table_html([("cohort", False), ("new journeys", True), *((f"reached {st}", True) for st in stages[1:])], rows)}
</details>"""
        p90 = binned.p90_hours_to_convert
        horizon = (
            "no journey has converted yet, so no cohort is marked"
            if p90 is None
            else f"the p90 time to convert of converted journeys is {esc(_duration(p90))}; cohorts that have not yet "
            f"had that long by the end of the data ({len(maturing)} shown) are <b>still maturing</b>: hollow bars "
            "and dotted lines with hollow markers, left out of the solid line, because their shares are still growing"
        )
        rule = f"""<p class="note"><b>Shown:</b> {esc(binned.window_text())}. The grain is the finest of day,
week and month that fits the history in at most 92 days or 106 weeks and gives a median of at least
{MIN_BIN_JOURNEYS} new journeys per cohort; longer histories show their latest 120 months. <b>Maturity:</b>
{horizon}.</p>"""
    return f"""<p class="note">A cohort is the {marts.entity.plural} whose first stage event fell in that day, week or
month (UTC). The bars are each cohort's new journeys; the lines the share of that cohort that has reached each later
stage by this run (stage_conversion_daily summed over the cohort's days: reached at the stage / reached at the
first stage). Small cohorts jump about.</p>
{rule}
{chart_html(trends_figure(marts.stage_conversion_daily, marts.entity), "trends-chart")}
{table}"""


def _duration(hours: float) -> str:
    """Hours as a reader counts them: `25 minutes`, `18 hours`, `3.5 days`, `41 days`."""
    if hours < 1:
        return f"{fmt_num(hours * 60, 0)} minutes"
    if hours < 48:
        return f"{fmt_num(hours, 0)} hours"
    days = hours / 24
    return f"{fmt_num(days, 1 if days < 10 else 0)} days"


# The leak table's columns and what they mean ({plural}: Entity.say).
_LEAK_DEFINITIONS = (
    ("{plural} lost", "journey {plural} whose furthest stage is this one (exited of the stage funnel)"),
    ("share of reached", "{plural} lost / {plural} who reached the stage (the drop-off rate)"),
    ("top last touchpoint", "the touchpoint the lost {plural} most often ended on"),
    (
        "top lift touchpoint",
        "the touchpoint most over-represented at the end of lost journeys compared with the {plural} who went on"
        " (among touchpoints with enough {plural})",
    ),
    ("contacted support", "share of the lost {plural} with a support event"),
    ("low survey score", "share of the lost {plural} with a survey answer below its 'low' threshold"),
    ("loopers", "lost {plural} who went back and forth between two stages more than the loop threshold"),
    ("median hours since last event", "how long ago the lost {plural} were last seen, up to the end of the data"),
)


NOT_CONFIGURED = "not configured"


def pain_points_body(marts: Marts) -> str:
    """The ranked leak table (stages before the goal) with a bar chart of customers lost, and what happens after
    the goal (retention, never a leak)."""
    leaks, e = marts.leaks.sort_values("rank", kind="stable"), marts.entity
    support, surveys = configured(leaks, "support_share"), configured(leaks, "low_score_share")
    table = table_html(
        [
            ("rank", True),
            ("stage", False),
            (f"{e.plural} lost", True),
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
                fmt_pct(r.support_share) if support else NOT_CONFIGURED,
                fmt_pct(r.low_score_share) if surveys else NOT_CONFIGURED,
                fmt_int(r.loopers),
                fmt_hours(r.median_hours_since_last_event),
            ]
            for r in leaks.itertuples(index=False)
        ),
    )
    unset = {"contacted support": "" if support else " Not configured: the config names no support events "
             "(analysis.support_events), so this is unknown, not 0.",
             "low survey score": "" if surveys else " Not configured: the config names no surveys "
             "(analysis.surveys), so this is unknown, not 0."}
    defs = "".join(f"<dt>{esc(e.say(k))}</dt><dd>{esc(e.say(v) + unset.get(k, ''))}</dd>"
                   for k, v in _LEAK_DEFINITIONS)
    goal = marts.goal or "the goal stage"
    return f"""<p class="note">Where {e.plural} are lost: every stage before the goal ({esc(goal)}), ranked by the
{e.plural} whose journey got no further, with what they did last and what sets them apart. The bars are labelled
{e.plural} lost · share of those who reached the stage. {e.Plural} who stop at or after the goal have completed:
that is retention, shown below, never a leak.</p>
{chart_html(leaks_figure(leaks, data_when(marts), e), "leaks-chart")}
<h2>Leak table</h2>
{table}
<dl class="defs">{defs}</dl>
{_after_goal_html(marts, goal)}"""


def _after_goal_html(marts: Marts, goal: str) -> str:
    """The stages from the goal on: customers who completed and stopped there (retention), from stage_funnel."""
    e = marts.entity
    after = marts.stage_funnel[~marts.stage_funnel["before_goal"].fillna(True).astype(bool)]
    if len(after) < 2:  # the goal is the last stage: everyone who reached it completed, nothing more to say
        return ""
    table = table_html(
        [("stage", False), ("reached", True), ("completed and went no further", True), ("share of reached", True),
         ("went on to the next stage", True)],
        (
            [str(r.stage), fmt_int(r.reached), fmt_int(r.exited), fmt_pct(r.dropoff_rate),
             fmt_pct(r.conversion_to_next)]
            for r in after.itertuples(index=False)
        ),
    )
    return f"""<h2>After the goal: retention, not drop-off</h2>
<p class="note">Every {e.singular} here reached {esc(goal)} and is counted as converted. Stopping at a stage after it
means the {e.singular} did not go on to the next stage (churn or not yet), not that a purchase was lost.</p>
{table}"""


def emotion_body(marts: Marts) -> str:
    """The emotion curve with its intervals and the NPS/CSAT table, or why there is none."""
    curve = marts.emotion_curve
    if curve is None:
        return """<p class="empty">No surveys configured, so there is no emotion curve. Add the survey events
under <code>analysis.surveys</code> in the config (see docs/analysis/emotion.md) and the next run draws it.</p>"""
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
                NOT_CONFIGURED if missing(r.nps_responses) else fmt_num(r.nps, 0),
                NOT_CONFIGURED if missing(r.nps_responses) else fmt_int(r.nps_responses),
                NOT_CONFIGURED if missing(r.csat_responses) else fmt_num(r.csat_mean, 2),
                NOT_CONFIGURED if missing(r.csat_responses) else fmt_int(r.csat_responses),
                fmt_int(r.invalid_responses),
            ]
            for r in rows.itertuples(index=False)
        ),
    )
    return f"""<p class="note">Survey answers placed at the stage each {marts.entity.singular} was at when answering.
Scores are normalized to 0–1 (lowest to highest answer of each survey) so NPS and CSAT share one scale; the bars
are the 95% confidence interval of the mean (none with fewer than 2 answers). A stage without answers is
a gap. NPS = % promoters (9–10) − % detractors (0–6), on the raw 0–10 answers; CSAT = mean raw score.</p>
{chart_html(emotion_figure(rows, data_when(marts), marts.entity), "emotion-chart")}
<h2>Scores by stage</h2>
{table}"""


def attribution_body(marts: Marts) -> str:
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
    e = marts.entity
    off = (f"""<p class="note"><b>Sessions: not used</b> (sessions: off in the config). A {e.singular}'s journey
is one session, so a converter's path is one touch, the channel of its first event: the four models below give
every conversion to that channel and agree by construction.</p>
""" if marts.sessions_off else "")
    return f"""{off}<p class="note">Which channels bring the conversions. A touch is a session with a channel; each
model shares out the conversions among the channels of the converters' paths: <b>first touch</b> and
<b>last touch</b> give each conversion to one channel, <b>linear</b> splits it equally over the path's touches,
and the <b>Markov chain</b> model credits each channel by its removal effect (the share of conversions lost
if the channel were taken out of every path). Every model's credits add up to the same conversions.</p>
{chart_html(attribution_figure(a, data_when(marts)), "attribution-chart")}
<h2>Conversions credited per channel</h2>
{table}"""


def transitions_body(marts: Marts) -> str:
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
            (marts.entity.plural, True),
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
    when, e = data_when(marts), marts.entity
    return f"""<p class="note">Every {e.singular}'s collapsed stage path runs from (start) through its stages
to (end). In the network, stages sit in journey order; arcs above the line go forward, arcs below go back
to an earlier stage, and an exit to (end) is split in two: red arcs are the exits of {e.plural} who never
reached the goal (lost), green arcs those of {e.plural} who had reached it (completed: an exit after the goal is
not a loss). An arc's width is proportional to its transitions and the triangle on it points the way (hover it
for the figures). Under each stage: its exit probability split into lost and completed (they add up to it).
Probability = transitions on the edge / all transitions out of its <i>from</i> stage, so each row of the
matrix sums to 100% and its (end) column is the exit probability. Median hours: from the last event at the
<i>from</i> stage to the first event at the <i>to</i> stage.</p>
{chart_html(transition_network_figure(t, marts.stage_funnel, when, e), "network-chart", wide=True)}
{chart_html(transitions_figure(t, when, e), "transitions-chart", wide=True)}
<h2>Transition table</h2>
{table}"""


