-- Each journey customer's first event at each stage they reached, and the touchpoint of the event just before
-- it (NULL for the customer's very first event): where continuers were when they moved on (pain points). And
-- when they first moved beyond the stage: their first event at a later stage at or after that first event.
INSERT INTO stage_entries BY NAME
WITH entries AS (
    SELECT customer_key, stage_order, min(event_number) AS event_number, min(ts) AS ts
    FROM scope_events
    WHERE stage_order IS NOT NULL
    GROUP BY customer_key, stage_order
),

-- The highest stage at each moment (at equal times the path order makes the highest stage the latest).
moments AS (
    SELECT customer_key, ts, max(stage_order) AS stage_order
    FROM scope_events
    WHERE stage_order IS NOT NULL
    GROUP BY customer_key, ts
),

moved AS (
    SELECT n.customer_key, n.stage_order, min(m.ts) AS moved_ts
    FROM entries AS n
    INNER JOIN moments AS m
        ON n.customer_key = m.customer_key AND m.stage_order > n.stage_order AND m.ts >= n.ts
    GROUP BY ALL
)

-- event_number counts each customer's events 1, 2, ... in time order: the event before is event_number - 1.
SELECT
    n.customer_key,
    n.stage_order,
    n.event_number,
    p.touchpoint AS prev_touchpoint,
    n.ts,
    v.moved_ts
FROM entries AS n
LEFT JOIN scope_events AS p ON n.customer_key = p.customer_key AND p.event_number = n.event_number - 1
LEFT JOIN moved AS v ON n.customer_key = v.customer_key AND n.stage_order = v.stage_order;
