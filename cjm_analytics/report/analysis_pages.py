"""The pages of `cjm analyze`: each analysis's chart, a pure function of its table, and the page that shows both.

The charts take the report's look (theme.TEMPLATE: the colour-blind-safe palette, vermillion for customers
lost) but not its figures: the nightly figures draw the marts with hover text built in Python, these draw any
table a command returns and keep every name in its own field (tests/test_analysis_escaping.py).

Charts on the page are plotly figures, and plotly.js reads a subset of HTML in every text it draws: a name
from the data (a channel, event, stage, segment value, touchpoint, or a step given on the command line)
reaches a figure only through plotly_names or the report's plotly_text, as in the nightly report
(tests/test_analysis_escaping.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import plotly.graph_objects as go

from cjm_analytics.report import plotly_text, table_page, write_page
from cjm_analytics.report.figures import ATTRIBUTION_MODELS
from cjm_analytics.report.formatting import missing
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


def ordered_funnel_figure(table: pd.DataFrame) -> go.Figure:
    """Funnel bars of customers per step; grouped bars of conversion from the first step per segment."""
    if "segment" in table.columns:
        return grouped_bars(table, "step_name", "conversion_from_first", "share of step-1 customers")
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


def paths_figure(df: pd.DataFrame, title: str, coverage: bool = False) -> go.Figure:
    """Horizontal bars of customers per path (most common on top), with the cumulative coverage as a line.

    The title is plain text (it may hold a step from the command line): it is escaped here.
    """
    shown = df.iloc[::-1]
    paths = plotly_names(shown["path"])
    fig = go.Figure(go.Bar(x=shown["customers"], y=paths, orientation="h", name="customers"))
    if coverage:
        fig.add_trace(go.Scatter(x=shown["cumulative_share"], y=paths, mode="lines+markers",
                                 name="cumulative share of all paths", xaxis="x2"))
        # Its own ticks: by default an overlaying axis syncs its ticks to the customer axis' grid.
        fig.update_layout(xaxis2={"overlaying": "x", "side": "top", "range": [0, 1], "tickformat": ".0%",
                                  "tickmode": "linear", "tick0": 0, "dtick": 0.2, "showgrid": False,
                                  "title": "cumulative share"})
    fig.update_layout(template=TEMPLATE, title=plotly_text(title), xaxis_title="customers",
                      height=max(320, 28 * len(df) + 160), legend=LEGEND_BELOW)
    return fig


def pain_points_figure(df: pd.DataFrame) -> go.Figure:
    """Customers lost per stage, biggest leak first, labelled with the share of those who reached it."""
    fig = go.Figure(go.Bar(
        x=plotly_names(df["stage"]), y=df["customers_lost"], name="customers lost", marker={"color": VERMILLION},
        text=[f"{s:.0%} of reached" if pd.notna(s) else "" for s in df["share_of_reached"]],
        # Substituted into the hover template as they are: plotly text, like every name.
        customdata=df[["top_last_touchpoint", "top_lift_touchpoint"]].fillna("-").apply(plotly_names).to_numpy(),
        hovertemplate="%{x}: %{y} lost<br>last touchpoint: %{customdata[0]}<br>"
                      "highest lift: %{customdata[1]}<extra></extra>",
    ))
    fig.update_layout(template=TEMPLATE, title="Where customers leave the funnel",
                      xaxis_title="stage (biggest leak first)", yaxis_title="customers lost")
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


def drivers_figure(df: pd.DataFrame) -> go.Figure:
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
                      "customers), without: %{customdata[1]:.1%}<br>q = %{customdata[3]:.3g}<extra></extra>",
    ))
    fig.add_vline(x=1, line={"color": GREY, "dash": "dot"})
    fig.update_layout(template=TEMPLATE, title="Odds of converting with the candidate against without it",
                      xaxis={"type": "log", "title": "odds ratio (95% interval), log scale"},
                      height=max(320, 26 * len(shown) + 160), margin={"l": 220})
    return fig


def _summary(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
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
) -> Path:
    """reports/<name>.html: the question, an optional chart and the table."""
    page = table_page(site_title=site_title, page_title=title, summary=_summary(con), intro=intro,
                      table=table, figure=figure)
    return write_page(reports, f"{name}.html", page)
