-- Exit rate per touchpoint: customers whose last event is at it / customers who had it at all.
WITH last_touchpoints AS (
    SELECT customer_key, arg_max(touchpoint, event_number) AS touchpoint
    FROM events
    GROUP BY customer_key
),

exits AS (
    SELECT touchpoint, count(*) AS exits
    FROM last_touchpoints
    GROUP BY touchpoint
),

reach AS (
    SELECT touchpoint, count(DISTINCT customer_key) AS customers
    FROM events
    GROUP BY touchpoint
)

SELECT
    r.touchpoint,
    r.customers,
    coalesce(e.exits, 0) AS exits,
    coalesce(e.exits, 0) / r.customers AS exit_rate
FROM reach AS r
LEFT JOIN exits AS e ON r.touchpoint = e.touchpoint
ORDER BY exits DESC, r.touchpoint;
