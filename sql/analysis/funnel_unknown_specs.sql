-- Steps and exclusions that name nothing (almost always a typo): a stage that is not configured, or a
-- name that no event has as its event name or touchpoint. A configured stage nobody reached is fine.
SELECT s.spec_id, s.kind, s.value
FROM cjm_funnel_specs AS s
WHERE CASE
    WHEN s.kind = 'stage' THEN s.value NOT IN (SELECT stage FROM stage_list)
    ELSE NOT EXISTS (SELECT 1 FROM cjm_funnel_hits AS h WHERE h.spec_id = s.spec_id)
END
ORDER BY s.spec_id DESC;
