-- A source's batch (sql/raw/start_batch.sql), once its chunks are in (sql/raw/append_chunk.sql) and its duplicates
-- found (sql/raw/dedupe_part.sql): its duplicates out, its refused files and its manifest rows, in the same
-- transaction; for every file
-- rows_read = rows_loaded + rows_rejected + rows_duplicate + rows_filtered.

-- The duplicates (sql/raw/dedupe_part.sql) leave raw_events; their ids are remembered, so that a file holding a
-- duplicate is read again if the loaded row goes (sql/raw/schema.sql).
DELETE FROM raw_events WHERE rowid IN (SELECT row_id FROM batch_duplicates);

INSERT INTO raw_duplicates
SELECT $source, f.file, d.event_id
FROM batch_duplicates AS d
INNER JOIN batch_files AS f USING (file_index);

-- The customers of the rows loaded tonight are recomputed by the core steps.
INSERT INTO pending_changes
SELECT DISTINCT customer_id, anonymous_id, $run_id
FROM raw_events
WHERE source = $source AND run_id = $run_id;

-- A whole file that could not be read: one reject without a row number.
INSERT INTO rejects (source, file, row_number, reason, raw, run_id)
SELECT $source, file, NULL, 'file refused: ' || message, NULL, $run_id
FROM batch_files
WHERE status = 'refused';

-- Every file's four counts, from the same tables the rows came from.
CREATE OR REPLACE TEMP TABLE batch_counts AS
WITH counts AS (  -- a file split into pieces has a row per piece
    SELECT
        file_index,
        sum(rows_judged) AS rows_judged,
        sum(rows_rejected) AS rows_rejected,
        sum(rows_unsplit) AS rows_unsplit,
        sum(rows_filtered) AS rows_filtered
    FROM batch_file_counts
    GROUP BY file_index
),

duplicates AS (
    SELECT
        file_index,
        count(*) AS rows_duplicate
    FROM batch_duplicates
    GROUP BY file_index
)

SELECT
    f.file_index,
    f.file,
    f.status,
    f.message,
    coalesce(c.rows_judged, 0) + coalesce(c.rows_unsplit, 0) + coalesce(c.rows_filtered, 0) AS rows_read,
    coalesce(c.rows_judged, 0) - coalesce(c.rows_rejected, 0) - coalesce(d.rows_duplicate, 0) AS rows_loaded,
    coalesce(c.rows_rejected, 0) + coalesce(c.rows_unsplit, 0) AS rows_rejected,
    coalesce(d.rows_duplicate, 0) AS rows_duplicate,
    coalesce(c.rows_filtered, 0) AS rows_filtered
FROM batch_files AS f
LEFT JOIN counts AS c USING (file_index)
LEFT JOIN duplicates AS d USING (file_index);

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
