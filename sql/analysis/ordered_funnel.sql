-- Ordered funnel with a conversion window, one row per segment and step (docs/analysis/funnels.md).
-- Its inputs are its arguments: the specs ($spec_ids, $spec_kinds, $spec_values: the cjm_funnel_* macros of
-- sql/analysis/funnel_specs.sql) and the customers' segments ($segments: a table of analysis/segments_*).
WITH RECURSIVE matched AS (
    SELECT * FROM cjm_funnel_matches($spec_ids, $spec_kinds, $spec_values)
),

-- Strict order needs every event of the customer (the next event must be the next step); the other
-- orders only need the events that match something.
relevant AS (
    SELECT
        *,
        -- Events at the same ts are taken in funnel order: an event of an earlier step first, then
        -- exclusions, then every other event (so equal timestamps never break a conversion).
        coalesce(
            list_min(list_filter(spec_ids, lambda i: i > 0)),
            CASE WHEN len(spec_ids) > 0 THEN $n_steps + 1 ELSE $n_steps + 2 END
        ) AS tie_rank
    FROM matched
    WHERE len(spec_ids) > 0 OR $order = 'strict'
),

sequenced AS (
    SELECT
        customer_key,
        spec_ids,
        epoch_us(ts) AS ts_us,
        row_number() OVER (PARTITION BY customer_key ORDER BY ts, tie_rank, event_number) AS pos
    FROM relevant
),

-- Events that complete a step (spec_id > 0) or are exclusions (< 0), at their position in the customer's order.
hits AS MATERIALIZED (
    SELECT customer_key, unnest(spec_ids) AS spec_id, pos, ts_us
    FROM sequenced
    WHERE len(spec_ids) > 0
),

step_hits AS (
    SELECT customer_key, spec_id AS step, pos, ts_us FROM hits WHERE spec_id > 0
),

exclusion_hits AS (
    SELECT customer_key, pos FROM hits WHERE spec_id < 0
),

step_names AS (
    SELECT i AS step, $step_names[i] AS step_name FROM range(1, $n_steps + 1) AS r(i)
),

-- An attempt starts at every step-1 event (ordered, strict) or every step event (any). With
-- hide_unelapsed only attempts whose whole window lies before `now` count.
starts AS (
    SELECT DISTINCT customer_key, pos AS start_pos, ts_us AS start_us
    FROM step_hits
    WHERE (step = 1 OR $order = 'any')
        AND (
            NOT $hide_unelapsed
            OR ts_us + $window_us <= coalesce($now_us, (SELECT epoch_us(max(ts)) FROM events))
        )
),

-- For every event that can complete step k-1, the first later event that can complete step k: both kinds
-- in one partition per customer and k, ordered by position (at one position, the step-k row first, so an
-- event never follows itself). Positions follow time, so the first later event is also the earliest.
link_candidates AS (
    SELECT customer_key, step + 1 AS to_step, pos, ts_us, 1 AS is_from FROM step_hits WHERE step < $n_steps
    UNION ALL
    SELECT customer_key, step AS to_step, pos, ts_us, 0 AS is_from FROM step_hits WHERE step > 1
),

next_links AS (
    SELECT customer_key, to_step, from_pos, next_pos, next_ts_us
    FROM (
        SELECT
            customer_key,
            to_step,
            is_from,
            pos AS from_pos,
            min(CASE WHEN is_from = 0 THEN pos END) OVER later AS next_pos,
            min(CASE WHEN is_from = 0 THEN ts_us END) OVER later AS next_ts_us
        FROM link_candidates
        WHERE $order <> 'any'
        WINDOW later AS (
            PARTITION BY customer_key, to_step ORDER BY pos, is_from
            ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING
        )
    )
    WHERE is_from = 1 AND next_pos IS NOT NULL
),

-- Ordered and strict: step k is the first step-k event after step k-1's event (strict: exactly the
-- next event of the customer), no later than the window's end. Taking the earliest one leaves the
-- most room for the steps after it, so no other choice gets further.
chain AS (
    SELECT customer_key, start_pos, start_us, 1 AS step, start_pos AS pos, start_us AS ts_us
    FROM starts
    WHERE $order <> 'any'
    UNION ALL
    SELECT c.customer_key, c.start_pos, c.start_us, c.step + 1, l.next_pos, l.next_ts_us
    FROM chain AS c
    INNER JOIN next_links AS l
        ON c.customer_key = l.customer_key AND c.step + 1 = l.to_step AND c.pos = l.from_pos
    WHERE l.next_ts_us <= c.start_us + $window_us
        AND ($order <> 'strict' OR l.next_pos = c.pos + 1)
),

