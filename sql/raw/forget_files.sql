-- What the source's plan removes or moves before the batch is appended (sql/raw/append_chunk.sql, same
-- transaction; the plan: cjm_analytics/raw/lifecycle.py).

-- Renamed files: the same content at a new path, so only the path changes.
UPDATE raw_events SET file = r.new_file
FROM batch_renamed AS r
WHERE raw_events.source = $source AND raw_events.file = r.old_file;

UPDATE rejects SET file = r.new_file
FROM batch_renamed AS r
WHERE rejects.source = $source AND rejects.file = r.old_file;

UPDATE raw_duplicates SET file = r.new_file
FROM batch_renamed AS r
WHERE raw_duplicates.source = $source AND raw_duplicates.file = r.old_file;

UPDATE load_manifest SET file = r.new_file, size_bytes = r.size_bytes, modified_at = r.modified_at
FROM batch_renamed AS r
WHERE load_manifest.source = $source AND load_manifest.file = r.old_file;

-- Files whose earlier rows go: read again tonight (loaded or refused), or retracted.
CREATE OR REPLACE TEMP TABLE batch_forgotten AS
SELECT file FROM batch_files WHERE known
UNION
SELECT file FROM batch_retracted;

-- The customers of the removed rows are recomputed too.
INSERT INTO pending_changes
SELECT DISTINCT customer_id, anonymous_id, $run_id
FROM raw_events
WHERE source = $source AND file IN (SELECT file FROM batch_forgotten);

DELETE FROM raw_events WHERE source = $source AND file IN (SELECT file FROM batch_forgotten);

DELETE FROM rejects WHERE source = $source AND file IN (SELECT file FROM batch_forgotten);

DELETE FROM raw_duplicates WHERE source = $source AND file IN (SELECT file FROM batch_forgotten);

DELETE FROM load_manifest WHERE source = $source AND file IN (SELECT file FROM batch_forgotten);

-- A file's last refusal goes whenever the file is read again (tonight's outcome replaces it) or is gone.
CREATE OR REPLACE TEMP TABLE batch_refusals_done AS
SELECT file FROM batch_files
UNION
SELECT file FROM batch_cleared_refusals;

DELETE FROM rejects
WHERE source = $source AND row_number IS NULL AND starts_with(reason, 'file refused: ')
    AND file IN (SELECT file FROM batch_refusals_done);

DELETE FROM load_manifest
WHERE source = $source AND status = 'refused' AND file IN (SELECT file FROM batch_refusals_done);
