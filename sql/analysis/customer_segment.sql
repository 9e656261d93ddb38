-- Each customer's segment: $segments names a table of analysis/segments_*.
SELECT customer_key, segment
FROM query_table($segments)
ORDER BY customer_key;
