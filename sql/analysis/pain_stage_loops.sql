-- Customers going back and forth between two stages: more than $loop_threshold moves between the pair
-- (either direction) in their collapsed stage path; browse, cart, browse, cart is 3 moves.
WITH loopers AS (
    SELECT m.order_a, m.order_b, m.customer_key, j.converted
    FROM cjm_stage_pair_moves() AS m
    INNER JOIN journeys AS j ON m.customer_key = j.customer_key
    WHERE m.moves > $loop_threshold
)

SELECT
    a.stage AS stage_a,
    b.stage AS stage_b,
    count(*) AS loopers,
    count(*) FILTER (WHERE l.converted) AS converted,
    count(*) FILTER (WHERE l.converted) / count(*) AS conversion_rate
FROM loopers AS l
INNER JOIN stage_list AS a ON l.order_a = a.stage_order
INNER JOIN stage_list AS b ON l.order_b = b.stage_order
GROUP BY a.stage, b.stage, l.order_a, l.order_b
ORDER BY loopers DESC, l.order_a, l.order_b;
