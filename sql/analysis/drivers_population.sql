-- The population of a conversion-drivers question (docs/analysis/drivers.md), as the temp table
-- cjm_driver_population: journey customers who reached stage $from_order (a ladder: furthest stage at or beyond
-- it), whether they reached $to_order, and where what they did stops counting.
CREATE OR REPLACE TEMP TABLE cjm_driver_population AS
WITH reached AS (
    SELECT customer_key, furthest_stage_order >= $to_order AS converted
    FROM journeys
    WHERE furthest_stage_order >= $from_order
),

-- A converter's history stops at their first event at the target stage or beyond (that event excluded); the
-- rest's history runs to their last event (cutoff NULL). event_number is the order every "first" follows;
-- stage_entries holds each customer's first event at each stage, so no scan of events is needed.
cutoffs AS (
    SELECT customer_key, min(event_number) AS cutoff_number
    FROM stage_entries
    WHERE stage_order >= $to_order
    GROUP BY customer_key
)

SELECT r.customer_key, r.converted, CASE WHEN r.converted THEN c.cutoff_number END AS cutoff_number
FROM reached AS r
LEFT JOIN cutoffs AS c ON r.customer_key = c.customer_key;
