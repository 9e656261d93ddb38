-- The stage funnel per cohort date (UTC date of each journey's first mapped event).
CREATE OR REPLACE TEMP VIEW journeys_by_cohort_date AS
SELECT cohort_date AS grp, furthest_stage_order FROM journeys;

CREATE OR REPLACE TABLE stage_conversion_daily AS
SELECT grp AS cohort_date, stage, stage_order, reached, exited, dropoff_rate
FROM cjm_stage_ladder('journeys_by_cohort_date')
ORDER BY cohort_date, stage_order;
