-- How many customers of $segments (a table of analysis/segments_*) have a segment value, and how many distinct
-- values there are.
SELECT count(segment) AS customers_with_value, count(DISTINCT segment) AS segments
FROM query_table($segments);
