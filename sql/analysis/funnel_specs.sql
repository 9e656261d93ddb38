-- The funnel's steps and exclusions, and the events that match them (docs/analysis/funnels.md). Both macros take
-- the specs as three aligned lists: ids (1..n the steps in order, -1..-m the exclusions), kinds (stage, event,
-- touchpoint or auto: a configured stage name matches the stage, any other name the event name or the
-- touchpoint) and values.

-- cjm_funnel_specs(ids, kinds, spec_values): one row per spec, its auto kind resolved to stage or name.
CREATE OR REPLACE TEMP MACRO cjm_funnel_specs(ids, kinds, spec_values) AS TABLE
SELECT
    ids[i] AS spec_id,
    spec_values[i] AS value,
    CASE
        WHEN kinds[i] <> 'auto' THEN kinds[i]
        WHEN spec_values[i] IN (SELECT stage FROM stage_list) THEN 'stage'
        ELSE 'name'
    END AS kind
FROM range(1, len(ids) + 1) AS r(i);

-- cjm_funnel_matches(ids, kinds, spec_values): every event with the ids of the specs it matches (maybe none), in
-- one pass over the events (a handful of specs, so a list test per event).
CREATE OR REPLACE TEMP MACRO cjm_funnel_matches(ids, kinds, spec_values) AS TABLE
WITH spec_list AS (
    SELECT list({'spec_id': spec_id, 'kind': kind, 'value': value} ORDER BY spec_id DESC) AS specs
    FROM cjm_funnel_specs(ids, kinds, spec_values)
)

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
CROSS JOIN spec_list AS l;
