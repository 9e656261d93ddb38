"""The report's charts besides the Sankey and the network: each a pure function of mart rows to a plotly figure.

Every number drawn or written is a mart value or a share of two mart values of the same row or cohort.
Names from the data go through plotly_text: plotly.js reads a subset of HTML in every text it draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from cjm_analytics.names import CUSTOMERS, Entity
from cjm_analytics.report.formatting import (
    as_date,
    count,
    fmt_date,
    fmt_date_range,
    fmt_hours,
    fmt_int,
    fmt_num,
    fmt_pct,
    missing,
    number,
    plotly_text,
    share,
)
from cjm_analytics.report.theme import (
    BLUE,
    GREEN,
    MUTED_TEXT,
    ORANGE,
    SKY,
    TEMPLATE,
    VERMILLION,
    stage_colours,
    with_title,
)

# Trends: the finest grain whose bins over the whole history are at most this many, and hold a median of at least
# MIN_BIN_JOURNEYS journeys (fewer jump between 0% and 100%); months beyond, the latest MAX_TREND_BINS["month"]
# months shown (10 years).
MAX_TREND_BINS = {"day": 92, "week": 106, "month": 120}
MIN_BIN_JOURNEYS = 20

# channel_attribution's models, in the order of docs/analysis/attribution.md.
ATTRIBUTION_MODELS = (
    ("first_touch", "first touch", SKY),
    ("last_touch", "last touch", BLUE),
    ("linear", "linear", ORANGE),
    ("markov", "Markov chain", GREEN),
)


def no_data_figure(message: str, height: int = 320, heading: str = "", when: str = "") -> go.Figure:
    """A chart-sized message where a chart has nothing to draw."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_layout(height=height, xaxis={"visible": False}, yaxis={"visible": False}, template=TEMPLATE)
    return with_title(fig, heading, when) if heading else fig


def funnel_figure(funnel: pd.DataFrame, when: str = "", entity: Entity = CUSTOMERS) -> go.Figure:
    """Customers reaching each stage (a funnel) beside each stage's drop-off rate, both from stage_funnel; from the
    goal on (before_goal false) the rate is of customers who completed and went no further, drawn green."""
    heading = f"Stage funnel: {entity.plural} reaching each stage"
    if funnel.empty:
        return no_data_figure("No stages configured.", heading=heading, when=when)
    stages = [plotly_text(s) for s in funnel["stage"]]
    # Stopping at or after the goal is completing: never drawn or named as a drop-off.
    before_goal = [bool(v) for v in funnel["before_goal"]]
    hover = [
        f"<b>{plotly_text(r.stage)}</b> (stage {fmt_int(r.stage_order)})<br>"
        f"reached: {fmt_int(r.reached)} {entity.plural}<br>"
        f"stopped here: {fmt_int(r.exited)}"
        f"{' (lost before the goal)' if r.before_goal else ' (completed: reached the goal, went no further)'}<br>"
        f"{'drop-off rate' if r.before_goal else 'stopped after completing'}: {fmt_pct(r.dropoff_rate)}<br>"
        f"conversion to next stage: {fmt_pct(r.conversion_to_next)}<br>"
        f"conversion from first stage: {fmt_pct(r.conversion_from_first)}"
        for r in funnel.itertuples(index=False)
    ]
    # One above the other, so that both read at any width (side by side they collide on a phone).
    n = len(stages)
    fig = make_subplots(
        rows=2,
        cols=1,
        row_heights=[0.64, 0.36],
        vertical_spacing=0.42 / max(n, 1) if n < 6 else 0.07,
        subplot_titles=(
            "reached · share of the first stage",
            # Short enough for a phone: the page's note and the hover say more.
            "stopped here / reached · red: lost · green: completed",
        ),
    )
    fig.add_trace(
        go.Funnel(
            name="reached",
            y=stages,
            x=[count(v) for v in funnel["reached"]],
            text=[
                f"{fmt_int(r.reached)} · {fmt_pct(r.conversion_from_first)}" for r in funnel.itertuples(index=False)
            ],
            textinfo="text",
            textposition="auto",
            cliponaxis=False,
            marker={"color": BLUE},
            connector={"fillcolor": "#D6E6F2", "line": {"width": 0}},
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
            x=[number(v) for v in funnel["dropoff_rate"]],
            text=[
                fmt_pct(v) if not missing(v) else "(last stage)" if i == len(funnel) - 1 else "—"
                for i, v in enumerate(funnel["dropoff_rate"])
            ],
            textposition="outside",
            cliponaxis=False,
            marker={"color": [VERMILLION if lost else GREEN for lost in before_goal]},
            customdata=hover,
            hovertemplate="%{customdata}<extra></extra>",
        ),
        row=2,
        col=1,
    )
    for annotation in fig.layout.annotations:  # the subplot titles
        annotation.update(font={"size": 12, "color": MUTED_TEXT}, x=0, xanchor="left")
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False, row=1, col=1)
    fig.update_xaxes(tickformat=".0%", rangemode="tozero", showgrid=True, row=2, col=1)
    fig.update_yaxes(autorange="reversed", categoryorder="array", categoryarray=stages, automargin=True)
    fig.update_layout(
        template=TEMPLATE,
        height=120 + 62 * n,
        showlegend=False,
        margin={"l": 10, "r": 48, "t": 32, "b": 30},
    )
    return with_title(fig, heading, when)


