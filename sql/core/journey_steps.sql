-- The collapsed stage path, one row per step: what paths, transitions and the Sankey are built from.
INSERT INTO journey_steps BY NAME
WITH mapped AS (
    SELECT customer_key, customer_hash, event_number, ts, stage, stage_order
    FROM scope_events
    WHERE stage IS NOT NULL
),

neighbours AS (
    SELECT
        *,
        lag(stage) OVER path_order AS prev_stage,
        lag(stage_order) OVER path_order AS prev_stage_order,
        lag(ts) OVER path_order AS prev_ts
    FROM mapped
    WINDOW path_order AS (PARTITION BY customer_key ORDER BY ts, stage_order, event_number)
),

-- Consecutive repeats collapse: a step is an event whose stage differs from the one before it.
run_starts AS (
    SELECT * FROM neighbours WHERE prev_stage IS DISTINCT FROM stage
)

SELECT
    customer_key,
    customer_hash,
    row_number() OVER path_order AS step,
    count(*) OVER (PARTITION BY customer_key) AS path_length,
    stage,
    stage_order,
    ts,
    prev_stage,
    prev_stage_order,
    -- From the last event of the previous run to this run's first event: the two events the transition joins.
    (epoch_us(ts) - epoch_us(prev_ts)) / 3.6e9 AS hours_from_prev
FROM run_starts
WINDOW path_order AS (PARTITION BY customer_key ORDER BY ts, stage_order, event_number);
