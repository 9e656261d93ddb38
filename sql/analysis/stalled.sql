-- The stalled customers (cjm_people from stalled_people.sql) with their marks (customer_marks.sql), per stage in
-- journey order, the longest sitting first.
SELECT
    p.customer_key AS customer_id,
    m.identified,
    s.stage,
    p.stage_order,
    p.reached_at,
    p.days_at_stage,
    p.p90_dwell_days,
    p.dwell_movers,
    m.last_seen,
    m.days_since_last_seen,
    p.reach_days,
    m.last_touchpoint,
    m.last_channel,
    m.contacted_support,
    m.low_score
FROM query_table($people) AS p
INNER JOIN query_table($marks) AS m ON p.customer_key = m.customer_key
INNER JOIN stage_list AS s ON p.stage_order = s.stage_order
ORDER BY p.stage_order, p.days_at_stage DESC, p.customer_key;
