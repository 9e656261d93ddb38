-- The journey map's working set (docs/marts.md, "journey_map"): journey customers with their personas, every event
-- placed at the stage the customer was at, and each customer's entry into and move beyond each stage.
-- Needs the temp table jm_personas(persona_type, persona, customer_key), filled by cjm_analytics.analysis.journey_map.

-- One row per journey customer and persona they are in (every customer is in persona_type 'all').
CREATE OR REPLACE TEMP TABLE jm_customers AS
SELECT p.persona_type, p.persona, j.customer_key, j.furthest_stage_order, j.last_touchpoint
FROM journeys AS j
INNER JOIN jm_personas AS p ON j.customer_key = p.customer_key;

-- At equal times the path order (ts, stage_order) makes the highest stage the latest (as the emotion curve).
CREATE OR REPLACE TEMP TABLE jm_stage_moments AS
SELECT customer_key, ts, max(stage_order) AS stage_order
FROM events
WHERE stage_order IS NOT NULL
GROUP BY customer_key, ts;

-- Per customer and stage with an event at it: the first event there, and the first event at a later stage that
-- comes at or after it (NULL while the customer has not moved on). A customer who skips a stage has no row for it.
CREATE OR REPLACE TEMP TABLE jm_entries AS
WITH entered AS (
    SELECT customer_key, stage_order, min(ts) AS entry_ts
    FROM events
    WHERE stage_order IS NOT NULL
    GROUP BY customer_key, stage_order
)

SELECT n.customer_key, n.stage_order, n.entry_ts, min(m.ts) AS moved_ts
FROM entered AS n
LEFT JOIN jm_stage_moments AS m
    ON n.customer_key = m.customer_key AND m.stage_order > n.stage_order AND m.ts >= n.entry_ts
GROUP BY ALL;

-- Every event of a journey customer, at the stage of the latest mapped event at or before it (itself included).
-- Events before the first mapped one belong to no stage and are left out.
CREATE OR REPLACE TEMP TABLE jm_placed AS
SELECT
    e.customer_key,
    coalesce(e.touchpoint, e.event_name) AS touchpoint,
    e.session_number,
    m.stage_order,
    -- Before the customer first reached a later stage: what counts for moving on (no leakage from after it).
    x.moved_ts IS NULL OR e.ts < x.moved_ts AS before_moving_on
FROM events AS e
ASOF INNER JOIN jm_stage_moments AS m ON e.customer_key = m.customer_key AND e.ts >= m.ts
INNER JOIN jm_entries AS x ON e.customer_key = x.customer_key AND m.stage_order = x.stage_order;
