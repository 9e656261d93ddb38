-- This run's health checks (docs/checks.md), from its metrics (sql/checks/run_metrics.sql) and the metrics of the
-- runs before it that passed. Each row: the check, its subject, its configured level, and pass or that level.
-- A check whose level is 'off' is not written.

DELETE FROM run_checks WHERE run_id = $run_id;

CREATE OR REPLACE TEMP TABLE check_metrics AS
SELECT metric, subject, value
FROM run_metrics
WHERE run_id = $run_id;

-- Runs before this one whose checks passed (no failed error-level check): the history checks compare with.
CREATE OR REPLACE TEMP TABLE check_good_runs AS
SELECT run_id, max(run_started) AS run_started
FROM run_metrics
WHERE run_id <> $run_id AND run_started <= $run_started
    AND run_id NOT IN (SELECT run_id FROM run_checks WHERE status = 'error')
GROUP BY run_id;

-- Event names in the warehouse, the stage each is at and how many events: for the stage checks (one scan).
CREATE OR REPLACE TEMP TABLE check_event_names AS
SELECT event_name, stage_order, count(*) AS events
FROM events
GROUP BY ALL;

INSERT INTO run_checks
WITH per_source AS (
    SELECT
        subject,
        any_value(value) FILTER (WHERE metric = 'events') AS events,
        any_value(value) FILTER (WHERE metric = 'rows_read') AS rows_read,
        any_value(value) FILTER (WHERE metric = 'rows_rejected') AS rows_rejected,
        any_value(value) FILTER (WHERE metric = 'files_refused') AS files_refused
    FROM check_metrics
    WHERE metric IN ('events', 'rows_read', 'rows_rejected', 'files_refused')
    GROUP BY subject
),

refused_names AS (  -- the first few refused files of each source, for the message
    SELECT
        source,
        string_agg(regexp_extract(file, '[^/]+$'), ', ' ORDER BY file) FILTER (WHERE n <= 3) AS files
    FROM (
        SELECT source, file, row_number() OVER (PARTITION BY source ORDER BY file) AS n
        FROM load_manifest
        WHERE run_id = $run_id AND status = 'refused'
    )
    GROUP BY source
),

source_empty AS (
    SELECT
        'source_empty' AS check_name,
        subject,
        $level_source_empty AS level,
        events > 0 AS passed,
        events AS value,
        '> 0' AS expected,
        CASE
            WHEN events > 0 THEN 'source ' || subject || ' holds ' || printf('%,d', CAST(events AS BIGINT)) || ' events'
            ELSE 'source ' || subject || ' has files but no event loaded'
        END AS message
    FROM per_source
),

refused_files AS (
    SELECT
        'refused_files',
        p.subject,
        $level_refused_files,
        p.files_refused = 0,
        p.files_refused,
        '0',
        CASE
            WHEN p.files_refused = 0 THEN 'source ' || p.subject || ': no file refused'
            ELSE 'source ' || p.subject || ': ' || CAST(p.files_refused AS BIGINT) || ' file(s) refused ('
                || r.files || CASE WHEN p.files_refused > 3 THEN ', …' ELSE '' END || '; reasons in table rejects)'
        END
    FROM per_source AS p
    LEFT JOIN refused_names AS r ON p.subject = r.source
),

reject_rate AS (
    SELECT
        'reject_rate',
        subject,
        $level_reject_rate,
        rows_rejected / rows_read <= $max_reject_rate,
        rows_rejected / rows_read,
        '<= ' || printf('%.1f%%', 100 * $max_reject_rate),
        'source ' || subject || ': ' || printf('%,d', CAST(rows_rejected AS BIGINT)) || ' of '
            || printf('%,d', CAST(rows_read AS BIGINT))
            || ' rows read this run rejected (' || printf('%.1f%%', 100 * rows_rejected / rows_read) || ')'
    FROM per_source
    WHERE rows_read > 0
),