def transitions_figure(transitions: pd.DataFrame, when: str = "", entity: Entity = CUSTOMERS) -> go.Figure:
    """The stage graph as a matrix: transition probability from each row's stage to each column's stage."""
    heading = "Transition probabilities between stages"
    if transitions.empty:
        return no_data_figure("No transitions in this run.", heading=heading, when=when)
    from_nodes = list(dict.fromkeys(transitions.sort_values(["from_order", "from_stage"])["from_stage"]))
    to_nodes = list(dict.fromkeys(transitions.sort_values(["to_order", "to_stage"])["to_stage"]))
    z: list[list[float | None]] = [[None] * len(to_nodes) for _ in from_nodes]
    text: list[list[str]] = [[""] * len(to_nodes) for _ in from_nodes]
    hover: list[list[str]] = [[""] * len(to_nodes) for _ in from_nodes]
    for r in transitions.itertuples(index=False):
        i, j = from_nodes.index(r.from_stage), to_nodes.index(r.to_stage)
        z[i][j] = number(r.probability)
        text[i][j] = fmt_pct(r.probability, 0)
        hover[i][j] = (
            f"<b>{plotly_text(r.from_stage)}</b> → <b>{plotly_text(r.to_stage)}</b><br>"
            f"probability: {fmt_pct(r.probability)}<br>"
            f"transitions: {fmt_int(r.transitions)}<br>"
            f"{entity.plural}: {fmt_int(r.customers)}<br>"
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
            colorscale="Blues",  # one hue, light to dark: readable with any colour vision
            zmin=0,
            zmax=1,
            xgap=2,
            ygap=2,
            colorbar={"title": {"text": "probability"}, "tickformat": ".0%", "thickness": 12},
        )
    )
    fig.update_layout(
        template=TEMPLATE,
        height=max(360, 170 + 44 * len(from_nodes)),
        margin={"l": 10, "r": 10, "t": 46, "b": 10},
        xaxis={"title": {"text": "to stage"}, "side": "top", "type": "category", "showgrid": False},
        yaxis={"title": {"text": "from stage"}, "autorange": "reversed", "type": "category", "showgrid": False},
    )
    return with_title(fig, heading, when)


