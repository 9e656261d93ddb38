-- One persona type's personas (the segment table $segments of analysis/segments_*) appended to jm_personas:
-- the $max_personas largest values among journey customers keep their name, the rest are one persona "(other)",
-- customers without a value are "(none)".
CREATE TEMP TABLE IF NOT EXISTS jm_personas (persona_type VARCHAR, persona VARCHAR, customer_key VARCHAR);

INSERT INTO jm_personas
WITH valued AS (
    SELECT j.customer_key, s.segment
    FROM journeys AS j
    LEFT JOIN query_table($segments) AS s ON j.customer_key = s.customer_key
),

kept AS (
    SELECT segment
    FROM valued
    WHERE segment IS NOT NULL
    GROUP BY segment
    ORDER BY count(*) DESC, segment
    LIMIT $max_personas
)

SELECT
    $persona_type,
    CASE
        WHEN v.segment IS NULL THEN $no_segment
        WHEN v.segment IN (SELECT segment FROM kept) THEN v.segment
        ELSE '(other)'
    END,
    v.customer_key
FROM valued AS v;
