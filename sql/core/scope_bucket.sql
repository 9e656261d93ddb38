-- Which bucket of the customers in scope a core statement works on (core.bucket_count, core.in_buckets): the
-- per-customer steps loop over buckets, so that each statement's window sorts and aggregates hold one bucket's
-- events, not all of them.

-- Every customer in scope (one bucket) until core.in_buckets redefines it as a range of hash(customer_key) with
-- constant bounds. A range, not hash % n: DuckDB evaluates a column's range inside the scan and skips the row
-- groups whose min/max lie outside it, so a table written bucket by bucket (keyed_events, events) is read one
-- bucket's rows at a time. The range is of the high bits: a Dask bucket (hash % engine.buckets, the low bits:
-- distributed.py) split again here spreads over every local bucket.
CREATE OR REPLACE TEMP MACRO cjm_in_scope_bucket(customer_hash) AS true;
