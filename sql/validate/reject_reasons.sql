-- Per source, why rows would be rejected: each reason with its count and the first row (file, row) that has it.
SELECT
    source,
    reason,
    count(*) AS rows_rejected,
    min({'file': file, 'row_number': row_number}) AS first
FROM rejects
GROUP BY source, reason
ORDER BY source, rows_rejected DESC, reason;
