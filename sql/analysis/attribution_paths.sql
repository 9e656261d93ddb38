-- Distinct channel paths with their conversions and non-conversions (ChannelAttribution's input format).
WITH touches AS (
    SELECT * FROM cjm_channel_touches()
),

paths AS (
    SELECT customer_key, array_to_string(list(channel ORDER BY touch), ' > ') AS path, any_value(converted) AS converted
    FROM touches
    GROUP BY customer_key
)

SELECT
    path,
    count(*) FILTER (WHERE converted) AS conversions,
    count(*) FILTER (WHERE NOT converted) AS non_conversions
FROM paths
GROUP BY path
ORDER BY conversions + non_conversions DESC, path;
