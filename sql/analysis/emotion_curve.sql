-- The emotion curve: survey answers placed at the stage the customer was at when answering, per stage.
WITH responses AS (
    SELECT * FROM cjm_survey_responses($surveys)
),

-- Only the answering customers' stage events matter. At equal times the path order (ts, stage_order) makes
-- the highest stage the latest.
stage_moments AS (
    SELECT customer_key, ts, max(stage_order) AS stage_order
    FROM events
    WHERE stage_order IS NOT NULL AND customer_key IN (SELECT customer_key FROM responses)
    GROUP BY customer_key, ts
),

-- The stage of the latest mapped event at or before the answer (the answer itself included); 0 when none.
placed AS (
    SELECT r.*, coalesce(m.stage_order, 0) AS stage_order
    FROM responses AS r
    ASOF LEFT JOIN stage_moments AS m ON r.customer_key = m.customer_key AND r.ts >= m.ts
),

per_stage AS (
    SELECT
        stage_order,
        count(score) AS responses,
        count(*) FILTER (WHERE NOT valid) AS invalid_responses,
        avg(score) AS mean_score,
        stddev_samp(score) AS sd,
        count(raw_score) FILTER (WHERE kind = 'nps') AS nps_responses,
        count(*) FILTER (WHERE kind = 'nps' AND raw_score >= 9) AS promoters,
        count(*) FILTER (WHERE kind = 'nps' AND raw_score <= 6) AS detractors,
        avg(raw_score) FILTER (WHERE kind = 'csat') AS csat_mean,
        count(raw_score) FILTER (WHERE kind = 'csat') AS csat_responses
    FROM placed
    GROUP BY stage_order
),

stages AS (
    SELECT 0 AS stage_order, '(before first stage)' AS stage
    UNION ALL
    SELECT stage_order, stage FROM stage_list
),

-- 95% interval of the mean by the normal approximation (z = 1.959964), kept inside the 0..1 scale.
with_interval AS (
    SELECT
        *,
        CASE WHEN responses >= 2 THEN 1.959964 * sd / sqrt(responses) END AS half_width
    FROM per_stage
)

SELECT
    s.stage,
    s.stage_order,
    coalesce(w.responses, 0) AS responses,
    w.mean_score,
    -- greatest/least skip NULLs, so a missing interval must stay NULL explicitly.
    CASE WHEN w.half_width IS NOT NULL THEN greatest(w.mean_score - w.half_width, 0) END AS ci_low,
    CASE WHEN w.half_width IS NOT NULL THEN least(w.mean_score + w.half_width, 1) END AS ci_high,
    100 * (w.promoters - w.detractors) / nullif(w.nps_responses, 0) AS nps,
    -- Without an NPS (CSAT) survey in the config the count is unknown, not 0: NULL.
    CASE WHEN $nps_configured THEN coalesce(w.nps_responses, 0) END AS nps_responses,
    w.csat_mean,
    CASE WHEN $csat_configured THEN coalesce(w.csat_responses, 0) END AS csat_responses,
    coalesce(w.invalid_responses, 0) AS invalid_responses
FROM stages AS s
LEFT JOIN with_interval AS w ON s.stage_order = w.stage_order
-- "(before first stage)" only when some answer was given before any mapped event.
WHERE s.stage_order > 0 OR w.stage_order IS NOT NULL
ORDER BY s.stage_order;
