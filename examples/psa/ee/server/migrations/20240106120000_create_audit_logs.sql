-- migrate:up
-- Enterprise edition: who changed what, per tenant.
CREATE TABLE audit_logs (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    audit_id bigint GENERATED ALWAYS AS IDENTITY,
    user_id uuid,
    table_name text NOT NULL,
    operation text NOT NULL CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE')),
    record_id uuid NOT NULL,
    changed_data jsonb NOT NULL DEFAULT '{}',
    details jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, audit_id),
    FOREIGN KEY (tenant, user_id) REFERENCES users (tenant, user_id)
);
CREATE INDEX audit_logs_record ON audit_logs (tenant, table_name, record_id);

-- migrate:down
DROP TABLE audit_logs;
