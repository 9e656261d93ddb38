"""The catalog of the warehouse's tables: each one's layer, what it holds, and who reads it.

The one list that the core layer (which tables hold rows per customer), the marts (which tables they build and
count), publishing (which tables dashboards get) and the report (which columns it reads) take their table names
from. The columns are the table's, in order, stated where code reads them by name or the table is published
(tests/test_catalog.py compares them with a built warehouse). docs/tables.md and
docs/marts.md document every table listed here (tests/test_catalog.py holds both ways); the descriptions are
one line each, for a reader of the published marts. Every column of a published table is described too
(COLUMN_DOCS, or the table's own column_docs where a name means something else there), in the words of those docs,
and publishing writes both into the published files. No imports: every layer, the report too, may read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
    # One line per column whose meaning in this table differs from COLUMN_DOCS (or that only this table has).
    column_docs: dict[str, str] = field(default_factory=dict, hash=False)


_FUNNEL = ("stage", "stage_order", "reached", "exited", "dropoff_rate", "conversion_to_next", "conversion_from_first",
           "before_goal", "is_goal")
_LINKS = ("from_step", "from_node", "to_step", "to_node", "customers")
_RUN_SUMMARY = (
    "run_id", "run_started_at", "events_read", "events_loaded", "events_rejected", "events_duplicate",
    "files_refused", "customers", "journey_customers", "sessions", "converted", "conversion_rate",
    "worst_dropoff_stage", "worst_dropoff_rate",
)

# What a column holds, by name, wherever the name means the same (docs/marts.md, docs/tables.md say it at length).
# The columns publishing adds are here too: run_id and run_date (tables without their own run_id get the
# publishing run's), cohort_month (the Parquet partition); a list column's text twin is described by publishing.
COLUMN_DOCS: dict[str, str] = {
    "run_id": "the run that published the table",
    "run_date": "UTC date the publishing run started",
    "cohort_month": "the cohort's month, YYYY-MM (the Parquet partition)",
    "cohort_date": "UTC date of the journey's first mapped event",
    "stage": "the configured stage",
    "stage_order": "the stage's place in journey order, from 1",
    "reached": "journeys whose furthest stage is this stage or beyond",
    "exited": "journeys whose furthest stage is this stage (a drop-off only where before_goal)",
    "dropoff_rate": "exited / reached; null for the last stage and where reached = 0",
    "conversion_to_next": "reached at the next stage / reached; null for the last stage and where reached = 0",
    "conversion_from_first": "reached / reached at the first stage; null where that is 0",
    "before_goal": "the stage comes before the goal: its exited are customers lost; false from the goal on, where "
                   "exited completed (never a drop-off)",
    "is_goal": "the stage is the configured goal",
}
_SEGMENT_DOCS = {
    "segment_type": "first_channel (first-touch channel) or cohort_month",
    "segment": "the segment's value; (none) for a journey without channel",
    "segment_size": "journeys in the segment (= reached at stage 1)",
    "too_small": "segment_size < analysis.min_segment_size: shown, never tested",
    "dropoff_ci_low": "low end of dropoff_rate's 95% Wilson interval",
    "dropoff_ci_high": "high end of dropoff_rate's 95% Wilson interval",
    "conversion_to_next_ci_low": "low end of conversion_to_next's 95% Wilson interval",
    "conversion_to_next_ci_high": "high end of conversion_to_next's 95% Wilson interval",
    "conversion_from_first_ci_low": "low end of conversion_from_first's 95% Wilson interval",
    "conversion_from_first_ci_high": "high end of conversion_from_first's 95% Wilson interval",
    "rest_conversion_to_next": "conversion_to_next of the other segments of the same type at this stage",
    "p_value": "p-value of this segment's conversion_to_next against the rest's; null when not tested",
    "test": "the test behind p_value: fisher or chi2",
    "q_value": "p_value adjusted by Benjamini-Hochberg over all tests of the segment type",
    "differs": "q_value < 0.05: the segment converts differently from the rest, beyond chance",
}
_DAILY_DOCS = {
    "reached": "journeys of that cohort whose furthest stage is this stage or beyond",
    "exited": "journeys of that cohort whose furthest stage is this stage",
    "matured": "the cohort has had p90_hours_to_convert from the end of its day to the end of the data; a younger "
               "cohort is still converting",
    "p90_hours_to_convert": "90th percentile of hours_to_convert over converted journeys (the same in every row; "
                            "null before any conversion)",
}
_TRANSITIONS_DOCS = {
    "from_stage": "the stage the transition leaves; (start) before a journey's first stage",
    "to_stage": "the stage the transition enters; (end) after a journey's last stage",
    "from_order": "from_stage's order; (start) is 0",
    "to_order": "to_stage's order; (end) is the number of stages + 1",
    "transitions": "transitions made along the edge",
    "customers": "customers who made the transition at least once",
    "probability": "transitions / all transitions out of from_stage; to (end): from_stage's exit probability",
    "median_hours": "median hours from the last event at from_stage to the first at to_stage; null from (start) "
                    "or to (end)",
    "converted_transitions": "the edge's transitions made by customers who converted; to (end): completions",
}
_SANKEY_DOCS = {
    "from_step": "the step the link leaves (1 = the first element of the collapsed path)",
    "from_node": "the stage at from_step (other: stages below report.sankey_min_share)",
    "to_step": "from_step + 1",
    "to_node": "the stage at to_step, or (completed), (drop-off), (continues), other",
    "customers": "journey customers along the link",
}
_RUN_SUMMARY_DOCS = {
    "run_id": "the run",
    "run_started_at": "when the run started (UTC)",
    "events_read": "input rows read from every file the warehouse holds",
    "events_loaded": "events held in the warehouse (raw_events)",
    "events_rejected": "input rows refused (see rejects)",
    "events_duplicate": "input rows counted as duplicates",
    "files_refused": "files that could not be read as configured",
    "customers": "distinct customers with events",
    "journey_customers": "customers with at least one mapped event",
    "sessions": "sessions (NULL with sessions: off, where each journey is one session)",
    "converted": "journey customers who reached the goal",
    "conversion_rate": "converted / journey_customers",
    "worst_dropoff_stage": "the stage before the goal with the highest dropoff_rate (ties: the earlier stage)",
    "worst_dropoff_rate": "that stage's dropoff_rate",
}
_JOURNEYS_DOCS = {
    "customer_key": "the customer: known id, else stitched id, else anonymous id",
    "first_ts": "first mapped event (UTC)",
    "last_ts": "last mapped event (UTC)",
    "stage_path": "the collapsed stage path (consecutive repeats of a stage are one step)",
    "path_length": "number of elements of stage_path",
    "furthest_stage": "the highest stage reached",
    "furthest_stage_order": "the highest stage's order",
    "converted": "furthest_stage_order >= the goal's order",
    "converted_at": "time of the first event at or beyond the goal stage (UTC)",
    "hours_to_convert": "converted_at - first_ts, in hours",
    "n_sessions": "sessions over all the customer's events, mapped or not",
    "n_events": "events of the customer, mapped or not",
    "first_channel": "first non-null channel among all the customer's events (first touch)",
    "last_touchpoint": "touchpoint of the customer's last event, mapped or not: where a dropper left off",
}
_JOURNEY_MAP_DOCS = {
    "persona_type": "all, or a configured persona type (first_touch_channel, cohort_month, a property, ...)",
    "persona": "the persona: all customers, a value of the type, (other) or (none)",
    "persona_size": "journey customers in the persona",
    "too_small": "persona_size < journey_map.min_customers: shown, never hidden; its moments of truth are not "
                 "tested",
    "stage": "the stage (null only for the *_configured rows)",
    "stage_order": "the stage's order (null only for the *_configured rows)",
    "measure": "what the row is: reached, conversion_to_next, lost, completed, top_touchpoint, ... "
               "(docs/marts.md)",
    "rank": "1, 2, ... for ranked measures (top touchpoints, channels, last touchpoints, moments of truth, "
            "opportunities)",
    "label": "the touchpoint or channel a ranked row is about",
    "value": "the figure",
    "ci_low": "low end of the value's 95% interval, where it has one",
    "ci_high": "high end of the value's 95% interval, where it has one",
    "customers": "the base the value is taken over (for a share: its denominator)",
    "hits": "for a share: its numerator (customers, sessions)",
    "rate_with": "moment_of_truth, opportunity: rate of going on with the touchpoint; persona_conversion: the "
                 "persona's",
    "rate_without": "moment_of_truth, opportunity: rate without the touchpoint; persona_conversion: the rest of its "
                    "persona type",
    "p_value": "p-value of the test behind moment_of_truth, opportunity and persona_conversion",
    "q_value": "p_value adjusted by Benjamini-Hochberg over the stage's candidates in one persona",
    "significant": "q_value < 0.05",
}
_LEAKS_DOCS = {
    "rank": "1 = the stage losing the most customers (ties: journey order)",
    "stage": "a stage before the goal",
    "customers_lost": "journeys whose furthest stage is this one (the funnel's exited)",
    "share_of_reached": "customers_lost / reached, the funnel's dropoff_rate",
    "top_last_touchpoint": "the most frequent last touchpoint of the customers lost here",
    "top_lift_touchpoint": "the last touchpoint most over-represented among the lost against those who went on",
    "support_share": "share of the lost with a support event; null when no analysis.support_events are "
                     "configured",
    "low_score_share": "share of the lost with a survey score below low_below; null when no analysis.surveys are "
                       "configured",
    "loopers": "customers lost here who loop between some pair of stages",
    "median_hours_since_last_event": "median hours from each lost customer's last event to the end of the data",
}
_ATTRIBUTION_DOCS = {
    "channel": "the channel",
    "first_touch": "conversions whose channel path starts with the channel",
    "last_touch": "conversions whose channel path ends with the channel",
    "linear": "conversions credited by splitting each equally over the touches of its path",
    "markov": "conversions credited by the first-order Markov chain: conversions x removal_effect / sum of them",
    "removal_effect": "1 - P(conversion | channel removed) / P(conversion)",
}
_EMOTION_DOCS = {
    "stage": "the stage the customer was at when answering; (before first stage) for answers before any",
    "stage_order": "the stage's order; 0 for (before first stage)",
    "responses": "valid survey answers given at the stage",
    "mean_score": "mean normalized score, (score - min) / (max - min): 0 worst ... 1 best",
    "ci_low": "low end of mean_score's 95% normal interval, cut to [0, 1]; null when responses < 2",
    "ci_high": "high end of mean_score's 95% normal interval, cut to [0, 1]; null when responses < 2",
    "nps": "100 x (promoters - detractors) / nps_responses on the raw 0-10 score; null without an NPS survey",
    "nps_responses": "valid answers of NPS surveys; null without an NPS survey configured",
    "csat_mean": "mean raw score of the valid CSAT answers; null without a CSAT survey",
    "csat_responses": "valid answers of CSAT surveys; null without a CSAT survey configured",
    "invalid_responses": "answers left out: missing, non-numeric or out of range",
}
_RUN_CHECKS_DOCS = {
    "run_id": "the run checked",
    "run_started": "when that run started (UTC)",
    "check_name": "the health check (docs/checks.md)",
    "subject": "what it checked: a source, a stage, ...",
    "level": "error (the run publishes nothing when it fails) or warning",
    "status": "pass, or the check's level when it failed",
    "value": "the figure checked",
    "expected": "what the figure should be",
    "message": "the check's outcome in one line",
}

# The time-to-next tables' spell, per stage (docs/analysis/time-to-next.md).
_SPELL_DOCS = {
    "from_stage": "where the spell starts: the stage itself, or the first stage for the goal",
    "to_stage": "where it ends: the next stage, or the goal",
}

_TABLES = (
    # raw (sql/raw/schema.sql)
    Table("raw_events", "raw", "One row per accepted input row, as loaded."),
    Table("rejects", "raw", "One row per refused input row (or refused file), with the reason."),
    Table("load_manifest", "raw", "One row per loaded file: its content hash, status and row counts."),
    Table("raw_duplicates", "raw", "The id of every input row counted as a duplicate."),
    Table("pending_changes", "raw", "Ids of the rows loaded or removed since the core tables were last built."),
    Table("dirty_customers", "raw", "The customers the core steps recompute on an incremental night."),
    Table("pipeline_state", "raw", "What the core tables were built with, and whether a full refresh is pending."),
    Table("retired_customers", "raw", "A night's dirty customers whose rows the marts' summaries counted, kept."),
    Table("retired_journeys", "raw", "Those customers' journeys rows as the summaries counted them."),
    Table("retired_stage_entries", "raw", "Those customers' stage_entries rows as the summaries counted them."),
    Table("retired_touchpoint_firsts", "raw", "Those customers' touchpoint_firsts rows as the summaries counted them."),
    Table("retired_stage_touchpoints", "raw", "Those customers' stage_touchpoints rows as the summaries counted them."),
    Table("retired_stage_channels", "raw", "Those customers' stage_channels rows as the summaries counted them."),
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
          per_customer=True, published=True, partition="cohort_month",
          columns=("customer_key", "first_ts", "last_ts", "stage_path", "path_length", "furthest_stage",
                   "furthest_stage_order", "converted", "converted_at", "hours_to_convert", "n_sessions", "n_events",
                   "first_channel", "cohort_date", "last_touchpoint"), column_docs=_JOURNEYS_DOCS),
    Table("stage_entries", "core", "Each journey customer's first event at each stage they reached, and when they "
          "moved beyond it.", per_customer=True),
    Table("stage_touchpoints", "core", "Each journey customer's touchpoints at each stage (the journey map's).",
          per_customer=True),
    Table("stage_channels", "core", "Each journey customer's sessions per channel at each stage (the journey map's).",
          per_customer=True),
    Table("touchpoint_firsts", "core", "Each customer's first event with each touchpoint.", per_customer=True),
    Table("channel_touches", "core", "One row per touch of each customer's channel path.", per_customer=True),
    # marts (sql/marts/), in the order the aggregate step counts them
    Table("stage_conversion_daily", "mart", "The stage funnel of the journeys that started on each cohort date.",
          published=True, partition="cohort_month",
          columns=("cohort_date", "stage", "stage_order", "reached", "exited", "dropoff_rate", "before_goal", "is_goal",
                   "matured", "p90_hours_to_convert"), column_docs=_DAILY_DOCS),
    Table("stage_funnel", "mart", "The stage funnel: journeys reaching and leaving each configured stage.",
          published=True, columns=_FUNNEL),
    Table("stage_funnel_by_segment", "mart", "The stage funnel per first-touch channel and per cohort month.",
          published=True,
          # the significance columns: analysis.segments.add_significance_to_mart (docs/analysis/segments.md)
          columns=("segment_type", "segment", "segment_size", *_FUNNEL, "too_small", "dropoff_ci_low",
                   "dropoff_ci_high", "conversion_to_next_ci_low", "conversion_to_next_ci_high",
                   "conversion_from_first_ci_low", "conversion_from_first_ci_high", "rest_conversion_to_next",
                   "p_value", "test", "q_value", "differs"), column_docs=_SEGMENT_DOCS),
    Table("stage_transitions", "mart", "The stage graph's edges, (start) and (end) included, with probabilities.",
          published=True, columns=("from_stage", "to_stage", "from_order", "to_order", "transitions", "customers",
                                   "probability", "median_hours", "converted_transitions"),
          column_docs=_TRANSITIONS_DOCS),
    Table("sankey_links", "mart", "The step Sankey's links over all journeys.", published=True, columns=_LINKS,
          column_docs=_SANKEY_DOCS),
    Table("sankey_segment_links", "mart", "The step Sankey's links for all journeys and the largest first channels.",
          columns=("segment_type", "segment", *_LINKS)),
    Table("run_summary", "mart", "The headline of the latest run (one row).", published=True, columns=_RUN_SUMMARY,
          column_docs=_RUN_SUMMARY_DOCS),
    # Published: only the runs whose checks passed (publish.py), the nights a dashboard could have seen.
    Table("run_history", "mart", "The run_summary row of every successful run.", published=True,
          columns=_RUN_SUMMARY, column_docs=_RUN_SUMMARY_DOCS),
    Table("journey_map", "mart", "The journey map: per persona and stage, each measure with its interval.",
          published=True,
          columns=("persona_type", "persona", "persona_size", "too_small", "stage", "stage_order", "measure", "rank",
                   "label", "value", "ci_low", "ci_high", "customers", "hits", "rate_with", "rate_without", "p_value",
                   "q_value", "significant"), column_docs=_JOURNEY_MAP_DOCS),
    # maintained per dirty customer (marts.maintain_summaries), read by the journey map
    Table("summary_driver_population", "mart",
          "Per first-touch channel and stage before the goal: the conversion drivers' population and converters.",
          columns=("segment", "from_order", "population", "population_converted")),
    Table("summary_driver_touchpoints", "mart",
          "Per first-touch channel, stage before the goal and touchpoint: the drivers' customers with it.",
          columns=("segment", "from_order", "touchpoint", "customers_with", "converted_with")),
    Table("summary_stage_touchpoints", "mart",
          "Per first-touch channel, stage and touchpoint: the journey customers with it there (before moving on).",
          columns=("segment", "stage_order", "touchpoint", "customers", "before_moving_on")),
    Table("summary_stage_customers", "mart",
          "Per first-touch channel and stage: the journey customers with events there.",
          columns=("segment", "stage_order", "customers")),
    Table("summary_stage_channels", "mart", "Per first-touch channel, stage and session channel: the sessions there.",
          columns=("segment", "stage_order", "channel", "sessions")),
    # the analyst's answers stored nightly (cjm_analytics/analysis/)
    Table("leaks", "analysis-mart", "The stages ranked by customers lost, with what marks the customers lost there.",
          published=True, column_docs=_LEAKS_DOCS,
          columns=("rank", "stage", "customers_lost", "share_of_reached", "top_last_touchpoint",
                   "top_lift_touchpoint", "support_share", "low_score_share", "loopers",
                   "median_hours_since_last_event")),
    Table("channel_attribution", "analysis-mart", "Conversions credited to each channel by each attribution model.",
          published=True, column_docs=_ATTRIBUTION_DOCS,
          columns=("channel", "first_touch", "last_touch", "linear", "markov", "removal_effect")),
    Table("emotion_curve", "analysis-mart", "Survey scores per stage (built when surveys are configured).",
          published=True, optional=True, column_docs=_EMOTION_DOCS,
          columns=("stage", "stage_order", "responses", "mean_score", "ci_low", "ci_high", "nps", "nps_responses",
                   "csat_mean", "csat_responses", "invalid_responses")),
    Table("stage_time_to_next", "analysis-mart",
          "Per stage and day: the Kaplan-Meier share who reached the next stage within that many days.",
          published=True, column_docs=_SPELL_DOCS | {
              "day": "whole days since reaching from_stage",
              "at_risk": "customers not yet moved on and still watched at the start of the day",
              "events": "customers who moved on during the day",
              "censored": "customers not moved on whose spell ends with the data that day (still within reach)",
              "km_conversion": "Kaplan-Meier share who moved on within `day` days (the not-yet-moved censored)",
              "ci_low": "lower end of km_conversion's 95% interval (Greenwood, log-log); NULL at 0% and 100%",
              "ci_high": "upper end of km_conversion's 95% interval (Greenwood, log-log); NULL at 0% and 100%",
          }),
    Table("stage_eventual_conversion", "analysis-mart",
          "Per stage: the projected eventual conversion (the curve at its longest spell) with its interval.",
          published=True, column_docs=_SPELL_DOCS | {
              "customers": "customers who reached from_stage",
              "moved_on": "of them, customers who reached to_stage",
              "within_reach": "customers not moved on yet (censored: still within reach, not counted as lost)",
              "observed_conversion": "moved_on / customers (counting those within reach as not converted)",
              "projected_conversion": "the Kaplan-Meier curve at its longest spell: where the stage is heading",
              "ci_low": "lower end of projected_conversion's 95% interval (Greenwood, log-log)",
              "ci_high": "upper end of projected_conversion's 95% interval (Greenwood, log-log)",
              "horizon_days": "the longest spell watched, in whole days",
              "last_event_day": "the last day on which a customer moved on",
              "at_risk_at_last_event": "customers the curve's tail rests on (at risk on last_event_day)",
          }),
    Table("stalled_customers", "analysis-mart",
          "Customers at a stage before the goal longer than its p90 dwell, and still seen recently.",
          published=True, column_docs={
              "customer_id": "the customer's key: the known customer id, else the anonymous id",
              "identified": "the key is a known customer id (not an anonymous visitor)",
              "reached_at": "when the customer reached the stage (UTC)",
              "days_at_stage": "days from reaching the stage to the end of the data",
              "p90_dwell_days": "the stage's 90th percentile of days to move on, over the customers who moved on",
              "dwell_movers": "customers the p90 dwell is measured over",
              "last_seen": "the customer's last event (UTC)",
              "days_since_last_seen": "days from last_seen to the end of the data",
              "reach_days": "3 x p90_dwell_days: last seen longer ago than this, the customer has left for good",
              "last_touchpoint": "the customer's last touchpoint",
              "last_channel": "the channel of the customer's last session that had one",
              "contacted_support": "had a support event; NULL when analysis.support_events is not configured",
              "low_score": "gave a survey score below its low_below; NULL when analysis.surveys is not configured",
          }),
    Table("conversion_change", "analysis-mart",
          "Tonight's change in conversion against the last good run, split into mix and rate per segment.",
          optional=True),
    Table("run_segment_cohorts", "run", "Each run's last cohort days' stage counts per first-touch channel."),
    # runs (sql/raw/schema.sql, sql/checks/)
    Table("run_log", "run", "One row per step of every run, with its counts."),
    Table("run_metrics", "run", "The figures each run's health checks compare."),
    Table("run_checks", "run", "Every run's health checks and their outcome.", published=True,
          columns=("run_id", "run_started", "check_name", "subject", "level", "status", "value", "expected", "message"),
          column_docs=_RUN_CHECKS_DOCS),
)

TABLES: dict[str, Table] = {t.name: t for t in _TABLES}
CUSTOMER_TABLES = tuple(t.name for t in _TABLES if t.per_customer)
# Published table -> its Parquet partition column (None: one file).
PUBLISHED: dict[str, str | None] = {t.name: t.partition for t in _TABLES if t.published}


def column_doc(table: str, column: str) -> str | None:
    """What a column of a table holds, in one line (None: not described)."""
    return TABLES[table].column_docs.get(column, COLUMN_DOCS.get(column))


def layer(name: Layer) -> tuple[str, ...]:
    """The tables of a layer, in catalog order."""
    return tuple(t.name for t in _TABLES if t.layer == name)


def columns(table: str) -> tuple[str, ...]:
    """A table's columns in order (only for the tables whose columns code reads by name)."""
    found = TABLES[table].columns
    if not found:
        raise KeyError(f"the catalog states no columns for {table}")
    return found
