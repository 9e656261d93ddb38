-- The first_touch_channel personas of the journey map, as temp table cjm_customer_segment: its customers are the
-- journey customers, whose journeys.first_channel is their first-touch channel (the same arg_min over every event
-- as sql/analysis/segments_touch_channel.sql), so no scan of every event is needed.
CREATE OR REPLACE TEMP TABLE cjm_customer_segment AS
SELECT customer_key, first_channel AS segment
FROM journeys;
