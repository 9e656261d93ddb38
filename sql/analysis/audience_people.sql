-- The audience of `cjm analyze audience` as cjm_people: the customers who dropped out at stage $stage_order (their
-- furthest stage, before the goal: a customer who reached the goal completed, docs/definitions.md), in the
-- segment value $segment_value of the segment table $segments when one is given, last seen on or after $since when given.
-- Their spell at the stage comes from cjm_stage_spells (sql/analysis/stage_spells.sql): one that never moved on.
CREATE OR REPLACE TEMP TABLE cjm_people AS
WITH last_seen AS (
    SELECT customer_key, max(ts) AS last_seen
    FROM events
    GROUP BY customer_key
)

SELECT s.customer_key, s.start_at AS reached_at
FROM query_table($spells) AS s
INNER JOIN last_seen AS l ON s.customer_key = l.customer_key
WHERE s.stage_order = $stage_order AND NOT s.moved_on
    AND (CAST($since AS DATE) IS NULL OR l.last_seen >= CAST($since AS DATE))
    AND (CAST($segment_value AS VARCHAR) IS NULL
        OR s.customer_key IN (SELECT customer_key FROM query_table($segments) WHERE segment = $segment_value));
