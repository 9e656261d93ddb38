-- The summaries plus the deltas of summary_add.sql; a group whose count falls to 0 goes (a full refresh would
-- not have it). Then the retired rows are done with (sql/core/retire_dirty.sql): this commits with the marts.
CREATE OR REPLACE TABLE summary_driver_population AS
SELECT segment, from_order, CAST(sum(population) AS BIGINT) AS population,
       CAST(sum(population_converted) AS BIGINT) AS population_converted
FROM (SELECT * FROM summary_driver_population UNION ALL SELECT * FROM delta_driver_population)
GROUP BY ALL
HAVING sum(population) <> 0
ORDER BY ALL;

CREATE OR REPLACE TABLE summary_driver_touchpoints AS
SELECT segment, from_order, touchpoint, CAST(sum(customers_with) AS BIGINT) AS customers_with,
       CAST(sum(converted_with) AS BIGINT) AS converted_with
FROM (SELECT * FROM summary_driver_touchpoints UNION ALL SELECT * FROM delta_driver_touchpoints)
GROUP BY ALL
HAVING sum(customers_with) <> 0
ORDER BY ALL;

DROP TABLE delta_driver_population;
DROP TABLE delta_driver_touchpoints;
DELETE FROM retired_customers;
DELETE FROM retired_journeys;
DELETE FROM retired_stage_entries;
DELETE FROM retired_touchpoint_firsts;
