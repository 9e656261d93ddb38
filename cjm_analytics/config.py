"""The one config model: a YAML file validated at the edge; nothing else reads YAML or the environment.

Paths in the file are relative to the file itself and are resolved here, so the rest of the code only
ever sees absolute paths.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import stat
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictInt,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from cjm_analytics.errors import ConfigError
from cjm_analytics.names import PSEUDO_STAGES as PSEUDO_STAGES  # re-exported: graph.py and notebooks read it here
from cjm_analytics.names import RESERVED_NODE_NAMES, Entity
from cjm_analytics.suggest import did_you_mean

SourceKind = Literal["clickstream", "crm"]
# A preset reads a well-known export (docs/presets.md) with a mapping of its own: sql/raw/presets/<name>.sql.
Preset = Literal["segment", "ga4", "snowplow", "crm_stage_history"]
PRESETS: tuple[str, ...] = get_args(Preset)
FileFormat = Literal["auto", "csv", "parquet", "json", Preset]
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
# A size as DuckDB reads it: 1000-based KB..TB or 1024-based KiB..TiB (case does not matter).
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", re.IGNORECASE)
_PERCENT = re.compile(r"^(\d+(?:\.\d+)?)\s*%$")
_UNIT_BYTES = {"kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
               "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
# Below this DuckDB cannot even run the pipeline's smallest statements (it fails with out-of-memory errors).
MIN_MEMORY_LIMIT = 64 * 10**6


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnMap(_Strict):
    """Canonical column name -> the column in the file."""

    event_id: str | None = None
    customer_id: str | None = None
    anonymous_id: str | None = None
    event_name: str | None = None
    timestamp: str
    channel: str | None = None

    @model_validator(mode="after")
    def _needs_an_identity(self) -> ColumnMap:
        if self.customer_id is None and self.anonymous_id is None:
            raise ValueError("give customer_id or anonymous_id (or both)")
        return self

    def mapped(self) -> dict[str, str]:
        """Canonical name -> file column, for the columns that are configured."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class ColumnOverrides(_Strict):
    """With a preset format: canonical column name -> the record's field to take it from instead of the preset's."""

    event_id: str | None = None
    customer_id: str | None = None
    anonymous_id: str | None = None
    event_name: str | None = None
    timestamp: str | None = None
    channel: str | None = None

    def mapped(self) -> dict[str, str]:
        """Canonical name -> field, for the columns that are overridden."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


def _as_text(x: Any) -> str:
    return str(x).lower() if isinstance(x, bool) else str(x)


class Source(_Strict):
    name: str
    kind: SourceKind
    path: str
    format: FileFormat = "auto"
    # CSV dialect, fixed rather than sniffed so that a night's data can never change how a file is split.
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    timezone: str = "UTC"
    timestamp_format: str = "auto"
    # A wall-clock time that occurs twice when clocks go back: refuse it, or take one of the two instants.
    ambiguous_times: Literal["reject", "earliest", "latest"] = "reject"
    # Required unless `format` is a preset; with a preset, only the canonical columns to take from elsewhere.
    columns: ColumnMap | ColumnOverrides | None = Field(default=None, validate_default=True)
    # For files that are one kind of event (e.g. a "closed deals" export): the name every row gets.
    event_name: str | None = Field(default=None, min_length=1)
    # Plausibility horizon (DEFINITIONS.md): historical logs are normal, far-future clocks are not.
    min_timestamp: date = date(1990, 1, 1)
    max_future_hours: float = Field(default=24.0, ge=0)
    # A file that was loaded and is gone from the folder: its events are retracted (the warehouse mirrors the
    # folder), or kept (files are archived or rotated away after loading). docs/lifecycle.md.
    missing_files: Literal["retract", "keep"] = "retract"
    # Which rows are events at all (docs/lifecycle.md, Row filters): field -> glob(s). A row is kept only if every
    # `where` field matches one of its globs, and no `where_not` field does; the rest is counted as filtered.
    where: dict[str, list[str]] = Field(default_factory=dict)
    where_not: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("where", "where_not", mode="before")
    @classmethod
    def _globs_as_text_lists(cls, v: Any) -> Any:
        # Values are compared as text; one glob may be given without a list.
        if isinstance(v, dict):
            return {str(k): globs if globs is None else [_as_text(g) for g in
                                                         (globs if isinstance(globs, list) else [globs])]
                    for k, globs in v.items()}
        return v

    def row_filters(self) -> list[dict[str, Any]]:
        """The filter as sql/raw/macros.sql's cjm_filtered reads it: [{field, globs, keep}]."""
        return ([{"field": k, "globs": g, "keep": True} for k, g in sorted(self.where.items())]
                + [{"field": k, "globs": g, "keep": False} for k, g in sorted(self.where_not.items())])

    @field_validator("name")
    @classmethod
    def _name_is_simple(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("use letters, digits, '_', '.', '-' only")
        return v

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (use an IANA name such as 'Europe/Berlin')") from None
        return v

    @field_validator("timestamp_format")
    @classmethod
    def _known_format(cls, v: str) -> str:
        if v in ("auto", "epoch_s", "epoch_ms", "epoch_us") or "%" in v:
            return v
        raise ValueError("use auto, epoch_s, epoch_ms, epoch_us or a strptime pattern such as '%d/%m/%Y %H:%M'")

    @field_validator("columns", mode="wrap")
    @classmethod
    def _columns_for_format(cls, v: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
        fmt = info.data.get("format")
        if fmt is None:  # the format itself is wrong and says so
            return handler(v)
        if fmt in PRESETS:
            return None if v is None else ColumnOverrides.model_validate(v)
        if v is None:
            raise ValueError(f"Field required (only a preset format has a mapping of its own: {', '.join(PRESETS)})")
        return ColumnMap.model_validate(v)

    @model_validator(mode="after")
    def _one_event_name(self) -> Source:
        named = int(self.columns is not None and self.columns.event_name is not None) + int(self.event_name is not None)
        if named > 1 or (named == 0 and self.format not in PRESETS):  # a preset names its events itself
            raise ValueError("give columns.event_name (a column) or event_name (one name for every row), not both")
        return self

    def reading_fingerprint(self) -> str:
        """What decides how this source's files are read: a change reloads its files (docs/lifecycle.md)."""
        settings = self.model_dump(mode="json", exclude={"name", "path", "missing_files"})
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]

    # Where the product writes, set by parse_config: never read as input (docs/lifecycle.md). A folder here
    # excludes everything below it; the warehouse also excludes its siblings `<warehouse>.*` (.wal, .lock, .tmp/).
    # A Source made without a config (tests, benchmarks) excludes nothing.
    _output_folders: tuple[Path, ...] = PrivateAttr(default=())
    _warehouse: Path | None = PrivateAttr(default=None)

    def files(self) -> list[Path]:
        """The files the glob matches, in a stable order: each real file once, never one the product writes."""
        return list(_matched_files(self.path, self._output_folders, self._warehouse).values())


class EventRule(_Strict):
    """An event name or glob, optionally with property conditions that must all hold."""

    name: str = Field(min_length=1)
    where: dict[str, str] = Field(default_factory=dict)

    @field_validator("where", mode="before")
    @classmethod
    def _values_as_text(cls, v: Any) -> Any:
        # Properties are stored as text, so conditions compare as text too.
        if isinstance(v, dict):
            return {str(k): (str(x).lower() if isinstance(x, bool) else str(x)) for k, x in v.items()}
        return v


class Stage(_Strict):
    name: str = Field(min_length=1)
    events: list[Annotated[EventRule, Field()]] = Field(min_length=1)

    @field_validator("events", mode="before")
    @classmethod
    def _names_as_rules(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [{"name": x} if isinstance(x, str) else x for x in v]
        return v

    @field_validator("name")
    @classmethod
    def _not_pseudo(cls, v: str) -> str:
        if v in RESERVED_NODE_NAMES:
            raise ValueError(f"{v!r} is reserved for the transition graph and the Sankey "
                             f"({', '.join(RESERVED_NODE_NAMES)})")
        return v


class CleanRule(_Strict):
    """A touchpoint value fully matching `pattern` (a regular expression) becomes `alias`."""

    pattern: str
    alias: str

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as e:
            raise ValueError(f"not a regular expression: {e}") from None
        return v


class Touchpoints(_Strict):
    """What a touchpoint is (for paths and pain points): the event name or a property, cleaned by rules."""

    field: str = "event_name"
    clean: list[CleanRule] = Field(default_factory=list)


class Survey(_Strict):
    """A survey event whose `score` property is a rating on [min, max] (NPS 0-10, CSAT 1-5 by default)."""

    event: str
    score: str = "score"
    kind: Literal["nps", "csat", "rating"] = "rating"
    min: float | None = None
    max: float | None = None
    # Normalized scores (0..1) below this are "low" (NPS: detractors 0-6 are below 0.65).
    low_below: float = Field(default=0.65, gt=0, le=1)

    @model_validator(mode="after")
    def _scale(self) -> Survey:
        defaults = {"nps": (0.0, 10.0), "csat": (1.0, 5.0)}
        lo, hi = defaults.get(self.kind, (None, None))
        lo, hi = (self.min if self.min is not None else lo), (self.max if self.max is not None else hi)
        if lo is None or hi is None:
            raise ValueError("give min and max for a rating survey")
        if hi <= lo:
            raise ValueError("max must be greater than min")
        return self.model_copy(update={"min": lo, "max": hi})


class Analysis(_Strict):
    """Settings of the analyst's toolkit."""

    surveys: list[Survey] = Field(default_factory=list)
    support_events: list[str] = Field(default_factory=list)  # names or globs, e.g. support_ticket_*
    min_segment_size: int = Field(default=30, ge=1)
    funnel_window_days: float = Field(default=14, gt=0)


class JourneyMap(_Strict):
    """The journey map (docs/report.md): which customer attributes make its personas, and from what size a
    persona reads. A persona type is first_touch_channel, last_touch_channel, cohort_week, cohort_month or any
    event property (a CRM field such as persona, plan, segment): a customer's first non-empty value of it."""

    personas: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=lambda: ["first_touch_channel"],
                                                                 max_length=5)
    # A persona with fewer journey customers than this is flagged too_small (shown, never hidden).
    min_customers: int = Field(default=30, ge=1)
    # The largest values of each persona type get their own map; the rest are one persona, "(other)".
    max_personas: int = Field(default=8, ge=1, le=20)

    @field_validator("personas")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        dupes = sorted({p for p in v if v.count(p) > 1})
        if dupes:
            raise ValueError(f"duplicate persona type(s) {', '.join(dupes)}")
        return v


CheckLevel = Literal["error", "warning", "off"]


class Check(_Strict):
    """One health check of a run (docs/checks.md): a failed `error` check stops publishing, a `warning` publishes
    with a banner. Written as a level alone (`refused_files: warning`) or with its settings."""

    level: CheckLevel

    @model_validator(mode="before")
    @classmethod
    def _level_alone(cls, v: Any) -> Any:
        return {"level": v} if isinstance(v, str) else v


class RejectRateCheck(Check):
    level: CheckLevel = "error"
    max: float = Field(default=0.05, ge=0, le=1)  # rejected / read, over the files a run read, per source


class VolumeCheck(Check):
    """A night far from the source's own recent nights: |x - median| > max(max_mads * 1.4826 * MAD,
    min_change * median) over the last `runs` runs that passed their checks, once there are `min_runs` of them."""

    level: CheckLevel = "warning"
    runs: int = Field(default=14, ge=2)
    min_runs: int = Field(default=7, ge=2)
    max_mads: float = Field(default=5.0, gt=0)
    min_change: float = Field(default=0.5, ge=0)


class KpiCheck(Check):
    """Conversion and each stage's drop-off against the last good night and the good night a week before."""

    level: CheckLevel = "warning"
    max_points: float = Field(default=10.0, gt=0, le=100)  # percentage points


class Checks(_Strict):
    source_empty: Check = Check(level="error")
    refused_files: Check = Check(level="error")
    reject_rate: RejectRateCheck = RejectRateCheck()
    volume: VolumeCheck = VolumeCheck()
    stage_rules: Check = Check(level="warning")
    stage_unreached: Check = Check(level="error")
    kpi_change: KpiCheck = KpiCheck()


class Alerts(_Strict):
    """Shell commands run after a run that failed (a step, or an error-level check) or passed with warnings; each
    gets the run's verdict and checks as JSON on stdin (docs/checks.md)."""

    on_failure: str | None = Field(default=None, min_length=1)
    on_warning: str | None = Field(default=None, min_length=1)
    timeout_seconds: float = Field(default=60, gt=0)


class Sessions(_Strict):
    """How a customer's events are split into sessions (DEFINITIONS.md, Sessions; docs/definitions.md), or
    `sessions: off` where sessions mean nothing (a process log: a case's events are days apart)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    inactivity_minutes: float = Field(default=30, gt=0)
    # The tracker's own session id (a column or property, e.g. Snowplow's domain_sessionid, GA4's ga_session_id),
    # for numbers that must match the tracker's: a session starts where it changes. Events without one (CRM,
    # server-side) keep the inactivity rule.
    from_: str | None = Field(default=None, alias="from", min_length=1)
    # False (`sessions: off`): no split, each journey is one session, and no page shows a session measure.
    enabled: bool = True

    @model_validator(mode="before")
    @classmethod
    def _off(cls, v: Any) -> Any:
        # YAML reads `sessions: off` (and `false`, `no`) as False; "off" and "none" come from JSON or quotes.
        if v is False or (isinstance(v, str) and v.strip().lower() in ("off", "none")):
            return {"enabled": False}
        if v is True:  # `sessions: on`: the defaults
            return {}
        if not isinstance(v, dict | Sessions):
            raise ValueError("give the settings (inactivity_minutes, from) or off")
        return v

    @model_validator(mode="after")
    def _nothing_when_off(self) -> Sessions:
        if not self.enabled and self.model_fields_set - {"enabled"}:
            raise ValueError("off takes no other setting (inactivity_minutes, from)")
        return self

    @property
    def off(self) -> bool:
        return not self.enabled

    @property
    def inactivity(self) -> float | None:
        """The inactivity timeout in minutes; None when sessions are off (no split)."""
        return self.inactivity_minutes if self.enabled else None

    def fingerprint(self) -> dict[str, Any]:
        """What the core tables depend on (core.derivation_fingerprint). `enabled` only when off, so that the
        fingerprint of a config with sessions on is what it was before the setting existed (no full refresh)."""
        return self.model_dump(exclude=set() if self.off else {"enabled"})


# A word of an entity's name: letters (any script); words joined by one space, hyphen or apostrophe.
_ENTITY_WORD = re.compile(r"^[^\W\d_]+(?:[ '-][^\W\d_]+)*$")


def regular_plural(singular: str) -> str:
    """English's regular plural: case -> cases, process -> processes, policy -> policies."""
    if re.search(r"(s|x|z|ch|sh)$", singular, re.IGNORECASE):
        return singular + "es"
    if re.search(r"[^aeiou]y$", singular, re.IGNORECASE):
        return singular[:-1] + "ies"
    return singular + "s"


class EntityName(_Strict):
    """What a journey is the journey of, as the report and the CLI say it: a customer by default; a case, a ticket,
    an application in a process log. `entity: case` takes the regular plural (cases); an irregular one is given:
    `entity: {singular: person, plural: people}`. Tables and columns keep their names (customers, customer_key)."""

    singular: str = Field(default="customer", min_length=1, max_length=40)
    plural: str = Field(default="customers", min_length=1, max_length=40)

    @model_validator(mode="before")
    @classmethod
    def _word_alone(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = {"singular": v}
        if isinstance(v, EntityName):
            return v
        if not isinstance(v, dict) or (v and "singular" not in v):  # ({} is the default: customer)
            raise ValueError("give a word (entity: case) or entity: {singular: person, plural: people}")
        singular = v.get("singular")
        if "plural" not in v and isinstance(singular, str) and _ENTITY_WORD.match(singular.strip()):
            v = {**v, "plural": regular_plural(singular.strip())}  # (a bad singular is the one error shown)
        return v

    @field_validator("singular", "plural")
    @classmethod
    def _a_word(cls, v: str) -> str:
        v = v.strip()
        if not _ENTITY_WORD.match(v):
            raise ValueError(f"{v!r} is not a name: use letters, words joined by a space, '-' or an apostrophe")
        return v

    @property
    def words(self) -> Entity:
        """The words as the report receives them (names.Entity: the report does not read the config)."""
        return Entity(self.singular, self.plural)


class Report(_Strict):
    sankey_steps: int = Field(default=8, ge=1, le=30)
    # Step nodes holding less than this share of journey customers are folded into "other".
    sankey_min_share: float = Field(default=0.01, ge=0, lt=1)
    # Default: "<Entity> journeys" ("Case journeys" with entity: case; Config._title_says_the_entity).
    title: str = "Customer journeys"


class Engine(_Strict):
    """Where the per-customer core steps run: in the warehouse's DuckDB, or bucket by bucket on Dask workers."""

    kind: Literal["local", "dask"] = "local"
    # A running Dask scheduler, e.g. tcp://scheduler:8786; without one, a LocalCluster of `workers` processes.
    address: str | None = None
    workers: int = Field(default=2, ge=1)
    # Customers are split into this many buckets by hash(customer_key): the unit of work of a worker.
    buckets: int = Field(default=16, ge=1, le=4096)
    # Where the bucket files go; every worker must see it at the same path. Default: beside the warehouse.
    work_dir: Path | None = None
    # What the per-customer core steps (sessionize, build_journeys) may hold in memory, on either engine: they
    # process the customers in scope in as many buckets as it takes to fit (core.bucket_count). Without a
    # duckdb.memory_limit, it is also DuckDB's limit during those steps. The load reads each source's files in
    # chunks that fit it too (raw/load.py chunks). A size such as 600MB, at least 64MB.
    memory_budget: str = "600MB"

    @field_validator("memory_budget", mode="before")
    @classmethod
    def _budget(cls, v: Any) -> Any:
        size = _size_bytes(str(v))
        if size is None:
            raise ValueError(f"{v!r} is not a size: use a number and a unit such as 600MB or 2GB")
        if size < MIN_MEMORY_LIMIT:
            raise ValueError(f"{v!r} is too small: DuckDB needs at least 64MB")
        return str(v).strip()

    @property
    def memory_budget_bytes(self) -> int:
        return _size_bytes(self.memory_budget) or 0

    @field_validator("work_dir")
    @classmethod
    def _absolute(cls, v: Path | None) -> Path | None:
        if v is not None and not v.is_absolute():
            raise ValueError("use an absolute path (every worker must see it at the same place)")
        return v

    @field_validator("address")
    @classmethod
    def _address_needs_dask(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None and info.data.get("kind") != "dask":
            raise ValueError("a scheduler address needs kind: dask")
        return v


def _size_bytes(v: str) -> int | None:
    m = _SIZE.match(v.strip())
    return round(float(m.group(1)) * _UNIT_BYTES[m.group(2).lower()]) if m else None


class DuckDBSettings(_Strict):
    """DuckDB settings for every connection the product opens; None leaves DuckDB's own default."""

    # A size such as 4GB or 512MiB, or a share of the machine's RAM such as 50% (DuckDB's default: 80%).
    memory_limit: str | None = None
    threads: StrictInt | None = Field(default=None, ge=1)  # DuckDB's default: one per core
    # Where DuckDB spills what does not fit in memory_limit (relative to the config file). Default:
    # <warehouse>.tmp beside the warehouse.
    temp_directory: Path | None = None
    # At most this much spill (a size); DuckDB's default: 90% of the free space of temp_directory's disk.
    max_temp_directory_size: str | None = None

    @field_validator("memory_limit", mode="before")
    @classmethod
    def _memory(cls, v: Any) -> Any:
        if v is None:
            return v
        if not isinstance(v, str):  # e.g. `4`: a unit is needed
            v = str(v)
        percent = _PERCENT.match(v.strip())
        if percent:
            if not 0 < float(percent.group(1)) <= 100:
                raise ValueError("a share of RAM is more than 0% and at most 100%")
            return v.strip()
        size = _size_bytes(v)
        if size is None:
            raise ValueError(f"{v!r} is not a size: use a number and a unit such as 4GB, 512MB or 2GiB, "
                             "or a share of RAM such as 50%")
        if size < MIN_MEMORY_LIMIT:
            raise ValueError(f"{v!r} is too small: DuckDB needs at least 64MB")
        return v.strip()

    @field_validator("max_temp_directory_size", mode="before")
    @classmethod
    def _disk(cls, v: Any) -> Any:
        if v is None:
            return v
        if not isinstance(v, str):
            v = str(v)
        size = _size_bytes(v)
        if size is None:
            raise ValueError(f"{v!r} is not a size: use a number and a unit such as 50GB or 1TB")
        if size <= 0:
            raise ValueError("give a size above 0 (leave it out for DuckDB's default)")
        return v.strip()

    def configured(self) -> dict[str, str | int]:
        """The settings that are set, as DuckDB names them (name -> value)."""
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in self.model_dump().items() if v is not None}


class Config(_Strict):
    warehouse: Path
    reports: Path
    # Where dashboards read the published marts (marts/current/), away from the warehouse's writer.
    marts: Path = Path("marts")
    sources: list[Source] = Field(min_length=1)
    stages: list[Stage] = Field(min_length=1)
    goal: str
    # What a journey is the journey of (customer, case, ticket, ...): the report's and the CLI's word for it.
    entity: EntityName = EntityName()
    sessions: Sessions = Sessions()
    report: Report = Report()
    touchpoints: Touchpoints = Touchpoints()
    analysis: Analysis = Analysis()
    journey_map: JourneyMap = JourneyMap()
    engine: Engine = Engine()
    duckdb: DuckDBSettings = DuckDBSettings()
    checks: Checks = Checks()
    alerts: Alerts = Alerts()
    # Where this config was read from; set by load_config, not by the YAML.
    config_path: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _title_says_the_entity(cls, data: Any) -> Any:
        report = data.get("report") if isinstance(data, dict) else None
        if not isinstance(data, dict) or "entity" not in data or not isinstance(report or {}, dict) \
                or "title" in (report or {}):
            return data
        try:
            entity = EntityName.model_validate(data["entity"])
        except ValidationError:  # said by the validation of `entity` itself
            return data
        return {**data, "report": {**(report or {}), "title": f"{entity.words.Singular} journeys"}}

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        names = [s.name for s in self.stages]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"stages: duplicate stage name(s) {', '.join(dupes)}")
        sources = [s.name for s in self.sources]
        dupes = sorted({n for n in sources if sources.count(n) > 1})
        if dupes:
            raise ValueError(f"sources: duplicate source name(s) {', '.join(dupes)}")
        if self.goal not in names:
            raise ValueError(f"goal: {self.goal!r} is not a stage (stages: {', '.join(names)})")
        return self

    @property
    def stage_names(self) -> list[str]:
        return [s.name for s in self.stages]

    @property
    def goal_order(self) -> int:
        return self.stage_names.index(self.goal) + 1


def _field_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _keys_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> set[str]:
    """The keys the settings at `loc` may have: those of every model its annotation can be (lists, unions)."""
    models: list[Any] = [model]
    for part in loc:
        if isinstance(part, int):
            continue
        fields = [m.model_fields[part] for m in models if part in m.model_fields]
        models = [t for f in fields for t in _models_in(f.annotation)]
    # A field with an alias (sessions.from) is written by its alias.
    return {f.alias or name for m in models for name, f in m.model_fields.items()}


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models_in(arg)]


