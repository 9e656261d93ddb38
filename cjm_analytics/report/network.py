"""The stage-transition graph (stage_transitions) drawn as a network: an arc diagram over the stages in order.

Stages sit on one line in journey order, from (start) on the left to (end) on the right. Each edge is an
arc whose width is proportional to its transitions: arcs above the line go forward (to a later stage or to
(end)), arcs below go back to an earlier stage. A triangle at the middle of each arc points the way and
carries the edge's figures on hover. An exit (an edge to (end)) is drawn as two arcs: the exits of customers
who never reached the goal are red (lost), those of customers who had reached it bluish green (completed: an
exit after the goal is not a loss). Each stage is labelled with its exit probability (the probability of its
edge to (end)), split into lost and completed; the split adds up to it.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go

from cjm_analytics.names import CUSTOMERS, Entity
from cjm_analytics.report.figures import no_data_figure
from cjm_analytics.report.formatting import count, fmt_hours, fmt_int, fmt_pct, number, plotly_text
from cjm_analytics.report.theme import (
    BLUE,
    END,
    GREEN,
    GREY,
    INK,
    MUTED_TEXT,
    PURPLE,
    START,
    TEMPLATE,
    VERMILLION,
    rgba,
    stage_colours,
    with_title,
)

MAX_WIDTH = 18.0  # px, the busiest edge
MIN_WIDTH = 0.75  # px, so that the smallest edge is still drawn
EDGE_ALPHA = 0.55
PX_PER_UNIT = 210  # vertical pixels per unit of arc height
FORWARD, BACK, EXIT, COMPLETED_EXIT = BLUE, PURPLE, VERMILLION, GREEN
COMPLETED_APEX = 0.8  # a completed exit's arc is lower than the lost exits' arc of the same stage


def _apex(span: int) -> float:
    """Height of an arc over `span` stages (its control point is twice as high)."""
    return 0.16 + 0.2 * (span - 1)


def edge_width(transitions: int, busiest: int) -> float:
    """Line width of an edge, proportional to its transitions (the busiest edge is MAX_WIDTH)."""
    return max(MIN_WIDTH, MAX_WIDTH * transitions / busiest) if busiest > 0 else MIN_WIDTH


def _exit_split(exit_edge: Any) -> tuple[float, float]:
    """A stage's exit probability split into its lost and completed parts (they add up to it)."""
    probability = number(exit_edge.probability) or 0.0
    transitions = count(exit_edge.transitions)
    completed = count(exit_edge.converted_transitions) / transitions if transitions else 0.0
    return probability * (1 - completed), probability * completed


def _exit_line(kind: str, n: int, transitions: int, probability: Any, entity: Entity = CUSTOMERS) -> str:
    part = (number(probability) or 0.0) * n / transitions if transitions else 0.0
    what = (f"lost: these {entity.plural} never reached the goal" if kind == "lost"
            else f"completed: these {entity.plural} had reached the goal (not a loss)")
    return f"{what}<br>{fmt_int(n)} of the exits, {fmt_pct(part)} of the transitions out of the stage"


