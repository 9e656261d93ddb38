-- Per source: how many loaded events fill each canonical column, and the other columns found (kept as properties).
SELECT
    source,
    count(*) AS events,
    count(customer_id) AS with_customer_id,
    count(anonymous_id) AS with_anonymous_id,
    count(channel) AS with_channel,
    (
        SELECT list(DISTINCT k ORDER BY k)
        FROM (SELECT unnest(json_keys(p.properties)) AS k FROM raw_events AS p WHERE p.source = r.source)
    ) AS property_columns
FROM raw_events AS r
GROUP BY source
ORDER BY source;
