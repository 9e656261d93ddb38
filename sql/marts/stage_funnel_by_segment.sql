-- The stage funnel per segment of journeys: first-touch channel and cohort month (for dashboards).
CREATE OR REPLACE TABLE stage_funnel_by_segment AS
WITH journeys_by_segment AS (
    SELECT
        {'segment_type': 'first_channel', 'segment': coalesce(first_channel, $no_segment)} AS grp,
        furthest_stage_order
    FROM journeys
    UNION ALL
    SELECT {'segment_type': 'cohort_month', 'segment': strftime(cohort_date, '%Y-%m')}, furthest_stage_order
    FROM journeys
)

SELECT
    grp.segment_type AS segment_type,
    grp.segment AS segment,
    group_size AS segment_size,
    stage,
    stage_order,
    reached,
    exited,
    dropoff_rate,
    conversion_to_next,
    conversion_from_first,
    stage_order < $goal_order AS before_goal,
    stage_order = $goal_order AS is_goal
FROM cjm_stage_ladder('journeys_by_segment')
ORDER BY segment_type, segment, stage_order;
