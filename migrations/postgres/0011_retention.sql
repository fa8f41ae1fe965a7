-- Retention ([retention] deliveries): the hourly prune deletes delivery
-- records and finished jobs by age; these indexes keep that a range scan
-- instead of a walk over every row ever recorded.
CREATE INDEX webhook_deliveries_received ON webhook_deliveries (received_at);
CREATE INDEX jobs_finished ON jobs (updated_at) WHERE state IN ('done', 'dead');
-- The periodic jobs (retention) look up their last run by dedup key.
CREATE INDEX jobs_dedup_created ON jobs (dedup_key, created_at);
