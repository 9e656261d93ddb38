-- First-touch, last-touch and linear credit per channel, in conversions (each model sums to the conversions).
WITH touches AS (
    SELECT * FROM cjm_channel_touches()
)

SELECT
    channel,
    CAST(count(*) FILTER (WHERE converted AND touch = 1) AS DOUBLE) AS first_touch,
    CAST(count(*) FILTER (WHERE converted AND touch = n_touches) AS DOUBLE) AS last_touch,
    coalesce(sum(1 / n_touches) FILTER (WHERE converted), 0) AS linear
FROM touches
GROUP BY channel
ORDER BY channel;
