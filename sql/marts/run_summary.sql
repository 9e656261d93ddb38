-- The headline of the latest run, over everything in the warehouse.
CREATE OR REPLACE TABLE run_summary AS
WITH loads AS (
    SELECT
        coalesce(sum(rows_read), 0) AS events_read,
        coalesce(sum(rows_rejected), 0) AS events_rejected,
        coalesce(sum(rows_duplicate), 0) AS events_duplicate,
        count(*) FILTER (WHERE status = 'refused') AS files_refused
    FROM load_manifest
),

journey_counts AS (
    SELECT count(*) AS journey_customers, count(*) FILTER (WHERE converted) AS converted
    FROM journeys
),

-- The stage before the goal losing the largest share of those who reach it; ties go to the earlier stage.
-- After the goal, customers who stop have completed: that is retention, never the worst drop-off.
worst AS (
    SELECT
        arg_max(stage, (dropoff_rate, -stage_order)) AS worst_dropoff_stage,
        max(dropoff_rate) AS worst_dropoff_rate
    FROM stage_funnel
    WHERE dropoff_rate IS NOT NULL AND before_goal
)

SELECT
    $run_id AS run_id,
    CAST($run_started AS TIMESTAMP) AS run_started_at,
    CAST(l.events_read AS BIGINT) AS events_read,
    (SELECT count(*) FROM raw_events) AS events_loaded,
    CAST(l.events_rejected AS BIGINT) AS events_rejected,
    CAST(l.events_duplicate AS BIGINT) AS events_duplicate,
    l.files_refused,
    -- A customer's first event is event_number 1: counting those avoids a distinct count of every event's key.
    (SELECT count(*) FROM events WHERE event_number = 1) AS customers,
    j.journey_customers,
    -- NULL with sessions: off, where every journey is one session: a count of them would be the journeys again.
    CASE WHEN $sessions_off THEN NULL ELSE (SELECT count(*) FROM sessions) END AS sessions,
    j.converted,
    j.converted / nullif(j.journey_customers, 0) AS conversion_rate,
    w.worst_dropoff_stage,
    w.worst_dropoff_rate
FROM loads AS l, journey_counts AS j, worst AS w;

-- One row per successful run: the overview compares tonight with the previous night and a week ago.
CREATE TABLE IF NOT EXISTS run_history AS SELECT * FROM run_summary WITH NO DATA;

INSERT INTO run_history SELECT * FROM run_summary;
