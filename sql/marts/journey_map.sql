-- The journey_map mart (docs/marts.md): per persona and stage, one row per measure, long format. The statistics
-- that need a test per touchpoint (moment_of_truth, opportunity, persona_conversion) are added by
-- cjm_analytics.analysis.journey_map. Needs the temp tables of journey_map_prepare.sql and
-- journey_map_segment_personas.sql, the maintained summaries and, with surveys, the cjm_survey_responses macro.
-- Intervals are 95% (z = 1.959964).

-- Wilson score interval of hits / n (clamped to 0..1 against floating-point noise at 0 and n hits).
CREATE OR REPLACE TEMP MACRO jm_wilson_low(hits, n) AS
    CASE WHEN n > 0 THEN greatest(0,
        ((hits / n) + 1.959964 ^ 2 / (2 * n)
         - 1.959964 * sqrt((hits / n) * (1 - hits / n) / n + 1.959964 ^ 2 / (4 * n ^ 2)))
        / (1 + 1.959964 ^ 2 / n))
    END;

CREATE OR REPLACE TEMP MACRO jm_wilson_high(hits, n) AS
    CASE WHEN n > 0 THEN least(1,
        ((hits / n) + 1.959964 ^ 2 / (2 * n)
         + 1.959964 * sqrt((hits / n) * (1 - hits / n) / n + 1.959964 ^ 2 / (4 * n ^ 2)))
        / (1 + 1.959964 ^ 2 / n))
    END;

CREATE OR REPLACE TABLE journey_map AS
WITH sizes AS (
    SELECT persona_type, persona, count(*) AS persona_size
    FROM jm_customers
    GROUP BY ALL
),

-- The stage funnel's ladder per persona: reached(k) = customers whose furthest stage is k or beyond.
ladder AS (
    SELECT
        z.persona_type,
        z.persona,
        s.stage,
        s.stage_order,
        count(c.customer_key) FILTER (WHERE c.furthest_stage_order >= s.stage_order) AS reached,
        count(c.customer_key) FILTER (WHERE c.furthest_stage_order = s.stage_order) AS exited
    FROM sizes AS z
    CROSS JOIN stage_list AS s
    LEFT JOIN jm_customers AS c ON z.persona_type = c.persona_type AND z.persona = c.persona
    GROUP BY ALL
),

funnel AS (
    SELECT *, lead(reached) OVER (PARTITION BY persona_type, persona ORDER BY stage_order) AS reached_next
    FROM ladder
),

-- What customers did at each stage. The personas of all customers and of first-touch channel ($summarized_types)
-- read the summaries kept per dirty customer (cjm_analytics.marts.maintain_summaries), summed over each persona's
-- channels (jm_segment_personas); the personas of an event property ($has_counted) count the per-customer rows of
-- the core table, distinct per customer, before the personas multiply the rows.
counted_customers AS (
    SELECT *
    FROM jm_customers
    WHERE $has_counted AND NOT list_contains(CAST($summarized_types AS VARCHAR[]), persona_type)
),

stage_customers AS (
    SELECT m.persona_type, m.persona, s.stage_order, CAST(sum(s.customers) AS BIGINT) AS customers
    FROM summary_stage_customers AS s
    INNER JOIN jm_segment_personas AS m ON s.segment IS NOT DISTINCT FROM m.segment
    GROUP BY ALL
    UNION ALL
    SELECT c.persona_type, c.persona, s.stage_order, count(*) AS customers
    FROM (SELECT DISTINCT customer_key, stage_order FROM stage_touchpoints WHERE $has_counted) AS s
    INNER JOIN counted_customers AS c ON s.customer_key = c.customer_key
    GROUP BY ALL
),

