-- The events of one bucket of the customers in scope (core/keyed_events: key, stage, touchpoint), with their
-- sessions: the window sorts hold that bucket.
INSERT INTO events BY NAME
WITH bucket_events AS (
    SELECT * FROM keyed_events WHERE cjm_in_scope_bucket(customer_hash)
),

gaps AS (
    SELECT
        * EXCLUDE (tracker_session),
        epoch_us(ts) - lag(epoch_us(ts)) OVER by_time AS gap_us,
        tracker_session,
        -- The last tracker session id before this event (events without one in between are skipped).
        last_value(tracker_session IGNORE NULLS) OVER (
            by_time ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
        ) AS previous_tracker_session
    FROM bucket_events
    WINDOW by_time AS (PARTITION BY customer_key ORDER BY ts, event_id, source)
),

-- A session starts at the first event and after every gap GREATER than the inactivity timeout; with the
-- tracker's session id (sessions.from), an event that has one starts a session where it differs from the last
-- one seen, and only events without one (CRM, server-side) follow the timeout. Without a timeout (sessions: off)
-- nothing starts a session after the first event: the customer's events are one session.
session_starts AS (
    SELECT
        * EXCLUDE (tracker_session, previous_tracker_session),
        CASE
            WHEN gap_us IS NULL THEN true
            WHEN $inactivity_us IS NULL THEN false
            WHEN tracker_session IS NOT NULL THEN tracker_session IS DISTINCT FROM previous_tracker_session
            ELSE gap_us > $inactivity_us
        END AS starts_session
    FROM gaps
),

numbered AS (
    SELECT
        *,
        CAST(sum(CAST(starts_session AS INTEGER)) OVER so_far AS BIGINT) AS session_number,
        -- The customer's events in time order: an integer tie-breaker for sessions and journeys.
        row_number() OVER so_far AS event_number
    FROM session_starts
    WINDOW so_far AS (PARTITION BY customer_key ORDER BY ts, event_id, source ROWS UNBOUNDED PRECEDING)
)

SELECT
    event_id,
    source,
    customer_key,
    customer_hash,
    anonymous_id,
    event_name,
    touchpoint,
    ts,
    channel,
    stage,
    stage_order,
    session_number,
    event_number
FROM numbered;