@dataclass(frozen=True)
class TrendBins:
    """stage_conversion_daily summed into bins of one grain, the window shown, and which bins are still maturing.

    rows: DataFrame(bin, stage, stage_order, reached, matured), one row per bin and stage, in bin order; reached is
    the exact sum of the bin's cohort dates; a bin is matured when every cohort date in it is (see trend_bins).
    """

    grain: Literal["day", "week", "month"]
    rows: pd.DataFrame
    bins_in_history: int  # bins from the first cohort date to the last
    bins_in_window: int  # of those, the latest ones shown (some may hold no cohort)
    first_day: date  # the first and last cohort date shown
    last_day: date
    journeys_left_out: int  # journeys of the cohorts before the window
    p90_hours_to_convert: float | None  # the maturity horizon the mart used (None: no conversion yet)

    @property
    def bins(self) -> list[date]:
        return list(dict.fromkeys(self.rows["bin"]))

    @property
    def maturing(self) -> list[date]:
        first = self.rows[self.rows["stage_order"] == self.rows["stage_order"].min()]
        return [b for b, m in zip(first["bin"], first["matured"], strict=True) if not m]

    def label(self, start: date) -> str:
        """A bin as the page names it: `5 Mar 2024`, `week of 4 Mar 2024`, `Mar 2024`."""
        return {"day": fmt_date(start), "week": f"week of {fmt_date(start)}", "month": f"{start:%b %Y}"}[self.grain]

    def window_text(self) -> str:
        """The rule in words, for the page and the chart."""
        unit = {"day": "days", "week": "weeks (from Monday)", "month": "months"}[self.grain]
        shown = self.bins_in_window
        if shown < self.bins_in_history:
            return (f"by {unit}, the last {shown} of {self.bins_in_history} {unit.split()[0]} of history"
                    f" ({fmt_int(self.journeys_left_out)} journeys of earlier cohorts are in the mart, not drawn)")
        return f"by {unit}, the whole history ({shown} {self.grain if shown == 1 else unit.split()[0]})"


def _bin_start(day: date, grain: str) -> date:
    if grain == "week":
        return day - timedelta(days=day.weekday())
    if grain == "month":
        return day.replace(day=1)
    return day


def _bins_between(first: date, last: date, grain: str) -> int:
    if grain == "day":
        return (last - first).days + 1
    if grain == "week":
        return (_bin_start(last, "week") - _bin_start(first, "week")).days // 7 + 1
    return (last.year - first.year) * 12 + last.month - first.month + 1


def choose_grain(first: date, last: date, journeys_per_day: pd.Series) -> Literal["day", "week", "month"]:
    """The finest grain that fits the span (at most MAX_TREND_BINS[grain] bins) and the size (a median of at least
    MIN_BIN_JOURNEYS journeys per bin that has any); months when nothing finer does."""
    for grain in ("day", "week"):
        if _bins_between(first, last, grain) > MAX_TREND_BINS[grain]:
            continue
        per_bin = journeys_per_day.groupby([_bin_start(d, grain) for d in journeys_per_day.index]).sum()
        if per_bin.median() >= MIN_BIN_JOURNEYS:
            return grain
    return "month"


def trend_bins(daily: pd.DataFrame) -> TrendBins | None:
    """stage_conversion_daily binned by day, week or month to fit the data's span and size (choose_grain), over the
    whole history up to MAX_TREND_BINS bins (the latest ones). A bin is still maturing when any of its cohort
    dates is (the mart's `matured`: the cohort has not yet had the p90 time to convert); None without journeys."""
    if daily.empty:
        return None
    days = daily.assign(day=daily["cohort_date"].map(as_date))
    first_order = days["stage_order"].min()
    per_day = days[days["stage_order"] == first_order].groupby("day")["reached"].sum()
    first, last = min(per_day.index), max(per_day.index)
    grain = choose_grain(first, last, per_day)
    days["bin"] = days["day"].map(lambda d: _bin_start(d, grain))
    # A missing flag (no conversion to measure) is matured: there is nothing to wait for.
    days["matured"] = days["matured"].map(lambda m: True if missing(m) else bool(m))
    rows = (
        days.groupby(["bin", "stage", "stage_order"], as_index=False, sort=True)
        .agg(reached=("reached", "sum"), matured=("matured", "all"))
        .sort_values(["bin", "stage_order"], kind="stable")
        .reset_index(drop=True)
    )
    history = _bins_between(first, last, grain)
    start = _bin_start(last, grain)
    for _ in range(min(history, MAX_TREND_BINS[grain]) - 1):  # back to the first bin of the window
        start = _bin_start(start - timedelta(days=1), grain)
    shown = rows[rows["bin"] >= start].reset_index(drop=True)
    inside = [d for d in per_day.index if d >= start]
    left_out = int(per_day[[d < start for d in per_day.index]].sum())
    p90s = days["p90_hours_to_convert"].dropna()
    return TrendBins(grain, shown, history, min(history, MAX_TREND_BINS[grain]), min(inside), max(inside), left_out,
                     None if p90s.empty else number(p90s.iloc[0]))


