-- The first-order Markov chain of channel paths: (start) -> channels -> (conversion) or (null), as counts.
WITH touches AS (
    SELECT * FROM cjm_channel_touches()
),

moves AS (
    SELECT
        coalesce(prev_channel, $start_stage) AS from_state,
        channel AS to_state
    FROM touches

    UNION ALL

    SELECT channel AS from_state, CASE WHEN converted THEN $conversion ELSE $null_state END AS to_state
    FROM touches
    WHERE touch = n_touches
)

SELECT from_state, to_state, count(*) AS transitions
FROM moves
GROUP BY from_state, to_state
ORDER BY from_state, to_state;
