-- Each run's stage ladder per first-touch channel and cohort day, for the last $cohort_days cohort days: what a
-- later run compares its conversion with, on the same cohort days (sql/analysis/conversion_change.sql). Kept
-- for every run, as run_history; recent days only, as those are the ones a night can move.
CREATE TABLE IF NOT EXISTS run_segment_cohorts (
    run_id         VARCHAR NOT NULL,
    run_started_at TIMESTAMP NOT NULL,
    data_end       TIMESTAMP NOT NULL,  -- the run's latest event
    cohort_date    DATE NOT NULL,
    segment        VARCHAR NOT NULL,    -- first-touch channel, (none) without one
    stage_order    INTEGER NOT NULL,
    reached        BIGINT NOT NULL      -- journeys of the cohort day and segment whose furthest stage is this or beyond
);

DELETE FROM run_segment_cohorts WHERE run_id = $run_id;

INSERT INTO run_segment_cohorts
SELECT
    $run_id,
    CAST($run_started AS TIMESTAMP),
    (SELECT max(ts) FROM events),
    j.cohort_date,
    coalesce(j.first_channel, $no_segment),
    s.stage_order,
    count(*) FILTER (WHERE j.furthest_stage_order >= s.stage_order)
FROM journeys AS j
CROSS JOIN stage_list AS s
WHERE j.cohort_date > (SELECT max(cohort_date) FROM journeys) - CAST($cohort_days AS INTEGER)
GROUP BY ALL;
