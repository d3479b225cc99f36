-- migrate:up
CREATE TABLE tenants (
    tenant uuid PRIMARY KEY,
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- migrate:down
DROP TABLE tenants;
