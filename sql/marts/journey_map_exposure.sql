-- Per persona, stage before the goal and touchpoint: customers at the stage who had it before moving on, and how
-- many of them and of the others reached the next stage (the 2x2 of a moment of truth).
WITH at_stage AS (
    SELECT c.persona_type, c.persona, x.customer_key, x.stage_order,
           -- Moved on: reached a later stage after entering this one (jm_entries.moved_ts).
           x.moved_ts IS NOT NULL AS moved_on
    FROM jm_entries AS x
    INNER JOIN jm_customers AS c ON x.customer_key = c.customer_key
    WHERE x.stage_order < $goal_order
),

exposed AS (
    SELECT DISTINCT customer_key, stage_order, coalesce(touchpoint, event_name) AS touchpoint
    FROM jm_placed
    WHERE before_moving_on AND stage_order < $goal_order
),

totals AS (
    SELECT persona_type, persona, stage_order, count(*) AS n, count(*) FILTER (WHERE moved_on) AS n_moved
    FROM at_stage
    GROUP BY ALL
)

SELECT
    a.persona_type,
    a.persona,
    a.stage_order,
    e.touchpoint,
    count(*) AS exposed,
    count(*) FILTER (WHERE a.moved_on) AS exposed_moved,
    any_value(t.n) AS n,
    any_value(t.n_moved) AS n_moved
FROM at_stage AS a
INNER JOIN exposed AS e ON a.customer_key = e.customer_key AND a.stage_order = e.stage_order
INNER JOIN totals AS t
    ON a.persona_type = t.persona_type AND a.persona = t.persona AND a.stage_order = t.stage_order
GROUP BY ALL
ORDER BY a.persona_type, a.persona, a.stage_order, e.touchpoint;
