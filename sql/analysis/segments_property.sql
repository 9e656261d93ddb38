-- Each customer's first non-empty value of one event property (campaign, device, a CRM attribute such as
-- plan), as the temp table cjm_customer_segment (analysis.segments.segment_table). $path is the JSON path of
-- the property, e.g. '$."plan"'.
CREATE OR REPLACE TEMP TABLE cjm_customer_segment AS
WITH property_values AS (
    -- events is narrow: the properties stay in raw_events.
    SELECT e.customer_key, nullif(json_extract_string(r.properties, $path), '') AS value, e.event_number
    FROM events AS e
    INNER JOIN raw_events AS r ON e.source = r.source AND e.event_id = r.event_id
)

SELECT
    customer_key,
    arg_min(value, event_number) FILTER (WHERE value IS NOT NULL) AS segment
FROM property_values
GROUP BY customer_key;
