"""The report site: static HTML pages drawn from the marts, sharing one local plotly.min.js, so the site opens
from file:// with no network (docs/report.md). Every number on a page is a mart value or a share of two.

Modules: marts (reading them), formatting and theme (how values and charts look), figures, sankey and network
(one function per chart), kpis (tonight against earlier runs), html and site.css (the page shell and its
components), pages (PAGES, the list of the site's pages, and their bodies), site (writing them), export
(PNG/PDF of the charts with kaleido, optional) and analysis_pages (the `cjm analyze` pages).
"""

from cjm_analytics.report.figures import (
    attribution_figure,
    emotion_figure,
    funnel_figure,
    leaks_figure,
    transitions_figure,
    trends_figure,
)
from cjm_analytics.report.formatting import fmt_int, fmt_pct, plotly_text
from cjm_analytics.report.html import PLOTLY_JS, RUN_STATUS_JS
from cjm_analytics.report.kpis import KPIS, Change, Kpi, change, earlier_runs
from cjm_analytics.report.marts import (
    CHANNEL_ATTRIBUTION_COLUMNS,
    EMOTION_CURVE_COLUMNS,
    LEAKS_COLUMNS,
    RUN_SUMMARY_COLUMNS,
    SANKEY_LINKS_COLUMNS,
    SANKEY_SEGMENT_LINKS_COLUMNS,
    STAGE_CONVERSION_DAILY_COLUMNS,
    STAGE_FUNNEL_COLUMNS,
    STAGE_TRANSITIONS_COLUMNS,
    Marts,
    read_marts,
)
from cjm_analytics.report.network import transition_network_figure
from cjm_analytics.report.pages import PAGES, table_page
from cjm_analytics.report.sankey import SankeySegment, sankey_figure, segment_sankey_figure
from cjm_analytics.report.site import PAGE_BUDGET_BYTES, build_report, write_page

__all__ = [
    "CHANNEL_ATTRIBUTION_COLUMNS",
    "EMOTION_CURVE_COLUMNS",
    "KPIS",
    "LEAKS_COLUMNS",
    "PAGES",
    "PAGE_BUDGET_BYTES",
    "PLOTLY_JS",
    "RUN_STATUS_JS",
    "RUN_SUMMARY_COLUMNS",
    "SANKEY_LINKS_COLUMNS",
    "SANKEY_SEGMENT_LINKS_COLUMNS",
    "STAGE_CONVERSION_DAILY_COLUMNS",
    "STAGE_FUNNEL_COLUMNS",
    "STAGE_TRANSITIONS_COLUMNS",
    "Change",
    "Kpi",
    "Marts",
    "SankeySegment",
    "attribution_figure",
    "build_report",
    "change",
    "earlier_runs",
    "emotion_figure",
    "fmt_int",
    "fmt_pct",
    "funnel_figure",
    "leaks_figure",
    "plotly_text",
    "read_marts",
    "sankey_figure",
    "segment_sankey_figure",
    "table_page",
    "transition_network_figure",
    "transitions_figure",
    "trends_figure",
    "write_page",
]
