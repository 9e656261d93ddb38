-- The most common whole paths, with the share of all customers with a path each covers.
WITH paths AS (
    SELECT * FROM cjm_paths($level, $collapse_loops)
),

-- A path longer than max_length keeps its first max_length steps and ends in '…', so that it is not
-- counted with the paths that really end there.
shown AS (
    SELECT
        CASE
            WHEN len(items) > $max_length THEN array_to_string(items[1:$max_length], ' > ') || ' > …'
            ELSE array_to_string(items, ' > ')
        END AS path
    FROM paths
),

counted AS (
    SELECT path, count(*) AS customers
    FROM shown
    GROUP BY path
),

ranked AS (
    SELECT
        row_number() OVER (ORDER BY customers DESC, path) AS rank,
        path,
        customers,
        customers / (SELECT count(*) FROM paths) AS share
    FROM counted
)

SELECT
    rank,
    path,
    customers,
    share,
    sum(customers) OVER (ORDER BY rank ROWS UNBOUNDED PRECEDING) / (SELECT count(*) FROM paths) AS cumulative_share
FROM ranked
WHERE $n IS NULL OR rank <= $n
ORDER BY rank;
