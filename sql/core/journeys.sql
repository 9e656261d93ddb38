-- One row per journey customer in scope: a customer with at least one event mapped to a stage.
INSERT INTO journeys BY NAME
WITH paths AS (
    SELECT customer_key, list(stage ORDER BY step) AS stage_path, count(*) AS path_length
    FROM scope_journey_steps
    GROUP BY customer_key
),

mapped AS (
    SELECT
        customer_key,
        min(ts) AS first_ts,
        max(ts) AS last_ts,
        max(stage_order) AS furthest_stage_order,
        -- Stages are a ladder: any event at or beyond the goal converts.
        min(ts) FILTER (WHERE stage_order >= $goal_order) AS converted_at
    FROM scope_events
    WHERE stage IS NOT NULL
    GROUP BY customer_key
),

activity AS (
    SELECT
        customer_key,
        max(session_number) AS n_sessions,
        count(*) AS n_events,
        arg_min(channel, event_number) FILTER (WHERE channel IS NOT NULL) AS first_channel,
        -- Where the customer left off: the touchpoint of their last event, mapped or not.
        arg_max(touchpoint, event_number) AS last_touchpoint
    FROM scope_events
    GROUP BY customer_key
)

SELECT
    m.customer_key,
    m.first_ts,
    m.last_ts,
    p.stage_path,
    p.path_length,
    s.stage AS furthest_stage,
    m.furthest_stage_order,
    m.furthest_stage_order >= $goal_order AS converted,
    m.converted_at,
    (epoch_us(m.converted_at) - epoch_us(m.first_ts)) / 3.6e9 AS hours_to_convert,
    a.n_sessions,
    a.n_events,
    a.first_channel,
    CAST(m.first_ts AS DATE) AS cohort_date,
    a.last_touchpoint
FROM mapped AS m
INNER JOIN paths AS p ON m.customer_key = p.customer_key
INNER JOIN activity AS a ON m.customer_key = a.customer_key
INNER JOIN stage_list AS s ON m.furthest_stage_order = s.stage_order;
