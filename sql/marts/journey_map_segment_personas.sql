-- Which persona each first-touch channel (segment, NULL without one) is in, for the persona types that are a
-- function of it (all customers, first_touch_channel): how the journey map folds the maintained summaries
-- (sql/marts/summary_start.sql) into its personas. From jm_customers, so the personas are the map's own.
CREATE OR REPLACE TEMP TABLE jm_segment_personas AS
SELECT DISTINCT c.persona_type, c.persona, j.first_channel AS segment
FROM jm_customers AS c
INNER JOIN journeys AS j ON c.customer_key = j.customer_key
WHERE list_contains(CAST($persona_types AS VARCHAR[]), c.persona_type);
