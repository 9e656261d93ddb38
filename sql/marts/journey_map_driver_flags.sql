-- The touchpoint candidates of analysis/drivers_candidates.sql for the population of
-- analysis/drivers_population.sql, as the temp table cjm_driver_flags, from touchpoint_firsts instead of every
-- event: a customer has a touchpoint before their cutoff exactly when their first event with it comes before it.
-- (The history's other rule, no event at the target stage or beyond, is implied by the cutoff: a converter's
-- cutoff is their first such event, and the rest have none.)
CREATE OR REPLACE TEMP TABLE cjm_driver_flags AS
SELECT p.customer_key, p.converted, 'touchpoint' AS kind, NULL::VARCHAR AS property, f.touchpoint AS value
FROM query_table($population) AS p
INNER JOIN touchpoint_firsts AS f ON p.customer_key = f.customer_key
WHERE (p.cutoff_number IS NULL OR f.event_number < p.cutoff_number)
    AND list_contains(CAST($touchpoints AS VARCHAR[]), f.touchpoint);
