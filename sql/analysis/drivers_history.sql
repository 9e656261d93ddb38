-- What may count as a driver (docs/analysis/drivers.md, "No leakage"), as the temp table cjm_driver_history:
-- the events of cjm_driver_population before each customer's cutoff.
CREATE OR REPLACE TEMP TABLE cjm_driver_history AS
SELECT e.customer_key, e.source, e.event_id, e.event_number, e.event_name, e.touchpoint, e.channel
FROM events AS e
INNER JOIN cjm_driver_population AS p ON e.customer_key = p.customer_key
WHERE (p.cutoff_number IS NULL OR e.event_number < p.cutoff_number)
    -- Already implied by the cutoff (a converter's first such event is the cutoff, the rest have none); stated
    -- so that the rule holds here by itself: no event at the target stage or beyond ever counts.
    AND (e.stage_order IS NULL OR e.stage_order < $to_order);