def transition_network_figure(
    transitions: pd.DataFrame, funnel: pd.DataFrame | None = None, when: str = "", entity: Entity = CUSTOMERS
) -> go.Figure:
    """Stages as nodes in stage order, edges as arcs (width = transitions), exit probability on each stage."""
    heading = "Stage transitions as a network"
    if transitions.empty:
        return no_data_figure("No transitions in this run.", heading=heading, when=when)

    orders: dict[str, int] = {}
    for r in transitions.itertuples(index=False):
        orders.setdefault(str(r.from_stage), count(r.from_order))
        orders.setdefault(str(r.to_stage), count(r.to_order))
    nodes = sorted(orders, key=lambda n: (orders[n], n))
    x = {name: float(i) for i, name in enumerate(nodes)}  # evenly spaced, in stage order
    colours = stage_colours([n for n in nodes if n not in (START, END)])
    exits = {str(r.from_stage): r for r in transitions.itertuples(index=False) if str(r.to_stage) == END}
    reached = {} if funnel is None else {str(r.stage): r.reached for r in funnel.itertuples(index=False)}
    busiest = max(count(v) for v in transitions["transitions"])

    shapes: list[dict[str, Any]] = []
    mid_x: list[float] = []
    mid_y: list[float] = []
    symbols: list[str] = []
    mid_colours: list[str] = []
    hovers: list[str] = []
    top = bottom = 0.0
    # One arc per edge, two per exit (lost, completed); widest first, so that thin arcs are drawn on top.
    arcs: list[tuple[str, str, int, str, str]] = []  # from, to, transitions, kind (move, lost, completed), hover
    for r in transitions.itertuples(index=False):
        a, b = str(r.from_stage), str(r.to_stage)
        header = (
            f"<b>{plotly_text(a)}</b> → <b>{plotly_text(b)}</b><br>"
            f"transitions: {fmt_int(r.transitions)} ({fmt_int(r.customers)} {entity.plural})<br>"
            f"probability: {fmt_pct(r.probability)} of the transitions out of {plotly_text(a)}<br>"
        )
        if b != END:
            arcs.append((a, b, count(r.transitions), "move", header + f"median hours: {fmt_hours(r.median_hours)}"))
            continue
        done = count(r.converted_transitions)
        for n, kind in ((count(r.transitions) - done, "lost"), (done, "completed")):
            if n:
                arcs.append((a, b, n, kind, header + _exit_line(kind, n, count(r.transitions), r.probability, entity)))
    for a, b, n, kind, hover in sorted(arcs, key=lambda arc: -arc[2]):
        x0, x1 = x[a], x[b]
        forward = x1 > x0
        span = max(1, round(abs(x1 - x0)))
        apex = _apex(span) if forward else -_apex(span)
        if kind == "completed":
            apex *= COMPLETED_APEX
        top, bottom = max(top, apex), min(bottom, apex)
        colour = COMPLETED_EXIT if kind == "completed" else EXIT if kind == "lost" else FORWARD if forward else BACK
        shapes.append(
            {
                "type": "path",
                "path": f"M {x0},0 Q {(x0 + x1) / 2},{2 * apex} {x1},0",
                "line": {"color": rgba(colour, EDGE_ALPHA), "width": edge_width(n, busiest)},
                "layer": "below",
            }
        )
        mid_x.append((x0 + x1) / 2)
        mid_y.append(apex)
        symbols.append("triangle-right" if forward else "triangle-left")
        mid_colours.append(colour)
        hovers.append(hover)

    def node_hover(name: str) -> str:
        lines = [f"<b>{plotly_text(name)}</b>"]
        if name in reached:
            lines.append(f"reached: {fmt_int(reached[name])} {entity.plural}")
        if name in exits:
            e = exits[name]
            lines.append(f"exit probability: {fmt_pct(e.probability)} ({fmt_int(e.transitions)} exits)")
            lost, completed = _exit_split(e)
            lines.append(f"lost (before the goal): {fmt_pct(lost)} · completed (after it): {fmt_pct(completed)}")
        return "<br>".join(lines)

    fig = go.Figure()
    for label, colour in (
        ("forward", FORWARD),
        ("back to an earlier stage", BACK),
        ("exit before the goal: lost", EXIT),
        ("exit after the goal: completed", COMPLETED_EXIT),
    ):
        fig.add_trace(
            go.Scatter(
                name=plotly_text(label),
                x=[None],
                y=[None],
                mode="lines",
                line={"color": colour, "width": 6},
                hoverinfo="skip",
            )
        )
    fig.add_trace(
        go.Scatter(
            name="edges",
            x=mid_x,
            y=mid_y,
            mode="markers",
            marker={"symbol": symbols, "color": mid_colours, "size": 11, "line": {"color": "#ffffff", "width": 1}},
            customdata=hovers,
            hovertemplate="%{customdata}<extra></extra>",
            showlegend=False,
        )
    )
    fig.add_trace(
        go.Scatter(
            name="stages",
            x=[x[n] for n in nodes],
            y=[0.0] * len(nodes),
            mode="markers",
            marker={
                "size": 22,
                "color": [colours.get(n, GREY) for n in nodes],
                "line": {"color": "#ffffff", "width": 2},
            },
            customdata=[node_hover(n) for n in nodes],
            hovertemplate="%{customdata}<extra></extra>",
            showlegend=False,
        )
    )
    for name in nodes:
        lines = [f"<b>{plotly_text(name)}</b>"]
        if name in exits:
            lost_part, completed_part = _exit_split(exits[name])
            if lost_part:
                lines.append(f"lost {fmt_pct(lost_part, 0)}")
            if completed_part:
                lines.append(f"completed {fmt_pct(completed_part, 0)}")
        fig.add_annotation(
            x=x[name],
            y=0,
            yshift=-16,
            yanchor="top",
            text="<br>".join(lines),
            showarrow=False,
            bgcolor="rgba(255,255,255,0.85)",
            font={"size": 12, "color": INK},
        )
    fig.update_layout(
        template=TEMPLATE,
        shapes=shapes,
        # The labels under the stages need about 0.3 of the y range below the lowest arc.
        height=round(56 + PX_PER_UNIT * (top - bottom + 0.45)),
        margin={"l": 10, "r": 10, "t": 46, "b": 10},
        xaxis={"visible": False, "range": [-0.6, len(nodes) - 0.4], "fixedrange": True},
        yaxis={"visible": False, "range": [bottom - 0.32, top + 0.13], "fixedrange": True},
        legend={"y": 1.02},
        hovermode="closest",
    )
    fig.add_annotation(
        text=f"line width ∝ transitions (widest: {fmt_int(busiest)})",
        xref="paper",
        yref="paper",
        x=1,
        y=1.02,
        xanchor="right",
        yanchor="bottom",
        showarrow=False,
        font={"size": 11, "color": MUTED_TEXT},
    )
    return with_title(fig, heading, when)
