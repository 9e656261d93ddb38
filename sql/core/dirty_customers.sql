-- The customers whose events changed: their journeys are recomputed whole (the unit of reprocessing).
-- Kept until the marts are rebuilt, so a run that dies half-way leaves them for the next run.
INSERT INTO dirty_customers
WITH changed_anonymous AS (
    SELECT anonymous_id FROM scope_anonymous_ids
),

keys AS (
    -- rows with a known id belong to it
    SELECT customer_id AS customer_key FROM pending_changes WHERE customer_id IS NOT NULL
    UNION
    -- an anonymous id's rows belong to its (new) stitched customer, or to itself
    SELECT coalesce(i.customer_id, a.anonymous_id)
    FROM changed_anonymous AS a
    LEFT JOIN identities AS i ON a.anonymous_id = i.anonymous_id
    UNION
    -- and leave the customer they belonged to until now
    SELECT customer_key FROM events WHERE anonymous_id IN (SELECT anonymous_id FROM changed_anonymous)
)

SELECT customer_key FROM keys
EXCEPT
SELECT customer_key FROM dirty_customers;
