-- Snowplow enriched events (https://docs.snowplow.io/docs/fundamentals/canonical-event/), from the canonical
-- TSV or the Analytics SDK's JSON lines, one event per record -> temp view preset_rows.
CREATE OR REPLACE TEMP VIEW preset_rows AS
WITH events AS (
    SELECT
        _record,
        line,
        CAST(line AS JSON) AS event
    FROM staged_file
),

picked AS (
    SELECT
        *,
        -- derived_tstamp corrects the device clock; collector_tstamp is always set.
        coalesce(nullif(event ->> 'derived_tstamp', ''), event ->> 'collector_tstamp') AS tstamp
    FROM events
)

SELECT
    _record AS row_number,
    event ->> 'event_id' AS given_event_id,
    event ->> 'user_id' AS customer_id,
    event ->> 'domain_userid' AS anonymous_id,
    coalesce(nullif(event ->> 'event_name', ''), event ->> 'event') AS event_name,
    -- Snowplow times are UTC: the TSV writes them without a zone ('2026-11-01 10:00:00.123').
    CASE
        WHEN regexp_full_match(tstamp, '[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?')
            THEN tstamp || 'Z'
        ELSE tstamp
    END AS ts_text,
    -- The campaign's medium (utm_medium), else the one inferred from the referrer; a referrer on the
    -- site itself ('internal') says nothing about how the visitor came.
    coalesce(nullif(event ->> 'mkt_medium', ''), nullif(nullif(event ->> 'refr_medium', ''), 'internal')) AS channel,
    json_merge_patch('{}', json_object(  -- patching {} drops the keys whose value is null
        'event', event ->> 'event',
        'app_id', event ->> 'app_id',
        'platform', event ->> 'platform',
        'network_userid', event ->> 'network_userid',
        'domain_sessionid', event ->> 'domain_sessionid',
        'domain_sessionidx', event ->> 'domain_sessionidx',
        'page_url', event ->> 'page_url',
        'page_urlpath', event ->> 'page_urlpath',
        'page_title', event ->> 'page_title',
        'page_referrer', event ->> 'page_referrer',
        'refr_medium', event ->> 'refr_medium',
        'refr_source', event ->> 'refr_source',
        'refr_urlhost', event ->> 'refr_urlhost',
        'mkt_medium', event ->> 'mkt_medium',
        'mkt_source', event ->> 'mkt_source',
        'mkt_campaign', event ->> 'mkt_campaign',
        'mkt_term', event ->> 'mkt_term',
        'mkt_content', event ->> 'mkt_content',
        'se_category', event ->> 'se_category',
        'se_action', event ->> 'se_action',
        'se_label', event ->> 'se_label',
        'se_property', event ->> 'se_property',
        'se_value', event ->> 'se_value',
        'tr_orderid', event ->> 'tr_orderid',
        'tr_total', event ->> 'tr_total',
        'tr_currency', event ->> 'tr_currency'
    )) AS properties,
    line AS raw
FROM picked;
