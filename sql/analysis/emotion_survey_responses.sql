-- cjm_survey_responses(surveys): every answer to a configured survey, its score read, checked and normalized.
-- surveys: a list of {survey_order, event (name or glob), score_path (JSON path of the score property), kind,
-- scale_min, scale_max, low_below}; an event answers the first survey (in config order) whose glob it matches.
CREATE OR REPLACE TEMP MACRO cjm_survey_responses(surveys) AS TABLE
WITH configured AS (
    SELECT unnest(
        CAST(surveys AS STRUCT(
            survey_order INTEGER, event VARCHAR, score_path VARCHAR, kind VARCHAR,
            scale_min DOUBLE, scale_max DOUBLE, low_below DOUBLE
        )[]),
        recursive := true
    )
),

-- Globs are matched once per distinct event name, not once per event.
survey_names AS (
    SELECT n.event_name, c.*
    FROM (SELECT DISTINCT event_name FROM events) AS n
    INNER JOIN configured AS c ON n.event_name GLOB c.event
    QUALIFY row_number() OVER (PARTITION BY n.event_name ORDER BY c.survey_order) = 1
),

answers AS (
    SELECT
        e.customer_key,
        e.ts,
        e.event_id,
        e.source,
        s.kind,
        s.scale_min,
        s.scale_max,
        s.low_below,
        -- Non-numeric text (and a missing score) reads as NULL: an invalid answer, counted, not averaged.
        TRY_CAST(json_extract_string(r.properties, s.score_path) AS DOUBLE) AS raw_score
    FROM events AS e
    INNER JOIN survey_names AS s ON e.event_name = s.event_name
    -- events is narrow: the score is a property, in raw_events.
    INNER JOIN raw_events AS r ON e.source = r.source AND e.event_id = r.event_id
    WHERE r.event_name IN (SELECT event_name FROM survey_names)
),

checked AS (
    SELECT
        *,
        -- NaN sorts above every number in DuckDB, so it is out of range too.
        coalesce(raw_score BETWEEN scale_min AND scale_max, false) AS valid
    FROM answers
)

SELECT
    * EXCLUDE (raw_score),
    CASE WHEN valid THEN raw_score END AS raw_score,
    CASE WHEN valid THEN (raw_score - scale_min) / (scale_max - scale_min) END AS score
FROM checked;
