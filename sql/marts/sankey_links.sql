-- The step Sankey, for all journeys and for the largest first-touch channels (the report's segment
-- selector): step s holds the s-th element of each collapsed path; small nodes are folded into "other".
CREATE OR REPLACE TABLE sankey_segment_links AS
WITH channel_sizes AS (
    SELECT coalesce(first_channel, '(none)') AS segment, count(*) AS journeys
    FROM journeys
    GROUP BY ALL
),

segments AS (
    SELECT 'all' AS segment_type, 'all' AS segment, customer_key FROM journeys
    UNION ALL
    SELECT 'first_channel', coalesce(j.first_channel, '(none)'), j.customer_key
    FROM journeys AS j
    WHERE coalesce(j.first_channel, '(none)') IN (
        SELECT segment FROM channel_sizes ORDER BY journeys DESC, segment LIMIT $top_segments
    )
),

segment_sizes AS (
    SELECT segment_type, segment, count(*) AS journeys FROM segments GROUP BY ALL
),

steps AS (
    SELECT g.segment_type, g.segment, s.customer_key, s.step, s.stage, s.path_length
    FROM journey_steps AS s
    INNER JOIN segments AS g ON s.customer_key = g.customer_key
    WHERE s.step <= $max_steps
),

node_sizes AS (
    SELECT segment_type, segment, step, stage, count(*) AS customers
    FROM steps
    GROUP BY ALL
),

folded AS (
    SELECT
        s.segment_type,
        s.segment,
        s.customer_key,
        s.step,
        s.path_length,
        CASE WHEN n.customers < $min_share * z.journeys THEN 'other' ELSE s.stage END AS node
    FROM steps AS s
    INNER JOIN node_sizes AS n USING (segment_type, segment, step, stage)
    INNER JOIN segment_sizes AS z USING (segment_type, segment)
),

-- Every customer at step s flows on: to their next node, to (drop-off), or past the last step.
links AS (
    SELECT
        a.segment_type,
        a.segment,
        a.step AS from_step,
        a.node AS from_node,
        a.step + 1 AS to_step,
        CASE
            WHEN a.path_length = a.step THEN '(drop-off)'
            WHEN a.step = $max_steps THEN '(continues)'
            ELSE b.node
        END AS to_node
    FROM folded AS a
    LEFT JOIN folded AS b
        ON a.segment_type = b.segment_type AND a.segment = b.segment
        AND a.customer_key = b.customer_key AND b.step = a.step + 1
)

SELECT segment_type, segment, from_step, from_node, to_step, to_node, count(*) AS customers
FROM links
GROUP BY ALL
ORDER BY segment_type, segment, from_step, from_node, to_node;

CREATE OR REPLACE TABLE sankey_links AS
SELECT from_step, from_node, to_step, to_node, customers
FROM sankey_segment_links
WHERE segment_type = 'all';
