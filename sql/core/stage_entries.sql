-- Each journey customer's first event at each stage they reached, and the touchpoint of the event just before
-- it (NULL for the customer's very first event): where continuers were when they moved on (pain points).
INSERT INTO stage_entries BY NAME
WITH entries AS (
    SELECT customer_key, stage_order, min(event_number) AS event_number
    FROM scope_events
    WHERE stage_order IS NOT NULL
    GROUP BY customer_key, stage_order
)

-- event_number counts each customer's events 1, 2, ... in time order: the event before is event_number - 1.
SELECT
    n.customer_key,
    n.stage_order,
    n.event_number,
    p.touchpoint AS prev_touchpoint
FROM entries AS n
LEFT JOIN scope_events AS p ON n.customer_key = p.customer_key AND p.event_number = n.event_number - 1;
