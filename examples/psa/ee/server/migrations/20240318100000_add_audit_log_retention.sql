-- migrate:up transaction:false
-- Enterprise edition: audit entries expire per the tenant's retention policy. Runs after the
-- move to Citus: the column and the index reach every shard, and the index is built without
-- blocking writes (outside a transaction, so statement by statement).
ALTER TABLE audit_logs ADD COLUMN expires_at timestamptz;
CREATE INDEX CONCURRENTLY audit_logs_expires_at ON audit_logs (tenant, expires_at) WHERE expires_at IS NOT NULL;

-- migrate:down
ALTER TABLE audit_logs DROP COLUMN expires_at; -- drops audit_logs_expires_at with it
