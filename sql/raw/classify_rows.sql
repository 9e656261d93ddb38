-- One file's rows (temp table staged_rows, canonical columns as text) -> accepted or rejected with a reason.
CREATE OR REPLACE TEMP TABLE classified_rows AS
WITH cleaned AS (
    SELECT
        row_number,
        nullif(trim(given_event_id), '') AS given_event_id,
        nullif(trim(customer_id), '') AS customer_id,
        nullif(trim(anonymous_id), '') AS anonymous_id,
        nullif(trim(event_name), '') AS event_name,
        nullif(trim(ts_text), '') AS ts_text,
        nullif(trim(channel), '') AS channel,
        properties,
        raw
    FROM staged_rows
),

read AS (
    SELECT
        *,
        cjm_read_ts(ts_text, $ts_format, $has_zone) AS reading
    FROM cleaned
),

-- Wall-clock times are read in the source's zone; at a DST change one can be ambiguous or not exist.
zoned AS (
    SELECT
        * EXCLUDE (reading),
        reading.ts AS wall,
        reading.is_local AND $timezone <> 'UTC' AS in_zone,
        CASE
            WHEN reading.is_local AND $timezone <> 'UTC' THEN timezone('UTC', timezone($timezone, reading.ts))
            ELSE reading.ts
        END AS guess
    FROM read
),

checked AS (
    SELECT
        *,
        in_zone AND cjm_wall(guess, $timezone) <> wall AS nonexistent,
        CASE
            WHEN NOT in_zone THEN NULL
            WHEN cjm_wall(guess - INTERVAL 1 HOUR, $timezone) = wall THEN guess - INTERVAL 1 HOUR
            WHEN cjm_wall(guess + INTERVAL 1 HOUR, $timezone) = wall THEN guess + INTERVAL 1 HOUR
        END AS other_reading
    FROM zoned
),

parsed AS (
    SELECT
        *,
        other_reading IS NOT NULL AS ambiguous,
        CASE
            WHEN other_reading IS NULL THEN guess
            WHEN $ambiguous_times = 'earliest' THEN least(guess, other_reading)
            WHEN $ambiguous_times = 'latest' THEN greatest(guess, other_reading)
        END AS ts
    FROM checked
),

judged AS (
    SELECT
        *,
        CASE
            WHEN customer_id IS NULL AND anonymous_id IS NULL THEN 'missing customer_id and anonymous_id'
            WHEN event_name IS NULL THEN 'missing event_name'
            WHEN ts_text IS NULL THEN 'missing timestamp'
            WHEN wall IS NULL THEN 'unparseable timestamp'
            WHEN nonexistent THEN 'nonexistent local time in ' || $timezone || ' (clocks moved forward)'
            WHEN ambiguous AND $ambiguous_times = 'reject'
                THEN 'ambiguous local time in ' || $timezone
                    || ' (clocks moved back); set ambiguous_times: earliest or latest to accept'
            WHEN ts < CAST($min_timestamp AS TIMESTAMP)
                THEN 'timestamp before ' || strftime(CAST($min_timestamp AS DATE), '%Y-%m-%d')
            WHEN ts > CAST($run_started AS TIMESTAMP) + to_microseconds(CAST($max_future_us AS BIGINT))
                THEN 'timestamp more than ' || $max_future_hours || ' hours after the run started'
        END AS reject_reason
    FROM parsed
)

SELECT
    row_number,
    -- The same row loaded twice gets the same id, so a re-load adds nothing.
    coalesce(given_event_id, md5($source || chr(31) || raw)) AS event_id,
    customer_id,
    anonymous_id,
    event_name,
    ts,
    channel,
    properties,
    raw,
    reject_reason
FROM judged;
