-- A touchpoint is the event name or a configured property, before cleaning (said once: events and their aliases).
CREATE OR REPLACE TEMP MACRO cjm_touchpoint_raw(event_name, properties, field, path) AS
    CASE WHEN field = 'event_name' THEN event_name ELSE coalesce(json_extract_string(properties, path), event_name) END;

-- The stage rules of each event name in scope, and the touchpoints' aliases, as small tables of their own first:
-- inside the statement below, DuckDB estimated the distinct names as many as the events and built a join's hash
-- table on the events, properties and all; a night of 4.3M events at 100M then ran out of memory, even with 1 GB.
-- Globs are matched once per distinct name, not once per event.
CREATE OR REPLACE TEMP TABLE keyed_name_rules AS
WITH event_names AS (
    SELECT DISTINCT event_name FROM scope_raw_events
)

SELECT
    n.event_name,
    list(
        {'stage': r.stage, 'stage_order': r.stage_order, 'conditions': r.conditions}
        ORDER BY r.rule_order
    ) AS rules
FROM event_names AS n
INNER JOIN stage_rules AS r ON n.event_name GLOB r.pattern
GROUP BY n.event_name;

-- Cleaning rules (regex -> alias, first full match wins), matched once per distinct value, taken from the raw rows
-- in scope.
CREATE OR REPLACE TEMP TABLE keyed_touchpoint_aliases AS
SELECT t.touchpoint_raw, arg_min(r.alias, r.rule_order) AS alias
FROM (
    SELECT DISTINCT
        cjm_touchpoint_raw(event_name, properties, $touchpoint_field, $touchpoint_path) AS touchpoint_raw
    FROM scope_raw_events
) AS t
INNER JOIN touchpoint_rules AS r ON regexp_full_match(t.touchpoint_raw, r.pattern)
GROUP BY t.touchpoint_raw;

-- Every raw event of the customers in scope with what it says on its own: its customer_key (and that key's hash,
-- the bucket), stage rule, touchpoint and tracker session. Once per sessionize, for every bucket, in hash order:
-- each bucket's core/events then reads its own rows (their min/max skip the rest), where reading raw_events per
-- bucket read every raw row again for each bucket (84 times at 100M events) and joined the identities each time.
-- Narrow: the properties are read here and not carried on.
CREATE OR REPLACE TEMP TABLE keyed_events_unsorted AS
-- A row with a customer id is that customer's (cjm_customer_key) without the identities; only rows without one
-- join them.
WITH keyed AS (
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
    WHERE customer_id IS NOT NULL

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
    WHERE e.customer_id IS NULL
),

touched AS (
    SELECT
        *,
        cjm_touchpoint_raw(event_name, properties, $touchpoint_field, $touchpoint_path) AS touchpoint_raw
    FROM keyed
),

-- The first rule whose property conditions all hold wins.
mapped AS (
    SELECT
        k.* EXCLUDE (touchpoint_raw, properties),
        hash(k.customer_key) AS customer_hash,
        coalesce(ta.alias, k.touchpoint_raw) AS touchpoint,
        -- sessions.from: the tracker's session id, a property (NULL when not configured).
        CASE WHEN $session_path IS NOT NULL THEN json_extract_string(k.properties, $session_path) END
            AS tracker_session,
        list_filter(
            nr.rules, lambda r: r.conditions IS NULL OR json_contains(k.properties, r.conditions)
        )[1] AS rule
    FROM touched AS k
    LEFT JOIN keyed_name_rules AS nr ON k.event_name = nr.event_name
    LEFT JOIN keyed_touchpoint_aliases AS ta ON k.touchpoint_raw = ta.touchpoint_raw
)

SELECT
    * EXCLUDE (rule),
    rule.stage AS stage,
    rule.stage_order AS stage_order
FROM mapped;

-- Ordered in a statement of its own: sorted in the one above, the sort shared the budget with the hash tables of
-- the identities join (pinned until the statement ends), and at 100M events it ran out of memory.
CREATE OR REPLACE TEMP TABLE keyed_events AS
SELECT * FROM keyed_events_unsorted
ORDER BY customer_hash;

DROP TABLE keyed_events_unsorted;
DROP TABLE keyed_name_rules;
DROP TABLE keyed_touchpoint_aliases;
