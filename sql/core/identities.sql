-- Identity stitching (Snowplow's rule): an anonymous_id belongs to the LAST customer_id seen with it.
-- Recomputed for the anonymous ids in scope (all of them, or those with new or removed rows).
INSERT INTO identities
WITH seen_together AS (
    SELECT anonymous_id, customer_id, ts, event_id, source
    FROM raw_events
    WHERE customer_id IS NOT NULL
        AND anonymous_id IN (SELECT anonymous_id FROM scope_anonymous_ids)
)

SELECT
    anonymous_id,
    customer_id,
    ts AS stitched_at
FROM seen_together
-- Equal timestamps: the greatest event_id wins, so the choice never depends on load order.
QUALIFY row_number() OVER (PARTITION BY anonymous_id ORDER BY ts DESC, event_id DESC, source DESC) = 1;