-- Volume: this run against the last runs that passed, by median and median absolute deviation.
volume_history AS (
    SELECT
        m.metric,
        m.subject,
        m.value,
        row_number() OVER (PARTITION BY m.metric, m.subject ORDER BY g.run_started DESC) AS age
    FROM run_metrics AS m
    INNER JOIN check_good_runs AS g USING (run_id)
    WHERE m.metric IN ('rows_loaded', 'customers', 'journey_customers')
),

volume_stats AS (
    SELECT
        metric,
        subject,
        count(*) AS runs,
        median(value) AS med,
        median(abs(value - med_all)) AS mad
    FROM (
        SELECT *, median(value) OVER (PARTITION BY metric, subject) AS med_all
        FROM volume_history
        WHERE age <= $volume_runs
    )
    GROUP BY metric, subject
),

volume AS (
    SELECT
        'volume',
        c.metric || CASE WHEN c.subject <> '' THEN ':' || c.subject ELSE '' END,
        $level_volume,
        abs(c.value - s.med) <= greatest($volume_max_mads * 1.4826 * s.mad, $volume_min_change * s.med),
        c.value,
        printf('%,.0f ± %,.0f', s.med, greatest($volume_max_mads * 1.4826 * s.mad, $volume_min_change * s.med)),
        -- Counts of customers in the config's word for them ($entities: cases, tickets; the metric keeps its name).
        CASE c.metric WHEN 'customers' THEN $entities WHEN 'journey_customers' THEN 'journey ' || $entities
            ELSE replace(c.metric, '_', ' ') END || CASE WHEN c.subject <> '' THEN ' (' || c.subject || ')' ELSE '' END || ': '
            || printf('%,.0f', c.value) || ' this run; the last ' || s.runs || ' good runs had a median of '
            || printf('%,.0f', s.med)
    FROM check_metrics AS c
    INNER JOIN volume_stats AS s USING (metric, subject)
    WHERE s.runs >= $volume_min_runs
),

rule_matches AS (
    SELECT
        r.rule_order,
        r.stage,
        r.pattern,
        r.pattern || coalesce(' where ' || CAST(r.conditions AS VARCHAR), '') AS rule,
        coalesce(sum(n.events), 0) AS events
    FROM stage_rules AS r
    LEFT JOIN check_event_names AS n ON n.event_name GLOB r.pattern
    GROUP BY ALL
),

rule_suggestions AS (  -- the closest event name for a rule that matches none: a misspelling, most likely
    SELECT
        r.rule_order,
        arg_min(n.event_name, levenshtein(n.event_name, r.pattern)) AS closest,
        min(levenshtein(n.event_name, r.pattern)) AS distance,
        any_value(r.pattern) AS pattern
    FROM rule_matches AS r, (SELECT DISTINCT event_name FROM check_event_names) AS n
    WHERE r.events = 0
    GROUP BY r.rule_order
),

