-- The names a path step can take at a level: the configured stages, or every touchpoint an event has.
-- Read only when an anchor, start or end is not found, to say what was meant.
SELECT stage AS name FROM stage_list WHERE $level = 'stage'
UNION
SELECT DISTINCT touchpoint FROM events WHERE $level = 'touchpoint' AND touchpoint IS NOT NULL
