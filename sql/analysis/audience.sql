-- The audience with its marks (cjm_people from audience_people.sql, cjm_customer_marks from customer_marks.sql),
-- the most recently seen first: the customers still most likely to be reached.
SELECT
    p.customer_key AS customer_id,
    m.identified,
    s.stage AS dropped_at,
    p.reached_at,
    m.last_seen,
    m.days_since_last_seen,
    m.last_touchpoint,
    m.last_channel,
    m.contacted_support,
    m.low_score
FROM query_table($people) AS p
INNER JOIN query_table($marks) AS m ON p.customer_key = m.customer_key
INNER JOIN stage_list AS s ON s.stage_order = $stage_order
ORDER BY m.last_seen DESC, p.customer_key;
