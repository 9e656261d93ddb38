-- The stage funnel per cohort date (UTC date of each journey's first mapped event).
CREATE OR REPLACE TEMP VIEW journeys_by_cohort_date AS
SELECT cohort_date AS grp, furthest_stage_order FROM journeys;

CREATE OR REPLACE TABLE stage_conversion_daily AS
-- How long conversion takes: the p90 of hours_to_convert over converted journeys (linear interpolation).
WITH time_to_convert AS (
    SELECT quantile_cont(hours_to_convert, 0.9) AS p90_hours FROM journeys WHERE converted
),

-- A cohort has matured once its last journey (started by the end of its day) has had that long by the end of
-- the data; younger cohorts are still converting, so their shares are not yet comparable. Without any
-- conversion there is nothing to wait for.
maturity AS (
    SELECT
        t.p90_hours,
        (SELECT max(ts) FROM events) - to_microseconds(CAST(round(coalesce(t.p90_hours, 0) * 3.6e9) AS BIGINT))
            AS matured_by
    FROM time_to_convert AS t
)

SELECT
    l.grp AS cohort_date,
    l.stage,
    l.stage_order,
    l.reached,
    l.exited,
    l.dropoff_rate,
    l.stage_order < $goal_order AS before_goal,
    l.stage_order = $goal_order AS is_goal,
    CAST(l.grp AS TIMESTAMP) + INTERVAL 1 DAY <= m.matured_by AS matured,
    m.p90_hours AS p90_hours_to_convert
FROM cjm_stage_ladder('journeys_by_cohort_date') AS l, maturity AS m
ORDER BY cohort_date, stage_order;
