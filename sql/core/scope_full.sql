-- A full refresh: every customer is recomputed from every raw event.
CREATE OR REPLACE TEMP VIEW scope_raw_events AS
SELECT * FROM raw_events;

CREATE OR REPLACE TEMP VIEW scope_anonymous_events AS
SELECT * FROM raw_events WHERE anonymous_id IS NOT NULL;

CREATE OR REPLACE TEMP VIEW scope_events AS
SELECT * FROM events
WHERE cjm_in_scope_bucket(customer_hash);

CREATE OR REPLACE TEMP VIEW scope_journey_steps AS
SELECT * FROM journey_steps
WHERE cjm_in_scope_bucket(customer_hash);

CREATE OR REPLACE TEMP VIEW scope_sessions AS
SELECT * FROM sessions
WHERE cjm_in_scope_bucket(customer_hash);

CREATE OR REPLACE TEMP VIEW scope_journeys AS
SELECT * FROM journeys
WHERE cjm_in_scope_bucket(hash(customer_key));