stage_rules AS (
    SELECT
        'stage_rules',
        m.stage || ': ' || m.rule,
        $level_stage_rules,
        m.events > 0,
        m.events,
        '> 0',
        CASE
            WHEN m.events > 0 THEN 'stage ' || m.stage || ': rule ' || m.rule || ' matches ' || m.events
                || ' events with that name'
            ELSE 'stage ' || m.stage || ': rule ' || m.rule || ' matches no event in the data'
                || CASE WHEN s.distance <= greatest(2, length(s.pattern) // 4)
                    THEN ' (did you mean ' || s.closest || '?)' ELSE '' END
        END
    FROM rule_matches AS m
    LEFT JOIN rule_suggestions AS s USING (rule_order)
),

stage_events AS (
    SELECT
        l.stage,
        l.stage_order,
        coalesce(sum(n.events), 0) AS events
    FROM stage_list AS l
    LEFT JOIN check_event_names AS n ON l.stage_order = n.stage_order
    GROUP BY ALL
),

-- A stage with no event while a later stage has some: the ladder would count it as passed by every customer who
-- got further (0% drop-off), a story the data does not tell. (A stage nobody has reached yet, with nothing after
-- it, is simply 0 reached; a rule matching no event name is the stage_rules check.)
stage_unreached AS (
    SELECT
        'stage_unreached',
        stage,
        $level_stage_unreached,
        events > 0 OR stage_order > coalesce((SELECT max(stage_order) FROM stage_events WHERE events > 0), 0),
        events,
        '> 0',
        CASE
            WHEN events > 0 THEN 'stage ' || stage || ': ' || events || ' events'
            WHEN stage_order > coalesce((SELECT max(stage_order) FROM stage_events WHERE events > 0), 0)
                THEN 'stage ' || stage || ': no ' || $entity || ' has reached it yet'
            ELSE 'stage ' || stage || ': no event of any ' || $entity || ' is at this stage, yet later stages have some '
                || '(its rules match nothing?): the funnel would show everyone who got further as passing it'
        END
    FROM stage_events
),

-- Headline KPIs against the last good run before today and the last good run at least 7 days before this one.
baselines AS (
    SELECT 'the last good night' AS against, arg_max(run_id, run_started) AS run_id, max(run_started) AS started
    FROM check_good_runs
    WHERE run_started < date_trunc('day', CAST($run_started AS TIMESTAMP))
    UNION ALL
    SELECT 'a week before', arg_max(run_id, run_started), max(run_started)
    FROM check_good_runs
    WHERE run_started <= CAST($run_started AS TIMESTAMP) - INTERVAL 7 DAY
),

kpi_change AS (
    SELECT
        'kpi_change',
        CASE WHEN c.metric = 'conversion_rate' THEN 'conversion' ELSE 'drop-off: ' || c.subject END
            || ' vs ' || b.against,
        $level_kpi_change,
        abs(c.value - e.value) * 100 <= $kpi_max_points,
        (c.value - e.value) * 100,
        '±' || printf('%g', $kpi_max_points) || ' points',
        CASE WHEN c.metric = 'conversion_rate' THEN 'conversion' ELSE 'drop-off at ' || c.subject END || ': '
            || printf('%.1f%%', 100 * c.value) || ' this run, ' || printf('%.1f%%', 100 * e.value) || ' on '
            || b.against || ' (' || strftime(b.started, '%Y-%m-%d') || '): '
            || printf('%+.1f', (c.value - e.value) * 100) || ' points'
    FROM check_metrics AS c
    CROSS JOIN baselines AS b
    INNER JOIN run_metrics AS e ON e.run_id = b.run_id AND e.metric = c.metric AND e.subject = c.subject
    WHERE c.metric IN ('conversion_rate', 'dropoff_rate') AND c.value IS NOT NULL AND e.value IS NOT NULL
),

late_data AS (
    SELECT
        'late_data',
        '',
        'info',
        value = 0,
        value,
        NULL,
        CASE
            WHEN value = 0 THEN 'no event arrived for days already shown'
            ELSE CAST(value AS BIGINT) || ' event(s) arrived for days already shown (from '
                || strftime(make_timestamp(CAST((SELECT value FROM check_metrics WHERE metric = 'late_from') * 1e6
                    AS BIGINT)), '%Y-%m-%d') || '): a change in recent cohorts may be late data, not a trend'
        END
    FROM check_metrics
    WHERE metric = 'late_events'
),

every_check AS (
    SELECT * FROM source_empty
    UNION ALL SELECT * FROM refused_files
    UNION ALL SELECT * FROM reject_rate
    UNION ALL SELECT * FROM volume
    UNION ALL SELECT * FROM stage_rules
    UNION ALL SELECT * FROM stage_unreached
    UNION ALL SELECT * FROM kpi_change
    UNION ALL SELECT * FROM late_data
)

SELECT
    $run_id,
    $run_started,
    check_name,
    subject,
    level,
    CASE WHEN passed THEN 'pass' ELSE level END,
    value,
    expected,
    message
FROM every_check
WHERE level <> 'off';
