-- cjm_stage_pair_moves(): moves between each pair of stages (either direction) per customer, in their
-- collapsed stage path; browse, cart, browse, cart is 3 moves between browse and cart. A customer with more
-- than the loop threshold of moves between a pair is a looper (docs/analysis/pain-points.md), defined once here
-- for the loops table and the leak profile.
CREATE OR REPLACE TEMP MACRO cjm_stage_pair_moves() AS TABLE
SELECT
    customer_key,
    least(prev_stage_order, stage_order) AS order_a,
    greatest(prev_stage_order, stage_order) AS order_b,
    count(*) AS moves
FROM journey_steps
WHERE prev_stage IS NOT NULL
GROUP BY ALL;
