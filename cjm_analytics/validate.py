"""`cjm validate`: the config checked against the data, without touching the warehouse (docs/operations.md).

The sources are loaded and turned into journeys by the run's own steps, in a throw-away DuckDB file in a temp
folder; then the config is read against what was found: the columns each source fills, the events each stage
rule matches, the survey, support and touchpoint settings, and the first journeys. A stage whose rules match
no event is an error (almost always a misspelled event name, which a run would show as a stage nobody
reaches); everything else that looks wrong is a warning.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Literal

import pandas as pd

from cjm_analytics.config import Config
from cjm_analytics.core import build_journeys, sessionize, stitch_identities, write_rules
from cjm_analytics.raw import FileLoad, load_source
from cjm_analytics.sql_steps import query_sql
from cjm_analytics.suggest import did_you_mean
from cjm_analytics.warehouse import open_warehouse

_GLOB_CHARS = frozenset("*?[")
_REASONS = 5  # reject reasons listed per source


@dataclass(frozen=True)
class Finding:
    level: Literal["error", "warning"]
    where: str  # the config field, e.g. stages[0].events[1]
    message: str

    def __str__(self) -> str:
        return f"{self.level}: {self.where}: {self.message}"


@dataclass
class Validation:
    files: list[FileLoad]
    sources: pd.DataFrame  # source_columns.sql
    rules: pd.DataFrame  # rule_matches.sql
    event_names: pd.DataFrame  # event_names.sql
    journeys: pd.DataFrame  # journeys_preview.sql
    rejects: pd.DataFrame  # reject_reasons.sql
    journey_count: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]


def validate(config: Config, allow_empty_stages: bool = False, preview: int = 5) -> Validation:
    """Load and map the config's data in a temporary DuckDB, and check the config against it."""
    with tempfile.TemporaryDirectory(prefix="cjm-validate-", dir=config.duckdb.temp_directory) as tmp, \
            open_warehouse(Path(tmp) / "validate.duckdb", config.duckdb) as con:
        started = datetime.now(UTC)
        files = [f for s in config.sources for f in load_source(con, s, "validate", started)]
        write_rules(con, config.stages, config.touchpoints)
        stitch_identities(con, full=True)
        sessionize(con, config.sessions.inactivity, config.touchpoints.field, full=True,
                   session_field=config.sessions.from_)
        build_journeys(con, config.goal_order, full=True)
        row = con.execute("SELECT count(*) FROM journeys").fetchone()
        found = Validation(
            files=files,
            sources=query_sql(con, "validate/source_columns"),
            rules=query_sql(con, "validate/rule_matches"),
            event_names=query_sql(con, "validate/event_names"),
            journeys=query_sql(con, "validate/journeys_preview", n=preview),
            rejects=query_sql(con, "validate/reject_reasons"),
            journey_count=int(row[0]) if row else 0,
        )
    found.findings = findings(config, found, allow_empty_stages)
    return found


def findings(config: Config, v: Validation, allow_empty_stages: bool) -> list[Finding]:
    """What in the config does not fit the data (pure: over the frames `validate` read)."""
    out: list[Finding] = []
    names = [str(n) for n in v.event_names["event_name"]]
    for i, source in enumerate(config.sources):
        mine = [f for f in v.files if f.source == source.name]
        where = f"sources[{i}] ({source.name})"
        for f in mine:
            if f.status == "refused":
                out.append(Finding("warning", where, f"{Path(f.file).name} would be refused: {f.message}"))
            elif f.status == "loaded" and not f.rows_read:
                out.append(Finding("warning", where, f"{Path(f.file).name}: {f.message}"))
        reasons = v.rejects[v.rejects["source"] == source.name]
        for count, reason, first in zip(reasons["rows_rejected"][:_REASONS], reasons["reason"][:_REASONS],
                                        reasons["first"][:_REASONS], strict=True):
            out.append(Finding("warning", where, f"{int(count):,} row(s) would be rejected: {reason} "
                                                 f"(first: {Path(first['file']).name} row {first['row_number']})"))
        if len(reasons) > _REASONS:
            out.append(Finding("warning", where, f"{int(reasons['rows_rejected'][_REASONS:].sum()):,} more row(s) "
                                                 f"would be rejected for {len(reasons) - _REASONS} other reason(s)"))
        if not sum(f.rows_loaded for f in mine):
            out.append(Finding("warning", where, "no event loads from its files"))
    for stage_index, stage in enumerate(config.stages):
        rules = v.rules[v.rules["stage_order"] == stage_index + 1]
        for rule_index, (_, rule) in enumerate(rules.iterrows()):
            if int(rule["events_matched"]) == 0:
                pattern = str(rule["pattern"])
                hint = "" if _GLOB_CHARS & set(pattern) else did_you_mean(pattern, names)
                out.append(Finding("warning", f"stages[{stage_index}].events[{rule_index}]",
                                   f"{pattern!r}{_where(rule)} matches no event{hint}"))
        if rules.empty or int(rules["stage_events"].iloc[0]) == 0:
            level: Literal["error", "warning"] = "warning" if allow_empty_stages else "error"
            out.append(Finding(level, f"stages[{stage_index}] ({stage.name})",
                               "no event maps to this stage: a run would show it as a stage nobody reaches"))
    analysis = config.analysis
    for i, survey in enumerate(analysis.surveys):
        if not _any_match(survey.event, names):
            out.append(Finding("warning", f"analysis.surveys[{i}].event",
                               f"{survey.event!r} matches no event{did_you_mean(survey.event, names)}"))
    for i, pattern in enumerate(analysis.support_events):
        if not _any_match(pattern, names):
            out.append(Finding("warning", f"analysis.support_events[{i}]",
                               f"{pattern!r} matches no event{did_you_mean(pattern, names)}"))
    touchpoint = config.touchpoints.field
    properties = {str(k) for keys in v.sources["property_columns"] for k in (keys if keys is not None else [])}
    if touchpoint != "event_name" and touchpoint not in properties:
        out.append(Finding("warning", "touchpoints.field",
                           f"no event has a property {touchpoint!r}{did_you_mean(touchpoint, properties)}: every "
                           "touchpoint is the event name"))
    return out