def trends_figure(daily: pd.DataFrame, entity: Entity = CUSTOMERS) -> go.Figure:
    """New journeys per cohort bin (bars) and the share of each cohort reaching each later stage (lines).

    From stage_conversion_daily binned by trend_bins: a bin's journeys are `reached` at its first stage; the share
    at a stage is that stage's `reached` over them. Bins still maturing are hollow bars and a dotted, hollow-marked
    continuation of each line, so that their lower shares do not read as falling conversion.
    """
    heading = "Cohorts: new journeys and the share reaching each stage"
    binned = trend_bins(daily)
    if binned is None:
        return no_data_figure("No journeys in this run.", heading=heading)
    rows = binned.rows
    stages = list(dict.fromkeys(rows.sort_values("stage_order")["stage"].map(str)))
    colours = stage_colours(stages)
    first_order = rows["stage_order"].min()
    first = rows[rows["stage_order"] == first_order].set_index("bin")["reached"]
    bins = list(first.index)
    maturing = set(binned.maturing)
    when = (f"{entity.plural} by cohort (first stage event, UTC), {binned.window_text()}: "
            f"{fmt_date_range(binned.first_day, binned.last_day)}")
    ticks = {"day": "%-d %b", "week": "%-d %b", "month": "%b %Y"}[binned.grain]
    still = " · still maturing"

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.3, 0.7], vertical_spacing=0.06)
    fig.add_trace(
        go.Bar(
            name="new journeys",
            x=bins,
            y=[count(v) for v in first],
            marker={
                "color": ["#ffffff" if b in maturing else "#9AA5B1" for b in bins],
                "line": {"color": "#9AA5B1", "width": 1},
            },
            customdata=[
                f"<b>{binned.label(b)}</b>{still if b in maturing else ''}<br>{fmt_int(v)} new journeys"
                for b, v in first.items()
            ],
            hovertemplate="%{customdata}<extra></extra>",
            showlegend=False,
        ),
        row=1,
        col=1,
    )
    matured_bins = [b for b in bins if b not in maturing]
    # The dotted part starts at the last matured bin, so that it continues the solid line.
    dotted_bins = ([matured_bins[-1]] if matured_bins and maturing else []) + [b for b in bins if b in maturing]
    for stage in stages[1:]:
        reached = rows[rows["stage"].map(str) == stage].set_index("bin")["reached"]

        def hover(b: date, stage: str = stage, reached: pd.Series = reached) -> str:
            return (
                f"<b>{plotly_text(stage)}</b> · cohort of {binned.label(b)}{still if b in maturing else ''}<br>"
                f"{fmt_int(reached.get(b))} of {fmt_int(first.get(b))} journeys reached it"
                f" ({fmt_pct(share(reached.get(b), first.get(b)))})"
            )

        for part, xs in (("matured", matured_bins), ("maturing", dotted_bins)):
            if not xs:
                continue
            fig.add_trace(
                go.Scatter(
                    name=plotly_text(stage),
                    legendgroup=plotly_text(stage),
                    showlegend=part == "matured" or not matured_bins,
                    x=xs,
                    y=[share(reached.get(b), first.get(b)) for b in xs],
                    mode="lines+markers",
                    line={"color": colours[stage], "width": 2, "dash": "solid" if part == "matured" else "dot"},
                    marker={
                        "size": 5 if part == "matured" else 7,
                        "color": colours[stage] if part == "matured" else "#ffffff",
                        "line": {"color": colours[stage], "width": 1.5},
                    },
                    customdata=[hover(b) for b in xs],
                    hovertemplate="%{customdata}<extra></extra>",
                    meta=part,
                ),
                row=2,
                col=1,
            )
    if maturing:  # one legend entry says what the dotted, hollow parts are (an exported picture has no page note)
        fig.add_trace(
            go.Scatter(
                name="still maturing",
                x=[None],
                y=[None],
                mode="lines+markers",
                line={"color": MUTED_TEXT, "width": 2, "dash": "dot"},
                marker={"size": 7, "color": "#ffffff", "line": {"color": MUTED_TEXT, "width": 1.5}},
                hoverinfo="skip",
                meta="legend",
            ),
            row=2,
            col=1,
        )
    fig.update_yaxes(title={"text": "new journeys"}, rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title={"text": "share of the cohort"}, tickformat=".0%", rangemode="tozero", row=2, col=1)
    fig.update_xaxes(type="date", tickformat=ticks, hoverformat="%-d %b %Y", row=1, col=1)
    fig.update_xaxes(
        type="date", tickformat=ticks, hoverformat="%-d %b %Y", title={"text": f"cohort {binned.grain}"}, row=2, col=1
    )
    fig.update_layout(
        template=TEMPLATE,
        height=560,
        hovermode="closest",
        margin={"l": 10, "r": 10, "t": 56, "b": 10},
        legend={"title": {"text": "reached: "}, "y": 1.02},
    )
    return with_title(fig, heading, when)


