-- Identity stitching (Snowplow's rule): an anonymous_id belongs to the LAST customer_id seen with it.
-- Recomputed for the anonymous ids in scope (all of them, or those with new or removed rows).
INSERT INTO identities
SELECT
    anonymous_id,
    -- Equal timestamps: the greatest event_id wins, so the choice never depends on load order.
    arg_max(customer_id, (ts, event_id, source)) AS customer_id,
    max(ts) AS stitched_at
FROM scope_anonymous_events
WHERE customer_id IS NOT NULL
GROUP BY anonymous_id;