touchpoints AS (
    SELECT m.persona_type, m.persona, s.stage_order, s.touchpoint AS label, CAST(sum(s.customers) AS BIGINT) AS hits
    FROM summary_stage_touchpoints AS s
    INNER JOIN jm_segment_personas AS m ON s.segment IS NOT DISTINCT FROM m.segment
    GROUP BY ALL
    UNION ALL
    SELECT c.persona_type, c.persona, t.stage_order, t.touchpoint AS label, count(*) AS hits
    FROM stage_touchpoints AS t
    INNER JOIN counted_customers AS c ON t.customer_key = c.customer_key
    WHERE $has_counted
    GROUP BY ALL
),

-- A session's channel: sessions.channel, its first event's channel that is not NULL.
channels AS (
    SELECT m.persona_type, m.persona, s.stage_order, coalesce(s.channel, '(no channel)') AS label,
           CAST(sum(s.sessions) AS BIGINT) AS hits
    FROM summary_stage_channels AS s
    INNER JOIN jm_segment_personas AS m ON s.segment IS NOT DISTINCT FROM m.segment
    GROUP BY ALL
    UNION ALL
    SELECT c.persona_type, c.persona, s.stage_order, coalesce(s.channel, '(no channel)') AS label,
           CAST(sum(s.sessions) AS BIGINT) AS hits
    FROM stage_channels AS s
    INNER JOIN counted_customers AS c ON s.customer_key = c.customer_key
    WHERE $has_counted
    GROUP BY ALL
),

stage_sessions AS (
    SELECT persona_type, persona, stage_order, sum(hits) AS sessions
    FROM channels
    GROUP BY ALL
),

-- Time in a stage: from the first event at it to the first event at a later stage, for customers who moved on.
stay AS (
    SELECT c.persona_type, c.persona, x.stage_order,
           (epoch_us(x.moved_ts) - epoch_us(x.ts)) / 3.6e9 AS hours
    FROM stage_entries AS x
    INNER JOIN jm_customers AS c ON x.customer_key = c.customer_key
    WHERE x.moved_ts IS NOT NULL
),

lost AS (
    SELECT persona_type, persona, furthest_stage_order AS stage_order, customer_key,
           coalesce(last_touchpoint, $no_segment) AS last_touchpoint
    FROM jm_customers
    WHERE furthest_stage_order < $goal_order
),

support_names AS (
    SELECT DISTINCT n.event_name
    FROM (SELECT DISTINCT event_name FROM events) AS n
    INNER JOIN unnest(CAST($support_events AS VARCHAR[])) AS p(pattern) ON n.event_name GLOB p.pattern
),

supported AS (
    SELECT DISTINCT customer_key FROM events WHERE $has_support AND event_name IN (SELECT event_name FROM support_names)
),

responses AS (
    SELECT r.*
    FROM cjm_survey_responses($surveys) AS r
    WHERE $has_surveys
),

low_scorers AS (
    SELECT DISTINCT customer_key FROM responses WHERE valid AND score < low_below
),

-- At equal times the path order (ts, stage_order) makes the highest stage the latest (as the emotion curve).
-- Only the customers who answered: the other events' placing is kept per customer (stage_touchpoints).
responder_moments AS (
    SELECT customer_key, ts, max(stage_order) AS stage_order
    FROM events
    WHERE $has_surveys AND stage_order IS NOT NULL AND customer_key IN (SELECT customer_key FROM responses)
    GROUP BY customer_key, ts
),

-- An answer belongs to the stage the customer was at (as every event of stage_touchpoints, and as the emotion
-- curve).
placed_responses AS (
    SELECT c.persona_type, c.persona, m.stage_order, r.kind, r.raw_score, r.score
    FROM responses AS r
    ASOF INNER JOIN responder_moments AS m ON r.customer_key = m.customer_key AND r.ts >= m.ts
    INNER JOIN jm_customers AS c ON r.customer_key = c.customer_key
    WHERE r.valid
),

