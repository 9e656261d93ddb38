-- An incremental run: only the customers in dirty_customers are recomputed.
CREATE OR REPLACE TEMP VIEW scope_anonymous_ids AS
SELECT DISTINCT anonymous_id FROM pending_changes WHERE anonymous_id IS NOT NULL;

-- Every row of the anonymous ids to re-stitch (their old rows too, not only the changed ones).
CREATE OR REPLACE TEMP VIEW scope_anonymous_events AS
SELECT * FROM raw_events WHERE anonymous_id IN (SELECT anonymous_id FROM scope_anonymous_ids);

-- Exact by construction: the same customer_key rule as sql/core/events.sql, then the dirty filter.
CREATE OR REPLACE TEMP VIEW scope_raw_events AS
SELECT r.*
FROM raw_events AS r
LEFT JOIN identities AS i ON r.anonymous_id = i.anonymous_id
WHERE coalesce(r.customer_id, i.customer_id, r.anonymous_id) IN (SELECT customer_key FROM dirty_customers);

CREATE OR REPLACE TEMP VIEW scope_events AS
SELECT * FROM events
WHERE customer_key IN (SELECT customer_key FROM dirty_customers);

CREATE OR REPLACE TEMP VIEW scope_journey_steps AS
SELECT * FROM journey_steps
WHERE customer_key IN (SELECT customer_key FROM dirty_customers);
