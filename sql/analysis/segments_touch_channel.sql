-- Each customer's first-touch or last-touch channel (docs/analysis/segments.md), as temp table cjm_customer_segment.
CREATE OR REPLACE TEMP TABLE cjm_customer_segment AS
WITH customers AS (
    SELECT DISTINCT customer_key FROM events
),

conversions AS (
    SELECT customer_key, converted_at FROM journeys WHERE converted
),

-- Last touch looks at the events up to and including the conversion (all events of a customer who
-- has not converted); first touch at all events, as journeys.first_channel.
touches AS (
    SELECT e.customer_key, e.channel, e.event_number
    FROM events AS e
    LEFT JOIN conversions AS c ON e.customer_key = c.customer_key
    WHERE e.channel IS NOT NULL
        AND (NOT $last_touch OR c.converted_at IS NULL OR e.ts <= c.converted_at)
),

channels AS (
    SELECT
        customer_key,
        CASE
            WHEN $last_touch THEN arg_max(channel, event_number)
            ELSE arg_min(channel, event_number)
        END AS segment
    FROM touches
    GROUP BY customer_key
)

SELECT c.customer_key, ch.segment
FROM customers AS c
LEFT JOIN channels AS ch ON c.customer_key = ch.customer_key;
