-- The batch's changed files (and refused files that had loaded before): their earlier rows, rejects and
-- manifest entries go, their new content replaces them (sql/raw/append_batch.sql, same transaction).

-- The customers of the removed rows are recomputed too.
INSERT INTO pending_changes
SELECT DISTINCT customer_id, anonymous_id, $run_id
FROM raw_events
WHERE source = $source AND file IN (SELECT file FROM batch_files WHERE known);

DELETE FROM raw_events WHERE source = $source AND file IN (SELECT file FROM batch_files WHERE known);

DELETE FROM rejects WHERE source = $source AND file IN (SELECT file FROM batch_files WHERE known);

DELETE FROM raw_duplicates WHERE source = $source AND file IN (SELECT file FROM batch_files WHERE known);

DELETE FROM load_manifest WHERE source = $source AND file IN (SELECT file FROM batch_files WHERE known);
