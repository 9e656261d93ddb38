-- Each customer's cohort: the UTC ISO week (its Monday, 'YYYY-MM-DD') or month ('YYYY-MM') of the
-- journey's first mapped event, as the temp table cjm_customer_segment (analysis.segments.segment_table).
-- Customers without a journey have none.
CREATE OR REPLACE TEMP TABLE cjm_customer_segment AS
SELECT
    c.customer_key,
    CASE $unit
        WHEN 'week' THEN strftime(date_trunc('week', j.first_ts), '%Y-%m-%d')
        WHEN 'month' THEN strftime(j.first_ts, '%Y-%m')
    END AS segment
FROM (SELECT DISTINCT customer_key FROM events) AS c
LEFT JOIN journeys AS j ON c.customer_key = j.customer_key;
