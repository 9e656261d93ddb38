-- The 2x2 counts of every candidate with enough support (docs/analysis/drivers.md): customers with it and how
-- many of them converted, against the rest of cjm_driver_population. Reads cjm_driver_flags.
WITH totals AS (
    SELECT count(*) AS population, count(*) FILTER (WHERE converted) AS population_converted
    FROM cjm_driver_population
),

counted AS (
    SELECT
        f.kind,
        f.property,
        f.value,
        count(*) AS customers_with,
        count(*) FILTER (WHERE p.converted) AS converted_with
    FROM cjm_driver_flags AS f
    INNER JOIN cjm_driver_population AS p ON f.customer_key = p.customer_key
    GROUP BY f.kind, f.property, f.value
),

-- Without touchpoints configured, a touchpoint is its event's name: a touchpoint held by exactly the customers
-- of the event of the same name says nothing new, and testing it twice would only widen the correction.
same_as_event AS (
    SELECT value
    FROM (
        SELECT
            customer_key,
            value,
            bool_or(kind = 'touchpoint') AS has_touchpoint,
            bool_or(kind = 'event') AS has_event
        FROM cjm_driver_flags
        WHERE kind IN ('touchpoint', 'event')
        GROUP BY customer_key, value
    )
    GROUP BY value
    HAVING bool_and(has_touchpoint = has_event)
)

SELECT
    c.kind,
    CASE WHEN c.kind = 'property' THEN c.property || ' = ' || c.value ELSE c.value END AS candidate,
    c.property,
    c.value,
    c.customers_with,
    c.converted_with,
    t.population - c.customers_with AS customers_without,
    t.population_converted - c.converted_with AS converted_without,
    t.population,
    t.population_converted
FROM counted AS c
CROSS JOIN totals AS t
WHERE c.customers_with >= $min_support
    AND t.population - c.customers_with >= $min_support
    AND NOT (c.kind = 'touchpoint' AND c.value IN (SELECT value FROM same_as_event))
ORDER BY c.kind, c.property, c.value;
