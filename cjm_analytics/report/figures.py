"""The report's charts besides the Sankey and the network: each a pure function of mart rows to a plotly figure.

Every number drawn or written is a mart value or a share of two mart values of the same row or cohort.
Names from the data go through plotly_text: plotly.js reads a subset of HTML in every text it draws.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

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

TREND_DAYS = 90

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


def funnel_figure(funnel: pd.DataFrame, when: str = "") -> go.Figure:
    """Customers reaching each stage (a funnel) beside each stage's drop-off rate, both from stage_funnel."""
    heading = "Stage funnel: customers reaching each stage"
    if funnel.empty:
        return no_data_figure("No stages configured.", heading=heading, when=when)
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
    # One above the other, so that both read at any width (side by side they collide on a phone).
    n = len(stages)
    fig = make_subplots(
        rows=2,
        cols=1,
        row_heights=[0.64, 0.36],
        vertical_spacing=0.42 / max(n, 1) if n < 6 else 0.07,
        subplot_titles=(
            "reached · share of the first stage",
            "drop-off rate (stopped here / reached)",
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
            marker={"color": VERMILLION},
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


def transitions_figure(transitions: pd.DataFrame, when: str = "") -> go.Figure:
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


def trend_window(daily: pd.DataFrame, days: int = TREND_DAYS) -> pd.DataFrame:
    """The rows of stage_conversion_daily for the last `days` cohort dates up to the latest one."""
    if daily.empty:
        return daily
    dates = daily["cohort_date"].map(as_date)
    end = max(d for d in dates if d is not None)
    return daily[dates.map(lambda d: d is not None and d > end - timedelta(days=days))]


def trends_figure(daily: pd.DataFrame, days: int = TREND_DAYS) -> go.Figure:
    """New journeys per cohort date (bars) and the share of each cohort reaching each later stage (lines).

    From stage_conversion_daily, last `days` cohort dates: a cohort's journeys are `reached` at its first
    stage; the share at a stage is that stage's `reached` over them.
    """
    heading = "Daily cohorts: new journeys and the share reaching each stage"
    window = trend_window(daily, days)
    if window.empty:
        return no_data_figure("No journeys in this run.", heading=heading)
    window = window.assign(day=window["cohort_date"].map(as_date)).sort_values(["day", "stage_order"])
    stages = list(dict.fromkeys(window.sort_values("stage_order")["stage"].map(str)))
    colours = stage_colours(stages)
    first_order = window["stage_order"].min()
    first = window[window["stage_order"] == first_order].set_index("day")["reached"]
    days_shown = list(first.index)
    when = f"customers by cohort date (first stage event, UTC), {fmt_date_range(days_shown[0], days_shown[-1])}"

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.3, 0.7], vertical_spacing=0.06)
    fig.add_trace(
        go.Bar(
            name="new journeys",
            x=days_shown,
            y=[count(v) for v in first],
            marker={"color": "#9AA5B1"},
            customdata=[f"<b>{fmt_date(d)}</b><br>{fmt_int(v)} new journeys" for d, v in first.items()],
            hovertemplate="%{customdata}<extra></extra>",
            showlegend=False,
        ),
        row=1,
        col=1,
    )
    for stage in stages[1:]:
        rows = window[window["stage"].map(str) == stage].set_index("day")["reached"]
        shares = [share(rows.get(d), first.get(d)) for d in days_shown]
        fig.add_trace(
            go.Scatter(
                name=plotly_text(stage),
                x=days_shown,
                y=shares,
                mode="lines+markers",
                line={"color": colours[stage], "width": 2},
                marker={"size": 5},
                customdata=[
                    f"<b>{plotly_text(stage)}</b> · cohort of {fmt_date(d)}<br>"
                    f"{fmt_int(rows.get(d))} of {fmt_int(first.get(d))} journeys reached it ({fmt_pct(s)})"
                    for d, s in zip(days_shown, shares, strict=True)
                ],
                hovertemplate="%{customdata}<extra></extra>",
            ),
            row=2,
            col=1,
        )
    fig.update_yaxes(title={"text": "new journeys"}, rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title={"text": "share of the cohort"}, tickformat=".0%", rangemode="tozero", row=2, col=1)
    fig.update_xaxes(type="date", tickformat="%-d %b", hoverformat="%-d %b %Y", row=1, col=1)
    fig.update_xaxes(
        type="date", tickformat="%-d %b", hoverformat="%-d %b %Y", title={"text": "cohort date"}, row=2, col=1
    )
    fig.update_layout(
        template=TEMPLATE,
        height=560,
        hovermode="closest",
        margin={"l": 10, "r": 10, "t": 56, "b": 10},
        legend={"title": {"text": "reached: "}, "y": 1.02},
    )
    return with_title(fig, heading, when)


def leaks_figure(leaks: pd.DataFrame, when: str = "") -> go.Figure:
    """Customers lost at each stage (leaks.customers_lost), biggest leak on top, with its share of reached."""
    heading = "Pain points: customers lost at each stage"
    if leaks.empty:
        return no_data_figure("No stage before the last: nothing to lose.", heading=heading, when=when)
    ranked = leaks.sort_values("rank", kind="stable")
    stages = [plotly_text(s) for s in ranked["stage"]]
    hover = [
        f"<b>#{fmt_int(r.rank)} {plotly_text(r.stage)}</b><br>"
        f"customers lost: {fmt_int(r.customers_lost)} ({fmt_pct(r.share_of_reached)} of those reaching it)<br>"
        f"last touchpoint most often: {plotly_text(_or_dash(r.top_last_touchpoint))}<br>"
        f"highest lift: {plotly_text(_or_dash(r.top_lift_touchpoint))}<br>"
        f"contacted support: {fmt_pct(r.support_share)} · low survey score: {fmt_pct(r.low_score_share)}<br>"
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
        xaxis={"title": {"text": "customers lost (their furthest stage)"}, "rangemode": "tozero"},
        yaxis={"autorange": "reversed", "type": "category", "categoryorder": "array", "categoryarray": stages},
        showlegend=False,
    )
    return with_title(fig, heading, when)


def _or_dash(value: Any) -> str:
    return "—" if missing(value) else str(value)


def emotion_figure(curve: pd.DataFrame, when: str = "") -> go.Figure:
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
        f"NPS {fmt_num(r.nps, 0)} ({fmt_int(r.nps_responses)} answers)<br>"
        f"CSAT {fmt_num(r.csat_mean, 2)} ({fmt_int(r.csat_responses)} answers)<br>"
        f"invalid answers: {fmt_int(r.invalid_responses)}"
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
            "title": {"text": "stage the customer was at when answering"},
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
