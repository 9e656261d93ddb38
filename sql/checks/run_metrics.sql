-- The figures of this run that its health checks compare (sql/checks/run_checks.sql), one row per metric and
-- subject. Runs after the marts, before anything is published.

DELETE FROM run_metrics WHERE run_id = $run_id;

-- What each source's files gave this run: the files it read (new, changed or refused before) and their rows.
INSERT INTO run_metrics
WITH sources AS (
    SELECT unnest($sources) AS source
),

tonight AS (
    SELECT
        source,
        -- The rows judged: those a source's filter left out (where / where_not) are neither events nor rejects.
        sum(rows_read - coalesce(rows_filtered, 0)) AS rows_read,
        sum(rows_loaded) AS rows_loaded,
        sum(rows_rejected) AS rows_rejected,
        count(*) FILTER (WHERE status = 'refused') AS files_refused,
        count(*) AS files_read
    FROM load_manifest
    WHERE run_id = $run_id
    GROUP BY source
),

held AS (
    SELECT
        source,
        count(*) AS events
    FROM raw_events
    GROUP BY source
),

per_source AS (
    SELECT
        s.source,
        coalesce(t.rows_read, 0) AS rows_read,
        coalesce(t.rows_loaded, 0) AS rows_loaded,
        coalesce(t.rows_rejected, 0) AS rows_rejected,
        coalesce(t.files_refused, 0) AS files_refused,
        coalesce(t.files_read, 0) AS files_read,
        coalesce(h.events, 0) AS events
    FROM sources AS s
    LEFT JOIN tonight AS t USING (source)
    LEFT JOIN held AS h USING (source)
)

SELECT $run_id, $run_started, metric, source, value
FROM per_source
UNPIVOT (value FOR metric IN (rows_read, rows_loaded, rows_rejected, files_refused, files_read, events));

-- The warehouse's headline: customers, journeys, conversion, and where the data ends.
INSERT INTO run_metrics
SELECT $run_id, $run_started, metric, '', value
FROM (
    SELECT
        CAST(customers AS DOUBLE) AS customers,
        CAST(journey_customers AS DOUBLE) AS journey_customers,
        conversion_rate,
        (SELECT epoch(max(ts)) FROM events) AS data_end
    FROM run_summary
)
UNPIVOT INCLUDE NULLS (value FOR metric IN (customers, journey_customers, conversion_rate, data_end));

-- Each stage before the goal: the share of those who reach it who go no further (a drop-off, DEFINITIONS.md).
INSERT INTO run_metrics
SELECT $run_id, $run_started, 'dropoff_rate', stage, dropoff_rate
FROM stage_funnel
WHERE stage_order < $goal_order;

-- Late data: events loaded this run whose time is not after the end of the data of the last good run, i.e. that
-- land in cohort days a dashboard has already shown; and the first day they land in.
INSERT INTO run_metrics
WITH last_good AS (
    SELECT max_by(value, run_started) AS data_end
    FROM run_metrics
    WHERE metric = 'data_end' AND run_id <> $run_id
        AND run_id NOT IN (SELECT run_id FROM run_checks WHERE status = 'error')
),

late AS (
    SELECT
        CAST(count(*) AS DOUBLE) AS late_events,
        epoch(min(ts)) AS late_from
    FROM raw_events
    WHERE run_id = $run_id AND epoch(ts) <= (SELECT data_end FROM last_good)
)

SELECT $run_id, $run_started, metric, '', value
FROM late
UNPIVOT INCLUDE NULLS (value FOR metric IN (late_events, late_from));
