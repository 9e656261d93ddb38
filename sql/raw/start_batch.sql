-- A source's batch: this run's new and changed files of one source and the rest of its plan, written to the
-- warehouse in one transaction (sql/raw/forget_files.sql, then sql/raw/append_chunk.sql for each chunk of files,
-- then sql/raw/dedupe_part.sql for each part of the ids, then sql/raw/append_batch.sql). Temp tables of the
-- writing connection, all small: the rows themselves are staged chunk by chunk on another connection
-- (sql/raw/start_chunk.sql).
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

-- Per file of the batch, its counts from each chunk that read it or a piece of it (sql/raw/append_chunk.sql).
CREATE OR REPLACE TEMP TABLE batch_file_counts (
    file_index    INTEGER NOT NULL,
    rows_judged   BIGINT NOT NULL,
    rows_rejected BIGINT NOT NULL,  -- of the judged rows
    rows_unsplit  BIGINT NOT NULL,  -- rows the reader could not split
    rows_filtered BIGINT NOT NULL
);

-- The rows of the batch that are duplicates (sql/raw/dedupe_part.sql): few, their places and ids, and where
-- raw_events holds them until they are deleted (sql/raw/append_batch.sql).
CREATE OR REPLACE TEMP TABLE batch_duplicates (
    file_index INTEGER NOT NULL,
    row_number BIGINT NOT NULL,
    event_id   VARCHAR NOT NULL,
    row_id     BIGINT NOT NULL
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
