-- The core layer's tables: created once, then maintained customer by customer. This file is part of the
-- derivation fingerprint (core.derivation_fingerprint): a change to it makes the next run a full refresh.

-- Whose event a raw row is: its customer id, else the customer its anonymous id is stitched to, else the
-- anonymous id itself. The one definition of customer_key (events.sql, scope_dirty.sql, the Dask export).
CREATE OR REPLACE TEMP MACRO cjm_customer_key(customer_id, stitched_customer_id, anonymous_id) AS
    coalesce(customer_id, stitched_customer_id, anonymous_id);

-- The config's stages and touchpoint cleaning rules, in config order: rewritten by each run's stitch step
-- (core.write_rules), read by the stage mapping (events.sql), the journeys, the marts and the checks.
CREATE TABLE IF NOT EXISTS stage_list (
    stage       VARCHAR NOT NULL,
    stage_order INTEGER NOT NULL
);

-- One row per event rule of a stage (a name or a glob, with optional property conditions).
CREATE TABLE IF NOT EXISTS stage_rules (
    rule_order  INTEGER,
    stage       VARCHAR,
    stage_order INTEGER,
    pattern     VARCHAR,
    conditions  JSON
);

CREATE TABLE IF NOT EXISTS touchpoint_rules (
    rule_order INTEGER,
    pattern    VARCHAR,
    alias      VARCHAR
);
CREATE TABLE IF NOT EXISTS identities (
    anonymous_id VARCHAR NOT NULL,
    customer_id  VARCHAR NOT NULL,
    stitched_at  TIMESTAMP NOT NULL
);

-- Narrow on purpose: properties, file and row_number stay in raw_events (join on source, event_id).
CREATE TABLE IF NOT EXISTS events (
    event_id       VARCHAR NOT NULL,
    source         VARCHAR NOT NULL,
    customer_key   VARCHAR NOT NULL,
    -- hash(customer_key): the customer's bucket (core.in_buckets). Stored, and the table written bucket by bucket,
    -- so that a bucket's reads skip the other buckets' row groups on their min/max instead of hashing every key.
    customer_hash  UBIGINT NOT NULL,
    anonymous_id   VARCHAR,
    event_name     VARCHAR NOT NULL,
    touchpoint     VARCHAR,
    ts             TIMESTAMP NOT NULL,
    channel        VARCHAR,
    stage          VARCHAR,
    stage_order    INTEGER,
    session_number BIGINT NOT NULL,
    event_number   BIGINT NOT NULL
);

-- sessions and journey_steps store customer_hash too, as events does: a bucket's statements read them by hash range.
CREATE TABLE IF NOT EXISTS sessions (
    customer_key   VARCHAR NOT NULL,
    customer_hash  UBIGINT NOT NULL,
    session_id     VARCHAR NOT NULL,
    session_number BIGINT NOT NULL,
    session_start  TIMESTAMP NOT NULL,
    session_end    TIMESTAMP NOT NULL,
    n_events       BIGINT NOT NULL,
    first_event    VARCHAR NOT NULL,
    last_event     VARCHAR NOT NULL,
    channel        VARCHAR
);

CREATE TABLE IF NOT EXISTS journey_steps (
    customer_key     VARCHAR NOT NULL,
    customer_hash    UBIGINT NOT NULL,
    step             BIGINT NOT NULL,
    path_length      BIGINT NOT NULL,
    stage            VARCHAR NOT NULL,
    stage_order      INTEGER NOT NULL,
    ts               TIMESTAMP NOT NULL,
    prev_stage       VARCHAR,
    prev_stage_order INTEGER,
    hours_from_prev  DOUBLE
);

CREATE TABLE IF NOT EXISTS journeys (
    customer_key         VARCHAR NOT NULL,
    first_ts             TIMESTAMP NOT NULL,
    last_ts              TIMESTAMP NOT NULL,
    stage_path           VARCHAR[] NOT NULL,
    path_length          BIGINT NOT NULL,
    furthest_stage       VARCHAR NOT NULL,
    furthest_stage_order INTEGER NOT NULL,
    converted            BOOLEAN NOT NULL,
    converted_at         TIMESTAMP,
    hours_to_convert     DOUBLE,
    n_sessions           BIGINT NOT NULL,
    n_events             BIGINT NOT NULL,
    first_channel        VARCHAR,
    cohort_date          DATE NOT NULL,
    last_touchpoint      VARCHAR
);

-- Per journey customer and stage reached: the first event at the stage and the touchpoint just before it, and
-- when the customer first moved beyond it (the journey map's time in stage, the time-to-next spells).
CREATE TABLE IF NOT EXISTS stage_entries (
    customer_key    VARCHAR NOT NULL,
    stage_order     INTEGER NOT NULL,
    event_number    BIGINT NOT NULL,
    prev_touchpoint VARCHAR,
    ts              TIMESTAMP NOT NULL,  -- of the first event at the stage
    moved_ts        TIMESTAMP            -- the first event at a later stage at or after ts; NULL: not moved on
);

-- Per journey customer and stage, each touchpoint of the events placed at that stage (an event is at the stage
-- of the latest mapped event at or before it): the journey map's "what they do", counted per persona nightly.
CREATE TABLE IF NOT EXISTS stage_touchpoints (
    customer_key     VARCHAR NOT NULL,
    stage_order      INTEGER NOT NULL,
    touchpoint       VARCHAR NOT NULL,  -- the event's touchpoint, else its name
    before_moving_on BOOLEAN NOT NULL   -- some of those events came before the customer first moved beyond the stage
);

-- Per journey customer, stage and session channel: how many of the customer's sessions had events placed at
-- the stage (the journey map's channel mix).
CREATE TABLE IF NOT EXISTS stage_channels (
    customer_key VARCHAR NOT NULL,
    stage_order  INTEGER NOT NULL,
    channel      VARCHAR,  -- sessions.channel
    sessions     BIGINT NOT NULL
);

-- Per customer and touchpoint, the customer's first event with it: what the journey map's moments of truth ask
-- of each stage's population (a touchpoint counts when it came before the customer's cutoff), without a scan of
-- every event each night.
CREATE TABLE IF NOT EXISTS touchpoint_firsts (
    customer_key VARCHAR NOT NULL,
    touchpoint   VARCHAR NOT NULL,  -- events.touchpoint (events without one have none)
    event_number BIGINT NOT NULL    -- of the customer's first event with it
);

-- Per customer, the collapsed channel path of attribution: one row per touch.
CREATE TABLE IF NOT EXISTS channel_touches (
    customer_key VARCHAR NOT NULL,
    touch        BIGINT NOT NULL,
    n_touches    BIGINT NOT NULL,
    channel      VARCHAR NOT NULL,
    prev_channel VARCHAR,
    converted    BOOLEAN NOT NULL
);
