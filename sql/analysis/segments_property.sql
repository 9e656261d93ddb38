-- Each customer's first non-empty value of one event property (campaign, device, a CRM attribute such as
-- plan), as the temp table cjm_customer_segment. $path is the JSON path of the property, e.g. '$."plan"'.
CREATE OR REPLACE TEMP TABLE cjm_customer_segment AS
WITH property_values AS (
    SELECT customer_key, nullif(json_extract_string(properties, $path), '') AS value, ts, event_id, source
    FROM events
)

SELECT
    customer_key,
    arg_min(value, (ts, event_id, source)) FILTER (WHERE value IS NOT NULL) AS segment
FROM property_values
GROUP BY customer_key;
