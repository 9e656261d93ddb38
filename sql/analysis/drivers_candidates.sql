-- Which candidate each customer of cjm_driver_population had before their cutoff, as the temp table
-- cjm_driver_flags(customer_key, converted, kind, property, value): one row per customer and candidate, from
-- cjm_driver_history. $kinds says which kinds to collect; $properties the event properties to read (NULL: all).
CREATE OR REPLACE TEMP TABLE cjm_driver_flags AS
-- Customers repeat the same events: deduplicated once, the three kinds below read far fewer rows.
WITH combinations AS (
    SELECT DISTINCT customer_key, converted, event_name, touchpoint, channel
    FROM query_table($history)
),

named AS (
    SELECT DISTINCT customer_key, converted, 'event' AS kind, NULL::VARCHAR AS property, event_name AS value
    FROM combinations
    WHERE list_contains($kinds, 'event')
    UNION ALL
    SELECT DISTINCT customer_key, converted, 'touchpoint', NULL, touchpoint
    FROM combinations
    WHERE list_contains($kinds, 'touchpoint') AND touchpoint IS NOT NULL
    UNION ALL
    SELECT DISTINCT customer_key, converted, 'channel', NULL, channel
    FROM combinations
    WHERE list_contains($kinds, 'channel') AND channel IS NOT NULL
),

-- events is narrow: the properties stay in raw_events (docs/adr/0004-properties-only-in-raw-events.md).
counted_properties AS (
    SELECT h.customer_key, h.converted, h.event_number, CAST(r.properties AS VARCHAR) AS properties
    FROM query_table($history) AS h
    INNER JOIN raw_events AS r ON h.source = r.source AND h.event_id = r.event_id
    WHERE list_contains($kinds, 'property')
),

-- Rows repeat the same few property texts (10M events of the benchmark hold 13,454): each distinct text is parsed
-- once. Read as a map, every key comes back as written, whatever characters it holds.
parsed AS (
    SELECT t.properties, p.key AS property, nullif(p.value, '') AS value
    FROM (SELECT DISTINCT properties FROM counted_properties) AS t,
        LATERAL (SELECT unnest(map_entries(json_transform(t.properties, '"MAP(VARCHAR, VARCHAR)"')), recursive := true))
            AS p
    WHERE ($properties IS NULL OR list_contains($properties, p.key))
),

-- A customer's value of a property is its first non-empty value before the cutoff, as segments read a
-- property (docs/analysis/segments.md), so a value set at or after conversion never counts.
first_values AS (
    SELECT c.customer_key, c.converted, 'property' AS kind, p.property, arg_min(p.value, c.event_number) AS value
    FROM counted_properties AS c
    INNER JOIN parsed AS p ON c.properties = p.properties
    WHERE p.value IS NOT NULL
    GROUP BY c.customer_key, c.converted, p.property
),

-- A property with more distinct values than $max_property_values is an id or an amount, not an attribute.
attributes AS (
    SELECT property
    FROM first_values
    GROUP BY property
    HAVING count(DISTINCT value) <= $max_property_values
)

SELECT customer_key, converted, kind, property, value FROM named
UNION ALL
SELECT f.customer_key, f.converted, f.kind, f.property, f.value
FROM first_values AS f
WHERE f.property IN (SELECT property FROM attributes);
