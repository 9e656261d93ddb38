-- Append one classified file: rejects with their reason, events once per (source, event_id).
INSERT INTO rejects (source, file, row_number, reason, raw, run_id)
SELECT $source, $file, row_number, reason, raw, $run_id
FROM staged_parse_rejects;

INSERT INTO rejects (source, file, row_number, reason, raw, run_id)
SELECT $source, $file, row_number, reject_reason, raw, $run_id
FROM classified_rows
WHERE reject_reason IS NOT NULL;

CREATE OR REPLACE TEMP TABLE appended_events AS
WITH accepted AS (
    SELECT *
    FROM classified_rows
    WHERE reject_reason IS NULL
),

first_in_file AS (
    SELECT *
    FROM accepted
    QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY row_number) = 1
),

new_events AS (
    SELECT f.*
    FROM first_in_file AS f
    ANTI JOIN (SELECT event_id FROM raw_events WHERE source = $source) AS known
        ON f.event_id = known.event_id
)

SELECT
    event_id,
    $source AS source,
    $source_kind AS source_kind,
    $file AS file,
    row_number,
    customer_id,
    anonymous_id,
    event_name,
    ts,
    channel,
    properties,
    $run_id AS run_id
FROM new_events;

INSERT INTO raw_events SELECT * FROM appended_events;

-- The customers these rows belong to are recomputed by the core steps.
INSERT INTO pending_changes
SELECT DISTINCT customer_id, anonymous_id, $run_id FROM appended_events;
