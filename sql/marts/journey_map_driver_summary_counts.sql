-- The counts of journey_map_driver_counts.sql for the personas of jm_segment_personas, from the maintained
-- summaries (sql/marts/summary_start.sql) instead of every customer: the sums over the persona's segments of the
-- population at stage $from_order and of each candidate touchpoint's customers ($touchpoints).
WITH totals AS (
    SELECT m.persona_type, m.persona, sum(s.population) AS population,
           sum(s.population_converted) AS population_converted
    FROM summary_driver_population AS s
    INNER JOIN jm_segment_personas AS m ON s.segment IS NOT DISTINCT FROM m.segment
    WHERE s.from_order = $from_order
    GROUP BY ALL
),

counted AS (
    SELECT m.persona_type, m.persona, s.touchpoint AS value, sum(s.customers_with) AS customers_with,
           sum(s.converted_with) AS converted_with
    FROM summary_driver_touchpoints AS s
    INNER JOIN jm_segment_personas AS m ON s.segment IS NOT DISTINCT FROM m.segment
    WHERE s.from_order = $from_order AND list_contains(CAST($touchpoints AS VARCHAR[]), s.touchpoint)
    GROUP BY ALL
)

SELECT
    c.persona_type,
    c.persona,
    'touchpoint' AS kind,
    c.value AS candidate,
    CAST(NULL AS VARCHAR) AS property,
    c.value,
    CAST(c.customers_with AS BIGINT) AS customers_with,
    CAST(c.converted_with AS BIGINT) AS converted_with,
    CAST(t.population - c.customers_with AS BIGINT) AS customers_without,
    CAST(t.population_converted - c.converted_with AS BIGINT) AS converted_without,
    CAST(t.population AS BIGINT) AS population,
    CAST(t.population_converted AS BIGINT) AS population_converted
FROM counted AS c
INNER JOIN totals AS t ON c.persona_type = t.persona_type AND c.persona = t.persona
WHERE c.customers_with >= $min_support AND t.population - c.customers_with >= $min_support
ORDER BY c.persona_type, c.persona, c.value;
