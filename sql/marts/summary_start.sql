-- The summaries the aggregate step maintains per dirty customer (cjm_analytics.marts.maintain_summaries, docs/marts.md):
-- additive counts per first-touch channel (segment, NULL without one), which the journey map folds into its
-- personas when it reads them. A full refresh drops them first and adds every customer; a night adds its dirty
-- customers' rows now and subtracts their rows as the summaries counted them (retired_*, sql/core/retire_dirty.sql).

-- Per segment and stage before the goal: the conversion drivers' population at that stage (journey customers who
-- reached it) and how many of them reached the next stage (sql/analysis/drivers_population.sql).
CREATE TABLE IF NOT EXISTS summary_driver_population (
    segment              VARCHAR,
    from_order           INTEGER NOT NULL,
    population           BIGINT NOT NULL,
    population_converted BIGINT NOT NULL
);

-- Per segment, stage before the goal and touchpoint: the population's customers whose first event with the
-- touchpoint came before their cutoff (sql/marts/journey_map_driver_flags.sql), and how many of them converted.
CREATE TABLE IF NOT EXISTS summary_driver_touchpoints (
    segment        VARCHAR,
    from_order     INTEGER NOT NULL,
    touchpoint     VARCHAR NOT NULL,
    customers_with BIGINT NOT NULL,
    converted_with BIGINT NOT NULL
);

-- Per segment, stage and touchpoint: the journey customers with events of the touchpoint placed at the stage
-- (stage_touchpoints; the journey map's top touchpoints), and how many of them had one before moving on (the
-- drivers' candidates).
CREATE TABLE IF NOT EXISTS summary_stage_touchpoints (
    segment          VARCHAR,
    stage_order      INTEGER NOT NULL,
    touchpoint       VARCHAR NOT NULL,
    customers        BIGINT NOT NULL,
    before_moving_on BIGINT NOT NULL
);

-- Per segment and stage: the journey customers with events placed at the stage (the top touchpoints' base).
CREATE TABLE IF NOT EXISTS summary_stage_customers (
    segment     VARCHAR,
    stage_order INTEGER NOT NULL,
    customers   BIGINT NOT NULL
);

-- Per segment, stage and session channel (NULL: none): the sessions with events placed at the stage
-- (stage_channels; the journey map's channel mix).
CREATE TABLE IF NOT EXISTS summary_stage_channels (
    segment     VARCHAR,
    stage_order INTEGER NOT NULL,
    channel     VARCHAR,
    sessions    BIGINT NOT NULL
);

CREATE OR REPLACE TEMP TABLE delta_driver_population AS SELECT * FROM summary_driver_population WITH NO DATA;
CREATE OR REPLACE TEMP TABLE delta_driver_touchpoints AS SELECT * FROM summary_driver_touchpoints WITH NO DATA;
CREATE OR REPLACE TEMP TABLE delta_stage_touchpoints AS SELECT * FROM summary_stage_touchpoints WITH NO DATA;
CREATE OR REPLACE TEMP TABLE delta_stage_customers AS SELECT * FROM summary_stage_customers WITH NO DATA;
CREATE OR REPLACE TEMP TABLE delta_stage_channels AS SELECT * FROM summary_stage_channels WITH NO DATA;
