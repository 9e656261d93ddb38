-- Steps and exclusions that name nothing (almost always a typo): a stage that is not configured, or a
-- name that no event has as its event name or touchpoint. A configured stage nobody reached is fine.
-- The cjm_funnel_* macros are sql/analysis/funnel_specs.sql.
WITH found AS (
    SELECT DISTINCT unnest(spec_ids) AS spec_id
    FROM cjm_funnel_matches($spec_ids, $spec_kinds, $spec_values)
)

SELECT s.spec_id, s.kind, s.value
FROM cjm_funnel_specs($spec_ids, $spec_kinds, $spec_values) AS s
WHERE CASE
    WHEN s.kind = 'stage' THEN s.value NOT IN (SELECT stage FROM stage_list)
    ELSE s.spec_id NOT IN (SELECT spec_id FROM found)
END
ORDER BY s.spec_id DESC;
