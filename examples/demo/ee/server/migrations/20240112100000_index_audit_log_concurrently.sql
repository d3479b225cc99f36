-- migrate:up transaction:false
-- CREATE INDEX CONCURRENTLY cannot run in a transaction block.
CREATE INDEX CONCURRENTLY IF NOT EXISTS audit_log_at_idx ON audit_log (tenant, at);

-- migrate:down transaction:false
DROP INDEX CONCURRENTLY IF EXISTS audit_log_at_idx;
