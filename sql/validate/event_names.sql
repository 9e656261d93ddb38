-- Every loaded event name with its count, for "did you mean" and for the events no stage maps.
SELECT event_name, count(*) AS events, bool_or(stage IS NOT NULL) AS mapped
FROM events
GROUP BY event_name
ORDER BY events DESC, event_name;
