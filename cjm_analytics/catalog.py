"""The catalog of the warehouse's tables: each one's layer, what it holds, and who reads it.

The one list that the core layer (which tables hold rows per customer), the marts (which tables they build and
count), publishing (which tables dashboards get) and the report (which columns it reads) take their table names
from. The columns are the table's, in order, and only stated where code reads them by name. docs/tables.md and
docs/marts.md document every table listed here (tests/test_catalog.py holds both ways); the descriptions are
one line each, for a reader of the published marts. No imports: every layer, the report too, may read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# raw: loaded rows and the bookkeeping of loading; core: per-customer facts (sql/core/); mart: aggregates built
# in SQL by the aggregate step (sql/marts/); analysis-mart: the analyst's answers stored nightly; run: each run's
# log and health checks.
Layer = Literal["raw", "core", "mart", "analysis-mart", "run"]


@dataclass(frozen=True)
class Table:
    name: str
    layer: Layer
    description: str
    # Keyed by customer_key and recomputed for the customers in scope (core.clear_scope).
    per_customer: bool = False
    # Published for dashboards (publish.write_marts); partition: the Parquet partition column, added on publishing.
    published: bool = False
    partition: str | None = None
    # Absent when the config does not ask for it (emotion_curve without surveys).
    optional: bool = False
    columns: tuple[str, ...] = ()


_FUNNEL = ("stage", "stage_order", "reached", "exited", "dropoff_rate", "conversion_to_next", "conversion_from_first",
           "before_goal", "is_goal")
_LINKS = ("from_step", "from_node", "to_step", "to_node", "customers")
_RUN_SUMMARY = (
    "run_id", "run_started_at", "events_read", "events_loaded", "events_rejected", "events_duplicate",
    "files_refused", "customers", "journey_customers", "sessions", "converted", "conversion_rate",
    "worst_dropoff_stage", "worst_dropoff_rate",
)

_TABLES = (
    # raw (sql/raw/schema.sql)
    Table("raw_events", "raw", "One row per accepted input row, as loaded."),
    Table("rejects", "raw", "One row per refused input row (or refused file), with the reason."),
    Table("load_manifest", "raw", "One row per loaded file: its content hash, status and row counts."),
    Table("raw_duplicates", "raw", "The id of every input row counted as a duplicate."),
    Table("pending_changes", "raw", "Ids of the rows loaded or removed since the core tables were last built."),
    Table("dirty_customers", "raw", "The customers the core steps recompute on an incremental night."),
    Table("pipeline_state", "raw", "What the core tables were built with, and whether a full refresh is pending."),
    # core (sql/core/schema.sql; the rule tables from the config, core.write_stage_rules)
    Table("stage_list", "core", "The configured stages in journey order."),
    Table("stage_rules", "core", "The configured stage rules, in config order."),
    Table("touchpoint_rules", "core", "The configured touchpoint cleaning rules, in config order."),
    Table("identities", "core", "Each anonymous id seen with a known customer id, mapped to the last one.",
          per_customer=True),
    Table("events", "core", "One row per raw event, with its customer, touchpoint, stage and session.",
          per_customer=True),
    Table("sessions", "core", "One row per session of a customer.", per_customer=True),
    Table("journey_steps", "core", "One row per step of each customer's collapsed stage path.", per_customer=True),
    Table("journeys", "core", "One row per journey customer: stage path, furthest stage, conversion, first channel.",
          per_customer=True, published=True, partition="cohort_month"),
    Table("stage_entries", "core", "Each journey customer's first event at each stage they reached.",
          per_customer=True),
    Table("channel_touches", "core", "One row per touch of each customer's channel path.", per_customer=True),
    # marts (sql/marts/), in the order the aggregate step counts them
    Table("stage_conversion_daily", "mart", "The stage funnel of the journeys that started on each cohort date.",
          published=True, partition="cohort_month",
          columns=("cohort_date", "stage", "stage_order", "reached", "exited", "dropoff_rate", "before_goal", "is_goal",
                   "matured", "p90_hours_to_convert")),
    Table("stage_funnel", "mart", "The stage funnel: journeys reaching and leaving each configured stage.",
          published=True, columns=_FUNNEL),
    Table("stage_funnel_by_segment", "mart", "The stage funnel per first-touch channel and per cohort month.",
          published=True,
          # the significance columns: analysis.segments.add_significance_to_mart (docs/analysis/segments.md)
          columns=("segment_type", "segment", "segment_size", *_FUNNEL, "too_small", "dropoff_ci_low",
                   "dropoff_ci_high", "conversion_to_next_ci_low", "conversion_to_next_ci_high",
                   "conversion_from_first_ci_low", "conversion_from_first_ci_high", "rest_conversion_to_next",
                   "p_value", "test", "q_value", "differs")),
    Table("stage_transitions", "mart", "The stage graph's edges, (start) and (end) included, with probabilities.",
          published=True, columns=("from_stage", "to_stage", "from_order", "to_order", "transitions", "customers",
                                   "probability", "median_hours", "converted_transitions")),
    Table("sankey_links", "mart", "The step Sankey's links over all journeys.", published=True, columns=_LINKS),
    Table("sankey_segment_links", "mart", "The step Sankey's links for all journeys and the largest first channels.",
          columns=("segment_type", "segment", *_LINKS)),
    Table("run_summary", "mart", "The headline of the latest run (one row).", published=True, columns=_RUN_SUMMARY),
    Table("run_history", "mart", "The run_summary row of every successful run.", columns=_RUN_SUMMARY),
    Table("journey_map", "mart", "The journey map: per persona and stage, each measure with its interval.",
          published=True,
          columns=("persona_type", "persona", "persona_size", "too_small", "stage", "stage_order", "measure", "rank",
                   "label", "value", "ci_low", "ci_high", "customers", "hits", "rate_with", "rate_without", "p_value",
                   "q_value", "significant")),
    # the analyst's answers stored nightly (cjm_analytics/analysis/)
    Table("leaks", "analysis-mart", "The stages ranked by customers lost, with what marks the customers lost there.",
          columns=("rank", "stage", "customers_lost", "share_of_reached", "top_last_touchpoint",
                   "top_lift_touchpoint", "support_share", "low_score_share", "loopers",
                   "median_hours_since_last_event")),
    Table("channel_attribution", "analysis-mart", "Conversions credited to each channel by each attribution model.",
          columns=("channel", "first_touch", "last_touch", "linear", "markov", "removal_effect")),
    Table("emotion_curve", "analysis-mart", "Survey scores per stage (built when surveys are configured).",
          optional=True, columns=("stage", "stage_order", "responses", "mean_score", "ci_low", "ci_high", "nps",
                                  "nps_responses", "csat_mean", "csat_responses", "invalid_responses")),
    Table("stage_time_to_next", "analysis-mart",
          "Per stage and day: the Kaplan-Meier share who reached the next stage within that many days.",
          published=True),
    Table("stage_eventual_conversion", "analysis-mart",
          "Per stage: the projected eventual conversion (the curve at its longest spell) with its interval.",
          published=True),
    Table("stalled_customers", "analysis-mart",
          "Customers at a stage before the goal longer than its p90 dwell, and still seen recently.",
          published=True),
    Table("conversion_change", "analysis-mart",
          "Tonight's change in conversion against the last good run, split into mix and rate per segment.",
          optional=True),
    Table("run_segment_cohorts", "run", "Each run's last cohort days' stage counts per first-touch channel."),
    # runs (sql/raw/schema.sql, sql/checks/)
    Table("run_log", "run", "One row per step of every run, with its counts."),
    Table("run_metrics", "run", "The figures each run's health checks compare."),
    Table("run_checks", "run", "Every run's health checks and their outcome.", published=True),
)

TABLES: dict[str, Table] = {t.name: t for t in _TABLES}
CUSTOMER_TABLES = tuple(t.name for t in _TABLES if t.per_customer)
# Published table -> its Parquet partition column (None: one file).
PUBLISHED: dict[str, str | None] = {t.name: t.partition for t in _TABLES if t.published}


def layer(name: Layer) -> tuple[str, ...]:
    """The tables of a layer, in catalog order."""
    return tuple(t.name for t in _TABLES if t.layer == name)


def columns(table: str) -> tuple[str, ...]:
    """A table's columns in order (only for the tables whose columns code reads by name)."""
    found = TABLES[table].columns
    if not found:
        raise KeyError(f"the catalog states no columns for {table}")
    return found