def configured(leaks: pd.DataFrame, column: str) -> bool:
    """Whether a leak mark's input (support events, surveys) is configured: without it the mart holds NULL in every
    row. A share of no customers lost is NULL too, so only the rows that lost someone tell."""
    lost = leaks["customers_lost"].fillna(0) > 0
    return bool(leaks.loc[lost, column].notna().any()) or not bool(lost.any())


def leaks_figure(leaks: pd.DataFrame, when: str = "", entity: Entity = CUSTOMERS) -> go.Figure:
    """Customers lost at each stage before the goal (leaks.customers_lost), biggest leak on top, with its share of
    reached; a mark whose input is not configured says so, never 0."""
    heading = f"Pain points: {entity.plural} lost at each stage before the goal"
    if leaks.empty:
        return no_data_figure("No stage before the goal: nothing to lose.", heading=heading, when=when)
    support, surveys = configured(leaks, "support_share"), configured(leaks, "low_score_share")
    ranked = leaks.sort_values("rank", kind="stable")
    stages = [plotly_text(s) for s in ranked["stage"]]
    hover = [
        f"<b>#{fmt_int(r.rank)} {plotly_text(r.stage)}</b><br>"
        f"{entity.plural} lost: {fmt_int(r.customers_lost)} ({fmt_pct(r.share_of_reached)} of those reaching it)<br>"
        f"last touchpoint most often: {plotly_text(_or_dash(r.top_last_touchpoint))}<br>"
        f"highest lift: {plotly_text(_or_dash(r.top_lift_touchpoint))}<br>"
        f"contacted support: {fmt_pct(r.support_share) if support else 'not configured'} · "
        f"low survey score: {fmt_pct(r.low_score_share) if surveys else 'not configured'}<br>"
        f"loopers: {fmt_int(r.loopers)} · median hours since last event: {fmt_hours(r.median_hours_since_last_event)}"
        for r in ranked.itertuples(index=False)
    ]
    fig = go.Figure(
        go.Bar(
            orientation="h",
            y=stages,
            x=[count(v) for v in ranked["customers_lost"]],
            text=[
                f"{fmt_int(r.customers_lost)} · {fmt_pct(r.share_of_reached)}" for r in ranked.itertuples(index=False)
            ],
            textposition="outside",
            cliponaxis=False,
            marker={"color": VERMILLION},
            customdata=hover,
            hovertemplate="%{customdata}<extra></extra>",
        )
    )
    fig.update_layout(
        template=TEMPLATE,
        height=max(300, 140 + 44 * len(stages)),
        margin={"l": 10, "r": 90, "t": 26, "b": 10},
        xaxis={"title": {"text": f"{entity.plural} lost (their furthest stage)"}, "rangemode": "tozero"},
        yaxis={"autorange": "reversed", "type": "category", "categoryorder": "array", "categoryarray": stages},
        showlegend=False,
    )
    return with_title(fig, heading, when)


def _or_dash(value: Any) -> str:
    return "—" if missing(value) else str(value)


