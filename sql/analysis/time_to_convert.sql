-- Time to convert (journeys.hours_to_convert) per segment: converted customers, median and p90
-- (quantile_cont: linear interpolation, as numpy's default). $segments names the
-- customers' segments (a table of analysis/segments_*).
WITH segmented AS (
    SELECT coalesce(g.segment, $no_segment) AS segment, j.converted, j.hours_to_convert
    FROM journeys AS j
    LEFT JOIN query_table($segments) AS g ON j.customer_key = g.customer_key
)

SELECT
    segment,
    count(*) FILTER (WHERE converted) AS converted,
    quantile_cont(hours_to_convert, 0.5) FILTER (WHERE converted) AS median_hours,
    quantile_cont(hours_to_convert, 0.9) FILTER (WHERE converted) AS p90_hours,
    count(*) FILTER (WHERE converted) < $min_segment_size AS too_small
FROM segmented
GROUP BY segment
ORDER BY segment;
