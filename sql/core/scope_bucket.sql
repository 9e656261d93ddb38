-- Which bucket of the customers in scope a core statement works on (core.bucket_count, core.in_buckets): the
-- per-customer steps loop over buckets, so that each statement's window sorts and aggregates hold one bucket's
-- events, not all of them.

-- The high 32 bits of the hash: a Dask bucket (hash % engine.buckets, the low bits: distributed.py) split again
-- here must spread over every local bucket, not fall into one of them.
CREATE OR REPLACE TEMP MACRO cjm_local_bucket(customer_key, buckets) AS
    (hash(customer_key) >> 32) % buckets;

-- Every customer in scope (one bucket) until core.in_buckets redefines it with the bucket's number as a
-- constant: a filter on one column with constants is evaluated inside the table scan, so the other columns are
-- only read for the bucket's rows.
CREATE OR REPLACE TEMP MACRO cjm_in_scope_bucket(customer_key) AS true;
