-- cjm_channel_touches(): each customer's channel path, one row per touch, and whether it ended in conversion.
-- Kept per customer in the core table channel_touches (sql/core/channel_touches.sql, the definitions).
CREATE OR REPLACE TEMP MACRO cjm_channel_touches() AS TABLE
SELECT customer_key, touch, n_touches, channel, prev_channel, converted
FROM channel_touches;
