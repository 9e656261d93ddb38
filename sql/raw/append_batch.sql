-- A source's batch (sql/raw/start_batch.sql), once its chunks are in (sql/raw/append_chunk.sql): its refused files
-- and its manifest rows, in the same transaction; for every file
-- rows_read = rows_loaded + rows_rejected + rows_duplicate + rows_filtered.

-- A whole file that could not be read: one reject without a row number.
INSERT INTO rejects (source, file, row_number, reason, raw, run_id)
SELECT $source, file, NULL, 'file refused: ' || message, NULL, $run_id
FROM batch_files
WHERE status = 'refused';

-- Every file's four counts, from the same tables the rows came from.
CREATE OR REPLACE TEMP TABLE batch_counts AS
WITH duplicates AS (
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
LEFT JOIN batch_file_counts AS c USING (file_index)
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
