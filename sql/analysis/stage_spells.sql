-- Per journey customer, each spell the time-to-next analysis measures (docs/analysis/time-to-next.md): at every
-- stage before the goal, from reaching the stage to reaching the next one; and for the goal, from the journey's
-- start (reaching the first stage) to reaching the goal. Stages are a ladder: a customer reaches stage k at their
-- first event at k or beyond, so a customer who skips a stage reaches it and the next at the same instant.
-- A spell that has not ended by the end of the data is censored there: the customer was watched that long and
-- had not moved on yet (still within reach), which is all the data says; it is never counted as lost.
CREATE OR REPLACE TEMP TABLE cjm_stage_spells AS
WITH data_end AS (
    SELECT max(ts) AS ts FROM events
),

-- Each customer's first event at each stage (stage_entries: kept per customer, not a scan of every event).
firsts AS (
    SELECT customer_key, stage_order, ts AS first_ts
    FROM stage_entries
),

-- reached(k) = the first event at stage k or beyond, for k up to the goal (after it, nothing is measured).
reached AS (
    SELECT f.customer_key, s.stage_order, min(f.first_ts) AS reached_at
    FROM firsts AS f
    INNER JOIN stage_list AS s ON s.stage_order <= f.stage_order AND s.stage_order <= $goal_order
    GROUP BY ALL
),

spells AS (
    SELECT a.stage_order, a.stage_order + 1 AS to_stage_order, a.customer_key, a.reached_at AS start_at,
        b.reached_at AS end_at
    FROM reached AS a
    LEFT JOIN reached AS b ON a.customer_key = b.customer_key AND b.stage_order = a.stage_order + 1
    WHERE a.stage_order < $goal_order
    UNION ALL
    SELECT $goal_order, $goal_order, a.customer_key, a.reached_at, b.reached_at
    FROM reached AS a
    LEFT JOIN reached AS b ON a.customer_key = b.customer_key AND b.stage_order = $goal_order
    WHERE a.stage_order = 1 AND $goal_order > 1
)

SELECT
    stage_order,
    to_stage_order,
    customer_key,
    start_at,
    end_at,
    end_at IS NOT NULL AS moved_on,
    -- Microseconds, exact: equal times must tie (the product-limit estimator groups them).
    epoch_us(coalesce(end_at, (SELECT ts FROM data_end))) - epoch_us(start_at) AS duration_us
FROM spells;
