-- An incremental run: only the customers in dirty_customers are recomputed.
CREATE OR REPLACE TEMP VIEW scope_anonymous_ids AS
SELECT DISTINCT anonymous_id FROM pending_changes WHERE anonymous_id IS NOT NULL;

-- Every row of the anonymous ids to re-stitch (their old rows too, not only the changed ones).
CREATE OR REPLACE TEMP VIEW scope_anonymous_events AS
SELECT * FROM raw_events WHERE anonymous_id IN (SELECT anonymous_id FROM scope_anonymous_ids);

-- Exact by construction: the customer_key rule (cjm_customer_key, sql/core/schema.sql), then the dirty filter. The rule's
-- join with identities runs on a superset found first without it: rows whose customer_id is dirty, and rows of
-- anonymous ids stitched to a dirty customer or dirty themselves. Joining every raw row would cost a scan and
-- a join of the whole history each night.
CREATE OR REPLACE TEMP VIEW scope_raw_events AS
WITH candidate_anonymous_ids AS (
    SELECT anonymous_id FROM identities WHERE customer_id IN (SELECT customer_key FROM dirty_customers)
    UNION
    SELECT customer_key FROM dirty_customers
),

candidates AS (
    SELECT *
    FROM raw_events
    WHERE customer_id IN (SELECT customer_key FROM dirty_customers)
        OR (customer_id IS NULL AND anonymous_id IN (SELECT anonymous_id FROM candidate_anonymous_ids))
)

SELECT r.*
FROM candidates AS r
LEFT JOIN identities AS i ON r.anonymous_id = i.anonymous_id
WHERE cjm_customer_key(r.customer_id, i.customer_id, r.anonymous_id) IN (SELECT customer_key FROM dirty_customers);

CREATE OR REPLACE TEMP VIEW scope_events AS
SELECT * FROM events
WHERE customer_key IN (SELECT customer_key FROM dirty_customers)
    AND cjm_in_scope_bucket(customer_hash);

CREATE OR REPLACE TEMP VIEW scope_journey_steps AS
SELECT * FROM journey_steps
WHERE customer_key IN (SELECT customer_key FROM dirty_customers)
    AND cjm_in_scope_bucket(customer_hash);

CREATE OR REPLACE TEMP VIEW scope_sessions AS
SELECT * FROM sessions
WHERE customer_key IN (SELECT customer_key FROM dirty_customers)
    AND cjm_in_scope_bucket(customer_hash);

CREATE OR REPLACE TEMP VIEW scope_journeys AS
SELECT * FROM journeys
WHERE customer_key IN (SELECT customer_key FROM dirty_customers)
    AND cjm_in_scope_bucket(hash(customer_key));
