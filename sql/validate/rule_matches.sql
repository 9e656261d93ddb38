-- Per stage rule, the loaded events it matches on its own (sql/core/keyed_events.sql: the name glob and every
-- property condition), and the events the stage ends up with (the first matching rule wins there).
WITH names AS (
    SELECT event_name, properties FROM raw_events
),

rule_hits AS (
    SELECT r.rule_order, count(n.event_name) AS events_matched
    FROM stage_rules AS r
    LEFT JOIN names AS n
        ON n.event_name GLOB r.pattern
        AND (r.conditions IS NULL OR json_contains(n.properties, r.conditions))
    GROUP BY r.rule_order
),

stage_events AS (
    SELECT stage, count(*) AS stage_events FROM events WHERE stage IS NOT NULL GROUP BY stage
)

SELECT
    r.stage_order,
    r.stage,
    r.rule_order,
    r.pattern,
    r.conditions,
    h.events_matched,
    coalesce(s.stage_events, 0) AS stage_events
FROM stage_rules AS r
INNER JOIN rule_hits AS h ON r.rule_order = h.rule_order
LEFT JOIN stage_events AS s ON r.stage = s.stage
ORDER BY r.rule_order;
