-- A touchpoint is the event name or a configured property, before cleaning (said once: events and their aliases).
CREATE OR REPLACE TEMP MACRO cjm_touchpoint_raw(event_name, properties, field, path) AS
    CASE WHEN field = 'event_name' THEN event_name ELSE coalesce(json_extract_string(properties, path), event_name) END;

-- Every loaded event of the customers in scope, with its customer_key, stage, touchpoint and session.
INSERT INTO events BY NAME
WITH event_names AS (
    SELECT DISTINCT event_name FROM scope_raw_events
),

-- Globs are matched once per distinct name, not once per event.
name_rules AS (
    SELECT
        n.event_name,
        list(
            {'stage': r.stage, 'stage_order': r.stage_order, 'conditions': r.conditions}
            ORDER BY r.rule_order
        ) AS rules
    FROM event_names AS n
    INNER JOIN stage_rules AS r ON n.event_name GLOB r.pattern
    GROUP BY n.event_name
),

-- Only what events keeps, plus properties for the mapping: the window sorts below carry every column.
-- This statement's bucket of the customers in scope only (scope_bucket.sql): its window sorts hold that bucket.
-- A row with a customer id is that customer's (cjm_customer_key): its bucket is decided on that one column,
-- without the identities. Only rows without one need the identities to find theirs.
keyed AS (
    SELECT
        event_id,
        source,
        anonymous_id,
        event_name,
        ts,
        channel,
        properties,
        customer_id AS customer_key
    FROM scope_raw_events
    WHERE customer_id IS NOT NULL AND cjm_in_scope_bucket(customer_id)

    UNION ALL

    SELECT
        e.event_id,
        e.source,
        e.anonymous_id,
        e.event_name,
        e.ts,
        e.channel,
        e.properties,
        cjm_customer_key(e.customer_id, i.customer_id, e.anonymous_id) AS customer_key
    FROM scope_raw_events AS e
    LEFT JOIN identities AS i ON e.anonymous_id = i.anonymous_id
    WHERE e.customer_id IS NULL AND cjm_in_scope_bucket(cjm_customer_key(e.customer_id, i.customer_id, e.anonymous_id))
),

touched AS (
    SELECT
        *,
        cjm_touchpoint_raw(event_name, properties, $touchpoint_field, $touchpoint_path) AS touchpoint_raw
    FROM keyed
),

-- Cleaning rules (regex -> alias, first full match wins), matched once per distinct value. The values of every
-- row in scope, not only this bucket's: a lookup, so a superset gives the same aliases, and reading `touched`
-- twice would make DuckDB materialize it (every row with its properties) before the window sorts.
touchpoint_aliases AS (
    SELECT t.touchpoint_raw, arg_min(r.alias, r.rule_order) AS alias
    FROM (
        SELECT DISTINCT
            cjm_touchpoint_raw(event_name, properties, $touchpoint_field, $touchpoint_path) AS touchpoint_raw
        FROM scope_raw_events
    ) AS t
    INNER JOIN touchpoint_rules AS r ON regexp_full_match(t.touchpoint_raw, r.pattern)
    GROUP BY t.touchpoint_raw
),

-- The first rule whose property conditions all hold wins.
mapped AS (
    SELECT
        k.* EXCLUDE (touchpoint_raw, properties),
        coalesce(ta.alias, k.touchpoint_raw) AS touchpoint,
        -- sessions.from: the tracker's session id, a property (NULL when not configured).
        CASE WHEN $session_path IS NOT NULL THEN json_extract_string(k.properties, $session_path) END
            AS tracker_session,
        list_filter(
            nr.rules, lambda r: r.conditions IS NULL OR json_contains(k.properties, r.conditions)
        )[1] AS rule
    FROM touched AS k
    LEFT JOIN name_rules AS nr ON k.event_name = nr.event_name
    LEFT JOIN touchpoint_aliases AS ta ON k.touchpoint_raw = ta.touchpoint_raw
),

gaps AS (
    SELECT
        * EXCLUDE (rule, tracker_session),
        rule.stage AS stage,
        rule.stage_order AS stage_order,
        epoch_us(ts) - lag(epoch_us(ts)) OVER by_time AS gap_us,
        tracker_session,
        -- The last tracker session id before this event (events without one in between are skipped).
        last_value(tracker_session IGNORE NULLS) OVER (
            by_time ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
        ) AS previous_tracker_session
    FROM mapped
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
