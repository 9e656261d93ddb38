-- The paths behind the path analyses: every customer's path as a list of steps, and with the time of each step.
-- Stage paths are the journeys' collapsed stage paths (DEFINITIONS.md); touchpoint paths are built from all
-- events, in the events' own order (event_number: ts, then event_id, source), collapsing consecutive repeats when `collapse` is
-- true. A collapsed step's time is that of the first event of its run.

-- cjm_timed_paths(path_level, collapse): (customer_key, items, times), two aligned lists.
CREATE OR REPLACE TEMP MACRO cjm_timed_paths(path_level, collapse) AS TABLE
WITH stage_paths AS (
    SELECT customer_key, list(stage ORDER BY step) AS items, list(ts ORDER BY step) AS times
    FROM journey_steps
    WHERE path_level = 'stage'
    GROUP BY customer_key
),

touchpoint_events AS (
    SELECT
        customer_key,
        touchpoint,
        ts,
        event_number,
        lag(touchpoint) OVER by_time AS prev_touchpoint
    FROM events
    WHERE path_level = 'touchpoint'
    WINDOW by_time AS (PARTITION BY customer_key ORDER BY event_number)
),

touchpoint_paths AS (
    SELECT
        customer_key,
        list(touchpoint ORDER BY event_number) AS items,
        list(ts ORDER BY event_number) AS times
    FROM touchpoint_events
    WHERE NOT collapse OR prev_touchpoint IS DISTINCT FROM touchpoint
    GROUP BY customer_key
)

SELECT * FROM stage_paths
UNION ALL
SELECT * FROM touchpoint_paths;

-- cjm_paths(path_level, collapse): (customer_key, items); stage paths are read as stored, with no regrouping.
CREATE OR REPLACE TEMP MACRO cjm_paths(path_level, collapse) AS TABLE
SELECT customer_key, stage_path AS items
FROM journeys
WHERE path_level = 'stage'

UNION ALL

SELECT customer_key, items
FROM cjm_timed_paths(path_level, collapse)
WHERE path_level = 'touchpoint';
