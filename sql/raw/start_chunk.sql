-- One chunk of a source's batch (sql/raw/start_batch.sql): its files staged and judged row by row
-- (sql/raw/append_file.sql) on the staging connection, outside the batch's transaction, so that a file that
-- cannot be read is refused alone. Created again for every chunk, which frees the previous one: a chunk's rows
-- are all the raw layer holds in memory at once (cjm_analytics/raw/load.py sizes the chunks).
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
