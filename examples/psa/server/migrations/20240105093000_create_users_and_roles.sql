-- migrate:up
CREATE TABLE users (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    user_id uuid NOT NULL DEFAULT gen_random_uuid(),
    username text NOT NULL,
    email text NOT NULL,
    first_name text,
    last_name text,
    hashed_password text,
    user_type text NOT NULL DEFAULT 'internal' CHECK (user_type IN ('internal', 'client')),
    is_inactive boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, user_id),
    UNIQUE (tenant, email),
    UNIQUE (tenant, username)
);

CREATE TABLE roles (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    role_id uuid NOT NULL DEFAULT gen_random_uuid(),
    role_name text NOT NULL,
    description text,
    is_client_role boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant, role_id),
    UNIQUE (tenant, role_name)
);

CREATE TABLE permissions (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    permission_id uuid NOT NULL DEFAULT gen_random_uuid(),
    resource text NOT NULL,
    action text NOT NULL,
    PRIMARY KEY (tenant, permission_id),
    UNIQUE (tenant, resource, action)
);

CREATE TABLE role_permissions (
    tenant uuid NOT NULL,
    role_id uuid NOT NULL,
    permission_id uuid NOT NULL,
    PRIMARY KEY (tenant, role_id, permission_id),
    FOREIGN KEY (tenant, role_id) REFERENCES roles (tenant, role_id) ON DELETE CASCADE,
    FOREIGN KEY (tenant, permission_id) REFERENCES permissions (tenant, permission_id) ON DELETE CASCADE
);

CREATE TABLE user_roles (
    tenant uuid NOT NULL,
    user_id uuid NOT NULL,
    role_id uuid NOT NULL,
    PRIMARY KEY (tenant, user_id, role_id),
    FOREIGN KEY (tenant, user_id) REFERENCES users (tenant, user_id) ON DELETE CASCADE,
    FOREIGN KEY (tenant, role_id) REFERENCES roles (tenant, role_id) ON DELETE CASCADE
);

CREATE TABLE teams (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    team_id uuid NOT NULL DEFAULT gen_random_uuid(),
    team_name text NOT NULL,
    manager_id uuid,
    PRIMARY KEY (tenant, team_id),
    UNIQUE (tenant, team_name),
    FOREIGN KEY (tenant, manager_id) REFERENCES users (tenant, user_id)
);

CREATE TABLE team_members (
    tenant uuid NOT NULL,
    team_id uuid NOT NULL,
    user_id uuid NOT NULL,
    joined_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, team_id, user_id),
    FOREIGN KEY (tenant, team_id) REFERENCES teams (tenant, team_id) ON DELETE CASCADE,
    FOREIGN KEY (tenant, user_id) REFERENCES users (tenant, user_id) ON DELETE CASCADE
);

CREATE TABLE user_preferences (
    tenant uuid NOT NULL,
    user_id uuid NOT NULL,
    setting_name text NOT NULL,
    setting_value jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, user_id, setting_name),
    FOREIGN KEY (tenant, user_id) REFERENCES users (tenant, user_id) ON DELETE CASCADE
);

CREATE TABLE api_keys (
    tenant uuid NOT NULL,
    api_key_id uuid NOT NULL DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL,
    key_hash text NOT NULL,
    description text,
    last_used_at timestamptz,
    expires_at timestamptz,
    PRIMARY KEY (tenant, api_key_id),
    UNIQUE (tenant, key_hash),
    FOREIGN KEY (tenant, user_id) REFERENCES users (tenant, user_id) ON DELETE CASCADE
);

-- migrate:down
DROP TABLE api_keys;
DROP TABLE user_preferences;
DROP TABLE team_members;
DROP TABLE teams;
DROP TABLE user_roles;
DROP TABLE role_permissions;
DROP TABLE permissions;
DROP TABLE roles;
DROP TABLE users;
