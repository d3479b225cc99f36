-- migrate:up
-- Enterprise edition only: an audit trail per tenant.
CREATE TABLE audit_log (
    tenant uuid NOT NULL REFERENCES tenants (tenant),
    audit_id bigint GENERATED ALWAYS AS IDENTITY,
    actor bigint,
    action text NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, audit_id)
);

-- migrate:down
DROP TABLE audit_log;
