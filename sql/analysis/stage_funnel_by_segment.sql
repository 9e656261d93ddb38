-- The stage funnel of each segment, by the stage funnel's definitions (docs/definitions.md); the counts of
-- all segments add up to the stage_funnel mart. Reads the temp table cjm_customer_segment.
WITH segmented AS (
    SELECT coalesce(g.segment, '(none)') AS segment, j.furthest_stage_order
    FROM journeys AS j
    LEFT JOIN cjm_customer_segment AS g ON j.customer_key = g.customer_key
),

exits AS (
    SELECT segment, furthest_stage_order AS stage_order, count(*) AS exited
    FROM segmented
    GROUP BY ALL
),

ladder AS (
    SELECT z.segment, s.stage, s.stage_order, coalesce(e.exited, 0) AS exited
    FROM (SELECT DISTINCT segment FROM segmented) AS z
    CROSS JOIN stage_list AS s
    LEFT JOIN exits AS e ON z.segment = e.segment AND s.stage_order = e.stage_order
),

-- reached(k) = customers whose furthest stage is k or beyond.
reached AS (
    SELECT
        *,
        sum(exited) OVER (PARTITION BY segment ORDER BY stage_order DESC ROWS UNBOUNDED PRECEDING) AS reached
    FROM ladder
),

rates AS (
    SELECT
        segment,
        stage,
        stage_order,
        reached,
        exited,
        first_value(reached) OVER by_order AS segment_size,
        CASE WHEN stage_order < (SELECT max(stage_order) FROM stage_list) THEN exited / nullif(reached, 0) END
            AS dropoff_rate,
        lead(reached) OVER by_order / nullif(reached, 0) AS conversion_to_next,
        reached / nullif(first_value(reached) OVER by_order, 0) AS conversion_from_first
    FROM reached
    WINDOW by_order AS (PARTITION BY segment ORDER BY stage_order)
)

SELECT
    segment,
    CAST(segment_size AS BIGINT) AS segment_size,
    segment_size < $min_segment_size AS too_small,
    stage,
    stage_order,
    CAST(reached AS BIGINT) AS reached,
    CAST(exited AS BIGINT) AS exited,
    dropoff_rate,
    conversion_to_next,
    conversion_from_first
FROM rates
ORDER BY segment, stage_order;
