-- The runs conversion_change.sql can compare, newest first: each run kept in run_segment_cohorts, and whether an
-- error-level health check failed on it (such a night published nothing, so it is no "previous night").
SELECT
    h.run_id,
    any_value(h.run_started_at) AS run_started_at,
    any_value(h.data_end) AS data_end,
    h.run_id IN (SELECT run_id FROM run_checks WHERE status = 'error') AS failed
FROM run_segment_cohorts AS h
GROUP BY h.run_id
ORDER BY run_started_at DESC;
