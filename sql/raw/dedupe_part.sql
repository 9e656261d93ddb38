-- The batch's duplicates among one part of the source's ids (hash(event_id) % parts = part), once every chunk
-- is appended (sql/raw/append_chunk.sql), inside the batch's transaction. An id's row loaded by an earlier run wins
-- (a changed file's own earlier rows are gone by now: sql/raw/forget_files.sql), else its first row in file order
-- (file, then row number); the batch's other rows with that id are duplicates. Each id is hashed once per part
-- and compared once, whatever the number of chunks; the parts keep the hash table within the memory budget
-- (cjm_analytics/raw/load.py `dedupe`).
INSERT INTO batch_duplicates
WITH part AS NOT MATERIALIZED (  -- read three times: cheaper than a copy of every id
    SELECT
        rowid AS row_id,
        event_id,
        hash(event_id) AS id_hash,
        file,
        row_number,
        run_id = $run_id AS new
    FROM raw_events
    -- UBIGINT as the hash: a parameter's integer type made the modulo a HUGEINT one, 6x the scan's CPU.
    WHERE source = $source AND hash(event_id) % CAST($parts AS UBIGINT) = CAST($part AS UBIGINT)
),

-- The batch's ids by their 64-bit hash: grouping integers costs less than grouping the ids, and only the rows
-- whose hash repeats (few) are ranked by the id itself. The hash table holds the batch's ids, never the source's
-- earlier ones, which are only scanned.
new_hashes AS (
    SELECT
        id_hash,
        count(*) AS n
    FROM part
    WHERE new
    GROUP BY id_hash
),

repeated AS (
    SELECT id_hash FROM new_hashes WHERE n > 1
    UNION
    SELECT id_hash FROM part WHERE NOT new AND id_hash IN (SELECT id_hash FROM new_hashes)
),

ranked AS (
    SELECT
        p.*,
        f.file_index
    FROM part AS p
    LEFT JOIN batch_files AS f ON p.new AND p.file = f.file
    WHERE p.id_hash IN (SELECT id_hash FROM repeated)
    QUALIFY row_number() OVER (PARTITION BY p.event_id ORDER BY p.new, f.file_index, p.row_number) > 1
)

SELECT
    file_index,
    row_number,
    event_id,
    row_id
FROM ranked
WHERE new;  -- an earlier run's rows are one per id
