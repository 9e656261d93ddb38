-- A source's batch (sql/raw/start_batch.sql) into the raw layer, in one transaction with its manifest rows:
-- rejects with their reason, events once per (source, event_id), and for every file
-- rows_read = rows_loaded + rows_rejected + rows_duplicate + rows_filtered.

-- A whole file that could not be read: one reject without a row number.
INSERT INTO rejects (source, file, row_number, reason, raw, run_id)
SELECT $source, file, NULL, 'file refused: ' || message, NULL, $run_id
FROM batch_files
WHERE status = 'refused';

INSERT INTO rejects (source, file, row_number, reason, raw, run_id)
SELECT $source, f.file, r.row_number, r.reason, r.raw, $run_id
FROM batch_parse_rejects AS r
INNER JOIN batch_files AS f USING (file_index);

INSERT INTO rejects (source, file, row_number, reason, raw, run_id)
SELECT $source, f.file, b.row_number, b.reject_reason, b.raw, $run_id
FROM batch_rows AS b
INNER JOIN batch_files AS f USING (file_index)
WHERE b.reject_reason IS NOT NULL;

-- Duplicates: an id already loaded (by an earlier run; a changed file's own earlier rows are gone by now),
-- or an earlier row of the batch (file order, then row number). One pass over the batch and one over the
-- source's ids, whatever the number of files.
CREATE OR REPLACE TEMP TABLE batch_duplicates AS
WITH accepted AS NOT MATERIALIZED (  -- read twice: cheaper than a copy of every id
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

loaded_before AS (
    SELECT
        a.file_index,
        a.row_number
    FROM accepted AS a
    SEMI JOIN (SELECT event_id FROM raw_events WHERE source = $source) AS known
        ON a.event_id = known.event_id
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

-- The customers these rows belong to are recomputed by the core steps.
INSERT INTO pending_changes
SELECT DISTINCT
    b.customer_id,
    b.anonymous_id,
    $run_id
FROM batch_rows AS b
ANTI JOIN batch_duplicates AS d
    ON b.file_index = d.file_index AND b.row_number = d.row_number
WHERE b.reject_reason IS NULL;

-- Every file's four counts, from the same tables the rows above came from.
CREATE OR REPLACE TEMP TABLE batch_counts AS
WITH judged AS (
    SELECT
        file_index,
        count(*) AS rows_judged,
        count(*) FILTER (WHERE reject_reason IS NOT NULL) AS rows_rejected
    FROM batch_rows
    GROUP BY file_index
),

unsplit AS (
    SELECT
        file_index,
        count(*) AS rows_unsplit
    FROM batch_parse_rejects
    GROUP BY file_index
),

duplicates AS (
    SELECT
        file_index,
        count(*) AS rows_duplicate
    FROM batch_duplicates
    GROUP BY file_index
),

filtered AS (
    SELECT
        file_index,
        sum(rows_filtered) AS rows_filtered
    FROM batch_filtered
    GROUP BY file_index
)

SELECT
    f.file_index,
    f.file,
    f.status,
    f.message,
    coalesce(j.rows_judged, 0) + coalesce(u.rows_unsplit, 0) + coalesce(x.rows_filtered, 0) AS rows_read,
    coalesce(j.rows_judged, 0) - coalesce(j.rows_rejected, 0) - coalesce(d.rows_duplicate, 0) AS rows_loaded,
    coalesce(j.rows_rejected, 0) + coalesce(u.rows_unsplit, 0) AS rows_rejected,
    coalesce(d.rows_duplicate, 0) AS rows_duplicate,
    coalesce(x.rows_filtered, 0) AS rows_filtered
FROM batch_files AS f
LEFT JOIN judged AS j USING (file_index)
LEFT JOIN unsplit AS u USING (file_index)
LEFT JOIN duplicates AS d USING (file_index)
LEFT JOIN filtered AS x USING (file_index);

INSERT INTO load_manifest (
    source, file, size_bytes, modified_at, content_hash, status, rows_read, rows_loaded, rows_rejected,
    rows_duplicate, run_id, loaded_at, reading_fingerprint, rows_filtered
)
SELECT
    $source,
    f.file,
    f.size_bytes,
    f.modified_at,
    f.content_hash,
    f.status,
    c.rows_read,
    c.rows_loaded,
    c.rows_rejected,
    c.rows_duplicate,
    $run_id,
    $loaded_at,
    $reading_fingerprint,
    c.rows_filtered
FROM batch_files AS f
INNER JOIN batch_counts AS c USING (file_index);
