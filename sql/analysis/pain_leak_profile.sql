-- Per stage before the goal: the customers lost there (the stage funnel's exited) and what marks them. A customer
-- who stops at or after the goal has completed: that is retention, not a leak (docs/definitions.md).
-- A mark whose input is not configured (no support events, no surveys) is NULL, never 0.
-- A customer's last event ends their last session: sessions answers "when last seen" with a quarter of the rows.
WITH data_end AS (
    SELECT max(session_end) AS ts FROM sessions
),

droppers AS (
    SELECT customer_key, furthest_stage_order AS stage_order
    FROM journeys
    WHERE furthest_stage_order < $goal_order
),

-- Globs are matched once per distinct event name, not once per event.
support_names AS (
    SELECT DISTINCT n.event_name
    FROM (SELECT DISTINCT event_name FROM events) AS n
    INNER JOIN unnest(CAST($support_events AS VARCHAR[])) AS p(pattern) ON n.event_name GLOB p.pattern
),

activity AS (
    SELECT s.customer_key, max(s.session_end) AS last_ts
    FROM sessions AS s
    INNER JOIN droppers AS d ON s.customer_key = d.customer_key
    GROUP BY s.customer_key
),

-- Events are read only when support events are configured (else the share is NULL whatever this holds).
supported AS (
    SELECT DISTINCT customer_key
    FROM events
    WHERE $support_configured AND event_name IN (SELECT event_name FROM support_names)
),

low_scorers AS (
    SELECT DISTINCT customer_key
    FROM cjm_survey_responses($surveys)
    WHERE valid AND score < low_below
),

loopers AS (
    SELECT DISTINCT customer_key FROM cjm_stage_pair_moves() WHERE moves > $loop_threshold
),

marked AS (
    SELECT
        d.stage_order,
        (epoch_us((SELECT ts FROM data_end)) - epoch_us(a.last_ts)) / 3.6e9 AS hours_since_last_event,
        u.customer_key IS NOT NULL AS contacted_support,
        l.customer_key IS NOT NULL AS low_score,
        p.customer_key IS NOT NULL AS looped
    FROM droppers AS d
    INNER JOIN activity AS a ON d.customer_key = a.customer_key
    LEFT JOIN supported AS u ON d.customer_key = u.customer_key
    LEFT JOIN low_scorers AS l ON d.customer_key = l.customer_key
    LEFT JOIN loopers AS p ON d.customer_key = p.customer_key
),

per_stage AS (
    SELECT
        stage_order,
        count(*) FILTER (WHERE contacted_support) AS contacted_support,
        count(*) FILTER (WHERE low_score) AS low_score,
        count(*) FILTER (WHERE looped) AS loopers,
        median(hours_since_last_event) AS median_hours_since_last_event
    FROM marked
    GROUP BY stage_order
)

SELECT
    f.stage,
    f.stage_order,
    f.reached,
    f.exited AS customers_lost,
    f.dropoff_rate AS share_of_reached,
    CASE WHEN $support_configured THEN p.contacted_support / nullif(f.exited, 0) END AS support_share,
    CASE WHEN $surveys_configured THEN p.low_score / nullif(f.exited, 0) END AS low_score_share,
    coalesce(p.loopers, 0) AS loopers,
    p.median_hours_since_last_event
FROM stage_funnel AS f
LEFT JOIN per_stage AS p ON f.stage_order = p.stage_order
WHERE f.stage_order < $goal_order
ORDER BY f.stage_order;