def emotion_figure(curve: pd.DataFrame, when: str = "", entity: Entity = CUSTOMERS) -> go.Figure:
    """Mean normalized survey score per stage in journey order, with its 95% interval as error bars.

    From emotion_curve; a stage without answers is a gap (no line through it) and has no interval.
    """
    heading = "Emotion curve: mean survey score at each stage"
    rows = curve.sort_values("stage_order", kind="stable")
    if rows.empty:
        return no_data_figure("No stages configured.", heading=heading, when=when)
    stages = [plotly_text(s) for s in rows["stage"]]
    means = [number(v) for v in rows["mean_score"]]
    highs = [number(v) for v in rows["ci_high"]]
    lows = [number(v) for v in rows["ci_low"]]
    above = [None if m is None or h is None else h - m for m, h in zip(means, highs, strict=True)]
    below = [None if m is None or lo is None else m - lo for m, lo in zip(means, lows, strict=True)]
    hover = [
        f"<b>{plotly_text(r.stage)}</b><br>"
        f"{fmt_int(r.responses)} answers · mean {fmt_num(r.mean_score, 2)}"
        f" (95% CI {fmt_num(r.ci_low, 2)}–{fmt_num(r.ci_high, 2)})<br>"
        + ("NPS not configured<br>" if missing(r.nps_responses)
           else f"NPS {fmt_num(r.nps, 0)} ({fmt_int(r.nps_responses)} answers)<br>")
        + ("CSAT not configured<br>" if missing(r.csat_responses)
           else f"CSAT {fmt_num(r.csat_mean, 2)} ({fmt_int(r.csat_responses)} answers)<br>")
        + f"invalid answers: {fmt_int(r.invalid_responses)}"
        for r in rows.itertuples(index=False)
    ]
    fig = go.Figure(
        go.Scatter(
            name="mean score",
            x=stages,
            y=means,
            mode="lines+markers+text",
            connectgaps=False,
            line={"color": BLUE, "width": 2},
            marker={"size": 10, "color": BLUE},
            error_y={
                "type": "data",
                "symmetric": False,
                "array": above,
                "arrayminus": below,
                "color": BLUE,
                "thickness": 1.5,
                "width": 6,
            },
            text=["" if m is None else f"n={fmt_int(n)}" for m, n in zip(means, rows["responses"], strict=True)],
            textposition="middle right",
            textfont={"color": MUTED_TEXT, "size": 11},
            customdata=hover,
            hovertemplate="%{customdata}<extra></extra>",
        )
    )
    for stage, mean in zip(stages, means, strict=True):
        if mean is None:
            fig.add_annotation(
                x=stage, y=0.02, text="no answers", showarrow=False, yanchor="bottom", font={"color": MUTED_TEXT}
            )
    fig.update_layout(
        template=TEMPLATE,
        height=440,
        margin={"l": 10, "r": 10, "t": 26, "b": 10},
        xaxis={
            "title": {"text": f"stage the {entity.singular} was at when answering"},
            "type": "category",
            "categoryorder": "array",
            "categoryarray": stages,
        },
        yaxis={"title": {"text": "mean score (0 = lowest, 1 = highest)"}, "range": [0, 1.05]},
        showlegend=False,
    )
    return with_title(fig, heading, when)


def attribution_figure(attribution: pd.DataFrame, when: str = "") -> go.Figure:
    """Conversions credited to each channel (channel_attribution), one bar per model, channels as in the mart."""
    heading = "Channel attribution: conversions credited to each channel, by model"
    if attribution.empty:
        return no_data_figure("No conversion has a channel to credit.", heading=heading, when=when)
    channels = [plotly_text(c) for c in attribution["channel"]]
    fig = go.Figure(
        [
            go.Bar(
                name=label,
                x=channels,
                y=[number(v) for v in attribution[column]],
                marker={"color": colour},
                customdata=[
                    f"<b>{c}</b> · {label}<br>{fmt_num(v, 1)} conversions credited" for c, v in zip(
                        channels, attribution[column], strict=True)
                ],
                hovertemplate="%{customdata}<extra></extra>",
            )
            for column, label, colour in ATTRIBUTION_MODELS
        ]
    )
    fig.update_layout(
        template=TEMPLATE,
        barmode="group",
        bargap=0.25,
        height=460,
        margin={"l": 10, "r": 10, "t": 46, "b": 10},
        xaxis={"title": {"text": "channel (sorted by Markov credit)"}, "type": "category"},
        yaxis={"title": {"text": "conversions credited"}, "rangemode": "tozero"},
        legend={"y": 1.02},
    )
    return with_title(fig, heading, when)
