-- The funnel's temp tables hold a row per matching event: free them once the funnel is computed.
DROP TABLE IF EXISTS cjm_funnel_hits;
DROP TABLE IF EXISTS cjm_funnel_specs;
