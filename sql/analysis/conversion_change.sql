-- What changed between two runs ($against_run_id, earlier, and $run_id), per stage and first-touch channel: the
-- change of each stage's conversion split into a mix effect (the segments' shares of the stage's customers moved)
-- and a rate effect (the segments' own conversion moved), over the same cohort days (docs/analysis/what-changed.md).
-- Conversion of a stage before the goal: reached(k + 1) / reached(k); of the goal: reached(goal) / reached(1).
WITH runs AS (
    SELECT run_id, any_value(data_end) AS data_end
    FROM run_segment_cohorts
    WHERE run_id IN ($run_id, $against_run_id)
    GROUP BY run_id
),

-- The same cohort days: those both runs hold, and complete in the earlier run (before the day its data ends in),
-- so neither tonight's new cohorts nor late data on a day the earlier run saw half of reads as a change.
days AS (
    SELECT cohort_date
    FROM run_segment_cohorts
    WHERE run_id IN ($run_id, $against_run_id)
        AND cohort_date < (SELECT CAST(data_end AS DATE) FROM runs WHERE run_id = $against_run_id)
    GROUP BY cohort_date
    HAVING count(DISTINCT run_id) = 2
),

measures AS (
    SELECT stage_order, stage_order AS den_order, stage_order + 1 AS num_order
    FROM stage_list WHERE stage_order < $goal_order
    UNION ALL
    SELECT $goal_order, 1, $goal_order WHERE $goal_order > 1
),

counts AS (
    SELECT
        m.stage_order,
        c.run_id = $run_id AS after,
        c.segment,
        sum(c.reached) FILTER (WHERE c.stage_order = m.den_order) AS customers,
        sum(c.reached) FILTER (WHERE c.stage_order = m.num_order) AS moved_on
    FROM run_segment_cohorts AS c
    INNER JOIN measures AS m ON c.stage_order IN (m.den_order, m.num_order)
    WHERE c.run_id IN ($run_id, $against_run_id) AND c.cohort_date IN (SELECT cohort_date FROM days)
    GROUP BY ALL
),

shares AS (
    SELECT
        *,
        customers / nullif(sum(customers) OVER (PARTITION BY stage_order, after), 0) AS share,
        moved_on / nullif(customers, 0) AS rate
    FROM counts
),

paired AS (
    SELECT
        coalesce(a.stage_order, b.stage_order) AS stage_order,
        coalesce(a.segment, b.segment) AS segment,
        coalesce(b.customers, 0) AS customers_before,
        coalesce(a.customers, 0) AS customers_after,
        coalesce(b.share, 0) AS share_before,
        coalesce(a.share, 0) AS share_after,
        b.rate AS rate_before,
        a.rate AS rate_after
    FROM (SELECT * FROM shares WHERE after) AS a
    FULL JOIN (SELECT * FROM shares WHERE NOT after) AS b ON a.stage_order = b.stage_order AND a.segment = b.segment
),

-- Kitagawa's symmetric shift-share: each effect weighted by the other factor's mean over the two runs, so the
-- two effects add up to the change exactly, with no interaction term. A segment with no customers in one run has
-- no rate there: its rate in the other run stands in (its share there is 0, so the change is all mix).
effects AS (
    SELECT
        *,
        coalesce(rate_before, rate_after, 0) AS r0,
        coalesce(rate_after, rate_before, 0) AS r1
    FROM paired
    WHERE customers_before > 0 OR customers_after > 0
),

decomposed AS (
    SELECT
        * EXCLUDE (r0, r1),
        (share_after - share_before) * (r0 + r1) / 2 AS mix_effect,
        (r1 - r0) * (share_before + share_after) / 2 AS rate_effect
    FROM effects
),

stage_totals AS (
    SELECT
        stage_order,
        sum(share_before * coalesce(rate_before, 0)) AS conversion_before,
        sum(share_after * coalesce(rate_after, 0)) AS conversion_after
    FROM decomposed
    GROUP BY stage_order
)

SELECT
    l.stage,
    d.stage_order,
    CASE WHEN d.stage_order = $goal_order THEN f.stage ELSE l.stage END AS from_stage,
    n.stage AS to_stage,
    $against_run_id AS run_before,
    $run_id AS run_after,
    (SELECT min(cohort_date) FROM days) AS first_cohort_date,
    (SELECT max(cohort_date) FROM days) AS last_cohort_date,
    t.conversion_before,
    t.conversion_after,
    t.conversion_after - t.conversion_before AS conversion_change,
    d.segment,
    CAST(d.customers_before AS BIGINT) AS customers_before,
    CAST(d.customers_after AS BIGINT) AS customers_after,
    d.share_before,
    d.share_after,
    d.rate_before,
    d.rate_after,
    d.mix_effect,
    d.rate_effect,
    d.mix_effect + d.rate_effect AS total_effect,
    CAST(row_number() OVER (PARTITION BY d.stage_order ORDER BY abs(d.mix_effect + d.rate_effect) DESC, d.segment)
        AS INTEGER) AS contributor_rank
FROM decomposed AS d
INNER JOIN stage_totals AS t ON d.stage_order = t.stage_order
INNER JOIN stage_list AS l ON d.stage_order = l.stage_order
INNER JOIN stage_list AS f ON f.stage_order = 1
INNER JOIN stage_list AS n ON n.stage_order = least(d.stage_order + 1, $goal_order)
ORDER BY d.stage_order, contributor_rank;