emotion AS (
    SELECT
        persona_type,
        persona,
        stage_order,
        count(*) AS responses,
        avg(score) AS mean_score,
        stddev_samp(score) AS sd,
        count(*) FILTER (WHERE kind = 'nps') AS nps_n,
        count(*) FILTER (WHERE kind = 'nps' AND raw_score >= 9) / nullif(count(*) FILTER (WHERE kind = 'nps'), 0)
            AS promoters,
        count(*) FILTER (WHERE kind = 'nps' AND raw_score <= 6) / nullif(count(*) FILTER (WHERE kind = 'nps'), 0)
            AS detractors,
        count(*) FILTER (WHERE kind = 'csat') AS csat_n,
        avg(raw_score) FILTER (WHERE kind = 'csat') AS csat_mean,
        stddev_samp(raw_score) FILTER (WHERE kind = 'csat') AS csat_sd
    FROM placed_responses
    GROUP BY ALL
),

ranked_touchpoints AS (
    SELECT t.*, s.customers,
           row_number() OVER (PARTITION BY t.persona_type, t.persona, t.stage_order ORDER BY t.hits DESC, t.label)
               AS rank
    FROM touchpoints AS t
    INNER JOIN stage_customers AS s USING (persona_type, persona, stage_order)
),

ranked_channels AS (
    SELECT c.*, s.sessions,
           row_number() OVER (PARTITION BY c.persona_type, c.persona, c.stage_order ORDER BY c.hits DESC, c.label)
               AS rank
    FROM channels AS c
    INNER JOIN stage_sessions AS s USING (persona_type, persona, stage_order)
),

last_touchpoints AS (
    SELECT persona_type, persona, stage_order, last_touchpoint AS label, count(*) AS hits
    FROM lost
    GROUP BY ALL
),

ranked_last AS (
    SELECT *, row_number() OVER (PARTITION BY persona_type, persona, stage_order ORDER BY hits DESC, label) AS rank
    FROM last_touchpoints
),

lost_marks AS (
    SELECT
        l.persona_type,
        l.persona,
        l.stage_order,
        count(*) AS lost,
        count(*) FILTER (WHERE s.customer_key IS NOT NULL) AS contacted_support,
        count(*) FILTER (WHERE w.customer_key IS NOT NULL) AS low_score
    FROM lost AS l
    LEFT JOIN supported AS s ON l.customer_key = s.customer_key
    LEFT JOIN low_scorers AS w ON l.customer_key = w.customer_key
    GROUP BY ALL
),

