-- A night's dirty customers' rows as the core steps now hold them: what summary_add.sql adds for them.
CREATE OR REPLACE TEMP VIEW summary_new_journeys AS
SELECT * FROM journeys WHERE customer_key IN (SELECT customer_key FROM dirty_customers);

CREATE OR REPLACE TEMP VIEW summary_new_stage_entries AS
SELECT * FROM stage_entries WHERE customer_key IN (SELECT customer_key FROM dirty_customers);

CREATE OR REPLACE TEMP VIEW summary_new_touchpoint_firsts AS
SELECT * FROM touchpoint_firsts WHERE customer_key IN (SELECT customer_key FROM dirty_customers);

CREATE OR REPLACE TEMP VIEW summary_new_stage_touchpoints AS
SELECT * FROM stage_touchpoints WHERE customer_key IN (SELECT customer_key FROM dirty_customers);

CREATE OR REPLACE TEMP VIEW summary_new_stage_channels AS
SELECT * FROM stage_channels WHERE customer_key IN (SELECT customer_key FROM dirty_customers);
