-- Timestamp parsing shared by every source: text in, UTC TIMESTAMP out, NULL when it cannot be read.

-- Epoch numbers by magnitude: seconds until year 5138, then milliseconds, microseconds, nanoseconds.
CREATE OR REPLACE TEMP MACRO cjm_epoch_auto(x) AS (
    CASE
        WHEN abs(x) < 1e11 THEN make_timestamp(CAST(round(x * 1e6) AS BIGINT))
        WHEN abs(x) < 1e14 THEN make_timestamp(CAST(round(x * 1e3) AS BIGINT))
        WHEN abs(x) < 1e17 THEN make_timestamp(CAST(round(x) AS BIGINT))
        ELSE make_timestamp(CAST(round(x / 1e3) AS BIGINT))
    END
);

-- fmt: auto | epoch_s | epoch_ms | epoch_us | a strptime pattern (has_zone: the pattern reads %z/%Z).
-- auto honours an offset, 'Z' or a zone name after the time (e.g. '2019-10-01 00:00:00 UTC');
-- naive times are local times in tz.
CREATE OR REPLACE TEMP MACRO cjm_parse_ts(s, fmt, tz, has_zone) AS (
    CASE
        WHEN fmt = 'epoch_s' THEN make_timestamp(CAST(round(TRY_CAST(s AS DOUBLE) * 1e6) AS BIGINT))
        WHEN fmt = 'epoch_ms' THEN make_timestamp(CAST(round(TRY_CAST(s AS DOUBLE) * 1e3) AS BIGINT))
        WHEN fmt = 'epoch_us' THEN make_timestamp(TRY_CAST(s AS BIGINT))
        WHEN fmt = 'auto' AND regexp_full_match(s, '[+-]?[0-9]+(\.[0-9]+)?') THEN
            cjm_epoch_auto(TRY_CAST(s AS DOUBLE))
        WHEN fmt = 'auto' AND regexp_matches(s, ':[0-9]{2}(\.[0-9]+)?\s*(Z|z|[+-][0-9]{2}(:?[0-9]{2})?|[A-Za-z][A-Za-z0-9_/+-]*)$') THEN
            timezone('UTC', TRY_CAST(s AS TIMESTAMPTZ))
        WHEN fmt = 'auto' THEN timezone('UTC', timezone(tz, TRY_CAST(s AS TIMESTAMP)))
        WHEN has_zone THEN timezone('UTC', CAST(try_strptime(s, fmt) AS TIMESTAMPTZ))
        ELSE timezone('UTC', timezone(tz, CAST(try_strptime(s, fmt) AS TIMESTAMP)))
    END
);
