-- migrate:up
-- Enterprise edition: single sign-on through a tenant's identity provider.
CREATE TABLE sso_providers (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    provider_id uuid NOT NULL DEFAULT gen_random_uuid(),
    provider_type text NOT NULL CHECK (provider_type IN ('oidc', 'saml')),
    display_name text NOT NULL,
    issuer text NOT NULL,
    client_id text,
    metadata jsonb NOT NULL DEFAULT '{}',
    is_enabled boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant, provider_id),
    UNIQUE (tenant, issuer)
);

CREATE TABLE sso_domains (
    tenant uuid NOT NULL,
    domain text NOT NULL,
    provider_id uuid NOT NULL,
    enforce_sso boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant, domain),
    FOREIGN KEY (tenant, provider_id) REFERENCES sso_providers (tenant, provider_id) ON DELETE CASCADE
);

CREATE TABLE sso_user_identities (
    tenant uuid NOT NULL,
    identity_id uuid NOT NULL DEFAULT gen_random_uuid(),
    provider_id uuid NOT NULL,
    user_id uuid NOT NULL,
    subject text NOT NULL,
    last_login_at timestamptz,
    PRIMARY KEY (tenant, identity_id),
    UNIQUE (tenant, provider_id, subject),
    FOREIGN KEY (tenant, provider_id) REFERENCES sso_providers (tenant, provider_id) ON DELETE CASCADE,
    FOREIGN KEY (tenant, user_id) REFERENCES users (tenant, user_id) ON DELETE CASCADE
);

-- migrate:down
DROP TABLE sso_user_identities;
DROP TABLE sso_domains;
DROP TABLE sso_providers;
