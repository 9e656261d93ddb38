-- Per stage, the projected eventual conversion: the Kaplan–Meier curve (cjm_time_to_next, from
-- sql/analysis/time_to_next_curve.sql) at the longest spell watched, its last whole day, with its interval;
-- beside the observed share, which counts every spell still within reach as not converted.
WITH totals AS (
    SELECT
        stage_order,
        max(at_risk) AS customers,
        sum(events) AS moved_on,
        sum(censored) AS within_reach,
        max(day) FILTER (WHERE events > 0) AS last_event_day
    FROM query_table($curve_table)
    GROUP BY stage_order
),

horizon AS (
    SELECT stage_order, max(duration_us) / 86400e6 AS horizon_days
    FROM query_table($spells)
    GROUP BY stage_order
),

last_day AS (
    SELECT *
    FROM query_table($curve_table)
    QUALIFY day = max(day) OVER (PARTITION BY stage_order)
)

SELECT
    l.stage,
    l.stage_order,
    l.from_stage,
    l.to_stage,
    CAST(t.customers AS BIGINT) AS customers,
    CAST(t.moved_on AS BIGINT) AS moved_on,
    CAST(t.within_reach AS BIGINT) AS within_reach,
    t.moved_on / t.customers AS observed_conversion,
    l.km_conversion AS projected_conversion,
    l.ci_low,
    l.ci_high,
    h.horizon_days,
    CAST(t.last_event_day AS INTEGER) AS last_event_day,
    -- How many spells the tail of the curve rests on: those still watched on the last day anyone moved on.
    CAST(e.at_risk AS BIGINT) AS at_risk_at_last_event
FROM last_day AS l
INNER JOIN totals AS t ON l.stage_order = t.stage_order
INNER JOIN horizon AS h ON l.stage_order = h.stage_order
LEFT JOIN query_table($curve_table) AS e ON e.stage_order = t.stage_order AND e.day = t.last_event_day
ORDER BY l.stage_order;
