-- The journey map's working set (docs/marts.md, "journey_map"): journey customers with their personas. What each
-- customer did at each stage is kept per customer in the core layer (stage_entries, stage_touchpoints,
-- stage_channels: sql/core/stage_placements.sql), so a night places only its dirty customers' events.
-- Needs the temp table jm_personas(persona_type, persona, customer_key), filled by cjm_analytics.analysis.journey_map.

-- One row per journey customer and persona they are in (every customer is in persona_type 'all').
CREATE OR REPLACE TEMP TABLE jm_customers AS
SELECT p.persona_type, p.persona, j.customer_key, j.furthest_stage_order, j.last_touchpoint
FROM journeys AS j
INNER JOIN jm_personas AS p ON j.customer_key = p.customer_key;
