-- One chunk of a source's batch into the raw layer, inside the batch's transaction (sql/raw/start_batch.sql):
-- rejects with their reason, events once per (source, event_id), and each file's counts. The chunk's tables
-- (batch_rows, batch_parse_rejects, batch_filtered: sql/raw/start_chunk.sql) are the staging connection's, read
-- here as Arrow tables; chunks come in file order and hold whole files, so an id's first occurrence in file order
-- is loaded, as if the batch were one chunk.

INSERT INTO rejects (source, file, row_number, reason, raw, run_id)
SELECT $source, f.file, r.row_number, r.reason, r.raw, $run_id
FROM batch_parse_rejects AS r
INNER JOIN batch_files AS f USING (file_index);

INSERT INTO rejects (source, file, row_number, reason, raw, run_id)
SELECT $source, f.file, b.row_number, b.reject_reason, b.raw, $run_id
FROM batch_rows AS b
INNER JOIN batch_files AS f USING (file_index)
WHERE b.reject_reason IS NOT NULL;

-- Duplicates: an id already loaded (by an earlier run, or by an earlier chunk of this batch; a changed file's own
-- earlier rows are gone by now), or an earlier row of the chunk (file order, then row number).
INSERT INTO batch_duplicates
WITH accepted AS NOT MATERIALIZED (  -- read three times: cheaper than a copy of every id
    SELECT
        file_index,
        row_number,
        event_id
    FROM batch_rows
    WHERE reject_reason IS NULL
),

-- Ids that occur more than once, found by their 64-bit hash first: grouping integers costs less than
-- ranking every id, and only the rows whose hash repeats (few) are ranked by the id itself.
repeated_hashes AS (
    SELECT hash(event_id) AS id_hash
    FROM accepted
    GROUP BY id_hash
    HAVING count(*) > 1
),

repeated AS (
    SELECT
        file_index,
        row_number
    FROM accepted
    WHERE hash(event_id) IN (SELECT id_hash FROM repeated_hashes)
    QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY file_index, row_number) > 1
),

-- The source's ids that the chunk repeats. The hash table is built on the chunk's ids (IN), never on the
-- source's, which grow with every chunk and every night: the source's ids are only scanned.
known AS (
    SELECT event_id
    FROM raw_events
    WHERE source = $source AND event_id IN (SELECT event_id FROM accepted)
),

loaded_before AS (
    SELECT
        file_index,
        row_number
    FROM accepted
    WHERE event_id IN (SELECT event_id FROM known)
)

SELECT * FROM repeated
UNION
SELECT * FROM loaded_before;

-- Remembered so that a file holding a duplicate is read again if the loaded row goes (sql/raw/schema.sql).
INSERT INTO raw_duplicates
SELECT $source, f.file, b.event_id
FROM batch_rows AS b
INNER JOIN batch_files AS f USING (file_index)
SEMI JOIN batch_duplicates AS d
    ON b.file_index = d.file_index AND b.row_number = d.row_number;

INSERT INTO raw_events
SELECT
    b.event_id,
    $source AS source,
    $source_kind AS source_kind,
    f.file,
    b.row_number,
    b.customer_id,
    b.anonymous_id,
    b.event_name,
    b.ts,
    b.channel,
    b.properties,
    $run_id AS run_id
FROM batch_rows AS b
INNER JOIN batch_files AS f USING (file_index)
ANTI JOIN batch_duplicates AS d
    ON b.file_index = d.file_index AND b.row_number = d.row_number
WHERE b.reject_reason IS NULL;

-- The customers these rows belong to are recomputed by the core steps (a set: a pair may come from two chunks).
INSERT INTO pending_changes
SELECT DISTINCT
    b.customer_id,
    b.anonymous_id,
    $run_id
FROM batch_rows AS b
ANTI JOIN batch_duplicates AS d
    ON b.file_index = d.file_index AND b.row_number = d.row_number
WHERE b.reject_reason IS NULL;

-- The chunk's files' counts: each file is in one chunk, so they are whole (duplicates: sql/raw/append_batch.sql).
INSERT INTO batch_file_counts
WITH judged AS (
    SELECT
        file_index,
        count(*) AS rows_judged,
        count(*) FILTER (WHERE reject_reason IS NOT NULL) AS rows_rejected,
        0 AS rows_unsplit,
        0 AS rows_filtered
    FROM batch_rows
    GROUP BY file_index
),

unsplit AS (
    SELECT
        file_index,
        0 AS rows_judged,
        0 AS rows_rejected,
        count(*) AS rows_unsplit,
        0 AS rows_filtered
    FROM batch_parse_rejects
    GROUP BY file_index
),

filtered AS (
    SELECT
        file_index,
        0 AS rows_judged,
        0 AS rows_rejected,
        0 AS rows_unsplit,
        sum(rows_filtered) AS rows_filtered
    FROM batch_filtered
    GROUP BY file_index
)

SELECT
    file_index,
    sum(rows_judged),
    sum(rows_rejected),
    sum(rows_unsplit),
    sum(rows_filtered)
FROM (
    SELECT * FROM judged
    UNION ALL
    SELECT * FROM unsplit
    UNION ALL
    SELECT * FROM filtered
)
GROUP BY file_index;
