-- Segment spec messages (JSON lines; https://segment.com/docs/connections/spec/) -> temp view preset_rows.
-- identify and alias carry a userId together with an anonymous id, so they feed identity stitching.
CREATE OR REPLACE TEMP VIEW preset_rows AS
WITH messages AS (
    SELECT
        _record,
        line,
        CAST(line AS JSON) AS message
    FROM staged_file
),

typed AS (
    SELECT
        *,
        lower(message ->> 'type') AS type,
        message -> 'context' -> 'campaign' AS campaign
    FROM messages
),

-- What the message says besides the mapped fields; the sender's own `properties` win on a name clash.
described AS (
    SELECT
        *,
        json_merge_patch(
            json_merge_patch('{}', json_object(  -- patching {} drops the keys whose value is null
                'name', message ->> 'name',
                'category', message ->> 'category',
                'group_id', message ->> 'groupId',
                'path', message -> 'context' -> 'page' ->> 'path',
                'utm_source', campaign ->> 'source',
                'utm_medium', campaign ->> 'medium',
                'utm_campaign', campaign ->> 'name'
            )),
            CASE WHEN json_type(message -> 'properties') = 'OBJECT' THEN message -> 'properties' ELSE '{}' END
        ) AS properties
    FROM typed
)

SELECT
    _record AS row_number,
    message ->> 'messageId' AS given_event_id,
    message ->> 'userId' AS customer_id,
    -- alias: the previous id becomes an anonymous id of the user it is aliased to.
    CASE
        WHEN type = 'alias' THEN coalesce(message ->> 'previousId', message ->> 'anonymousId')
        ELSE message ->> 'anonymousId'
    END AS anonymous_id,
    CASE type
        WHEN 'page' THEN 'page_viewed'
        WHEN 'screen' THEN 'screen_viewed'
        WHEN 'identify' THEN 'identify'
        WHEN 'alias' THEN 'alias'
        WHEN 'group' THEN 'group'
        ELSE message ->> 'event'  -- track (or a message without a type)
    END AS event_name,
    coalesce(message ->> 'timestamp', message ->> 'receivedAt') AS ts_text,
    campaign ->> 'medium' AS channel,
    properties,
    line AS raw
FROM described;
