-- The sub-path from each customer's first `start` step to the first `end` step after it.
WITH started AS (
    SELECT items, times, list_position(items, $start) AS start_step
    FROM cjm_timed_paths($level, $collapse_loops)
    WHERE list_contains(items, $start)
),

-- The first `end` after the start, as a position in the whole path (NULL when there is none).
ended AS (
    SELECT *, start_step + list_position(items[start_step + 1:], $end) AS end_step
    FROM started
),

segments AS (
    SELECT
        array_to_string(items[start_step:end_step], ' > ') AS path,
        (epoch_us(times[end_step]) - epoch_us(times[start_step])) / 3.6e9 AS hours
    FROM ended
    WHERE end_step IS NOT NULL
),

counted AS (
    SELECT path, count(*) AS customers, median(hours) AS median_hours
    FROM segments
    GROUP BY path
)

SELECT
    path,
    customers,
    customers / (SELECT count(*) FROM segments) AS share,
    median_hours
FROM counted
ORDER BY customers DESC, path
LIMIT $n;
