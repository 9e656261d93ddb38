-- Timestamp parsing shared by every source: text in, UTC TIMESTAMP out (sql/raw/append_file.sql).

-- Every reading below is NULL for a text it cannot read, never an error: a row with an odd timestamp (a 23-digit
-- number, 'NaN', 'inf', year 99999) is that row's reject ('unparseable timestamp'), not its file's refusal.

-- A time a reading keeps: years 1 to 9999. Outside them no event happens, and the zone arithmetic of
-- sql/raw/append_file.sql (an hour either side, a zone's offset) could overflow DuckDB's timestamps.
CREATE OR REPLACE TEMP MACRO cjm_in_range(ts) AS (
    CASE WHEN ts BETWEEN TIMESTAMP '0001-01-01 00:00:00' AND TIMESTAMP '9999-12-31 23:59:59.999999' THEN ts END
);

-- Microseconds since 1970 (a DOUBLE or BIGINT, maybe NaN or infinite) as a timestamp in range, else NULL. The
-- range is checked before the cast, which would throw for a value past BIGINT's.
CREATE OR REPLACE TEMP MACRO cjm_epoch_us(x) AS (
    CASE
        WHEN x BETWEEN -62135596800000000 AND 253402300799999999 THEN make_timestamp(CAST(round(x) AS BIGINT))
    END
);

-- Epoch numbers by magnitude: seconds until year 5138, then milliseconds, microseconds, nanoseconds.
CREATE OR REPLACE TEMP MACRO cjm_epoch_auto(x) AS (
    CASE
        WHEN abs(x) < 1e11 THEN cjm_epoch_us(x * 1e6)
        WHEN abs(x) < 1e14 THEN cjm_epoch_us(x * 1e3)
        WHEN abs(x) < 1e17 THEN cjm_epoch_us(x)
        ELSE cjm_epoch_us(x / 1e3)
    END
);

-- fmt: auto | epoch_s | epoch_ms | epoch_us | a strptime pattern (has_zone: the pattern reads %z/%Z).
-- Returns {ts, is_local}: ts is UTC, or (is_local) a wall-clock time still to be read in the source's zone.
-- auto honours an offset, 'Z' or a zone name after the time (e.g. '2019-10-01 00:00:00 UTC').
CREATE OR REPLACE TEMP MACRO cjm_read_ts(s, fmt, has_zone) AS (
    CASE
        WHEN fmt = 'epoch_s' THEN {'ts': cjm_epoch_us(TRY_CAST(s AS DOUBLE) * 1e6), 'is_local': false}
        WHEN fmt = 'epoch_ms' THEN {'ts': cjm_epoch_us(TRY_CAST(s AS DOUBLE) * 1e3), 'is_local': false}
        WHEN fmt = 'epoch_us' THEN {'ts': cjm_epoch_us(TRY_CAST(s AS BIGINT)), 'is_local': false}
        WHEN fmt = 'auto' AND regexp_full_match(s, '[+-]?[0-9]+(\.[0-9]+)?') THEN
            {'ts': cjm_epoch_auto(TRY_CAST(s AS DOUBLE)), 'is_local': false}
        WHEN fmt = 'auto' AND regexp_matches(s, ':[0-9]{2}(\.[0-9]+)?\s*(Z|z|[+-][0-9]{2}(:?[0-9]{2})?|[A-Za-z][A-Za-z0-9_/+-]*)$') THEN
            {'ts': cjm_in_range(timezone('UTC', TRY_CAST(s AS TIMESTAMPTZ))), 'is_local': false}
        WHEN fmt = 'auto' THEN {'ts': cjm_in_range(TRY_CAST(s AS TIMESTAMP)), 'is_local': true}
        WHEN has_zone THEN
            {'ts': cjm_in_range(timezone('UTC', CAST(try_strptime(s, fmt) AS TIMESTAMPTZ))), 'is_local': false}
        ELSE {'ts': cjm_in_range(CAST(try_strptime(s, fmt) AS TIMESTAMP)), 'is_local': true}
    END
);

-- A naive UTC timestamp's wall-clock time in zone tz.
CREATE OR REPLACE TEMP MACRO cjm_wall(utc, tz) AS (timezone(tz, timezone('UTC', utc)));

-- A typed timestamp column needs no parsing (sql/raw/append_file.sql, with timestamp_format auto): it gives
-- the same {ts, is_local} as its text would. TIMESTAMP, DATE and the other precisions are wall-clock times,
-- read in the source's zone like naive text; nanoseconds are cut to microseconds as the text's are.
CREATE OR REPLACE TEMP MACRO cjm_wall_clock_reading(x) AS (
    CASE WHEN x IS NOT NULL THEN {'ts': cjm_in_range(TRY_CAST(x AS TIMESTAMP)), 'is_local': true} END
);

CREATE OR REPLACE TEMP MACRO cjm_wall_clock_ns_reading(x) AS (
    CASE
        WHEN x IS NOT NULL THEN
            {'ts': cjm_epoch_us(epoch_ns(x) // 1000 - CASE WHEN epoch_ns(x) % 1000 < 0 THEN 1 ELSE 0 END),
             'is_local': true}
    END
);

-- A TIMESTAMP WITH TIME ZONE is an instant.
CREATE OR REPLACE TEMP MACRO cjm_instant_reading(x) AS (
    CASE WHEN x IS NOT NULL THEN {'ts': cjm_in_range(timezone('UTC', x)), 'is_local': false} END
);

-- A source's row filter (config `where` / `where_not`, docs/lifecycle.md): filters is a list of
-- {field, globs, keep}. A row is filtered out when a `where` field (keep) has no value matching one of its globs,
-- or a `where_not` field (NOT keep) has one. A field is a canonical column by name, else a property.
CREATE OR REPLACE TEMP MACRO cjm_filtered(filters, event_id, customer_id, anonymous_id, event_name, channel,
                                          properties) AS (
    len(list_filter(filters, lambda f: coalesce(len(list_filter(f.globs, lambda g: (
        CASE f.field
            WHEN 'event_id' THEN event_id
            WHEN 'customer_id' THEN customer_id
            WHEN 'anonymous_id' THEN anonymous_id
            WHEN 'event_name' THEN event_name
            WHEN 'channel' THEN channel
            ELSE json_extract_string(properties, '$.' || to_json(f.field))
        END) GLOB g)) > 0, false) <> f.keep)) > 0
);
