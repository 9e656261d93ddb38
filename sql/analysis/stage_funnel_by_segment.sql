-- The stage funnel of each segment, by the stage funnel's definitions (docs/definitions.md); the counts of
-- all segments add up to the stage_funnel mart. $segments names the customers' segments (a table of
-- analysis/segments_*); the ladder is sql/marts/stage_ladder.sql.
WITH journeys_by_segment AS (
    SELECT coalesce(g.segment, $no_segment) AS grp, j.furthest_stage_order
    FROM journeys AS j
    LEFT JOIN query_table($segments) AS g ON j.customer_key = g.customer_key
)

SELECT
    grp AS segment,
    group_size AS segment_size,
    group_size < $min_segment_size AS too_small,
    stage,
    stage_order,
    reached,
    exited,
    dropoff_rate,
    conversion_to_next,
    conversion_from_first
FROM cjm_stage_ladder('journeys_by_segment')
ORDER BY segment, stage_order;