def _one_line(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key" + did_you_mean(str(loc[-1]), _keys_at(Config, loc[:-1]))
        field = _field_path(loc)
        parts.append(f"{field}: {msg}" if field and not msg.startswith(f"{field}:") else msg)
    return "; ".join(parts)


def _resolve(base: Path, value: str | Path) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else base / p


def parse_config(data: Any, base_dir: Path, origin: str = "<config>") -> Config:
    """Validate a config mapping; relative paths are taken from base_dir."""
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: expected a mapping of settings at the top level")
    try:
        cfg = Config.model_validate(data)
    except ValidationError as e:
        raise ConfigError(f"{origin}: {_one_line(e)}") from None
    warehouse = _resolve(base_dir, cfg.warehouse)
    temp_directory = cfg.duckdb.temp_directory
    temp_directory = None if temp_directory is None else _resolve(base_dir, temp_directory)
    reports, marts = _resolve(base_dir, cfg.reports), _resolve(base_dir, cfg.marts)
    # Never inputs, whatever a source's glob says: the product would load its own files again every night.
    output_folders = tuple(p for p in (reports, marts, temp_directory, cfg.engine.work_dir) if p is not None)
    sources = []
    read_by: dict[tuple[int, int], tuple[int, Path]] = {}  # a file on disk -> the source reading it, and its path
    for i, s in enumerate(cfg.sources):
        resolved = s.model_copy(update={"path": _source_pattern(base_dir, s.path)})
        resolved._output_folders, resolved._warehouse = output_folders, warehouse
        matched = _matched_files(resolved.path, output_folders, warehouse)
        if not matched:
            why = _why_no_file(_resolve(base_dir, s.path), s.path)
            raise ConfigError(f"{origin}: sources[{i}].path: {s.path!r} {why}")
        for identity, path in matched.items():
            if identity in read_by:  # loading it twice would count its events twice
                j, first = read_by[identity]
                there = "" if first == path else f" as {first}"
                raise ConfigError(
                    f"{origin}: sources[{i}].path: matches {path}, which sources[{j}] ({cfg.sources[j].name}) "
                    f"also reads{there}; make the globs of {cfg.sources[j].name} and {s.name} disjoint")
            read_by[identity] = (i, path)
        sources.append(resolved)
    return cfg.model_copy(
        update={
            "duckdb": cfg.duckdb.model_copy(update={"temp_directory": temp_directory}),
            "warehouse": warehouse,
            "reports": reports,
            "marts": marts,
            "sources": sources,
        }
    )


def _why_no_file(path: Path, written: str) -> str:
    """Why a source's path matched no file, and what to write instead (a folder is not its files)."""
    if not path.is_dir():
        return "matches no file"
    suffixes = sorted({p.suffix for p in path.iterdir() if p.is_file() and p.suffix})
    glob_ = "*" + (suffixes[0] if len(suffixes) == 1 else ".*")
    return f"is a folder; give a glob of the files in it, e.g. {os.path.join(written, glob_)!r}"


def _source_pattern(base: Path, path: str) -> str:
    """A source's glob made absolute. The part that comes from the config's folder (or from `~`) is escaped: a
    project folder named `proj[1]` is that folder, not a pattern. The user's own part stays a pattern."""
    head, _, tail = path.partition(os.sep)
    if head.startswith("~") and os.path.expanduser(head) != head:
        return glob.escape(os.path.expanduser(head)) + (os.sep + str(Path(tail)) if tail else "")
    if os.path.isabs(path):
        return str(Path(path))
    return os.path.join(glob.escape(str(base)), str(Path(path)))


def _matched_files(pattern: str, output_folders: tuple[Path, ...],
                   warehouse: Path | None) -> dict[tuple[int, int], Path]:
    """The files a glob matches, in sorted order, by what they are on disk (device, inode): a file reached by
    several paths (symlinks, hard links, overlapping patterns) is there once, by the first of its paths; files
    the product writes (in output_folders, the warehouse and its siblings) are left out."""
    exact, prefixes = _outputs(output_folders, warehouse)
    folders: dict[Path, tuple[str, str]] = {}
    found: dict[tuple[int, int], Path] = {}
    for path in sorted(Path(p) for p in _glob(pattern)):
        try:
            st = path.lstat()
            link = stat.S_ISLNK(st.st_mode)
            if link:
                st = path.stat()
        except OSError:  # a broken link, or gone since the glob saw it
            continue
        identity = (st.st_dev, st.st_ino)
        if not stat.S_ISREG(st.st_mode) or identity in found:
            continue
        if exact and any(s in exact or s.startswith(prefixes) for s in _file_spellings(path, link, folders)):
            continue
        found[identity] = path
    return found


def _outputs(output_folders: tuple[Path, ...], warehouse: Path | None) -> tuple[set[str], tuple[str, ...]]:
    """What the product writes, as paths a file's path equals or starts with: each output folder, the warehouse
    and its `<warehouse>.*` siblings (.wal, .lock, the .tmp/ spill folder); as written and with symlinks resolved,
    so that a file is caught under either of its spellings."""
    exact: set[str] = set()
    prefixes: list[str] = []
    for folder in output_folders:
        for spelling in _spellings(folder):
            exact.add(spelling)
            prefixes.append(spelling.rstrip(os.sep) + os.sep)
    for spelling in _spellings(warehouse) if warehouse is not None else ():
        exact.add(spelling)
        prefixes.append(spelling + ".")
    return exact, tuple(prefixes)


def _spellings(path: Path) -> set[str]:
    """A path made absolute, and with its symlinks resolved."""
    return {os.path.abspath(path), os.path.realpath(path)}


def _file_spellings(path: Path, link: bool, folders: dict[Path, tuple[str, str]]) -> tuple[str, str]:
    """_spellings of a matched file, resolving its folder once for all the files in it."""
    if path.parent not in folders:
        folders[path.parent] = (os.path.abspath(path.parent), os.path.realpath(path.parent))
    absolute, real = folders[path.parent]
    return os.path.join(absolute, path.name), os.path.realpath(path) if link else os.path.join(real, path.name)


def _glob(pattern: str) -> list[str]:
    """glob.glob(pattern, recursive=True), except that a `**` enters each real folder once.

    glob follows symlinked folders without remembering where it has been: a loop such as `a/loop -> ..` is
    walked until the path is too long (each file ~40 times), and two loops never end (2**40 paths).
    """
    parts = pattern.split(os.sep)
    if "**" not in parts:
        return glob.glob(pattern)
    at = parts.index("**")
    head = os.sep.join(parts[:at]) or (os.sep if at else "")
    # What follows the first `**`; a trailing `**` also matches the files in the folders it matches.
    rest = os.sep.join(parts[at + 1:]) if at + 1 < len(parts) else "*"
    tops = sorted(glob.glob(head)) if head else [os.curdir]
    seen: set[tuple[int, int]] = set()
    found: list[str] = []
    for top in tops:
        for folder in _folders_below(top, seen):
            if not head:  # a relative pattern gives relative paths, as glob does: "a/b", not "./a/b"
                folder = os.path.normpath(folder)
            found += _glob(rest if folder == os.curdir else os.path.join(glob.escape(folder), rest))
    return found


def _folders_below(top: str, seen: set[tuple[int, int]]) -> Iterator[str]:
    """top and every folder below it that `**` matches (hidden ones are not), through symlinks, each real folder
    (device, inode) once: the first time a depth-first walk in sorted order reaches it."""
    for folder, subfolders, _ in os.walk(top, followlinks=True):
        try:
            st = os.stat(folder)
        except OSError:
            subfolders.clear()
            continue
        if (st.st_dev, st.st_ino) in seen:
            subfolders.clear()  # os.walk descends into what is left in subfolders
            continue
        seen.add((st.st_dev, st.st_ino))
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        yield folder


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML config file; every problem is a ConfigError naming file and field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read config file ({e})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from None
    cfg = parse_config(data, path.resolve().parent, origin=str(path))
    return cfg.model_copy(update={"config_path": path.resolve()})
