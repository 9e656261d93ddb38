-- The temp table cjm_customer_segment built by one of analysis/segments_*.
SELECT customer_key, segment
FROM cjm_customer_segment
ORDER BY customer_key;
