-- The 2x2 counts of analysis/drivers_counts.sql for every persona at once: per persona and candidate touchpoint
-- of the stage ($touchpoints), its customers in the drivers' population (cjm_driver_population, from
-- analysis/drivers_population.sql) and how many of them converted, against the rest of the persona's population.
-- Reads cjm_driver_flags (analysis/drivers_candidates.sql, kinds: touchpoint) and jm_customers.
WITH population AS (
    SELECT c.persona_type, c.persona, p.customer_key, p.converted
    FROM query_table($population) AS p
    INNER JOIN jm_customers AS c ON p.customer_key = c.customer_key
),

totals AS (
    SELECT persona_type, persona, count(*) AS population, count(*) FILTER (WHERE converted) AS population_converted
    FROM population
    GROUP BY ALL
),

counted AS (
    SELECT
        p.persona_type,
        p.persona,
        f.kind,
        f.property,
        f.value,
        count(*) AS customers_with,
        count(*) FILTER (WHERE p.converted) AS converted_with
    FROM query_table($flags) AS f
    INNER JOIN population AS p ON f.customer_key = p.customer_key
    WHERE f.kind = 'touchpoint' AND list_contains(CAST($touchpoints AS VARCHAR[]), f.value)
    GROUP BY ALL
)

SELECT
    c.persona_type,
    c.persona,
    c.kind,
    c.value AS candidate,
    c.property,
    c.value,
    c.customers_with,
    c.converted_with,
    t.population - c.customers_with AS customers_without,
    t.population_converted - c.converted_with AS converted_without,
    t.population,
    t.population_converted
FROM counted AS c
INNER JOIN totals AS t ON c.persona_type = t.persona_type AND c.persona = t.persona
WHERE c.customers_with >= $min_support AND t.population - c.customers_with >= $min_support
ORDER BY c.persona_type, c.persona, c.value;
