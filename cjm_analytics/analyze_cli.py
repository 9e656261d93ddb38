"""`cjm analyze <name>`: one command per analysis, writing its table (CSV/Parquet) and a page in the report site.

The analyses are pure functions in cjm_analytics.analysis and their charts are in report/analysis_pages.py; this
module holds only what the command line adds: the options, the words that introduce each page, and the wiring.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import plotly.graph_objects as go

from cjm_analytics.analysis.attribution import channel_attribution
from cjm_analytics.analysis.audience import dropped_at
from cjm_analytics.analysis.drivers import KINDS, conversion_drivers
from cjm_analytics.analysis.emotion import emotion_curve
from cjm_analytics.analysis.funnels import ORDERS, ordered_funnel
from cjm_analytics.analysis.pain_points import LOOP_THRESHOLD, leaks
from cjm_analytics.analysis.paths import LEVELS, paths_around, paths_between, top_paths
from cjm_analytics.analysis.segments import stage_funnel_by_segment
from cjm_analytics.analysis.survival import time_to_next
from cjm_analytics.analysis.timing import (
    DEFAULT_BINS,
    time_between_stages,
    time_to_convert,
    time_to_convert_histogram,
    with_bin_columns,
)
from cjm_analytics.analysis.top_segments import (
    TOP_SEGMENTS,
    fold_conversion_times,
    fold_ordered_funnel,
    fold_stage_funnel,
    fold_stage_times,
)
from cjm_analytics.config import Config, load_config
from cjm_analytics.errors import AnalysisError, ConfigError
from cjm_analytics.names import END, NO_SEGMENT, START
from cjm_analytics.report.analysis_pages import (
    PREFIX,
    Parameters,
    channel_attribution_figure,
    drivers_figure,
    emotion_curve_figure,
    ordered_funnel_figure,
    page_path,
    pain_points_figure,
    paths_figure,
    stage_funnel_by_segment_figure,
    time_between_stages_figure,
    time_to_convert_figure,
    write_analysis_page,
)
from cjm_analytics.report.drop_off_charts import audience_figure, time_to_next_figure


@dataclass(frozen=True)
class Answer:
    """What an analysis command produces: the table, and how the report page presents it: `shown` instead of the
    table where the page shows less (the top segments), `nulls` the text of NULL in a column where it means more
    than nothing ("not configured"), `rates` the columns that are rates beyond those the page knows by name."""

    table: pd.DataFrame
    title: str
    intro: str
    figure: go.Figure | None = None
    shown: pd.DataFrame | None = None
    nulls: Mapping[str, str] = field(default_factory=dict)
    rates: tuple[str, ...] = ()
    note: str = ""


Compute = Callable[[duckdb.DuckDBPyConnection, Config, argparse.Namespace], Answer]
AddAnalysis = Callable[[str, str, Compute], argparse.ArgumentParser]


# ---- argument types: argparse reports a bad value in one line ------------------------------------------------

def whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least `minimum`."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"use at least {minimum}, not {value}")
        return value
    return parse


def _bins(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r} (e.g. 0,1,24,inf)") from None


def _table_file(text: str) -> Path:
    path = Path(text)
    if path.suffix not in (".csv", ".parquet"):
        raise argparse.ArgumentTypeError(f"{text}: write .csv or .parquet")
    return path


def _split(text: str | None) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()] if text else []


def _add_top(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--top", type=whole_number(1), default=TOP_SEGMENTS,
                        help=f"the page shows the N largest segments and the others as one (default "
                             f"{TOP_SEGMENTS}); the table file has every segment")


def _top_note(full: pd.DataFrame, shown: pd.DataFrame) -> str:
    """What the page leaves out, said on it (plain text); empty when it shows every segment."""
    if "segment" not in full.columns or full["segment"].nunique() == shown["segment"].nunique():
        return ""
    return (f"{full['segment'].nunique():,} segments: the page shows the {shown['segment'].nunique() - 1} largest "
            "and the others as one, their counts summed and rates recomputed from the sums (medians, p90 and tests "
            "are not, so they are empty there). The table file has every segment (--top to show more).")


# ---- funnel ------------------------------------------------------------------------------------------------

def _funnel(con: duckdb.DuckDBPyConnection, cfg: Config, args: argparse.Namespace) -> Answer:
    window = args.window_days if args.window_days is not None else cfg.analysis.funnel_window_days
    steps, exclusions = _split(args.steps), _split(args.exclude)
    table = ordered_funnel(con, steps, window, args.order, exclusions, args.hide_unelapsed, args.segment,
                           min_segment_size=cfg.analysis.min_segment_size)
    how = {"ordered": "in this order (other events may come between)",
           "strict": "in this order with no other event between consecutive steps",
           "any": "in any order"}[args.order]
    e = cfg.entity.words
    rule = (f"step k counts once the {e.singular} has done k of the steps, each first done after the attempt's "
            "start" if args.order == "any" else
            f"a {e.singular} completes step k at the earliest step-k event after their step k−1 (events at the "
            "same time are taken in funnel order)")
    intro = (
        f"How many {e.plural} go {' → '.join(steps)} {how}, within {window:g} days of their first step? "
        f"An attempt starts at a step-1 event{' (in any order: at any step event)' if args.order == 'any' else ''}; "
        f"{rule}; every step must fall within the window from the start. "
        f"Each {e.singular} counts once, by the attempt that gets furthest (the earliest such). entered = "
        f"{e.plural} who completed the previous step; conversion_from_previous = completed / entered; times to "
        "convert are from step 1 to the step, median and p90 (linear interpolation) among completers."
        f" The report's Stage funnel page (funnel.html) counts differently: every journey {e.singular} at every "
        "stage up to their furthest one, in any order and with no window, so for the same stages its counts are "
        "higher or equal."
    )
    if exclusions:
        intro += (f" An attempt with {' or '.join(exclusions)} after step 1 and before its last completed step "
                  f"does not count; a {e.singular} with no other attempt leaves the funnel.")
    if args.hide_unelapsed:
        intro += " Attempts whose window has not ended by the latest event in the warehouse are left out."
    if args.segment:
        intro += (f" Per {args.segment}: segment_size = the segment's {e.plural} at step 1; too_small marks "
                  f"fewer than {cfg.analysis.min_segment_size}.")
    shown = fold_ordered_funnel(table, args.top, cfg.analysis.min_segment_size) if args.segment else table
    return Answer(table, f"Funnel: {' → '.join(steps)}", intro, ordered_funnel_figure(shown, e), shown=shown,
                  note=_top_note(table, shown))


def _add_funnel(add_analysis: AddAnalysis) -> None:
    parser = add_analysis("funnel", "an ordered funnel of stages or events with a conversion window", _funnel)
    parser.add_argument("--steps", required=True,
                        help="comma-separated steps: stage names or event/touchpoint names; prefix stage:, "
                             "event: or touchpoint: to say which (e.g. awareness,event:add_to_cart,purchase)")
    parser.add_argument("--window-days", type=float, default=None,
                        help="conversion window from step 1 (default: analysis.funnel_window_days, 14)")
    parser.add_argument("--order", choices=ORDERS, default="ordered",
                        help="ordered: other events may come between; strict: the next event must be the next "
                             "step; any: steps in any order")
    parser.add_argument("--exclude", help="comma-separated exclusion events (e.g. remove_from_cart)")
    parser.add_argument("--hide-unelapsed", action="store_true",
                        help="leave out attempts whose window has not ended by the latest event")
    parser.add_argument("--segment", help="break down by a segment (first_touch_channel, campaign, cohort_week, ...)")
    _add_top(parser)


# ---- funnel-by-segment -------------------------------------------------------------------------------------

def _funnel_by_segment(con: duckdb.DuckDBPyConnection, cfg: Config, args: argparse.Namespace) -> Answer:
    table = stage_funnel_by_segment(con, args.by, cfg)
    e = cfg.entity.words
    intro = (
        f"Where do {e.plural} drop out, by {args.by}? The stage funnel of each segment, with the stage funnel's "
        f"definitions: reached(k) = the segment's journey {e.plural} whose furthest stage is k or beyond, "
        "exited(k) = those whose furthest stage is k, dropoff_rate = exited / reached, conversion_from_first = "
        f"reached(k) / reached(1). segment_size is the segment's journey {e.plural}; segments are summed to the "
        f"stage funnel exactly. {e.Plural} without a value are in {NO_SEGMENT}. too_small marks segments of fewer "
        f"than {cfg.analysis.min_segment_size} {e.plural} (analysis.min_segment_size): read them with care. "
        "Every rate has its 95% Wilson interval (<rate>_ci_low, <rate>_ci_high). At each stage, each segment's "
        "conversion_to_next is compared with that of all other segments together (rest_conversion_to_next): the "
        "p-value of Fisher's exact test (an expected count below 5) or the chi-square test, its Benjamini–Hochberg "
        "q-value over every test in this table, and differs = q below 0.05. A stage a segment reached with fewer "
        f"than {cfg.analysis.min_segment_size} {e.plural} is not tested, so a small segment is never flagged; rows "
        "are in segment order, never ranked."
    )
    shown = fold_stage_funnel(table, args.top, cfg.analysis.min_segment_size)
    return Answer(table, f"Stage funnel by {args.by}", intro, stage_funnel_by_segment_figure(shown), shown=shown,
                  note=_top_note(table, shown))


def _add_segments(add_analysis: AddAnalysis) -> None:
    parser = add_analysis("funnel-by-segment", "the stage funnel per segment (channel, campaign, cohort, ...)",
                          _funnel_by_segment)
    parser.add_argument("--by", required=True,
                        help="first_touch_channel, last_touch_channel, cohort_week, cohort_month, or an event "
                             "property such as campaign, device, persona, plan, region")
    _add_top(parser)


# ---- time-between-stages, time-to-convert ------------------------------------------------------------------

def _segment_intro(segment: str | None, cfg: Config, counted: str) -> str:
    if segment is None:
        return ""
    return (f" Per {segment} ({cfg.entity.plural} without a value are in {NO_SEGMENT}); too_small marks fewer than "
            f"{cfg.analysis.min_segment_size} {counted}.")


def _between_stages(con: duckdb.DuckDBPyConnection, cfg: Config, args: argparse.Namespace) -> Answer:
    table = time_between_stages(con, args.segment, cfg)
    intro = (
        f"How long do {cfg.entity.plural} take from one stage to the next? Every transition between consecutive "
        "stages of "
        "the collapsed stage paths (loops included, e.g. intent → consideration) is measured from the last "
        "event of the run at the first stage to the first event at the next, as in the transition graph; "
        "median and p90 use linear interpolation (numpy's default)."
        + _segment_intro(args.segment, cfg, "transitions")
    )
    shown = fold_stage_times(table, args.top, cfg.analysis.min_segment_size) if args.segment else table
    return Answer(table, "Time between stages", intro, time_between_stages_figure(shown), shown=shown,
                  note=_top_note(table, shown))


def _to_convert(con: duckdb.DuckDBPyConnection, cfg: Config, args: argparse.Namespace) -> Answer:
    summary = time_to_convert(con, args.segment, cfg)
    histogram = time_to_convert_histogram(con, args.bins, args.segment, cfg)
    intro = (
        f"How long does conversion take? hours_to_convert runs from a converted {cfg.entity.singular}'s first "
        f"mapped event to their first event at or beyond the goal stage; converted {cfg.entity.plural} are counted "
        "per bin of [lower, upper) hours, with the median and p90 (linear interpolation, numpy's default)."
        + _segment_intro(args.segment, cfg, f"converted {cfg.entity.plural}")
    )
    table = with_bin_columns(summary, histogram)
    shown, drawn = (fold_conversion_times(table, histogram, args.top, cfg.analysis.min_segment_size)
                    if args.segment else (table, histogram))
    return Answer(table, "Time to convert", intro, time_to_convert_figure(drawn), shown=shown,
                  note=_top_note(table, shown))


def _add_timing(add_analysis: AddAnalysis) -> None:
    between = add_analysis("time-between-stages", "hours from one stage to the next: median, p90, mean",
                           _between_stages)
    between.add_argument("--segment", help="break down by a segment (first_touch_channel, campaign, ...)")
    _add_top(between)
    convert = add_analysis("time-to-convert", "hours from the first mapped event to conversion: median, p90, "
                           "histogram", _to_convert)
    convert.add_argument("--segment", help="break down by a segment (first_touch_channel, campaign, ...)")
    convert.add_argument("--bins", type=_bins, default=list(DEFAULT_BINS),
                         help="histogram bin edges in hours (default: 0,1,6,24,72,168,336,inf)")
    _add_top(convert)


# ---- paths, paths-around, paths-between --------------------------------------------------------------------

def _add_level_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--level", choices=LEVELS, default="stage", help="stage paths or touchpoint paths")
    parser.add_argument("--n", type=whole_number(1), default=20, help="how many paths to list (default 20)")
    parser.add_argument("--keep-repeats", action="store_true",
                        help="touchpoint paths: keep consecutive repeats (stage paths always collapse them)")


def _paths(con: duckdb.DuckDBPyConnection, cfg: Config, args: argparse.Namespace) -> Answer:
    df = top_paths(con, args.level, n=args.n, max_length=args.max_length, collapse_loops=not args.keep_repeats)
    e = cfg.entity.words
    population = "journeys" if args.level == "stage" else f"{e.plural} with events"
    covered = float(df["cumulative_share"].iloc[-1]) if len(df) else 0.0
    intro = (f"The {len(df)} most common {args.level} paths and how many {e.plural} followed each; together "
             f"they cover {covered:.1%} of all {population}.")
    return Answer(df, f"Top {args.level} paths", intro,
                  paths_figure(df, f"Top {args.level} paths", coverage=True, entity=e))


def _paths_around(con: duckdb.DuckDBPyConnection, cfg: Config, args: argparse.Namespace) -> Answer:
    df = paths_around(con, args.anchor, args.before, args.after, args.level, n=args.n,
                      collapse_loops=not args.keep_repeats)
    e = cfg.entity.words
    intro = (f"The {args.before} {args.level} step(s) before and {args.after} after each {e.singular}'s first "
             f"{args.anchor!r}; share is of the {e.plural} who ever had {args.anchor!r}. {START} and {END} mark "
             f"a path that begins or ends inside the window.")
    return Answer(df, f"Paths around {args.anchor}", intro,
                  paths_figure(df, f"Paths around {args.anchor}", entity=e))


def _paths_between(con: duckdb.DuckDBPyConnection, cfg: Config, args: argparse.Namespace) -> Answer:
    df = paths_between(con, args.start, args.end, args.level, n=args.n, collapse_loops=not args.keep_repeats)
    e = cfg.entity.words
    intro = (f"How {e.plural} get from their first {args.start!r} to the first {args.end!r} after it: the "
             f"{args.level} steps in between, with the median hours it took; share is of the {e.plural} who made "
             "it.")
    title = f"Paths from {args.start} to {args.end}"
    return Answer(df, title, intro, paths_figure(df, title, entity=e))


def _add_paths(add_analysis: AddAnalysis) -> None:
    p = add_analysis("paths", "the most common stage or touchpoint paths and the share of journeys they cover",
                     _paths)
    _add_level_options(p)
    p.add_argument("--max-length", type=whole_number(1), default=None,
                   help="cut paths after this many steps (a cut path ends in '…')")
    p = add_analysis("paths-around", "the steps before and after each customer's first occurrence of an anchor",
                     _paths_around)
    p.add_argument("--anchor", required=True, help="a stage name or touchpoint")
    p.add_argument("--before", type=whole_number(0), default=2, help="steps before the anchor (default 2)")
    p.add_argument("--after", type=whole_number(0), default=2, help="steps after the anchor (default 2)")
    _add_level_options(p)
    p = add_analysis("paths-between", "the paths from a first start step to the first end step after it",
                     _paths_between)
    p.add_argument("--start", required=True, help="a stage name or touchpoint")
    p.add_argument("--end", required=True, help="a stage name or touchpoint")
    _add_level_options(p)


# ---- pain-points -------------------------------------------------------------------------------------------

def _pain_points(con: duckdb.DuckDBPyConnection, cfg: Config, args: argparse.Namespace) -> Answer:
    df = leaks(con, cfg, loop_threshold=args.loop_threshold, min_customers=args.min_customers)
    # A mark whose input is not configured is unknown, not 0: its column is left out here and said so.
    unset = {"support_share": "analysis.support_events", "low_score_share": "analysis.surveys"}
    unset = {c: key for c, key in unset.items()
             if not (cfg.analysis.support_events if c == "support_share" else cfg.analysis.surveys)}
    df = df.drop(columns=list(unset))
    e = cfg.entity.words
    if len(df):
        top = df.iloc[0]
        intro = (f"The biggest leak is {top['stage']}: {int(top['customers_lost']):,} {e.plural} "
                 f"({float(top['share_of_reached']):.1%} of those who reached it) went no further. Stages before "
                 f"the goal ({cfg.goal}) only: a {e.singular} who stops at or after it has completed (retention, "
                 f"see the stage funnel). Per stage: the "
                 f"touchpoint droppers most often ended on, the one most over-represented against {e.plural} who "
                 f"went on (lift), and the shares who contacted support, gave a low survey score or looped "
                 f"between two stages more than {args.loop_threshold} times.")
    else:
        intro = f"The goal ({cfg.goal}) is the first stage, so nobody can drop out before it."
    if unset:
        intro += " Not configured, so left out (unknown, not 0): " + "; ".join(
            f"{c} (no {key} in the config)" for c, key in unset.items()) + "."
    return Answer(df, "Pain points: the biggest leaks", intro, pain_points_figure(df, e))


def _add_pain_points(add_analysis: AddAnalysis) -> None:
    p = add_analysis("pain-points", "the stages ranked by customers lost, with what the lost customers did last",
                     _pain_points)
    p.add_argument("--loop-threshold", type=whole_number(0), default=LOOP_THRESHOLD,
                   help=f"a looper moves between two stages more than this many times (default {LOOP_THRESHOLD})")
    p.add_argument("--min-customers", type=whole_number(1), default=None,
                   help="fewest droppers for a touchpoint's lift to be ranked (default: analysis.min_segment_size)")


# ---- emotion-curve -----------------------------------------------------------------------------------------

def _emotion(con: duckdb.DuckDBPyConnection, cfg: Config, args: argparse.Namespace) -> Answer:
    if not cfg.analysis.surveys:
        raise ConfigError("analysis.surveys: no survey is configured, so there is no score to show")
    df = emotion_curve(con, cfg)
    answered = df[df["responses"] > 0]
    intro = (f"{int(df['responses'].sum()):,} survey answers placed at the stage each {cfg.entity.singular} was "
             "at when answering (their latest stage event at or before the answer); scores are normalized to 0..1, "
             "with a 95% confidence interval of the mean. ")
    if len(answered):
        low = answered.sort_values("mean_score", kind="stable").iloc[0]
        intro += f"{cfg.entity.words.Plural} feel worst at {low['stage']} (mean {float(low['mean_score']):.2f})."
    invalid = int(df["invalid_responses"].sum())
    if invalid:
        intro += f" {invalid:,} answers had no valid score and are left out."
    return Answer(df, "Emotion curve", intro, emotion_curve_figure(df))


def _add_emotion(add_analysis: AddAnalysis) -> None:
    add_analysis("emotion-curve", "survey scores per journey stage: mean, confidence interval, NPS, CSAT", _emotion)


# ---- attribution -------------------------------------------------------------------------------------------

def _attribution(con: duckdb.DuckDBPyConnection, cfg: Config, args: argparse.Namespace) -> Answer:
    df = channel_attribution(con)
    total = float(df["last_touch"].sum())
    intro = (f"{total:,.0f} conversions to {cfg.goal} credited to the channels of the sessions before them: first "
             f"touch, last touch, linear (equal split) and a first-order Markov chain (removal effects, as in the "
             f"ChannelAttribution package). Consecutive sessions from the same channel count as one touch.")
    if cfg.sessions.off:  # one session per journey: one touch per path, so the models cannot differ
        intro += (f" Sessions are not used (sessions: off in the config): each {cfg.entity.singular}'s path is one "
                  f"touch, the channel of its first event, and the four models agree by construction.")
    return Answer(df, "Channel attribution", intro, channel_attribution_figure(df))


def _add_attribution(add_analysis: AddAnalysis) -> None:
    add_analysis("attribution", "conversions credited to channels: first/last touch, linear and Markov chain",
                 _attribution)


# ---- drivers -----------------------------------------------------------------------------------------------

def _drivers(con: duckdb.DuckDBPyConnection, cfg: Config, args: argparse.Namespace) -> Answer:
    support = args.min_support if args.min_support is not None else cfg.analysis.min_segment_size
    kinds = _split(args.kinds) or list(KINDS)
    properties = _split(args.properties) or None
    df = conversion_drivers(con, args.from_stage, args.to_stage, min_support=support, kinds=kinds,
                            properties=properties)
    population = int(df["population"].iloc[0]) if len(df) else 0
    converted = int(df["population_converted"].iloc[0]) if len(df) else 0
    found = int(df["significant"].sum())
    e = cfg.entity.words
    intro = (
        f"Of the {e.plural} who reached {args.from_stage}, which {', '.join(kinds)} go with reaching "
        f"{args.to_stage}? These are associations, not causes: a candidate can go with converting because of who "
        f"has it, not because of what it does. Only what a {e.singular} did before reaching {args.to_stage} counts "
        f"(for {e.plural} who did not, everything up to their last event); the events of {args.to_stage} and of "
        f"later stages never count. "
        f"Each candidate's {e.plural} are compared with the rest: conversion with and without it, the odds ratio "
        f"with its 95% interval, the p-value of Fisher's exact test (an expected count below 5) or the chi-square "
        f"test, and its Benjamini–Hochberg q-value over all {len(df):,} candidates; significant = q below 0.05. "
        f"Candidates held or lacked by fewer than {support} {e.plural} are not tested."
    )
    if len(df):
        intro += (f" {population:,} {e.plural} reached {args.from_stage}, {converted:,} of them {args.to_stage}; "
                  f"{found} candidate(s) differ beyond chance.")
    else:
        intro += f" No candidate has enough {e.plural} on both sides."
    return Answer(df, f"Conversion drivers: {args.from_stage} → {args.to_stage}", intro, drivers_figure(df, e))


def _add_drivers(add_analysis: AddAnalysis) -> None:
    p = add_analysis("drivers", "what goes with reaching a stage: events, touchpoints, channels, properties, with "
                     "odds ratios, Fisher/chi-square p-values and FDR correction", _drivers)
    p.add_argument("--from", dest="from_stage", required=True, help="the stage the customers reached")
    p.add_argument("--to", dest="to_stage", required=True, help="the later stage: reached or not")
    p.add_argument("--min-support", type=whole_number(1), default=None,
                   help="fewest customers with and without a candidate (default: analysis.min_segment_size)")
    p.add_argument("--kinds", help=f"comma-separated kinds of candidate (default: {','.join(KINDS)})")
    p.add_argument("--properties", help="comma-separated event properties to read (default: every property with "
                                        "at most 20 values)")


# ---- time-to-next ------------------------------------------------------------------------------------------

def _time_to_next(con: duckdb.DuckDBPyConnection, cfg: Config, args: argparse.Namespace) -> Answer:
    result = time_to_next(con, cfg, args.stage)
    e = cfg.entity.words
    intro = (
        f"How soon do {e.plural} reach the next stage? For each stage before the goal, the Kaplan–Meier share of "
        f"the {e.plural} who reached it that reached the next one within d days (stages are a ladder: reaching a "
        f"stage is the first event at it or beyond); for the goal, {cfg.goal}, the share of journeys that reached "
        f"it within d days of their first stage. A {e.singular} who has not moved on yet is censored at the end of "
        "the "
        "data (still within reach: watched that long, not counted as lost). Per day: at_risk = spells still "
        "watched, events and censored in (d − 1, d]; km_conversion with its 95% interval (Greenwood, log-log)."
    )
    for row in result.eventual.to_dict("records"):
        intro += (f" {row['from_stage']} → {row['to_stage']}: {_pct(row['observed_conversion'])} observed, "
                  f"projected {_pct(row['projected_conversion'])} (95% {_pct(row['ci_low'])}–{_pct(row['ci_high'])}) "
                  f"after {row['horizon_days']:.0f} days, {row['within_reach']:,} still within reach.")
    return Answer(result.curve, "Time to the next stage", intro, time_to_next_figure(result.curve),
                  rates=("ci_low", "ci_high"))  # km_conversion's interval


def _pct(x: float | None) -> str:
    # An interval is NULL where it is undefined (at 0% and 100%); pandas reads NULL as NaN.
    return "n/a" if x is None or math.isnan(x) else f"{x:.1%}"


def _add_survival(add_analysis: AddAnalysis) -> None:
    p = add_analysis("time-to-next", "Kaplan–Meier time to the next stage, censoring customers still within reach",
                     _time_to_next)
    p.add_argument("--stage", help="one stage before the goal, or the goal (from the first stage); default all")


# ---- audience ----------------------------------------------------------------------------------------------

def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {text!r} (e.g. 2026-11-01)") from None


def _segment_value(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value:
        raise argparse.ArgumentTypeError(f"write NAME=VALUE (e.g. first_touch_channel=email), not {text!r}")
    return name.strip(), value


def _audience(con: duckdb.DuckDBPyConnection, cfg: Config, args: argparse.Namespace) -> Answer:
    if args.persona is not None and args.segment is not None:
        raise AnalysisError("give --persona or --segment, not both")
    segment, value = ("persona", args.persona) if args.persona is not None else args.segment or (None, None)
    table = dropped_at(con, cfg, args.dropped_at, segment, value, args.since)
    who = f" with {segment} = {value}" if segment else ""
    since = f", last seen on or after {args.since}" if args.since else ""
    e = cfg.entity.words
    intro = (
        f"{len(table):,} {e.plural}{who} whose journey stopped at {args.dropped_at}{since} (their furthest stage; "
        f"{e.plural} who reached the goal, {cfg.goal}, completed and are never here). Per {e.singular}: whether "
        f"the id is a known {e.singular} (identified) or an anonymous visitor, when they reached the stage, when "
        "they were last "
        "seen and how many days before the end of the data, their last touchpoint and latest channel, and whether "
        "they contacted support or gave a low survey score (empty where support events or surveys are not "
        "configured: unknown, not no). Most recently seen first."
    )
    unset = {"contacted_support": "not configured"} if not cfg.analysis.support_events else {}
    unset |= {"low_score": "not configured"} if not cfg.analysis.surveys else {}
    return Answer(table, f"Audience: dropped at {args.dropped_at}", intro, audience_figure(table, e), nulls=unset)


def _add_audience(add_analysis: AddAnalysis) -> None:
    p = add_analysis("audience", "the customers who dropped out at a stage, with what a CRM team needs to reach them",
                     _audience)
    p.add_argument("--dropped-at", required=True, help="a stage before the goal")
    p.add_argument("--persona", help="only customers whose persona (the CRM property persona) is this value")
    p.add_argument("--segment", type=_segment_value,
                   help="only one segment: NAME=VALUE, NAME as for funnel-by-segment --by (first_touch_channel, "
                        "cohort_week, or a property such as plan)")
    p.add_argument("--since", type=_date, help="only customers last seen on or after this date (UTC, YYYY-MM-DD)")


# ---- the wiring --------------------------------------------------------------------------------------------

# The commands of each analysis module, in the order `cjm analyze --help` lists them.
COMMANDS: dict[str, Callable[[AddAnalysis], None]] = {
    "funnels": _add_funnel,
    "segments": _add_segments,
    "timing": _add_timing,
    "paths": _add_paths,
    "pain_points": _add_pain_points,
    "emotion": _add_emotion,
    "attribution": _add_attribution,
    "drivers": _add_drivers,
    "survival": _add_survival,
    "audience": _add_audience,
}
ANALYSIS_MODULES: tuple[str, ...] = tuple(COMMANDS)  # tests register fewer


def _write_table(df: pd.DataFrame, out: Path) -> Path:
    """CSV or Parquet by the file's suffix (.csv, .parquet)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".parquet":
        df.to_parquet(out, index=False)
    else:
        df.to_csv(out, index=False)
    return out


