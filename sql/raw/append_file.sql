-- One staged file (or several Parquet files of one schema) into its chunk of the source's batch
-- (sql/raw/start_chunk.sql): the rows the reader could not split as they are, every other row judged: accepted,
-- or rejected with a reason. Temp tables only: the warehouse is written in the batch's transaction, by
-- sql/raw/append_chunk.sql.
--
-- staged_rows (a temp view) holds each row's file_index and the canonical columns as read: text, except
-- ts_read, the reading of a typed timestamp column (NULL for text). `record` is the row as read;
-- cjm_raw(record), a macro defined with the view, turns it into the JSON text kept for rejects and hashed
-- for ids. It is only called where needed: for every row it would cost as much as the rest of the judging.

-- The reader's rejects: only a single text file has any.
INSERT INTO batch_parse_rejects (file_index, row_number, reason, raw)
SELECT $file_index, row_number, reason, raw
FROM staged_parse_rejects;

-- The source's filter (where / where_not) on the values as cleaned below: rows it leaves out are counted, not
-- judged, so a bot's odd row is filtered, not a reject.
CREATE OR REPLACE TEMP VIEW cleaned_rows AS
SELECT
    file_index,
    row_number,
    nullif(trim(given_event_id), '') AS given_event_id,
    nullif(trim(customer_id), '') AS customer_id,
    nullif(trim(anonymous_id), '') AS anonymous_id,
    nullif(trim(event_name), '') AS event_name,
    nullif(trim(ts_text), '') AS ts_text,
    ts_read,
    nullif(trim(channel), '') AS channel,
    properties,
    record
FROM staged_rows;

INSERT INTO batch_filtered
SELECT file_index, count(*)
FROM cleaned_rows
WHERE len($filters) > 0
    AND cjm_filtered($filters, given_event_id, customer_id, anonymous_id, event_name, channel, properties)
GROUP BY file_index;

INSERT INTO batch_rows
WITH cleaned AS (
    SELECT *
    FROM cleaned_rows
    WHERE len($filters) = 0
        OR NOT cjm_filtered($filters, given_event_id, customer_id, anonymous_id, event_name, channel, properties)
),

read AS (
    SELECT
        *,
        coalesce(ts_read, cjm_read_ts(ts_text, $ts_format, $has_zone)) AS reading
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

-- CASE, not AND: only the rows read in a zone pay for the zone arithmetic.
checked AS (
    SELECT
        *,
        CASE WHEN in_zone THEN cjm_wall(guess, $timezone) <> wall ELSE false END AS nonexistent,
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
            WHEN ts_text IS NULL AND ts_read IS NULL THEN 'missing timestamp'
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
    file_index,
    row_number,
    -- The same row loaded twice gets the same id, so a re-load adds nothing.
    CASE WHEN reject_reason IS NULL THEN coalesce(given_event_id, md5($source || chr(31) || cjm_raw(record))) END
        AS event_id,
    customer_id,
    anonymous_id,
    event_name,
    ts,
    channel,
    properties,
    reject_reason,
    CASE WHEN reject_reason IS NOT NULL THEN cjm_raw(record) END AS raw
FROM judged;
