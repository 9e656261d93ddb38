-- Droppers' last touchpoints, ranked by count and by lift against the customers who went on from the stage.
-- Droppers at k: furthest stage k, before the goal (a stop at or after the goal is a completion, not a drop-out).
-- Their touchpoint: that of their last event.
-- Continuers at k: furthest stage above k. Their touchpoint at the same position: that of the event just
-- before their first event above stage k (the last thing they did before moving on).
-- Per customer, both come from the core layer: journeys.last_touchpoint and stage_entries.
WITH dropped AS (
    SELECT furthest_stage_order AS stage_order, last_touchpoint AS touchpoint
    FROM journeys
    WHERE furthest_stage_order < $goal_order
),

-- Stages are a ladder: a customer moves beyond k at their earliest first event at any stage above k
-- (stage_entries: each customer's first event at each stage, and what they touched just before it).
went_on AS (
    SELECT s.stage_order, arg_min_null(e.prev_touchpoint, e.event_number) AS touchpoint
    FROM stage_entries AS e
    INNER JOIN stage_list AS s ON e.stage_order > s.stage_order
    GROUP BY e.customer_key, s.stage_order
    -- A customer whose very first event is already beyond k has no touchpoint before it to compare.
    HAVING touchpoint IS NOT NULL
),

dropped_counts AS (
    SELECT
        stage_order,
        touchpoint,
        count(*) AS droppers,
        sum(count(*)) OVER (PARTITION BY stage_order) AS all_droppers
    FROM dropped
    GROUP BY stage_order, touchpoint
),

went_on_counts AS (
    SELECT
        stage_order,
        touchpoint,
        count(*) AS continuers,
        sum(count(*)) OVER (PARTITION BY stage_order) AS all_continuers
    FROM went_on
    GROUP BY stage_order, touchpoint
),

went_on_totals AS (
    SELECT DISTINCT stage_order, all_continuers FROM went_on_counts
),

compared AS (
    SELECT
        d.stage_order,
        d.touchpoint,
        d.droppers,
        d.droppers / d.all_droppers AS dropper_share,
        coalesce(c.continuers, 0) AS continuers,
        coalesce(c.continuers, 0) / t.all_continuers AS continuer_share
    FROM dropped_counts AS d
    LEFT JOIN went_on_counts AS c ON d.stage_order = c.stage_order AND d.touchpoint = c.touchpoint
    LEFT JOIN went_on_totals AS t ON d.stage_order = t.stage_order
),

-- Lift is infinite for a touchpoint no continuer had there, and null when nobody went on from the stage.
lifted AS (
    SELECT
        *,
        CASE
            WHEN continuer_share IS NULL THEN NULL
            WHEN continuer_share = 0 THEN CAST('inf' AS DOUBLE)
            ELSE dropper_share / continuer_share
        END AS lift
    FROM compared
)

SELECT
    s.stage,
    l.stage_order,
    l.touchpoint,
    l.droppers,
    l.dropper_share,
    l.continuers,
    l.continuer_share,
    l.lift,
    row_number() OVER (PARTITION BY l.stage_order ORDER BY l.droppers DESC, l.touchpoint) AS rank_by_count,
    -- Lift on a handful of droppers is noise: only touchpoints with at least min_customers droppers are ranked.
    CASE WHEN l.droppers >= $min_customers AND l.lift IS NOT NULL THEN
        row_number() OVER (
            PARTITION BY l.stage_order, l.droppers >= $min_customers AND l.lift IS NOT NULL
            ORDER BY l.lift DESC, l.droppers DESC, l.touchpoint
        )
    END AS rank_by_lift
FROM lifted AS l
INNER JOIN stage_list AS s ON l.stage_order = s.stage_order
ORDER BY l.stage_order, rank_by_count;
