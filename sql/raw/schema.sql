-- The raw layer and the run bookkeeping: created once, appended to by every load.
CREATE TABLE IF NOT EXISTS raw_events (
    event_id     VARCHAR NOT NULL,
    source       VARCHAR NOT NULL,
    source_kind  VARCHAR NOT NULL,
    file         VARCHAR NOT NULL,
    row_number   BIGINT  NOT NULL,
    customer_id  VARCHAR,
    anonymous_id VARCHAR,
    event_name   VARCHAR NOT NULL,
    ts           TIMESTAMP NOT NULL,
    channel      VARCHAR,
    properties   JSON,
    run_id       VARCHAR NOT NULL
);

-- The id of every row counted as a duplicate, by file: when the loaded row with that id goes (its file changed),
-- a file holding a duplicate of it is read again, so the event is not lost.
CREATE TABLE IF NOT EXISTS raw_duplicates (
    source   VARCHAR NOT NULL,
    file     VARCHAR NOT NULL,
    event_id VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS rejects (
    source     VARCHAR NOT NULL,
    file       VARCHAR NOT NULL,
    row_number BIGINT,
    reason     VARCHAR NOT NULL,
    raw        VARCHAR,
    run_id     VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS load_manifest (
    source         VARCHAR NOT NULL,
    file           VARCHAR NOT NULL,
    size_bytes     BIGINT NOT NULL,
    modified_at    TIMESTAMP NOT NULL,
    content_hash   VARCHAR NOT NULL,
    -- loaded: the file's rows in raw_events come from this content. refused: this content could not be read
    -- (reason in rejects); tried again every run. A file has at most one row of each (docs/lifecycle.md).
    status         VARCHAR NOT NULL,
    rows_read      BIGINT NOT NULL,
    rows_loaded    BIGINT NOT NULL,
    rows_rejected  BIGINT NOT NULL,
    rows_duplicate BIGINT NOT NULL,
    run_id         VARCHAR NOT NULL,
    loaded_at      TIMESTAMP NOT NULL,
    reading_fingerprint VARCHAR  -- the source's reading settings (Source.reading_fingerprint): a change reloads
);

-- Warehouses from before fingerprints were kept: their files are read again once (NULL matches no fingerprint).
ALTER TABLE load_manifest ADD COLUMN IF NOT EXISTS reading_fingerprint VARCHAR;
-- Rows a source's filter (where / where_not) left out: read = loaded + rejected + duplicate + filtered.
ALTER TABLE load_manifest ADD COLUMN IF NOT EXISTS rows_filtered BIGINT DEFAULT 0;

CREATE TABLE IF NOT EXISTS run_log (
    run_id      VARCHAR NOT NULL,
    step        VARCHAR NOT NULL,
    started_at  TIMESTAMP NOT NULL,
    finished_at TIMESTAMP NOT NULL,
    seconds     DOUBLE NOT NULL,
    counts      JSON
);

-- What changed since the core layer was last rebuilt: the ids of every row loaded or removed.
-- Cleared only when the marts of a run commit, so a run that dies leaves them for the next one.
CREATE TABLE IF NOT EXISTS pending_changes (
    customer_id  VARCHAR,
    anonymous_id VARCHAR,
    run_id       VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS dirty_customers (
    customer_key VARCHAR NOT NULL
);

-- Small facts about the derived layers, e.g. the fingerprint of the config they were built with.
CREATE TABLE IF NOT EXISTS pipeline_state (
    key   VARCHAR NOT NULL,
    value VARCHAR
);

-- A run's health (sql/checks/, docs/checks.md): the figures each check compares, kept per run so that a night can
-- be judged against the source's own recent nights...
CREATE TABLE IF NOT EXISTS run_metrics (
    run_id      VARCHAR NOT NULL,
    run_started TIMESTAMP NOT NULL,
    metric      VARCHAR NOT NULL,  -- e.g. rows_loaded, customers, conversion_rate, dropoff_rate
    subject     VARCHAR NOT NULL,  -- a source, a stage, or '' for the whole warehouse
    value       DOUBLE
);

-- ...and every check's outcome: status is pass, or the check's level when it fails (error stops publishing).
CREATE TABLE IF NOT EXISTS run_checks (
    run_id      VARCHAR NOT NULL,
    run_started TIMESTAMP NOT NULL,
    check_name  VARCHAR NOT NULL,
    subject     VARCHAR NOT NULL,
    level       VARCHAR NOT NULL,  -- error | warning | info
    status      VARCHAR NOT NULL,  -- pass | error | warning | info
    value       DOUBLE,
    expected    VARCHAR,
    message     VARCHAR NOT NULL
);
