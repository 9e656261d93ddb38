-- Stalled customers (docs/analysis/audience.md) as cjm_people, with their stage's yardsticks: customers whose
-- furthest stage is a stage before the goal, who have sat there longer than the stage's p90 dwell, and who have not
-- left for good: last seen within $reach_factor times that p90 of the end of the data.
-- Dwell is measured on the customers who moved on from the stage after an event at it (a spell of length 0 skipped
-- the stage: nobody sat there); a stage with fewer than $min_movers such customers flags nobody (its p90 is noise).
CREATE OR REPLACE TEMP TABLE cjm_people AS
WITH dwell AS (
    SELECT
        stage_order,
        count(*) AS dwell_movers,
        -- Linear interpolation, numpy's default, as every p90 of the toolkit.
        quantile_cont(duration_us, 0.9) / 86400e6 AS p90_dwell_days
    FROM query_table($spells)
    WHERE moved_on AND duration_us > 0 AND stage_order < $goal_order
    GROUP BY stage_order
    HAVING count(*) >= $min_movers
),

-- A customer's last event ends their last session: a quarter of the rows of events.
last_seen AS (
    SELECT customer_key, max(session_end) AS last_seen
    FROM sessions
    GROUP BY customer_key
),

data_end AS (
    SELECT max(session_end) AS ts FROM sessions
)

SELECT
    s.customer_key,
    s.stage_order,
    s.start_at AS reached_at,
    s.duration_us / 86400e6 AS days_at_stage,
    d.p90_dwell_days,
    d.dwell_movers,
    $reach_factor * d.p90_dwell_days AS reach_days
FROM query_table($spells) AS s
INNER JOIN dwell AS d ON s.stage_order = d.stage_order
INNER JOIN last_seen AS l ON s.customer_key = l.customer_key
WHERE NOT s.moved_on
    AND s.duration_us / 86400e6 > d.p90_dwell_days
    AND (epoch_us((SELECT ts FROM data_end)) - epoch_us(l.last_seen)) / 86400e6 <= $reach_factor * d.p90_dwell_days;
