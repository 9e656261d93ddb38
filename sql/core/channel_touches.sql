-- Each customer's channel path for attribution, one row per touch, and whether it ended in conversion.
-- A touch is a session's channel (sessions without one are skipped); a converter's path stops at the session
-- in which they converted. (choice) Consecutive repeats collapse: direct > direct > email is direct > email.
INSERT INTO channel_touches BY NAME
WITH conversions AS (
    SELECT customer_key, converted_at
    FROM scope_journeys
    WHERE converted
),

touched AS (
    SELECT
        s.customer_key,
        s.session_number,
        s.channel,
        c.converted_at IS NOT NULL AS converted
    FROM scope_sessions AS s
    LEFT JOIN conversions AS c ON s.customer_key = c.customer_key
    WHERE s.channel IS NOT NULL AND (c.converted_at IS NULL OR s.session_start <= c.converted_at)
),

runs AS (
    SELECT *, lag(channel) OVER (PARTITION BY customer_key ORDER BY session_number) AS prev_channel
    FROM touched
),

-- A kept row's prev_channel differs from its own, so it is the channel of the previous (collapsed) touch.
collapsed AS (
    SELECT * FROM runs WHERE prev_channel IS DISTINCT FROM channel
)

SELECT
    customer_key,
    row_number() OVER (PARTITION BY customer_key ORDER BY session_number) AS touch,
    count(*) OVER (PARTITION BY customer_key) AS n_touches,
    channel,
    prev_channel,
    converted
FROM collapsed;
