-- A source's batch: this run's new and changed files of one source, staged file by file
-- (sql/raw/append_file.sql) and written to the warehouse at once (sql/raw/append_batch.sql).
-- file_index is the file's place in the source's file order: the first occurrence of an id wins by it.
CREATE OR REPLACE TEMP TABLE batch_files (
    file_index   INTEGER NOT NULL,
    file         VARCHAR NOT NULL,
    size_bytes   BIGINT NOT NULL,
    modified_at  TIMESTAMP NOT NULL,
    content_hash VARCHAR NOT NULL,
    known        BOOLEAN NOT NULL,  -- loaded before: its earlier rows are replaced
    status       VARCHAR NOT NULL,  -- loaded | refused
    message      VARCHAR            -- why a refused file could not be read
);

CREATE OR REPLACE TEMP TABLE batch_rows (
    file_index    INTEGER NOT NULL,
    row_number    BIGINT NOT NULL,
    event_id      VARCHAR,  -- accepted rows only
    customer_id   VARCHAR,
    anonymous_id  VARCHAR,
    event_name    VARCHAR,
    ts            TIMESTAMP,
    channel       VARCHAR,
    properties    JSON,
    reject_reason VARCHAR,
    raw           VARCHAR   -- rejected rows only
);

-- Rows the source's filter (where / where_not) left out, counted per file.
CREATE OR REPLACE TEMP TABLE batch_filtered (
    file_index    INTEGER NOT NULL,
    rows_filtered BIGINT NOT NULL
);

-- Rows the reader could not split, with the reader's reason.
CREATE OR REPLACE TEMP TABLE batch_parse_rejects (
    file_index INTEGER NOT NULL,
    row_number BIGINT,
    reason     VARCHAR NOT NULL,
    raw        VARCHAR
);

-- The rest of the source's plan (cjm_analytics/raw/lifecycle.py), written in the same transaction.
-- A loaded file gone from the folder whose exact content is now at another path: its rows only change path.
CREATE OR REPLACE TEMP TABLE batch_renamed (
    old_file    VARCHAR NOT NULL,
    new_file    VARCHAR NOT NULL,
    size_bytes  BIGINT NOT NULL,
    modified_at TIMESTAMP NOT NULL
);

-- A loaded file gone from the folder (missing_files: retract): its events go.
CREATE OR REPLACE TEMP TABLE batch_retracted (
    file VARCHAR NOT NULL
);

-- A refused file that is gone: its refusal goes.
CREATE OR REPLACE TEMP TABLE batch_cleared_refusals (
    file VARCHAR NOT NULL
);
