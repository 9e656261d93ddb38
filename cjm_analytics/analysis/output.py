"""Writing an analysis result: a CSV or Parquet file, and a page in the report site.

Charts on the page are plotly figures, and plotly.js reads a subset of HTML in every text it draws: a name
from the data (a channel, event, stage, segment value, touchpoint, or a step given on the command line)
reaches a figure only through plotly_names or the report's plotly_text, as in the nightly report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import plotly.graph_objects as go

from cjm_analytics.report import plotly_text, table_page, write_page
from cjm_analytics.report.formatting import missing


def plotly_names(values: pd.Series) -> pd.Series:
    """Names from the data as plotly text (plotly_text of each), keeping the index; NULL stays NULL."""
    # A NULL category must stay missing for plotly, not become the text "None".
    return values.map(lambda v: None if missing(v) else plotly_text(v))


def write_table(df: pd.DataFrame, out: Path) -> Path:
    """CSV or Parquet by the file's suffix (.csv, .parquet)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".parquet":
        df.to_parquet(out, index=False)
    elif out.suffix == ".csv":
        df.to_csv(out, index=False)
    else:
        raise ValueError(f"{out}: write .csv or .parquet")
    return out


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
