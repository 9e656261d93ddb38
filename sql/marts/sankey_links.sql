-- The step Sankey: step s holds the s-th element of each collapsed path, small nodes folded into "other".
CREATE OR REPLACE TABLE sankey_links AS
WITH steps AS (
    SELECT customer_key, step, stage, path_length
    FROM journey_steps
    WHERE step <= $max_steps
),

node_sizes AS (
    SELECT step, stage, count(*) AS customers
    FROM steps
    GROUP BY ALL
),

folded AS (
    SELECT
        s.customer_key,
        s.step,
        s.path_length,
        CASE
            WHEN n.customers < $min_share * (SELECT count(*) FROM journeys) THEN 'other'
            ELSE s.stage
        END AS node
    FROM steps AS s
    INNER JOIN node_sizes AS n ON s.step = n.step AND s.stage = n.stage
),

-- Every customer at step s flows on: to their next node, to (drop-off), or past the last step.
links AS (
    SELECT
        a.step AS from_step,
        a.node AS from_node,
        a.step + 1 AS to_step,
        CASE
            WHEN a.path_length = a.step THEN '(drop-off)'
            WHEN a.step = $max_steps THEN '(continues)'
            ELSE b.node
        END AS to_node
    FROM folded AS a
    LEFT JOIN folded AS b ON a.customer_key = b.customer_key AND b.step = a.step + 1
)

SELECT from_step, from_node, to_step, to_node, count(*) AS customers
FROM links
GROUP BY ALL
ORDER BY from_step, from_node, to_node;
