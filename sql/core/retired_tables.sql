-- The core rows of a night's dirty customers as the marts' summaries counted them, kept until the aggregate step
-- folds them in (sql/core/retire_dirty.sql writes them, sql/marts/summary_*.sql read them): created by both, so
-- that a warehouse from before them gets them whichever runs first.
CREATE TABLE IF NOT EXISTS retired_customers (customer_key VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS retired_journeys AS SELECT * FROM journeys WITH NO DATA;
CREATE TABLE IF NOT EXISTS retired_stage_entries AS SELECT * FROM stage_entries WITH NO DATA;
CREATE TABLE IF NOT EXISTS retired_touchpoint_firsts AS SELECT * FROM touchpoint_firsts WITH NO DATA;
CREATE TABLE IF NOT EXISTS retired_stage_touchpoints AS SELECT * FROM stage_touchpoints WITH NO DATA;
CREATE TABLE IF NOT EXISTS retired_stage_channels AS SELECT * FROM stage_channels WITH NO DATA;
