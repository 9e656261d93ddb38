-- What a CRM or marketing team needs to act on each customer of the temp table cjm_people(customer_key): when
-- they were last seen, where (touchpoint, channel), whether they are a known customer and whether they contacted
-- support or gave a low survey score. A mark whose input is not configured (no support events, no surveys) is
-- NULL, never false (docs/definitions.md). Needs the cjm_survey_responses macro (emotion_survey_responses.sql).
CREATE OR REPLACE TEMP TABLE cjm_customer_marks AS
WITH data_end AS (
    SELECT max(ts) AS ts FROM events
),

-- Globs are matched once per distinct event name, not once per event.
support_names AS (
    SELECT DISTINCT n.event_name
    FROM (SELECT DISTINCT event_name FROM events) AS n
    INNER JOIN unnest(CAST($support_events AS VARCHAR[])) AS p(pattern) ON n.event_name GLOB p.pattern
),

low_scorers AS (
    SELECT DISTINCT customer_key
    FROM cjm_survey_responses($surveys)
    WHERE valid AND score < low_below
),

activity AS (
    SELECT
        e.customer_key,
        max(e.ts) AS last_seen,
        arg_max(e.touchpoint, e.event_number) AS last_touchpoint,
        -- Channels often ride on a session's first event only: the latest one given.
        arg_max(e.channel, e.event_number) FILTER (WHERE e.channel IS NOT NULL) AS last_channel,
        -- customer_key is the anonymous id itself only while no known id was ever seen with it.
        bool_or(e.anonymous_id IS NULL OR e.anonymous_id <> e.customer_key) AS identified,
        bool_or(e.event_name IN (SELECT event_name FROM support_names)) AS contacted_support
    FROM events AS e
    INNER JOIN query_table($people) AS p ON e.customer_key = p.customer_key
    GROUP BY e.customer_key
)

SELECT
    a.customer_key,
    a.identified,
    a.last_seen,
    (epoch_us((SELECT ts FROM data_end)) - epoch_us(a.last_seen)) / 86400e6 AS days_since_last_seen,
    a.last_touchpoint,
    a.last_channel,
    CASE WHEN $support_configured THEN a.contacted_support END AS contacted_support,
    CASE WHEN $surveys_configured THEN l.customer_key IS NOT NULL END AS low_score
FROM activity AS a
LEFT JOIN low_scorers AS l ON a.customer_key = l.customer_key;
