-- One chunk of a source's batch into the raw layer, inside the batch's transaction (sql/raw/start_batch.sql):
-- rejects with their reason, accepted rows, and each file's counts. The chunk's tables (batch_rows,
-- batch_parse_rejects, batch_filtered: sql/raw/start_chunk.sql) are the staging connection's, read here as Arrow
-- tables. A chunk holds whole files, or a piece of one file larger than the budget; which of an id's rows is
-- loaded does not depend on the chunks (sql/raw/dedupe_part.sql).

INSERT INTO rejects (source, file, row_number, reason, raw, run_id)
SELECT $source, f.file, r.row_number, r.reason, r.raw, $run_id
FROM batch_parse_rejects AS r
INNER JOIN batch_files AS f USING (file_index);

INSERT INTO rejects (source, file, row_number, reason, raw, run_id)
SELECT $source, f.file, b.row_number, b.reject_reason, b.raw, $run_id
FROM batch_rows AS b
INNER JOIN batch_files AS f USING (file_index)
WHERE b.reject_reason IS NOT NULL;

-- Every accepted row, duplicates included: they are found once the batch's chunks are all in
-- (sql/raw/dedupe_part.sql) and deleted then (sql/raw/append_batch.sql), each id compared once, not once per chunk.
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
WHERE b.reject_reason IS NULL;

-- The chunk's files' counts: a file split into pieces has a row per piece, summed by sql/raw/append_batch.sql
-- (and duplicates counted there).
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
