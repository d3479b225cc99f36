-- migrate:up
CREATE TABLE users (
    tenant uuid NOT NULL REFERENCES tenants (tenant),
    user_id bigint GENERATED ALWAYS AS IDENTITY,
    email text NOT NULL,
    PRIMARY KEY (tenant, user_id),
    UNIQUE (tenant, email)
);

-- migrate:down
DROP TABLE users;
