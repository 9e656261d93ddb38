-- The stage funnel's ladder (docs/definitions.md) for any grouping of journeys, defined once.
-- tbl names a table or view with columns grp (any type: a date, a segment, a struct) and
-- furthest_stage_order. Every group gets every configured stage, reached or not.
CREATE OR REPLACE TEMP MACRO cjm_stage_ladder(tbl) AS TABLE
WITH exits AS (
    SELECT grp, furthest_stage_order AS stage_order, count(*) AS exited
    FROM query_table(tbl)
    GROUP BY ALL
),

ladder AS (
    SELECT g.grp, s.stage, s.stage_order, coalesce(e.exited, 0) AS exited
    FROM (SELECT DISTINCT grp FROM query_table(tbl)) AS g
    CROSS JOIN stage_list AS s
    LEFT JOIN exits AS e ON g.grp = e.grp AND s.stage_order = e.stage_order
),

-- reached(k) = journeys whose furthest stage is k or beyond.
reached AS (
    SELECT
        *,
        sum(exited) OVER (PARTITION BY grp ORDER BY stage_order DESC ROWS UNBOUNDED PRECEDING) AS reached
    FROM ladder
)

SELECT
    grp,
    stage,
    stage_order,
    CAST(reached AS BIGINT) AS reached,
    CAST(exited AS BIGINT) AS exited,
    CAST(first_value(reached) OVER by_order AS BIGINT) AS group_size,
    CASE WHEN stage_order < (SELECT max(stage_order) FROM stage_list) THEN exited / nullif(reached, 0) END
        AS dropoff_rate,
    lead(reached) OVER by_order / nullif(reached, 0) AS conversion_to_next,
    reached / nullif(first_value(reached) OVER by_order, 0) AS conversion_from_first
FROM reached
WINDOW by_order AS (PARTITION BY grp ORDER BY stage_order);
