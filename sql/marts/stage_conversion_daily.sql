-- The stage funnel per cohort date (UTC date of each journey's first mapped event).
CREATE OR REPLACE TABLE stage_conversion_daily AS
WITH exits AS (
    SELECT cohort_date, furthest_stage_order AS stage_order, count(*) AS exited
    FROM journeys
    GROUP BY ALL
),

ladder AS (
    SELECT c.cohort_date, s.stage, s.stage_order, coalesce(e.exited, 0) AS exited
    FROM (SELECT DISTINCT cohort_date FROM journeys) AS c
    CROSS JOIN stage_list AS s
    LEFT JOIN exits AS e ON c.cohort_date = e.cohort_date AND s.stage_order = e.stage_order
),

-- reached(k) = customers whose furthest stage is k or beyond.
reached AS (
    SELECT
        *,
        sum(exited) OVER (
            PARTITION BY cohort_date ORDER BY stage_order DESC ROWS UNBOUNDED PRECEDING
        ) AS reached
    FROM ladder
)

SELECT
    cohort_date,
    stage,
    stage_order,
    CAST(reached AS BIGINT) AS reached,
    CAST(exited AS BIGINT) AS exited,
    CASE WHEN stage_order < (SELECT max(stage_order) FROM stage_list) THEN exited / nullif(reached, 0) END
        AS dropoff_rate
FROM reached
ORDER BY cohort_date, stage_order;
