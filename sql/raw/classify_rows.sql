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

parsed AS (
    SELECT
        *,
        cjm_parse_ts(ts_text, $ts_format, $timezone, $has_zone) AS ts
    FROM cleaned
),

judged AS (
    SELECT
        *,
        CASE
            WHEN customer_id IS NULL AND anonymous_id IS NULL THEN 'missing customer_id and anonymous_id'
            WHEN event_name IS NULL THEN 'missing event_name'
            WHEN ts_text IS NULL THEN 'missing timestamp'
            WHEN ts IS NULL THEN 'unparseable timestamp'
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
