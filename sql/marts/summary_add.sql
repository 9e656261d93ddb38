-- $sign (1 or -1) times the summaries' counts of the customers of $journeys, with their rows of $entries
-- (stage_entries), $firsts (touchpoint_firsts), $touchpoints (stage_touchpoints) and $channels (stage_channels),
-- into the delta tables of summary_start.sql. The same counting
-- for a full refresh (every customer, 1), a night's dirty customers (their new rows, 1) and what the summaries
-- counted of them (retired_*, -1).

-- The drivers' population at each stage before the goal: who reached it, who reached the next, and where a
-- converter's history stops (their first event at the next stage or beyond; sql/analysis/drivers_population.sql).
CREATE OR REPLACE TEMP TABLE summary_population AS
WITH reached AS (
    SELECT j.customer_key, j.first_channel AS segment, k.stage_order AS from_order,
           j.furthest_stage_order >= k.stage_order + 1 AS converted
    FROM query_table($journeys) AS j
    INNER JOIN stage_list AS k ON j.furthest_stage_order >= k.stage_order
    WHERE k.stage_order < $goal_order
),

cutoffs AS (
    SELECT e.customer_key, k.stage_order AS from_order, min(e.event_number) AS cutoff_number
    FROM query_table($entries) AS e
    INNER JOIN stage_list AS k ON e.stage_order >= k.stage_order + 1
    WHERE k.stage_order < $goal_order
    GROUP BY ALL
)

SELECT r.customer_key, r.segment, r.from_order, r.converted,
       CASE WHEN r.converted THEN c.cutoff_number END AS cutoff_number
FROM reached AS r
LEFT JOIN cutoffs AS c ON r.customer_key = c.customer_key AND r.from_order = c.from_order;

INSERT INTO delta_driver_population
SELECT segment, from_order, $sign * count(*), $sign * count(*) FILTER (WHERE converted)
FROM summary_population
GROUP BY ALL;

INSERT INTO delta_driver_touchpoints
SELECT p.segment, p.from_order, f.touchpoint, $sign * count(*), $sign * count(*) FILTER (WHERE p.converted)
FROM summary_population AS p
INNER JOIN query_table($firsts) AS f ON p.customer_key = f.customer_key
WHERE p.cutoff_number IS NULL OR f.event_number < p.cutoff_number
GROUP BY ALL;

DROP TABLE summary_population;

INSERT INTO delta_stage_touchpoints
SELECT j.first_channel, t.stage_order, t.touchpoint, $sign * count(*), $sign * count(*) FILTER (WHERE t.before_moving_on)
FROM query_table($touchpoints) AS t
INNER JOIN query_table($journeys) AS j ON t.customer_key = j.customer_key
GROUP BY ALL;

INSERT INTO delta_stage_customers
SELECT j.first_channel, t.stage_order, $sign * count(*)
FROM (SELECT DISTINCT customer_key, stage_order FROM query_table($touchpoints)) AS t
INNER JOIN query_table($journeys) AS j ON t.customer_key = j.customer_key
GROUP BY ALL;

INSERT INTO delta_stage_channels
SELECT j.first_channel, c.stage_order, c.channel, $sign * sum(c.sessions)
FROM query_table($channels) AS c
INNER JOIN query_table($journeys) AS j ON c.customer_key = j.customer_key
GROUP BY ALL;
