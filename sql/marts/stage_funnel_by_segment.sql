-- The stage funnel per segment of journeys: first-touch channel and cohort month (for dashboards).
CREATE OR REPLACE TABLE stage_funnel_by_segment AS
WITH segmented AS (
    SELECT 'first_channel' AS segment_type, coalesce(first_channel, '(none)') AS segment, furthest_stage_order
    FROM journeys
    UNION ALL
    SELECT 'cohort_month', strftime(cohort_date, '%Y-%m'), furthest_stage_order
    FROM journeys
),

exits AS (
    SELECT segment_type, segment, furthest_stage_order AS stage_order, count(*) AS exited
    FROM segmented
    GROUP BY ALL
),

ladder AS (
    SELECT g.segment_type, g.segment, s.stage, s.stage_order, coalesce(e.exited, 0) AS exited
    FROM (SELECT DISTINCT segment_type, segment FROM segmented) AS g
    CROSS JOIN stage_list AS s
    LEFT JOIN exits AS e
        ON g.segment_type = e.segment_type AND g.segment = e.segment AND s.stage_order = e.stage_order
),

reached AS (
    SELECT
        *,
        sum(exited) OVER (
            PARTITION BY segment_type, segment ORDER BY stage_order DESC ROWS UNBOUNDED PRECEDING
        ) AS reached
    FROM ladder
)

SELECT
    segment_type,
    segment,
    CAST(first_value(reached) OVER by_order AS BIGINT) AS segment_size,
    stage,
    stage_order,
    CAST(reached AS BIGINT) AS reached,
    CAST(exited AS BIGINT) AS exited,
    CASE WHEN stage_order < (SELECT max(stage_order) FROM stage_list) THEN exited / nullif(reached, 0) END
        AS dropoff_rate,
    lead(reached) OVER by_order / nullif(reached, 0) AS conversion_to_next,
    reached / nullif(first_value(reached) OVER by_order, 0) AS conversion_from_first
FROM reached
WINDOW by_order AS (PARTITION BY segment_type, segment ORDER BY stage_order)
ORDER BY segment_type, segment, stage_order;
