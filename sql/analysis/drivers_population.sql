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
-- rest's history runs to their last event (cutoff NULL). event_number is the order every "first" follows.
cutoffs AS (
    SELECT e.customer_key, min(e.event_number) AS cutoff_number
    FROM events AS e
    INNER JOIN reached AS r ON e.customer_key = r.customer_key
    WHERE r.converted AND e.stage_order >= $to_order
    GROUP BY e.customer_key
)

SELECT r.customer_key, r.converted, c.cutoff_number
FROM reached AS r
LEFT JOIN cutoffs AS c ON r.customer_key = c.customer_key;
