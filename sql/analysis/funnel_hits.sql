-- Events that complete a funnel step or are exclusions, with each customer's event order (docs/analysis/funnels.md).
-- Specs: spec_id 1..n are the steps in order, -1..-m the exclusions. kind is stage, event, touchpoint or
-- auto (a configured stage name matches the stage, any other name the event name or the touchpoint).
CREATE OR REPLACE TEMP TABLE cjm_funnel_specs AS
SELECT
    $spec_ids[i] AS spec_id,
    $spec_values[i] AS value,
    CASE
        WHEN $spec_kinds[i] <> 'auto' THEN $spec_kinds[i]
        WHEN $spec_values[i] IN (SELECT stage FROM stage_list) THEN 'stage'
        ELSE 'name'
    END AS kind
FROM range(1, len($spec_ids) + 1) AS r(i);

CREATE OR REPLACE TEMP TABLE cjm_funnel_hits AS
WITH spec_list AS (
    SELECT list({'spec_id': spec_id, 'kind': kind, 'value': value} ORDER BY spec_id DESC) AS specs
    FROM cjm_funnel_specs
),

-- One pass over the events: the specs each event matches (a handful of specs, so a list test per event).
matched AS (
    SELECT
        e.customer_key,
        e.event_number,
        e.ts,
        list_transform(
            list_filter(l.specs, lambda s: CASE s.kind
                WHEN 'stage' THEN s.value = e.stage
                WHEN 'event' THEN s.value = e.event_name
                WHEN 'touchpoint' THEN s.value = e.touchpoint
                ELSE s.value = e.event_name OR s.value = e.touchpoint
            END),
            lambda s: s.spec_id
        ) AS spec_ids
    FROM events AS e
    CROSS JOIN spec_list AS l
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
)

SELECT customer_key, unnest(spec_ids) AS spec_id, pos, ts_us
FROM sequenced
WHERE len(spec_ids) > 0;
