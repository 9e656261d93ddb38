-- An incremental build_journeys: the dirty customers' events and sessions, read once. Every statement of the step
-- reads scope_events or scope_sessions again (some twice); over the views of scope_dirty.sql each read would
-- semi-join every customer's rows against dirty_customers, a scan of the whole history per statement. Neither
-- table changes during the step (sessionize wrote them).
CREATE OR REPLACE TEMP TABLE dirty_events AS
SELECT * FROM events
WHERE customer_key IN (SELECT customer_key FROM dirty_customers);

CREATE OR REPLACE TEMP TABLE dirty_sessions AS
SELECT * FROM sessions
WHERE customer_key IN (SELECT customer_key FROM dirty_customers);

CREATE OR REPLACE TEMP VIEW scope_events AS
SELECT * FROM dirty_events
WHERE cjm_in_scope_bucket(customer_hash);

CREATE OR REPLACE TEMP VIEW scope_sessions AS
SELECT * FROM dirty_sessions
WHERE cjm_in_scope_bucket(customer_hash);
