-- One row per session of the customers in scope; ties in time are broken by event_id, as in events.
INSERT INTO sessions BY NAME
SELECT
    customer_key,
    session_id,
    any_value(session_number) AS session_number,
    min(ts) AS session_start,
    max(ts) AS session_end,
    count(*) AS n_events,
    arg_min(event_name, (ts, event_id, source)) AS first_event,
    arg_max(event_name, (ts, event_id, source)) AS last_event,
    arg_min(channel, (ts, event_id, source)) FILTER (WHERE channel IS NOT NULL) AS channel
FROM scope_events
GROUP BY customer_key, session_id;
