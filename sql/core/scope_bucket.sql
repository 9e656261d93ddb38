-- Which bucket of the customers in scope a core statement works on (core.bucket_count, core.in_buckets): the
-- per-customer steps loop over buckets, so that each statement's window sorts and aggregates hold one bucket's
-- events, not all of them.

-- The high 32 bits of the hash: a Dask bucket (hash % engine.buckets, the low bits: distributed.py) split again
-- here must spread over every local bucket, not fall into one of them.
CREATE OR REPLACE TEMP MACRO cjm_local_bucket(customer_key, buckets) AS
    (hash(customer_key) >> 32) % buckets;

-- Every customer in scope (one bucket) until core.in_buckets redefines it with the bucket's number as a
-- constant. Written on a table, the filter is evaluated inside its scan; through a view such as
-- scope_raw_events DuckDB 2.0 evaluates it after the scan, and a form it pushes there (a hash range) was
-- measured no cheaper (docs/performance.md, "Events written once").
CREATE OR REPLACE TEMP MACRO cjm_in_scope_bucket(customer_key) AS true;
