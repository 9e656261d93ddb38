-- The journey map's per-customer rows (stage_touchpoints, stage_channels, touchpoint_firsts) for the customers in
-- scope. Every event of a journey customer is placed at the stage of the latest mapped event at or before it
-- (itself included); events before the first mapped one belong to no stage and are left out. Needs this scope's
-- stage_entries (moved_ts).

-- The bucket filter of scope_events makes DuckDB estimate a handful of rows, and below this threshold it turns an
-- ASOF join into a nested loop over every pair of a customer's events: always the ASOF join here.
SET asof_loop_join_threshold = 0;

CREATE OR REPLACE TEMP TABLE scope_placed AS
WITH moments AS (
    SELECT customer_key, ts, max(stage_order) AS stage_order
    FROM scope_events
    WHERE stage_order IS NOT NULL
    GROUP BY customer_key, ts
),

entries AS (
    SELECT customer_key, stage_order, moved_ts
    FROM stage_entries
    WHERE customer_key IN (SELECT customer_key FROM moments)
)

SELECT
    e.customer_key,
    coalesce(e.touchpoint, e.event_name) AS touchpoint,
    e.session_number,
    m.stage_order,
    -- Before the customer first reached a later stage: what counts for moving on (no leakage from after it).
    x.moved_ts IS NULL OR e.ts < x.moved_ts AS before_moving_on
FROM scope_events AS e
ASOF INNER JOIN moments AS m ON e.customer_key = m.customer_key AND e.ts >= m.ts
INNER JOIN entries AS x ON e.customer_key = x.customer_key AND m.stage_order = x.stage_order;

INSERT INTO stage_touchpoints BY NAME
SELECT customer_key, stage_order, touchpoint, bool_or(before_moving_on) AS before_moving_on
FROM scope_placed
GROUP BY ALL;

INSERT INTO stage_channels BY NAME
SELECT p.customer_key, p.stage_order, s.channel, count(*) AS sessions
FROM (SELECT DISTINCT customer_key, stage_order, session_number FROM scope_placed) AS p
LEFT JOIN scope_sessions AS s ON p.customer_key = s.customer_key AND p.session_number = s.session_number
GROUP BY ALL;

DROP TABLE scope_placed;

RESET asof_loop_join_threshold;

-- Each customer's first event with each touchpoint (the journey map's driver candidates, cjm_analytics.analysis.
-- journey_map.stage_driver_counts).
INSERT INTO touchpoint_firsts BY NAME
SELECT customer_key, touchpoint, min(event_number) AS event_number
FROM scope_events
WHERE touchpoint IS NOT NULL
GROUP BY ALL;