def _where(rule: pd.Series) -> str:
    conditions = rule["conditions"]
    return f" where {json.loads(conditions)}" if isinstance(conditions, str) else ""


def _any_match(pattern: str, names: Iterable[str]) -> bool:
    return any(fnmatchcase(n, pattern) for n in names)


def format_validation(config: Config, v: Validation) -> str:
    """What `cjm validate` prints: per source, per stage, the unmapped events, the first journeys, the findings."""
    lines = ["sources:"]
    for source in config.sources:
        mine = [f for f in v.files if f.source == source.name]
        read, loaded = sum(f.rows_read for f in mine), sum(f.rows_loaded for f in mine)
        rejected, duplicate = sum(f.rows_rejected for f in mine), sum(f.rows_duplicate for f in mine)
        refused = sum(f.status == "refused" for f in mine)
        filtered = (f" + filtered {sum(f.rows_filtered for f in mine):,}" if source.where or source.where_not
                    else "")
        lines.append(f"  {source.name}: {len(mine)} file(s){f', {refused} refused' if refused else ''}; read "
                     f"{read:,} = loaded {loaded:,} + rejected {rejected:,} + duplicate {duplicate:,}{filtered}")
        row = v.sources[v.sources["source"] == source.name]
        if len(row):
            r = row.iloc[0]
            events = int(r["events"])
            filled = ", ".join(f"{c} {int(r['with_' + c]) / events:.0%}" for c in ("customer_id", "anonymous_id",
                                                                                    "channel"))
            lines.append(f"    filled: event_id, event_name, timestamp 100%, {filled}")
            props = list(r["property_columns"]) if r["property_columns"] is not None else []
            if props:
                lines.append(f"    other columns (kept as properties): {', '.join(map(str, props))}")
    lines.append("stages (events each rule matches; a stage's events go to its first matching rule):")
    for _, rule in v.rules.iterrows():
        lines.append(f"  {rule['stage']}: {rule['pattern']}{_where(rule)}: {int(rule['events_matched']):,}")
    unmapped = v.event_names[~v.event_names["mapped"]]
    if len(unmapped):
        top = ", ".join(f"{n} ({int(c):,})" for n, c in zip(unmapped["event_name"][:8], unmapped["events"][:8],
                                                            strict=True))
        more = f", and {len(unmapped) - 8} more" if len(unmapped) > 8 else ""
        lines.append(f"events no stage maps ({int(unmapped['events'].sum()):,}): {top}{more}")
    lines.append(f"journeys: {v.journey_count:,}; the first {len(v.journeys)}:")
    lines += [f"  {r.customer_key}: {r.stage_path}{' (reached ' + config.goal + ')' if r.converted else ''}"
              for r in v.journeys.itertuples()]
    lines += [f"{f}" for f in v.findings]
    errors = len(v.errors)
    lines.append(f"{errors} error(s), {len(v.findings) - errors} warning(s)")
    return "\n".join(lines)
