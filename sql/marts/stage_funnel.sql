-- The stage funnel: counts are exact sums of the daily cohorts, rates follow DEFINITIONS.md.
-- before_goal / is_goal tell a drop-off (a stage before the goal: customers lost) from a stop after the goal
-- (customers who completed and went no further: retention, never a drop-off).
CREATE OR REPLACE TABLE stage_funnel AS
WITH counts AS (
    SELECT
        s.stage,
        s.stage_order,
        CAST(coalesce(sum(d.reached), 0) AS BIGINT) AS reached,
        CAST(coalesce(sum(d.exited), 0) AS BIGINT) AS exited
    FROM stage_list AS s
    LEFT JOIN stage_conversion_daily AS d ON s.stage_order = d.stage_order
    GROUP BY s.stage, s.stage_order
)

SELECT
    stage,
    stage_order,
    reached,
    exited,
    CASE WHEN stage_order < (SELECT max(stage_order) FROM stage_list) THEN exited / nullif(reached, 0) END
        AS dropoff_rate,
    lead(reached) OVER by_order / nullif(reached, 0) AS conversion_to_next,
    reached / nullif(first_value(reached) OVER by_order, 0) AS conversion_from_first,
    stage_order < $goal_order AS before_goal,
    stage_order = $goal_order AS is_goal
FROM counts
WINDOW by_order AS (ORDER BY stage_order)
ORDER BY stage_order;
