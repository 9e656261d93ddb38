-- Deal / opportunity stage history exported from a CRM as CSV (HubSpot deal stage history, Salesforce
-- OpportunityFieldHistory or OpportunityHistory, ...) -> temp view preset_rows, one stage change per row.
-- The header's names are matched case-insensitively, with runs of other characters read as '_'
-- ('Deal ID' = deal_id, 'Opportunity.AccountId' = opportunity_accountid); per role the first alias found wins.
CREATE OR REPLACE TEMP TABLE crm_stage_roles AS
SELECT * FROM (VALUES
    (1, 'deal_id', true, ['deal_id', 'dealid', 'opportunity_id', 'opportunityid', 'record_id', 'hs_object_id']),
    (2, 'customer_id', true, ['customer_id', 'account_id', 'accountid', 'opportunity_accountid', 'company_id',
                              'companyid']),
    (3, 'to_stage', true, ['stage', 'to_stage', 'new_stage', 'deal_stage', 'dealstage', 'stagename', 'stage_name',
                           'new_value', 'newvalue']),
    (4, 'changed_at', true, ['changed_at', 'stage_changed_at', 'createddate', 'created_date', 'timestamp', 'date']),
    (5, 'from_stage', false, ['from_stage', 'old_stage', 'previous_stage', 'old_value', 'oldvalue']),
    (6, 'channel', false, ['channel', 'lead_source', 'leadsource']),
    (7, 'field', false, ['field'])  -- field history exports hold other fields' changes too
) AS roles (position, role, required, aliases);

CREATE OR REPLACE TEMP TABLE crm_stage_columns AS
WITH header AS (
    SELECT
        column_name,
        position,
        trim(regexp_replace(lower(column_name), '[^a-z0-9]+', '_', 'g'), '_') AS normalized
    FROM (
        SELECT
            unnest(CAST($header AS VARCHAR[])) AS column_name,
            unnest(range(len(CAST($header AS VARCHAR[])))) AS position
    )
),

aliases AS (
    SELECT
        role,
        unnest(aliases) AS alias,
        unnest(range(len(aliases))) AS priority
    FROM crm_stage_roles
)

SELECT
    a.role,
    arg_min(h.column_name, (a.priority, h.position)) AS column_name  -- 'Stage' and 'stage': the first
FROM aliases AS a
INNER JOIN header AS h ON h.normalized = a.alias
GROUP BY a.role;

-- A file without a required column is refused whole (an empty file has no header and loads nothing).
SELECT error(
    'columns missing from the file: '
    || string_agg(role || ' (one of ' || array_to_string(aliases, ', ') || ')', '; ' ORDER BY position)
    || ' (it has: ' || array_to_string(CAST($header AS VARCHAR[]), ', ') || ')'
)
FROM crm_stage_roles
WHERE required
    AND len(CAST($header AS VARCHAR[])) > 0
    AND role NOT IN (SELECT role FROM crm_stage_columns)
HAVING count(*) > 0;

-- A field history row about another field (Amount, CloseDate, ...) is not a stage change.
CREATE OR REPLACE TEMP TABLE crm_stage_other_fields AS
WITH field_column AS (
    SELECT column_name, '$.' || CAST(to_json(column_name) AS VARCHAR) AS path
    FROM crm_stage_columns
    WHERE role = 'field'
)

SELECT
    f._record,
    'not a stage change (' || c.column_name || ' = ' || coalesce(json_extract_string(f.line, c.path), '') || ')'
        AS reason,
    f.line
FROM staged_file AS f
CROSS JOIN field_column AS c
WHERE coalesce(trim(regexp_replace(lower(json_extract_string(f.line, c.path)), '[^a-z0-9]+', '_', 'g'), '_'), '')
    NOT IN ('stage', 'stagename', 'stage_name', 'dealstage', 'deal_stage');

INSERT INTO staged_parse_rejects SELECT * FROM crm_stage_other_fields;

DELETE FROM staged_file WHERE _record IN (SELECT _record FROM crm_stage_other_fields);

CREATE OR REPLACE TEMP VIEW preset_rows AS
WITH paths AS (  -- one row: the JSON path of each role's column in this file (NULL: no such column)
    SELECT
        max(path) FILTER (WHERE role = 'deal_id') AS deal_id,
        max(path) FILTER (WHERE role = 'customer_id') AS customer_id,
        max(path) FILTER (WHERE role = 'to_stage') AS to_stage,
        max(path) FILTER (WHERE role = 'from_stage') AS from_stage,
        max(path) FILTER (WHERE role = 'changed_at') AS changed_at,
        max(path) FILTER (WHERE role = 'channel') AS channel,
        -- {"<column>": null, ...}: patched onto a row, it removes the columns mapped above
        coalesce(json_group_object(column_name, NULL), '{}') AS mapped_columns
    FROM (SELECT *, '$.' || CAST(to_json(column_name) AS VARCHAR) AS path FROM crm_stage_columns)
),

changes AS (
    SELECT
        f._record,
        f.line,
        p.mapped_columns,
        nullif(trim(json_extract_string(f.line, p.deal_id)), '') AS deal_id,
        json_extract_string(f.line, p.customer_id) AS customer_id,
        nullif(trim(json_extract_string(f.line, p.to_stage)), '') AS to_stage,
        nullif(trim(json_extract_string(f.line, p.from_stage)), '') AS from_stage,
        nullif(trim(json_extract_string(f.line, p.changed_at)), '') AS changed_at,
        json_extract_string(f.line, p.channel) AS channel
    FROM staged_file AS f
    CROSS JOIN paths AS p
)

SELECT
    _record AS row_number,
    -- The same change in a later export is the same event, whatever else the export adds.
    md5(deal_id || chr(31) || to_stage || chr(31) || changed_at) AS given_event_id,
    customer_id,
    CAST(NULL AS VARCHAR) AS anonymous_id,
    'deal_stage:' || to_stage AS event_name,
    changed_at AS ts_text,
    channel,
    json_merge_patch(
        json_merge_patch(CAST(line AS JSON), mapped_columns),
        json_merge_patch('{}', json_object('deal_id', deal_id, 'from_stage', from_stage, 'to_stage', to_stage))
    ) AS properties,
    line AS raw
FROM changes;
