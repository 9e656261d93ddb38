-- How many customers of cjm_customer_segment have a segment value, and how many distinct values there are.
SELECT count(segment) AS customers_with_value, count(DISTINCT segment) AS segments
FROM cjm_customer_segment;
