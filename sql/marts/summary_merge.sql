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

CREATE OR REPLACE TABLE summary_stage_touchpoints AS
SELECT segment, stage_order, touchpoint, CAST(sum(customers) AS BIGINT) AS customers,
       CAST(sum(before_moving_on) AS BIGINT) AS before_moving_on
FROM (SELECT * FROM summary_stage_touchpoints UNION ALL SELECT * FROM delta_stage_touchpoints)
GROUP BY ALL
HAVING sum(customers) <> 0
ORDER BY ALL;

CREATE OR REPLACE TABLE summary_stage_customers AS
SELECT segment, stage_order, CAST(sum(customers) AS BIGINT) AS customers
FROM (SELECT * FROM summary_stage_customers UNION ALL SELECT * FROM delta_stage_customers)
GROUP BY ALL
HAVING sum(customers) <> 0
ORDER BY ALL;

-- A customer's row of stage_channels has sessions >= 1: a group of 0 sessions has no customer left.
CREATE OR REPLACE TABLE summary_stage_channels AS
SELECT segment, stage_order, channel, CAST(sum(sessions) AS BIGINT) AS sessions
FROM (SELECT * FROM summary_stage_channels UNION ALL SELECT * FROM delta_stage_channels)
GROUP BY ALL
HAVING sum(sessions) <> 0
ORDER BY ALL;

DROP TABLE delta_driver_population;
DROP TABLE delta_driver_touchpoints;
DROP TABLE delta_stage_touchpoints;
DROP TABLE delta_stage_customers;
DROP TABLE delta_stage_channels;
DELETE FROM retired_customers;
DELETE FROM retired_journeys;
DELETE FROM retired_stage_entries;
DELETE FROM retired_touchpoint_firsts;
DELETE FROM retired_stage_touchpoints;
DELETE FROM retired_stage_channels;
