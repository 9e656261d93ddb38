-- Time between consecutive stages of the collapsed stage paths, per transition and segment
-- (docs/analysis/timing.md). Measured as stage_transitions.median_hours: from the last event of the run at
-- the first stage to the first event at the next. $segments names the customers'
-- segments (a table of analysis/segments_*).
WITH transitions AS (
    SELECT
        s.prev_stage AS from_stage,
        s.prev_stage_order AS from_order,
        s.stage AS to_stage,
        s.stage_order AS to_order,
        coalesce(g.segment, $no_segment) AS segment,
        s.hours_from_prev AS hours
    FROM journey_steps AS s
    LEFT JOIN query_table($segments) AS g ON s.customer_key = g.customer_key
    WHERE s.prev_stage IS NOT NULL
)

SELECT
    from_stage,
    to_stage,
    segment,
    count(*) AS transitions,
    quantile_cont(hours, 0.5) AS median_hours,
    quantile_cont(hours, 0.9) AS p90_hours,
    avg(hours) AS mean_hours,
    count(*) < $min_segment_size AS too_small
FROM transitions
GROUP BY from_stage, from_order, to_stage, to_order, segment
ORDER BY from_order, to_order, segment;
