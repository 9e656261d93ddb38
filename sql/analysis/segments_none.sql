-- No breakdown: an empty cjm_customer_segment, so every customer falls in one segment.
CREATE OR REPLACE TEMP TABLE cjm_customer_segment (customer_key VARCHAR, segment VARCHAR);
