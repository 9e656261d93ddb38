-- The first journeys, as a new user checks them by eye: the collapsed stage path and whether it reached the goal.
SELECT customer_key, first_ts, array_to_string(stage_path, ' > ') AS stage_path, converted, n_events
FROM journeys
ORDER BY first_ts, customer_key
LIMIT $n;
