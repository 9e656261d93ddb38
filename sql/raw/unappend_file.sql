-- A file read in pieces (cjm_analytics/raw/load.py `_stage_pieces`) whose later piece cannot be read is refused
-- whole, inside the batch's transaction: what its earlier pieces appended goes, as if it had been refused before
-- a row of it was read (its rows and rejects of earlier runs are gone already: sql/raw/forget_files.sql).
DELETE FROM raw_events WHERE source = $source AND run_id = $run_id AND file = $file;

DELETE FROM rejects WHERE source = $source AND run_id = $run_id AND file = $file;

DELETE FROM batch_file_counts WHERE file_index = $file_index;
