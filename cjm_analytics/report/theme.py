"""One look for every chart: the Okabe–Ito colour-blind-safe palette, a lean plotly template and the plotly config.

Red (vermillion) means customers lost everywhere: drop-off sinks, exits before the goal, the leak bars. Bluish
green means completed: journeys that reached the goal and ended, which are never drawn as a loss. Colour is never
the only cue: sinks are labelled, arrows carry a sign and a word.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

import plotly.graph_objects as go

# Re-exported for the charts, which colour and place these nodes (cjm_analytics.names spells them).
from cjm_analytics.names import COMPLETED as COMPLETED
from cjm_analytics.names import CONTINUES as CONTINUES
from cjm_analytics.names import DROP_OFF as DROP_OFF
from cjm_analytics.names import END as END
from cjm_analytics.names import OTHER as OTHER
from cjm_analytics.names import START as START

# Okabe & Ito (2008), "Color Universal Design": distinguishable with every common colour-vision deficiency.
BLUE = "#0072B2"
ORANGE = "#E69F00"
SKY = "#56B4E9"
GREEN = "#009E73"
YELLOW = "#F0E442"
VERMILLION = "#D55E00"
PURPLE = "#CC79A7"
BLACK = "#000000"
GREY = "#8C8C8C"
LIGHT_GREY = "#C4C4C4"

# Chart text; the pages use the same colours (--muted and --fg in site.css).
MUTED_TEXT = "#5F6B7A"
INK = "#1F2933"

# Stages take these in journey order: vermillion is kept for losses and bluish green for completions, orange
# (close to vermillion) comes late and yellow (faint on white) last.
STAGE_COLOURS = (BLUE, PURPLE, SKY, ORANGE, BLACK, YELLOW)
SPECIAL_COLOURS = {
    # (end) takes completed and lost exits alike (the network colours each arc): grey, like (start).
    DROP_OFF: VERMILLION, COMPLETED: GREEN, CONTINUES: GREY, OTHER: LIGHT_GREY, START: GREY, END: GREY,
}

FONT_FAMILY = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'

# Only what differs from plotly.js's defaults: a named template like plotly_white would add ~10 kB per chart.
TEMPLATE = go.layout.Template(
    layout={
        "font": {"family": FONT_FAMILY, "size": 12, "color": INK},
        "colorway": [BLUE, ORANGE, GREEN, PURPLE, SKY, BLACK, VERMILLION, YELLOW],
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "title": {"x": 0, "xanchor": "left", "xref": "paper", "font": {"size": 15}},
        "xaxis": {"gridcolor": "#E6E9EE", "linecolor": "#9AA5B1", "zerolinecolor": "#C9D0D8", "automargin": True},
        "yaxis": {"gridcolor": "#E6E9EE", "linecolor": "#9AA5B1", "zerolinecolor": "#C9D0D8", "automargin": True},
        "hoverlabel": {"align": "left", "font": {"family": FONT_FAMILY, "size": 12}},
        "legend": {"orientation": "h", "x": 0, "xanchor": "left", "y": 1.0, "yanchor": "bottom"},
    }
)

# Every chart follows the width of the page. plotly.js 3 shows a "Share chart" button that uploads the
# figure to a server, and a logo linking to plotly.com: neither belongs in an offline report. Box and
# lasso select do nothing useful on these charts.
PLOTLY_CONFIG: dict[str, Any] = {
    "responsive": True,
    "displaylogo": False,
    "showSendToCloud": False,
    "modeBarButtonsToRemove": ["sendChartToCloud", "select2d", "lasso2d"],
    "toImageButtonOptions": {"scale": 2},
}


def rgba(hex_colour: str, alpha: float) -> str:
    """#rrggbb with an alpha, as plotly.js reads it."""
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def stage_colours(stages: Iterable[str], extra: Iterable[str] = ()) -> dict[str, str]:
    """One colour per stage name in stage order, then per extra name (sorted), plus the catch-all nodes."""
    names = list(dict.fromkeys(stages))
    names += sorted(set(extra) - set(names) - SPECIAL_COLOURS.keys())
    colours = {name: STAGE_COLOURS[i % len(STAGE_COLOURS)] for i, name in enumerate(names)}
    colours.update(SPECIAL_COLOURS)
    return colours


TITLE_SPACE = 72  # px of top margin a title and its subtitle take


def with_title(fig: go.Figure, text: str, when: str = "") -> go.Figure:
    """Give a chart a title that says what (bold) and when (the subtitle), making room for it above the plot.

    Both are plotly text: escape data with plotly_text first. Pages lift the title out into HTML, where it
    wraps on a narrow screen (see html.chart_html); exported images keep it.
    """
    spec: dict[str, Any] = {"text": f"<b>{text}</b>", "y": 1, "yref": "container", "yanchor": "top", "pad": {"t": 14}}
    if when:
        spec["subtitle"] = {"text": when, "font": {"size": 12, "color": MUTED_TEXT}}
    top = fig.layout.margin.t
    fig.update_layout(title=spec, margin={"t": (80 if top is None else top) + TITLE_SPACE})
    return fig


def _plain(text: str) -> str:
    # A title holds plotly text: names escaped by plotly_text, inside the <b> with_title adds.
    return html.unescape(text.replace("<b>", "").replace("</b>", ""))


def split_title(fig: go.Figure) -> tuple[str, str, go.Figure]:
    """(title, subtitle, the figure without them) as plain text, undoing with_title."""
    layout_title = fig.layout.title
    text = _plain(layout_title.text or "")
    when = _plain(layout_title.subtitle.text or "") if layout_title.subtitle else ""
    if not text:
        return "", "", fig
    bare = go.Figure(fig)
    top = bare.layout.margin.t
    bare.update_layout(title=None, margin={"t": max(10, (80 if top is None else top) - TITLE_SPACE)})
    bare.layout.title = {}
    return text, when, bare
