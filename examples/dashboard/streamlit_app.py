"""A Streamlit dashboard over the published marts: the stage funnel, daily conversion, and every published table.

    pip install 'cjm-analytics[bi]'      # streamlit
    CJM_MARTS=data/sample/marts streamlit run examples/dashboard/streamlit_app.py

It reads `<marts>/current/marts.duckdb`, never the warehouse, so the nightly run never waits for it. Names from the
data (stages, tables, run ids) go out as text: st.dataframe, st.text, chart labels; nothing as HTML.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pandas as pd
import streamlit as st

MARTS = Path(os.environ.get("CJM_MARTS", "data/sample/marts"))


def shown_run(marts: Path) -> Path | None:
    """The run folder `current` links to now, resolved once per page view so every figure on it is of one run."""
    run = (marts / "current").resolve()
    return run if (run / "marts.duckdb").is_file() else None


@st.cache_data(max_entries=64)
def query(run: str, sql: str, params: tuple[object, ...] = ()) -> pd.DataFrame:
    """One query on one run's marts, cached per run folder: the next night is a new folder, so it is read afresh.

    The file is opened per query and closed (no st.cache_resource connection): an open connection keeps reading
    the run it opened, after the nightly swap too.
    """
    con = duckdb.connect(str(Path(run) / "marts.duckdb"), read_only=True)
    try:
        return con.execute(sql, list(params)).df()
    finally:
        con.close()


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


st.set_page_config(page_title="Customer journeys", layout="wide")
st.title("Customer journeys")
run_folder = shown_run(MARTS)
if run_folder is None:
    st.error("No published marts here: `cjm run` publishes them after a successful run.")
    st.text(str(MARTS / "current" / "marts.duckdb"))
    st.stop()
run = str(run_folder)

summary = query(run, "SELECT run_id, journey_customers, converted, conversion_rate, worst_dropoff_stage, "
                     "worst_dropoff_rate FROM run_summary").iloc[0]
st.text(f"Run {summary.run_id}")
journeys, converted, conversion = st.columns(3)
journeys.metric("Journeys", f"{summary.journey_customers:,}")
converted.metric("Converted", f"{summary.converted:,}")
conversion.metric("Conversion rate", "-" if pd.isna(summary.conversion_rate) else f"{summary.conversion_rate:.1%}")
if not pd.isna(summary.worst_dropoff_rate):
    st.text(f"Worst drop-off: {summary.worst_dropoff_stage}, {summary.worst_dropoff_rate:.1%} of those who reach it "
            f"go no further")

st.header("Stage funnel")
funnel = query(run, "SELECT stage, reached, exited, dropoff_rate, conversion_to_next, conversion_from_first, is_goal "
                    "FROM stage_funnel ORDER BY stage_order")
st.bar_chart(funnel, x="stage", y="reached", horizontal=True, sort=False)
percent = st.column_config.NumberColumn(format="percent")
st.dataframe(funnel, hide_index=True, key="funnel", column_config={
    "dropoff_rate": percent, "conversion_to_next": percent, "conversion_from_first": percent})

st.header("Daily conversion")
stages = funnel["stage"].tolist()
choices = stages[1:] or stages
# The goal first (stage_funnel.is_goal); otherwise the last stage.
goal = [s for s in choices if bool(funnel.loc[funnel["stage"] == s, "is_goal"].iloc[0])]
stage = st.selectbox("Share of each day's new journeys that reach", choices,
                     index=choices.index(goal[0]) if goal else len(choices) - 1, key="stage")
# A cohort is the journeys whose first mapped event fell on that day (docs/definitions.md).
daily = query(run, """
    SELECT d.cohort_date, f.reached AS journeys, d.reached, d.reached / nullif(f.reached, 0) AS conversion_rate
    FROM stage_conversion_daily d
    JOIN stage_conversion_daily f ON f.cohort_date = d.cohort_date AND f.stage_order = 1
    WHERE d.stage = $1
    ORDER BY d.cohort_date
""", (stage,))
st.line_chart(daily, x="cohort_date", y="conversion_rate")
st.dataframe(daily, hide_index=True, key="daily", column_config={
    "cohort_date": st.column_config.DateColumn(format="YYYY-MM-DD"), "conversion_rate": percent})

st.header("Every published table")
# From the catalog, so a mart published later shows up here unchanged, with its description where it has one.
tables = query(run, "SELECT table_name, coalesce(comment, '') AS comment FROM duckdb_tables() "
                    "WHERE database_name = current_database() ORDER BY table_name")
table = st.selectbox("Table", tables["table_name"].tolist(), key="table")
if table is not None:
    comment = tables.loc[tables["table_name"] == table, "comment"].iloc[0]
    if comment:
        st.text(comment)
    st.dataframe(query(run, "SELECT column_name, data_type, coalesce(comment, '') AS description FROM duckdb_columns() "
                            "WHERE database_name = current_database() AND table_name = $1 ORDER BY column_index",
                       (table,)), hide_index=True, key="columns")
    st.dataframe(query(run, f"SELECT * FROM {quote_ident(table)} LIMIT 1000"), hide_index=True, key="rows")
