-- One row per session of the customers in scope; ties in time follow event_number (time, then event_id).
INSERT INTO sessions BY NAME
SELECT
    customer_key,
    customer_hash,
    -- Stable while the session's first event stays its first: the same id tonight as last night.
    md5(customer_key || '|' || strftime(min(ts), '%Y-%m-%dT%H:%M:%S.%f')) AS session_id,
    session_number,
    min(ts) AS session_start,
    max(ts) AS session_end,
    count(*) AS n_events,
    arg_min(event_name, event_number) AS first_event,
    arg_max(event_name, event_number) AS last_event,
    arg_min(channel, event_number) FILTER (WHERE channel IS NOT NULL) AS channel
FROM scope_events
GROUP BY customer_key, customer_hash, session_number;
