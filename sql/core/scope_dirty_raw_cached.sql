-- An incremental sessionize: the dirty customers' raw rows, found once. The step reads scope_raw_events several
-- times (its count, then the event names, the rows and their properties in core/keyed_events), and each read of the
-- view of scope_dirty.sql scans the whole history's ids and joins the identities again. raw_events does not
-- change during the step.
CREATE OR REPLACE TEMP TABLE dirty_raw_events AS
SELECT * FROM scope_raw_events;

CREATE OR REPLACE TEMP VIEW scope_raw_events AS
SELECT * FROM dirty_raw_events;