rows AS (
    SELECT persona_type, persona, stage_order, 'reached' AS measure, NULL AS rank, NULL AS label,
           reached AS value, NULL AS ci_low, NULL AS ci_high, reached AS customers, NULL AS hits
    FROM funnel
    UNION ALL
    SELECT persona_type, persona, stage_order, 'conversion_to_next', NULL, NULL, reached_next / nullif(reached, 0),
           jm_wilson_low(reached_next, reached), jm_wilson_high(reached_next, reached), reached, reached_next
    FROM funnel
    WHERE reached_next IS NOT NULL
    UNION ALL
    -- Before the goal, a journey that ends at a stage is lost there; at or after it, it is completed.
    SELECT persona_type, persona, stage_order, CASE WHEN stage_order < $goal_order THEN 'lost' ELSE 'completed' END,
           NULL, NULL, exited, NULL, NULL, reached, exited
    FROM funnel
    UNION ALL
    SELECT persona_type, persona, stage_order, 'time_in_stage_median_hours', NULL, NULL, quantile_cont(hours, 0.5),
           NULL, NULL, count(*), NULL
    FROM stay
    GROUP BY ALL
    UNION ALL
    SELECT persona_type, persona, stage_order, 'time_in_stage_p90_hours', NULL, NULL, quantile_cont(hours, 0.9),
           NULL, NULL, count(*), NULL
    FROM stay
    GROUP BY ALL
    UNION ALL
    SELECT persona_type, persona, stage_order, 'top_touchpoint', rank, label, hits / customers,
           jm_wilson_low(hits, customers), jm_wilson_high(hits, customers), customers, hits
    FROM ranked_touchpoints
    WHERE rank <= $top_n
    UNION ALL
    SELECT persona_type, persona, stage_order, 'channel_mix', rank, label, hits / sessions, NULL, NULL, sessions, hits
    FROM ranked_channels
    WHERE rank <= $top_n
    UNION ALL
    SELECT r.persona_type, r.persona, r.stage_order, 'lost_last_touchpoint', r.rank, r.label, r.hits / m.lost,
           NULL, NULL, m.lost, r.hits
    FROM ranked_last AS r
    INNER JOIN lost_marks AS m USING (persona_type, persona, stage_order)
    WHERE r.rank <= 3
    UNION ALL
    -- Only with support events configured: without them the share is unknown, not 0.
    SELECT persona_type, persona, stage_order, 'lost_support_share', NULL, NULL, contacted_support / lost,
           jm_wilson_low(contacted_support, lost), jm_wilson_high(contacted_support, lost), lost, contacted_support
    FROM lost_marks
    WHERE $has_support
    UNION ALL
    SELECT persona_type, persona, stage_order, 'lost_low_score_share', NULL, NULL, low_score / lost,
           jm_wilson_low(low_score, lost), jm_wilson_high(low_score, lost), lost, low_score
    FROM lost_marks
    WHERE $has_surveys
    UNION ALL
    -- Normal-approximation intervals, kept inside each scale.
    SELECT persona_type, persona, stage_order, 'emotion_mean_score', NULL, NULL, mean_score,
           CASE WHEN responses >= 2 THEN greatest(mean_score - 1.959964 * sd / sqrt(responses), 0) END,
           CASE WHEN responses >= 2 THEN least(mean_score + 1.959964 * sd / sqrt(responses), 1) END,
           responses, NULL
    FROM emotion
    UNION ALL
    -- NPS = 100 (promoters - detractors) / answers; var = (p + d - (p - d)^2) / n.
    SELECT persona_type, persona, stage_order, 'nps', NULL, NULL, 100 * (promoters - detractors),
           CASE WHEN nps_n >= 2 THEN greatest(100 * (promoters - detractors - 1.959964
               * sqrt((promoters + detractors - (promoters - detractors) ^ 2) / nps_n)), -100) END,
           CASE WHEN nps_n >= 2 THEN least(100 * (promoters - detractors + 1.959964
               * sqrt((promoters + detractors - (promoters - detractors) ^ 2) / nps_n)), 100) END,
           nps_n, NULL
    FROM emotion
    WHERE nps_n > 0
    UNION ALL
    SELECT persona_type, persona, stage_order, 'csat_mean', NULL, NULL, csat_mean,
           CASE WHEN csat_n >= 2 THEN csat_mean - 1.959964 * csat_sd / sqrt(csat_n) END,
           CASE WHEN csat_n >= 2 THEN csat_mean + 1.959964 * csat_sd / sqrt(csat_n) END,
           csat_n, NULL
    FROM emotion
    WHERE csat_n > 0
)

SELECT
    r.persona_type,
    r.persona,
    z.persona_size,
    z.persona_size < $min_customers AS too_small,
    s.stage,
    CAST(r.stage_order AS INTEGER) AS stage_order,
    r.measure,
    CAST(r.rank AS INTEGER) AS rank,
    CAST(r.label AS VARCHAR) AS label,
    CAST(r.value AS DOUBLE) AS value,
    CAST(r.ci_low AS DOUBLE) AS ci_low,
    CAST(r.ci_high AS DOUBLE) AS ci_high,
    CAST(r.customers AS BIGINT) AS customers,
    CAST(r.hits AS BIGINT) AS hits,
    CAST(NULL AS DOUBLE) AS rate_with,
    CAST(NULL AS DOUBLE) AS rate_without,
    CAST(NULL AS DOUBLE) AS p_value,
    CAST(NULL AS DOUBLE) AS q_value,
    CAST(NULL AS BOOLEAN) AS significant
FROM rows AS r
INNER JOIN sizes AS z USING (persona_type, persona)
INNER JOIN stage_list AS s ON r.stage_order = s.stage_order;
