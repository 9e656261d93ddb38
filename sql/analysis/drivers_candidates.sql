-- Which candidate each customer of cjm_driver_population had before their cutoff, as the temp table
-- cjm_driver_flags(customer_key, kind, property, value): one row per customer and candidate, from
-- cjm_driver_history. $kinds says which kinds to collect; $properties the event properties to read (NULL: all).
CREATE OR REPLACE TEMP TABLE cjm_driver_flags AS
WITH named AS (
    SELECT DISTINCT customer_key, 'event' AS kind, NULL::VARCHAR AS property, event_name AS value
    FROM cjm_driver_history
    WHERE list_contains($kinds, 'event')
    UNION ALL
    SELECT DISTINCT customer_key, 'touchpoint', NULL, touchpoint
    FROM cjm_driver_history
    WHERE list_contains($kinds, 'touchpoint') AND touchpoint IS NOT NULL
    UNION ALL
    SELECT DISTINCT customer_key, 'channel', NULL, channel
    FROM cjm_driver_history
    WHERE list_contains($kinds, 'channel') AND channel IS NOT NULL
),

-- events is narrow: the properties stay in raw_events (docs/adr/0004-properties-only-in-raw-events.md). Read as
-- a map, every key comes back as written, whatever characters it holds.
property_values AS (
    SELECT h.customer_key, h.event_number, p.key AS property, nullif(p.value, '') AS value
    FROM cjm_driver_history AS h
    INNER JOIN raw_events AS r ON h.source = r.source AND h.event_id = r.event_id,
        LATERAL (SELECT unnest(map_entries(json_transform(r.properties, '"MAP(VARCHAR, VARCHAR)"')), recursive := true))
            AS p
    WHERE list_contains($kinds, 'property')
        AND ($properties IS NULL OR list_contains($properties, p.key))
),

-- A customer's value of a property is its first non-empty value before the cutoff, as segments read a
-- property (docs/analysis/segments.md), so a value set at or after conversion never counts.
first_values AS (
    SELECT customer_key, 'property' AS kind, property, arg_min(value, event_number) AS value
    FROM property_values
    WHERE value IS NOT NULL
    GROUP BY customer_key, property
),

-- A property with more distinct values than $max_property_values is an id or an amount, not an attribute.
attributes AS (
    SELECT property
    FROM first_values
    GROUP BY property
    HAVING count(DISTINCT value) <= $max_property_values
)

SELECT customer_key, kind, property, value FROM named
UNION ALL
SELECT f.customer_key, f.kind, f.property, f.value
FROM first_values AS f
WHERE f.property IN (SELECT property FROM attributes);
