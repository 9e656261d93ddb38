"""The step Sankey of journeys (sankey_links), one trace per segment (sankey_segment_links) with a selector."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from cjm_analytics.names import CUSTOMERS, Entity
from cjm_analytics.report.figures import no_data_figure
from cjm_analytics.report.formatting import count, fmt_int, fmt_pct, plotly_text, share
from cjm_analytics.report.theme import (
    COMPLETED,
    CONTINUES,
    DROP_OFF,
    MUTED_TEXT,
    OTHER,
    TEMPLATE,
    rgba,
    stage_colours,
    with_title,
)

LINK_ALPHA = 0.45
SINKS = (DROP_OFF, COMPLETED, CONTINUES)
# Said on hover too, so that colour is never the only cue ({plural}: Entity.say).
SINK_MEANING = {
    DROP_OFF: "journeys that ended before reaching the goal: {plural} lost<br>",
    COMPLETED: "journeys that reached the goal and ended: completed, not lost<br>",
}

Node = tuple[int, str]


@dataclass(frozen=True)
class SankeySegment:
    """The Sankey links of one group of journeys, with the number of journeys the shares are taken of."""

    label: str  # as the selector and the title show it, e.g. "all journeys", "first touch: email"
    links: pd.DataFrame  # the columns of sankey_links
    journeys: int
    share_of: str = "journey customers"  # hover: "12.3% of <share_of>"


@dataclass(frozen=True)
class _Drawn:
    trace: go.Sankey
    annotations: list[dict[str, Any]]
    columns: int  # the most nodes in one step


def _sankey_trace(segment: SankeySegment, stage_order: Sequence[str], colours: dict[str, str],
                  entity: Entity = CUSTOMERS) -> _Drawn:
    """One segment's nodes (one per step and node) and links, and the step headings above the columns.

    Every link joins step s to step s+1, so with left alignment a node's column is its step; plotly.js
    places the nodes within a column (given in stage order, then other, (continues), (completed), (drop-off)) so that
    links cross as little as possible. Fixed x/y positions would keep plotly.js's own link order and
    make links cross at their source.
    """
    rows = [
        (count(r.from_step), str(r.from_node), count(r.to_step), str(r.to_node), count(r.customers))
        for r in segment.links.itertuples(index=False)
    ]
    inflow: dict[Node, int] = {}
    outflow: dict[Node, int] = {}
    for from_step, from_node, to_step, to_node, customers in rows:
        outflow[(from_step, from_node)] = outflow.get((from_step, from_node), 0) + customers
        inflow[(to_step, to_node)] = inflow.get((to_step, to_node), 0) + customers
        inflow.setdefault((from_step, from_node), 0)
        outflow.setdefault((to_step, to_node), 0)

    rank = {stage: i for i, stage in enumerate(stage_order)}
    tail = {OTHER: len(rank), CONTINUES: len(rank) + 1, COMPLETED: len(rank) + 2, DROP_OFF: len(rank) + 3}
    # Stages missing from stage_order sort after the known ones, by name, before the catch-all nodes.
    nodes = sorted(inflow, key=lambda n: (n[0], tail.get(n[1], rank.get(n[1], len(rank) - 0.5)), n[1]))
    index = {node: i for i, node in enumerate(nodes)}
    # A node's customers: what flows through it (in = out, except the first step and the sinks).
    node_customers = {n: max(inflow[n], outflow[n]) for n in nodes}
    journeys = segment.journeys

    def node_hover(n: Node) -> str:
        step, name = n
        where = f"after step {step - 1}" if name in SINKS else f"step {step}"
        return (
            f"<b>{plotly_text(name)}</b> · {where}<br>"
            + entity.say(SINK_MEANING.get(name, ""))
            + f"{fmt_int(node_customers[n])} {entity.plural}<br>"
            f"{fmt_pct(share(node_customers[n], journeys))} of {plotly_text(segment.share_of)}"
        )

    def link_hover(from_n: Node, to_n: Node, customers: int) -> str:
        return (
            f"<b>{plotly_text(from_n[1])}</b> (step {from_n[0]}) → <b>{plotly_text(to_n[1])}</b>"
            f" (step {to_n[0]})<br>"
            f"{fmt_int(customers)} {entity.plural}<br>"
            f"{fmt_pct(share(customers, journeys))} of {plotly_text(segment.share_of)}<br>"
            f"{fmt_pct(share(customers, node_customers[from_n]))} of the {entity.plural} at"
            f" {plotly_text(from_n[1])} (step {from_n[0]})"
        )

    trace = go.Sankey(
        # Stationary nodes, columns by step (see the docstring).
        arrangement="fixed",
        valueformat=",d",
        name=plotly_text(segment.label),
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
            "color": [rgba(colours[r[3]], LINK_ALPHA) for r in rows],
            "customdata": [link_hover((r[0], r[1]), (r[2], r[3]), r[4]) for r in rows],
            "hovertemplate": "%{customdata}<extra></extra>",
        },
    )
    steps = sorted({step for step, _ in nodes})
    first, last = steps[0], steps[-1]
    span = max(last - first, 1)
    annotations = []
    for step in steps:
        only_sinks = all(name in SINKS for s, name in nodes if s == step)
        annotations.append(
            {
                "text": f"after step {step - 1}" if only_sinks else f"step {step}",
                "x": (step - first) / span,
                "y": 1.0,
                "xref": "paper",
                "yref": "paper",
                "yanchor": "bottom",
                "xanchor": "left" if step == first else "right" if step == last else "center",
                "showarrow": False,
                "font": {"size": 12, "color": MUTED_TEXT},
            }
        )
    columns = max(sum(1 for s, _ in nodes if s == step) for step in steps)
    return _Drawn(trace, annotations, columns)


def segment_sankey_figure(
    segments: Sequence[SankeySegment], stage_order: Sequence[str] = (), when: str = "", entity: Entity = CUSTOMERS
) -> go.Figure:
    """The step Sankey of each segment, the first shown; with more than one, a dropdown switches between them.

    Every segment is drawn in full beforehand (one trace each) and the dropdown only toggles which one is
    visible, so the page runs no code on the data. Stages keep one colour across segments; (drop-off) is red,
    (completed) bluish green.
    """
    drawable = [s for s in segments if not s.links.empty]
    if not drawable:
        return no_data_figure("No journeys in this run.", heading="Journeys by step", when=when)
    names = {str(n) for s in drawable for col in ("from_node", "to_node") for n in s.links[col]}
    colours = stage_colours(stage_order, names)
    drawn = [_sankey_trace(s, stage_order, colours, entity) for s in drawable]
    for i, d in enumerate(drawn):
        d.trace.visible = i == 0
    selector = len(drawn) > 1
    top = 68 if selector else 30  # the dropdown, then the step headings
    # The sinks' meaning under the chart, so that an exported picture says it too (the page's note says more);
    # in every segment's annotations, which the selector swaps.
    sinks_note = {
        "text": f"{DROP_OFF} (red): ended before the goal, lost · {COMPLETED} (green): reached the goal and ended",
        "xref": "paper", "yref": "paper", "x": 0, "y": 0, "yshift": -30, "xanchor": "left", "yanchor": "bottom",
        "showarrow": False, "font": {"size": 11, "color": MUTED_TEXT},
    }
    for d in drawn:
        d.annotations.append(sinks_note)
    fig = go.Figure([d.trace for d in drawn])
    fig.update_layout(
        template=TEMPLATE,
        annotations=drawn[0].annotations,
        height=max(480, top + 96 + 44 * max(d.columns for d in drawn)),
        margin={"l": 10, "r": 10, "t": top, "b": 36},
    )
    if selector:
        fig.update_layout(
            updatemenus=[
                {
                    "type": "dropdown",
                    "direction": "down",
                    "active": 0,
                    "showactive": True,
                    "x": 0.0,
                    "xanchor": "left",
                    "y": 1.0,
                    "yanchor": "bottom",
                    "pad": {"b": 24},
                    "bgcolor": "#ffffff",
                    "bordercolor": "#9AA5B1",
                    "font": {"size": 13},
                    "buttons": [
                        {
                            "label": f"{plotly_text(s.label)} ({fmt_int(s.journeys)})",
                            "method": "update",
                            "args": [{"visible": [j == i for j in range(len(drawn))]}, {"annotations": d.annotations}],
                        }
                        for i, (s, d) in enumerate(zip(drawable, drawn, strict=True))
                    ],
                }
            ]
        )
        heading = "Journeys by step"
    else:
        heading = f"Journeys by step: {plotly_text(drawable[0].label)} ({fmt_int(drawable[0].journeys)})"
    return with_title(fig, heading, when)


def sankey_figure(
    links: pd.DataFrame, journey_customers: int, stage_order: Sequence[str] = (), when: str = ""
) -> go.Figure:
    """The step Sankey of all journeys: one node per (step, node) of sankey_links, links coloured by target."""
    return segment_sankey_figure([SankeySegment("all journeys", links, journey_customers)], stage_order, when)
