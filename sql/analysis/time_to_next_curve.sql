-- The Kaplan–Meier (product-limit) estimate of each stage's time to the next (cjm_stage_spells, filled by
-- sql/analysis/stage_spells.sql), read at whole days 0, 1, 2, ... up to the longest spell.
-- km_conversion(d) = 1 - S(d): the share who moved on within d days, censored spells counted only while watched.
-- ci_low/ci_high: 95% interval of Greenwood's variance on the log(-log S) scale (Kalbfleisch & Prentice; the
-- default of lifelines and of statsmodels' SurvfuncRight), NULL where it is undefined (S = 1: nobody has moved on
-- yet; S = 0: everyone watched has).
CREATE OR REPLACE TEMP TABLE cjm_time_to_next AS
WITH times AS (
    SELECT
        stage_order,
        duration_us,
        count(*) FILTER (WHERE moved_on) AS events,
        count(*) FILTER (WHERE NOT moved_on) AS censored
    FROM query_table($spells)
    GROUP BY ALL
),

-- At risk at t: spells lasting t or longer (a spell censored at t is still at risk of an event at t).
at_risk AS (
    SELECT
        *,
        sum(events + censored) OVER (PARTITION BY stage_order ORDER BY duration_us DESC ROWS UNBOUNDED PRECEDING)
            AS n
    FROM times
),

-- Each event time's factor of S(t) = product over event times <= t of (1 - d/n), as a log, and its Greenwood
-- term; d = n (everyone at risk moves on) makes S 0 for good. Each time also falls in a whole-day bucket:
-- (d - 1, d] days, day 0 holding the spells of length exactly 0 (skipped stages).
terms AS (
    SELECT
        stage_order,
        (duration_us + 86400000000 - 1) // 86400000000 AS day,
        events,
        censored,
        CASE WHEN events < n THEN ln(1 - events / n) ELSE 0 END AS log_factor,
        CASE WHEN events < n THEN events / (n * (n - events)) ELSE 0 END AS greenwood_term,
        events > 0 AND events = n AS exhausts
    FROM at_risk
),

buckets AS (
    SELECT
        stage_order,
        day,
        sum(events) AS events,
        sum(censored) AS censored,
        sum(log_factor) AS log_factor,
        sum(greenwood_term) AS greenwood_term,
        bool_or(exhausts) AS exhausts
    FROM terms
    GROUP BY ALL
),

grid AS (
    SELECT stage_order, unnest(range(0, max(day) + 1)) AS day
    FROM buckets
    GROUP BY stage_order
),

-- The curve at t = d days takes every event time up to d: the buckets 0..d.
per_day AS (
    SELECT
        g.stage_order,
        g.day,
        coalesce(b.events, 0) AS events,
        coalesce(b.censored, 0) AS censored,
        -- At risk during (d - 1, d]: spells longer than d - 1 days (all of them at day 0).
        sum(coalesce(b.events, 0) + coalesce(b.censored, 0)) OVER later AS at_risk,
        sum(coalesce(b.log_factor, 0)) OVER upto AS log_s,
        sum(coalesce(b.greenwood_term, 0)) OVER upto AS greenwood,
        coalesce(bool_or(b.exhausts) OVER upto, false) AS exhausted
    FROM grid AS g
    LEFT JOIN buckets AS b ON g.stage_order = b.stage_order AND g.day = b.day
    WINDOW
        upto AS (PARTITION BY g.stage_order ORDER BY g.day ROWS UNBOUNDED PRECEDING),
        later AS (PARTITION BY g.stage_order ORDER BY g.day DESC ROWS UNBOUNDED PRECEDING)
),

with_interval AS (
    SELECT
        *,
        CASE WHEN exhausted THEN 0.0 ELSE exp(log_s) END AS survival,
        -- z * se(log S) / log S on the log(-log S) scale; defined only for 0 < S < 1.
        CASE WHEN NOT exhausted AND log_s < 0 THEN 1.959963984540054 * sqrt(greenwood) / log_s END AS shift
    FROM per_day
)

SELECT
    l.stage,
    w.stage_order,
    CASE WHEN w.stage_order = $goal_order THEN f.stage ELSE l.stage END AS from_stage,
    t.stage AS to_stage,
    CAST(w.day AS INTEGER) AS day,
    CAST(w.at_risk AS BIGINT) AS at_risk,
    CAST(w.events AS BIGINT) AS events,
    CAST(w.censored AS BIGINT) AS censored,
    1 - w.survival AS km_conversion,
    -- shift < 0: adding it gives the higher S, so the lower conversion.
    1 - exp(-exp(ln(-w.log_s) + w.shift)) AS ci_low,
    1 - exp(-exp(ln(-w.log_s) - w.shift)) AS ci_high
FROM with_interval AS w
INNER JOIN stage_list AS l ON w.stage_order = l.stage_order
INNER JOIN stage_list AS f ON f.stage_order = 1
INNER JOIN stage_list AS t ON t.stage_order = least(w.stage_order + 1, $goal_order);

SELECT * FROM cjm_time_to_next ORDER BY stage_order, day;
