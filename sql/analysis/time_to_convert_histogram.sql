-- Converted customers per time-to-convert bin [lower, upper) hours, per segment. $edges are the bin edges
-- in increasing order (the last may be inf). $segments names the
-- customers' segments (a table of analysis/segments_*).
WITH bins AS (
    SELECT i AS bin, $edges[i] AS lower_hours, $edges[i + 1] AS upper_hours
    FROM range(1, len($edges)) AS r(i)
),

converted AS (
    SELECT coalesce(g.segment, $no_segment) AS segment, j.hours_to_convert AS hours
    FROM journeys AS j
    LEFT JOIN query_table($segments) AS g ON j.customer_key = g.customer_key
    WHERE j.converted
),

segments AS (
    SELECT segment, count(*) AS segment_converted FROM converted GROUP BY segment
),

counts AS (
    SELECT c.segment, b.bin, count(*) AS n
    FROM converted AS c
    INNER JOIN bins AS b ON c.hours >= b.lower_hours AND c.hours < b.upper_hours
    GROUP BY ALL
)

SELECT
    z.segment,
    CAST(b.bin AS INTEGER) AS bin,
    '[' || regexp_replace(CAST(b.lower_hours AS VARCHAR), '\.0$', '') || ', '
        || regexp_replace(CAST(b.upper_hours AS VARCHAR), '\.0$', '') || ')' AS label,
    b.lower_hours,
    b.upper_hours,
    CAST(coalesce(c.n, 0) AS BIGINT) AS converted,
    -- Of all converted customers of the segment, so a range that misses some shows as shares below 1.
    coalesce(c.n, 0) / z.segment_converted AS share,
    z.segment_converted < $min_segment_size AS too_small
FROM segments AS z
CROSS JOIN bins AS b
LEFT JOIN counts AS c ON z.segment = c.segment AND b.bin = c.bin
ORDER BY z.segment, b.bin;
