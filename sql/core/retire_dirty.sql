-- Before the core steps replace a night's dirty customers' rows: the rows of them that the marts' maintained
-- summaries counted (sql/marts/summary_*.sql), so that the aggregate step can take those counts out before adding
-- the new ones (cjm_analytics.marts.maintain_summaries). Only customers not kept yet: one made dirty again after a
-- night that died before its marts committed keeps the rows the summaries still count. The aggregate step empties
-- these tables in the commit that folds them in.
CREATE OR REPLACE TEMP TABLE newly_dirty AS
SELECT customer_key FROM dirty_customers
EXCEPT
SELECT customer_key FROM retired_customers;

INSERT INTO retired_journeys SELECT * FROM journeys WHERE customer_key IN (SELECT customer_key FROM newly_dirty);
INSERT INTO retired_stage_entries
SELECT * FROM stage_entries WHERE customer_key IN (SELECT customer_key FROM newly_dirty);
INSERT INTO retired_touchpoint_firsts
SELECT * FROM touchpoint_firsts WHERE customer_key IN (SELECT customer_key FROM newly_dirty);
INSERT INTO retired_stage_touchpoints
SELECT * FROM stage_touchpoints WHERE customer_key IN (SELECT customer_key FROM newly_dirty);
INSERT INTO retired_stage_channels
SELECT * FROM stage_channels WHERE customer_key IN (SELECT customer_key FROM newly_dirty);
INSERT INTO retired_customers SELECT customer_key FROM newly_dirty;

DROP TABLE newly_dirty;
