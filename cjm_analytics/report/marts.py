"""Reading the marts the report site is drawn from: the site reads nothing else from the warehouse."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pandas as pd

from cjm_analytics.catalog import columns
from cjm_analytics.errors import MartMissingError
from cjm_analytics.names import CUSTOMERS, Entity
from cjm_analytics.report.formatting import count, missing

# The columns the pages read, as the catalog states them; the pages show no files_refused (refused files are a
# health check's business, docs/checks.md).
RUN_SUMMARY_COLUMNS = tuple(c for c in columns("run_summary") if c != "files_refused")
STAGE_FUNNEL_COLUMNS = columns("stage_funnel")
STAGE_TRANSITIONS_COLUMNS = columns("stage_transitions")
SANKEY_LINKS_COLUMNS = columns("sankey_links")
SANKEY_SEGMENT_LINKS_COLUMNS = columns("sankey_segment_links")
SEGMENT_SIZE_COLUMNS = ("segment_type", "segment", "segment_size")  # of stage_funnel_by_segment, one row a segment
STAGE_CONVERSION_DAILY_COLUMNS = columns("stage_conversion_daily")
LEAKS_COLUMNS = columns("leaks")
CHANNEL_ATTRIBUTION_COLUMNS = columns("channel_attribution")
EMOTION_CURVE_COLUMNS = columns("emotion_curve")
JOURNEY_MAP_COLUMNS = columns("journey_map")
# What the overview reads of conversion_change (absent on a first night, so the catalog states no columns for it).
CONVERSION_CHANGE_COLUMNS = (
    "stage", "stage_order", "from_stage", "to_stage", "first_cohort_date", "last_cohort_date", "conversion_before",
    "conversion_after", "conversion_change", "segment", "mix_effect", "rate_effect", "total_effect",
    "contributor_rank",
)


@dataclass(frozen=True)
class Marts:
    """The mart tables the site is drawn from (docs/tables.md); emotion_curve is None without surveys."""

    run_summary: Mapping[str, Any]
    run_history: pd.DataFrame
    stage_funnel: pd.DataFrame
    stage_transitions: pd.DataFrame
    sankey_links: pd.DataFrame
    sankey_segment_links: pd.DataFrame
    segment_sizes: pd.DataFrame
    stage_conversion_daily: pd.DataFrame
    leaks: pd.DataFrame
    channel_attribution: pd.DataFrame
    emotion_curve: pd.DataFrame | None
    # This run's health checks (docs/checks.md; empty for a warehouse from before them) and where its data ends.
    run_checks: pd.DataFrame = field(default_factory=pd.DataFrame)
    data_end: Any = None
    # The journey map (None for a warehouse from before it).
    journey_map: pd.DataFrame | None = None
    # Tonight's conversion change against the last good run, mix and rate per segment (None on a first night).
    conversion_change: pd.DataFrame | None = None
    # Not marts: how the pages speak (config `entity`, `sessions: off`), given by build_report as the title is.
    entity: Entity = CUSTOMERS
    sessions_off: bool = False

    def status(self) -> dict[str, Any]:
        """The run's verdict as run_status.js states it (checks.Health.as_dict's keys, without the checks)."""
        statuses = set(self.run_checks["status"]) if not self.run_checks.empty else set()
        verdict = ("unchecked" if self.run_checks.empty else "failed" if "error" in statuses
                   else "warning" if "warning" in statuses else "passed")
        return {"run_id": self.run_summary.get("run_id"), "run_started": str(self.run_summary.get("run_started_at")),
                "verdict": verdict, "summary": ""}

    @property
    def absent(self) -> frozenset[str]:
        """The optional marts this warehouse lacks: emotion_curve without surveys, journey_map before it existed."""
        return frozenset(name for name, mart in (("emotion_curve", self.emotion_curve),
                                                 ("journey_map", self.journey_map)) if mart is None)

    @property
    def goal(self) -> str | None:
        """The goal stage (stage_funnel.is_goal): stopping at or after it is completing, not dropping off."""
        hit = self.stage_funnel[self.stage_funnel["is_goal"].fillna(False).astype(bool)]["stage"]
        return None if hit.empty else str(hit.iloc[0])

    @property
    def stage_order(self) -> list[str]:
        """The configured stages in journey order."""
        return [str(s) for s in self.stage_funnel["stage"]]

    @property
    def cohort_dates(self) -> tuple[Any, Any]:
        """First and last cohort date of stage_conversion_daily: when the journeys of this run started."""
        dates = self.stage_conversion_daily["cohort_date"]
        return (None, None) if dates.empty else (dates.min(), dates.max())

    def segment_size(self, segment_type: str, segment: str) -> int | None:
        """Journeys in a segment, as stage_funnel_by_segment counts them; None when it has no such segment."""
        sizes = self.segment_sizes
        hit = sizes[(sizes["segment_type"] == segment_type) & (sizes["segment"] == segment)]["segment_size"]
        return None if hit.empty or missing(hit.iloc[0]) else count(hit.iloc[0])


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute(
        "SELECT table_name FROM duckdb_tables() UNION ALL SELECT view_name FROM duckdb_views() WHERE NOT internal"
    ).fetchall()
    return {str(r[0]) for r in rows}


def _select(
    con: duckdb.DuckDBPyConnection, present: set[str], table: str, columns: tuple[str, ...], tail: str = ""
) -> pd.DataFrame:
    if table not in present:
        raise MartMissingError(f"the warehouse has no mart {table}: run `cjm run` to build the marts first")
    have = {str(r[0]) for r in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = $t", {"t": table}).fetchall()}
    lacking = [c for c in columns if c not in have]
    if lacking:  # marts built by an earlier release: the next run rebuilds them
        raise MartMissingError(f"mart {table} has no column(s) {', '.join(lacking)}: run `cjm run` to rebuild the "
                               "marts with this version")
    quoted = ", ".join(f'"{c}"' for c in columns)
    return con.execute(f"SELECT {quoted} FROM {table} {tail}").fetchdf()


def read_marts(con: duckdb.DuckDBPyConnection) -> Marts:
    """Read every mart the site needs; run_summary must hold exactly one row."""
    present = _tables(con)
    if "run_summary" not in present:
        raise MartMissingError("the warehouse has no mart run_summary: run `cjm run` to build the marts first")
    summary = con.execute(f"SELECT {', '.join(RUN_SUMMARY_COLUMNS)} FROM run_summary").fetchall()
    if len(summary) != 1:
        raise MartMissingError(f"run_summary holds {len(summary)} rows, expected 1: run the pipeline first")
    run_summary = dict(zip(RUN_SUMMARY_COLUMNS, summary[0], strict=True))
    checked = "run_checks" in present and "run_metrics" in present
    # Earlier nights are compared with only if they passed their checks (a failed night was never published).
    good = " WHERE run_id NOT IN (SELECT run_id FROM run_checks WHERE status = 'error')" if checked else ""
    return Marts(
        run_summary=run_summary,
        run_history=_select(con, present, "run_history", RUN_SUMMARY_COLUMNS,
                            f"{good} ORDER BY run_started_at, run_id"),
        stage_funnel=_select(con, present, "stage_funnel", STAGE_FUNNEL_COLUMNS, "ORDER BY stage_order"),
        stage_transitions=_select(
            con,
            present,
            "stage_transitions",
            STAGE_TRANSITIONS_COLUMNS,
            "ORDER BY from_order, transitions DESC, to_order, to_stage",
        ),
        sankey_links=_select(
            con, present, "sankey_links", SANKEY_LINKS_COLUMNS, "ORDER BY from_step, from_node, to_step, to_node"
        ),
        sankey_segment_links=_select(
            con,
            present,
            "sankey_segment_links",
            SANKEY_SEGMENT_LINKS_COLUMNS,
            "ORDER BY segment_type, segment, from_step, from_node, to_step, to_node",
        ),
        segment_sizes=_select(
            con,
            present,
            "stage_funnel_by_segment",
            SEGMENT_SIZE_COLUMNS,
            "GROUP BY ALL ORDER BY segment_type, segment",
        ),
        stage_conversion_daily=_select(
            con,
            present,
            "stage_conversion_daily",
            STAGE_CONVERSION_DAILY_COLUMNS,
            "ORDER BY cohort_date, stage_order",
        ),
        leaks=_select(con, present, "leaks", LEAKS_COLUMNS, 'ORDER BY "rank"'),
        channel_attribution=_select(
            con,
            present,
            "channel_attribution",
            CHANNEL_ATTRIBUTION_COLUMNS,
            "ORDER BY markov DESC NULLS LAST, channel",  # the mart's own order (docs/analysis/attribution.md)
        ),
        emotion_curve=(
            _select(con, present, "emotion_curve", EMOTION_CURVE_COLUMNS, "ORDER BY stage_order")
            if "emotion_curve" in present
            else None
        ),
        run_checks=con.execute(
            "SELECT check_name, subject, level, status, message FROM run_checks WHERE run_id = $run_id "
            "ORDER BY CASE status WHEN 'error' THEN 0 WHEN 'warning' THEN 1 WHEN 'info' THEN 2 ELSE 3 END, "
            "check_name, subject", {"run_id": run_summary["run_id"]}).fetchdf() if checked else pd.DataFrame(),
        data_end=con.execute(
            "SELECT make_timestamp(CAST(max(value) * 1e6 AS BIGINT)) FROM run_metrics "
            "WHERE run_id = $run_id AND metric = 'data_end'", {"run_id": run_summary["run_id"]}).fetchall()[0][0]
        if checked else None,
        journey_map=(
            _select(con, present, "journey_map", JOURNEY_MAP_COLUMNS,
                    "ORDER BY persona_type, persona, stage_order, measure, rank")
            if "journey_map" in present
            else None
        ),
        conversion_change=(
            _select(con, present, "conversion_change", CONVERSION_CHANGE_COLUMNS,
                    "ORDER BY stage_order, contributor_rank")
            if "conversion_change" in present
            else None
        ),
    )
