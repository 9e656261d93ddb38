-- GA4's BigQuery export, one event per record (https://support.google.com/analytics/answer/7029846)
-- -> temp view preset_rows. GA4 has no event id: the loader hashes the record (raw) instead.
CREATE OR REPLACE TEMP VIEW preset_rows AS
WITH records AS (
    SELECT
        _record,
        line,
        CAST(line AS JSON) AS record
    FROM staged_file
),

-- event_params: [{key, value: {string_value | int_value | float_value | double_value}}] -> {key: value as text}.
params AS (
    SELECT
        _record,
        unnest(params) AS param,
        unnest(range(len(params))) AS position
    FROM (SELECT _record, TRY_CAST(record -> 'event_params' AS JSON[]) AS params FROM records)
),

param_values AS (
    SELECT
        _record,
        position,
        param ->> 'key' AS key,
        coalesce(
            param -> 'value' ->> 'string_value',
            param -> 'value' ->> 'int_value',
            param -> 'value' ->> 'double_value',
            param -> 'value' ->> 'float_value'
        ) AS value
    FROM params
    WHERE param ->> 'key' IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY _record, key ORDER BY position) = 1  -- a repeated key: the first
),

flat_params AS (
    SELECT
        _record,
        CAST(to_json(map(list(key ORDER BY position), list(value ORDER BY position))) AS JSON) AS params
    FROM param_values
    GROUP BY _record
),

events AS (
    SELECT
        r.*,
        coalesce(p.params, '{}') AS params,
        r.record ->> 'event_timestamp' AS event_timestamp
    FROM records AS r
    LEFT JOIN flat_params AS p USING (_record)
)

SELECT
    _record AS row_number,
    CAST(NULL AS VARCHAR) AS given_event_id,
    record ->> 'user_id' AS customer_id,
    record ->> 'user_pseudo_id' AS anonymous_id,
    record ->> 'event_name' AS event_name,
    -- Microseconds since the epoch (a string in BigQuery's JSON, an integer in Parquet), read here as UTC;
    -- anything else is passed on to be judged (and rejected) like any timestamp.
    CASE
        WHEN regexp_full_match(trim(event_timestamp), '[0-9]{1,17}')
            THEN strftime(make_timestamp(CAST(trim(event_timestamp) AS BIGINT)), '%Y-%m-%dT%H:%M:%S.%fZ')
        ELSE event_timestamp
    END AS ts_text,
    -- The event's own medium (UTM-tagged hits), else the user's first-touch medium.
    coalesce(
        record -> 'collected_traffic_source' ->> 'manual_medium',
        params ->> 'medium',
        record -> 'traffic_source' ->> 'medium'
    ) AS channel,
    json_merge_patch(
        json_merge_patch('{}', json_object(  -- patching {} drops the keys whose value is null
            'platform', record ->> 'platform',
            'stream_id', record ->> 'stream_id',
            'device_category', record -> 'device' ->> 'category',
            'country', record -> 'geo' ->> 'country',
            'first_user_source', record -> 'traffic_source' ->> 'source',
            'first_user_medium', record -> 'traffic_source' ->> 'medium',
            'first_user_campaign', record -> 'traffic_source' ->> 'name'
        )),
        params
    ) AS properties,
    line AS raw
FROM events;