def _open(config: Config) -> duckdb.DuckDBPyConnection:
    from cjm_analytics.warehouse import connect

    if not config.warehouse.exists():
        raise ConfigError(f"warehouse: {config.warehouse} does not exist yet; run `cjm run` first")
    return connect(config.warehouse, read_only=True, settings=config.duckdb)


# Options that say where or how much to show, not what to answer: not in the page's name.
NOT_PARAMETERS = frozenset({"help", "config", "out", "top"})


def parameters(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Parameters:
    """The options given other than at their defaults, as (option, value), in the order of `--help`: what makes
    the page's name, so the same question always gets the same page, whichever way its options were written."""
    given = []
    for action in parser._actions:
        value = getattr(args, action.dest, None)
        if action.dest in NOT_PARAMETERS or not action.option_strings or value is None or value == action.default:
            continue
        option = max(action.option_strings, key=len)
        given.append((option, "" if isinstance(action, argparse._StoreTrueAction) else _text(value)))
    return given


def _text(value: object) -> str:
    if isinstance(value, tuple):  # NAME=VALUE
        return "=".join(_text(v) for v in value)
    if isinstance(value, list):  # a list of numbers (bins)
        return ",".join(_text(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _run(name: str, compute: Compute, args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    config = load_config(args.config)
    given = parameters(parser, args)
    con = _open(config)
    try:
        try:
            answer = compute(con, config, args)
        except AnalysisError as e:
            raise AnalysisError(f"analyze {name}: {e}") from None
        page_file = page_path(config.reports, name, given)
        # The table is named as its page, so a run with other parameters keeps it too.
        out = args.out or config.reports / "analysis" / f"{page_file.stem.removeprefix(PREFIX)}.csv"
        _write_table(answer.table, out)
        page = write_analysis_page(con, config.reports, page_file.stem, answer.title, answer.intro,
                                   answer.table if answer.shown is None else answer.shown, answer.figure,
                                   site_title=config.report.title, analysis=name, parameters=given,
                                   nulls=answer.nulls, rates=answer.rates, note=answer.note)
    finally:
        con.close()
    print(answer.table.head(20).to_string(index=False))
    print(f"table: {out}\npage: {page}")
    return 0


def register_all(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `analyze` with one sub-command per analysis."""
    analyze = subparsers.add_parser("analyze", help="answer an analyst's question (writes CSV/Parquet and a page)")
    commands = analyze.add_subparsers(dest="analysis", required=True)

    def add_analysis(name: str, help_text: str, compute: Compute) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = commands.add_parser(name, help=help_text, description=help_text)
        parser.add_argument("--config", required=True, help="the YAML config of the warehouse")
        parser.add_argument("--out", type=_table_file,
                            help="a .csv or .parquet file (default: <reports>/analysis/<name>--<parameters>.csv, "
                                 "named as the page)")
        parser.set_defaults(func=lambda args: _run(name, compute, args, parser))
        return parser

    for module in ANALYSIS_MODULES:
        COMMANDS[module](add_analysis)
