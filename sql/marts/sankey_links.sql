-- The step Sankey, for all journeys and for the largest first-touch channels (the report's segment
-- selector): step s holds the s-th element of each collapsed path; small nodes are folded into "other".
CREATE OR REPLACE TABLE sankey_segment_links AS
-- A journey's links depend only on its first max_steps + 1 stages (the last of those only says "continues"):
-- journeys are counted per channel and path prefix first, so everything after works on distinct prefixes.
-- converted decides the sink of a path that ends: (completed) once the goal was reached, else (drop-off).
WITH prefixes AS (
    SELECT
        coalesce(first_channel, $no_segment) AS channel,
        stage_path[1:$max_steps + 1] AS prefix,
        converted,
        count(*) AS journeys
    FROM journeys
    GROUP BY ALL
),

channel_sizes AS (
    SELECT channel AS segment, sum(journeys) AS journeys
    FROM prefixes
    GROUP BY ALL
),

segments AS (
    SELECT 'all' AS segment_type, 'all' AS segment, prefix, converted, journeys FROM prefixes
    UNION ALL
    SELECT 'first_channel', channel, prefix, converted, journeys
    FROM prefixes
    WHERE channel IN (SELECT segment FROM channel_sizes ORDER BY journeys DESC, segment LIMIT $top_segments)
),

segment_sizes AS (
    SELECT segment_type, segment, CAST(sum(journeys) AS BIGINT) AS journeys FROM segments GROUP BY ALL
),

-- Step s of a prefix, for s up to max_steps; path_length here is the prefix's, which decides the same
-- "ends at s" (a path longer than max_steps has a prefix of max_steps + 1).
prefix_steps AS (
    SELECT
        segment_type,
        segment,
        prefix,
        converted,
        journeys,
        len(prefix) AS path_length,
        unnest(range(1, least(len(prefix), $max_steps) + 1)) AS step
    FROM segments
),

steps AS (
    SELECT
        segment_type,
        segment,
        converted,
        journeys,
        path_length,
        step,
        prefix[step] AS stage,
        prefix[step + 1] AS next_stage
    FROM prefix_steps
),

node_sizes AS (
    SELECT segment_type, segment, step, stage, CAST(sum(journeys) AS BIGINT) AS customers
    FROM steps
    GROUP BY ALL
),

folded_nodes AS (
    SELECT
        n.segment_type,
        n.segment,
        n.step,
        n.stage,
        CASE WHEN n.customers < $min_share * z.journeys THEN $other_node ELSE n.stage END AS node
    FROM node_sizes AS n
    INNER JOIN segment_sizes AS z USING (segment_type, segment)
),

-- Every customer at step s flows on: to their next node, out of the journey, or past the last step. A journey
-- that ends after reaching the goal is completed, whatever came after the goal; only the others drop off.
links AS (
    SELECT
        s.segment_type,
        s.segment,
        s.step AS from_step,
        a.node AS from_node,
        s.step + 1 AS to_step,
        CASE
            WHEN s.path_length = s.step AND s.converted THEN $completed
            WHEN s.path_length = s.step THEN $drop_off
            WHEN s.step = $max_steps THEN $continues
            ELSE b.node
        END AS to_node,
        s.journeys
    FROM steps AS s
    INNER JOIN folded_nodes AS a
        ON s.segment_type = a.segment_type AND s.segment = a.segment
        AND s.step = a.step AND s.stage = a.stage
    LEFT JOIN folded_nodes AS b
        ON s.segment_type = b.segment_type AND s.segment = b.segment
        AND b.step = s.step + 1 AND s.next_stage = b.stage
)

SELECT segment_type, segment, from_step, from_node, to_step, to_node, CAST(sum(journeys) AS BIGINT) AS customers
FROM links
GROUP BY ALL
ORDER BY segment_type, segment, from_step, from_node, to_node;

CREATE OR REPLACE TABLE sankey_links AS
SELECT from_step, from_node, to_step, to_node, customers
FROM sankey_segment_links
WHERE segment_type = 'all';
