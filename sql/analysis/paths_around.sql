-- The steps just before and after each customer's first occurrence of an anchor step.
WITH anchored AS (
    SELECT items, list_position(items, $anchor) AS anchor_step
    FROM cjm_paths($level, $collapse_loops)
    WHERE list_contains(items, $anchor)
),

-- (start) / (end) mark a window that reaches past the path's first / last step: "nothing before" is an answer.
shown AS (
    SELECT
        CASE WHEN anchor_step - $before < 1 THEN $start_stage || ' > ' ELSE '' END
        || array_to_string(items[greatest(anchor_step - $before, 1):anchor_step + $after], ' > ')
        || CASE WHEN anchor_step + $after > len(items) THEN ' > ' || $end_stage ELSE '' END AS path
    FROM anchored
),

counted AS (
    SELECT path, count(*) AS customers
    FROM shown
    GROUP BY path
)

SELECT
    path,
    customers,
    customers / (SELECT count(*) FROM anchored) AS share
FROM counted
ORDER BY customers DESC, path
LIMIT $n;
