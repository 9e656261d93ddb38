"""The charts of `cjm analyze time-to-next` and `cjm analyze audience`: pure functions of the tables they return.

Names from the data (stages, touchpoints) reach a figure only through plotly_names, as on every analysis page
(report/analysis_pages.py, tests/test_analysis_escaping.py).
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from cjm_analytics.names import CUSTOMERS, Entity
from cjm_analytics.report.analysis_pages import plotly_names
from cjm_analytics.report.theme import STAGE_COLOURS, TEMPLATE

AUDIENCE_TOUCHPOINTS_SHOWN = 15  # the most common last touchpoints; the table has every customer


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def time_to_next_figure(curve: pd.DataFrame) -> go.Figure:
    """Per stage, the Kaplan–Meier share who moved on within d days as a step line, with its 95% band."""
    fig = go.Figure()
    for i, (_, rows) in enumerate(curve.groupby("stage_order", sort=True)):
        colour = STAGE_COLOURS[i % len(STAGE_COLOURS)]
        label = plotly_names(rows["from_stage"]).iloc[0] + " → " + plotly_names(rows["to_stage"]).iloc[0]
        band = rows.dropna(subset=["ci_low", "ci_high"])
        # The band: upper edge, then the lower edge filled up to it (no hover: the line carries the numbers).
        fig.add_scatter(x=band["day"], y=band["ci_high"], mode="lines", line={"width": 0, "shape": "hv"},
                        hoverinfo="skip", showlegend=False)
        fig.add_scatter(x=band["day"], y=band["ci_low"], mode="lines", line={"width": 0, "shape": "hv"},
                        fill="tonexty", fillcolor=_rgba(colour, 0.18), hoverinfo="skip", showlegend=False)
        fig.add_scatter(x=rows["day"], y=rows["km_conversion"], mode="lines+markers", name=label,
                        line={"color": colour, "shape": "hv"}, marker={"size": 5},
                        customdata=rows[["at_risk", "events", "censored"]].to_numpy(),
                        hovertemplate="day %{x}: %{y:.1%} moved on<br>at risk %{customdata[0]}, moved on "
                                      "%{customdata[1]}, censored %{customdata[2]}<extra></extra>")
    fig.update_layout(template=TEMPLATE, xaxis_title="days since reaching the stage",
                      yaxis_title="moved on within (Kaplan–Meier)", margin={"t": 30})
    fig.update_yaxes(tickformat=".0%", rangemode="tozero")
    return fig


def audience_figure(table: pd.DataFrame, entity: Entity = CUSTOMERS) -> go.Figure:
    """The audience by last touchpoint: customers per touchpoint, the most common on top."""
    counts = (table.assign(touchpoint=table["last_touchpoint"].fillna("(none)"))
              .groupby("touchpoint", sort=False).size().sort_values(ascending=False, kind="stable")
              .head(AUDIENCE_TOUCHPOINTS_SHOWN).iloc[::-1])
    fig = go.Figure(go.Bar(x=counts.to_numpy(), y=plotly_names(pd.Series(counts.index)), orientation="h",
                           name=entity.plural, hovertemplate=f"%{{y}}: %{{x}} {entity.plural}<extra></extra>"))
    fig.update_layout(template=TEMPLATE, xaxis_title=entity.plural, yaxis_title="last touchpoint",
                      margin={"t": 30})
    return fig
