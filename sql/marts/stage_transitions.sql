-- The stage-transition graph: (start) -> first stage, each consecutive pair, last stage -> (end).
CREATE OR REPLACE TABLE stage_transitions AS
WITH edges AS (
    SELECT
        customer_key,
        coalesce(prev_stage, $start_stage) AS from_stage,
        coalesce(prev_stage_order, 0) AS from_order,
        stage AS to_stage,
        stage_order AS to_order,
        hours_from_prev AS hours
    FROM journey_steps

    UNION ALL

    SELECT
        customer_key,
        stage AS from_stage,
        stage_order AS from_order,
        $end_stage AS to_stage,
        (SELECT max(stage_order) + 1 FROM stage_list) AS to_order,
        NULL AS hours
    FROM journey_steps
    WHERE step = path_length
),

converted_edges AS (
    SELECT e.*, j.converted
    FROM edges AS e
    INNER JOIN journeys AS j ON e.customer_key = j.customer_key
),

counted AS (
    SELECT
        from_stage,
        to_stage,
        any_value(from_order) AS from_order,
        any_value(to_order) AS to_order,
        count(*) AS transitions,
        count(DISTINCT customer_key) AS customers,
        median(hours) AS median_hours,
        -- By customers who reached the goal: on an edge to (end), these exits are completions, not losses.
        count(*) FILTER (WHERE converted) AS converted_transitions
    FROM converted_edges
    GROUP BY from_stage, to_stage
)

SELECT
    from_stage,
    to_stage,
    from_order,
    to_order,
    transitions,
    customers,
    -- Out-edges of a node sum to 1; X -> (end) is the exit probability of X.
    transitions / sum(transitions) OVER (PARTITION BY from_stage) AS probability,
    median_hours,
    converted_transitions
FROM counted
ORDER BY from_order, to_order;