-- Any order: the first event of each step from the attempt's start on, within the window; the k-th
-- of these (by event order) completes funnel step k.
first_of_each_step AS (
    SELECT a.customer_key, a.start_pos, a.start_us, h.step AS matched_step, h.pos, h.ts_us
    FROM (SELECT * FROM starts CROSS JOIN step_names WHERE $order = 'any') AS a
    ASOF INNER JOIN step_hits AS h
        ON a.customer_key = h.customer_key AND a.step = h.step AND h.pos >= a.start_pos
    WHERE h.ts_us <= a.start_us + $window_us
),

any_order AS (
    SELECT
        customer_key,
        start_pos,
        start_us,
        row_number() OVER (PARTITION BY customer_key, start_pos ORDER BY pos, matched_step) AS step,
        pos,
        ts_us
    FROM first_of_each_step
),

attempt_steps AS (
    SELECT * FROM chain
    UNION ALL
    SELECT * FROM any_order
),

attempts AS (
    SELECT customer_key, start_pos, max(step) AS furthest, max(pos) AS last_pos
    FROM attempt_steps
    GROUP BY ALL
),

-- An exclusion event after the attempt's first step and before its last completed step voids it.
first_exclusion AS (
    SELECT a.*, x.pos AS exclusion_pos
    FROM attempts AS a
    ASOF LEFT JOIN exclusion_hits AS x ON a.customer_key = x.customer_key AND x.pos > a.start_pos
),

-- Each customer counts once: by the attempt that gets furthest, the earliest of those on a tie.
chosen AS (
    SELECT customer_key, start_pos
    FROM first_exclusion
    WHERE exclusion_pos IS NULL OR exclusion_pos >= last_pos
    QUALIFY row_number() OVER (PARTITION BY customer_key ORDER BY furthest DESC, start_pos) = 1
),

customer_steps AS (
    SELECT
        coalesce(g.segment, $no_segment) AS segment,
        s.step,
        (s.ts_us - s.start_us) / 3.6e9 AS hours
    FROM attempt_steps AS s
    INNER JOIN chosen AS c ON s.customer_key = c.customer_key AND s.start_pos = c.start_pos
    LEFT JOIN query_table($segments) AS g ON s.customer_key = g.customer_key
),

segment_sizes AS (
    SELECT segment, count(*) AS segment_size FROM customer_steps WHERE step = 1 GROUP BY segment
),

-- An empty funnel still has one row per step.
segments AS (
    SELECT * FROM segment_sizes
    UNION ALL
    SELECT $no_segment, 0 WHERE NOT EXISTS (SELECT 1 FROM segment_sizes)
),

step_stats AS (
    SELECT
        segment,
        step,
        count(*) AS completed,
        quantile_cont(hours, 0.5) AS median_hours,
        quantile_cont(hours, 0.9) AS p90_hours
    FROM customer_steps
    GROUP BY segment, step
),

per_step AS (
    SELECT
        z.segment,
        z.segment_size,
        n.step,
        n.step_name,
        coalesce(t.completed, 0) AS completed,
        coalesce(lag(coalesce(t.completed, 0)) OVER by_step, coalesce(t.completed, 0)) AS entered,
        t.median_hours,
        t.p90_hours
    FROM segments AS z
    CROSS JOIN step_names AS n
    LEFT JOIN step_stats AS t ON z.segment = t.segment AND n.step = t.step
    WINDOW by_step AS (PARTITION BY z.segment ORDER BY n.step)
)

SELECT
    segment,
    CAST(segment_size AS BIGINT) AS segment_size,
    segment_size < $min_segment_size AS too_small,
    CAST(step AS INTEGER) AS step,
    step_name,
    CAST(entered AS BIGINT) AS entered,
    CAST(completed AS BIGINT) AS completed,
    completed / nullif(segment_size, 0) AS conversion_from_first,
    completed / nullif(entered, 0) AS conversion_from_previous,
    -- Step 1 is where the clock starts: no time to convert.
    CASE WHEN step > 1 THEN median_hours END AS median_hours_to_convert,
    CASE WHEN step > 1 THEN p90_hours END AS p90_hours_to_convert,
    CAST(entered - completed AS BIGINT) AS dropped
FROM per_step
ORDER BY segment, step;
