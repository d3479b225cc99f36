-- migrate:up
-- The root of every tenant's data, and the lookup tables every tenant shares.

CREATE TABLE tenants (
    tenant uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    company_name text NOT NULL,
    email text NOT NULL,
    phone_number text,
    plan text NOT NULL DEFAULT 'standard',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE countries (
    code char(2) PRIMARY KEY,
    name text NOT NULL,
    phone_code text
);

CREATE TABLE currencies (
    code char(3) PRIMARY KEY,
    name text NOT NULL,
    symbol text NOT NULL,
    minor_units smallint NOT NULL DEFAULT 2
);

CREATE TABLE standard_priorities (
    priority_id smallint PRIMARY KEY,
    priority_name text NOT NULL UNIQUE,
    order_number smallint NOT NULL,
    color text NOT NULL
);

CREATE TABLE standard_statuses (
    status_id smallint PRIMARY KEY,
    name text NOT NULL,
    item_type text NOT NULL CHECK (item_type IN ('ticket', 'project', 'project_task', 'invoice')),
    order_number smallint NOT NULL,
    is_closed boolean NOT NULL DEFAULT false,
    UNIQUE (item_type, name)
);

CREATE TABLE notification_categories (
    category_id smallint PRIMARY KEY,
    name text NOT NULL UNIQUE,
    description text,
    is_enabled boolean NOT NULL DEFAULT true
);

CREATE TABLE tenant_settings (
    tenant uuid PRIMARY KEY REFERENCES tenants (tenant) ON DELETE CASCADE,
    default_currency char(3) NOT NULL DEFAULT 'USD' REFERENCES currencies (code),
    country_code char(2) REFERENCES countries (code),
    timezone text NOT NULL DEFAULT 'UTC',
    onboarding_completed boolean NOT NULL DEFAULT false,
    settings jsonb NOT NULL DEFAULT '{}'
);

-- Control plane: written before a tenant row exists and polled across all tenants by the
-- provisioning worker (kept local on Citus, see colocate.toml).
CREATE TABLE tenant_provisioning_jobs (
    job_id bigserial PRIMARY KEY,
    tenant uuid NOT NULL,
    kind text NOT NULL,
    state text NOT NULL DEFAULT 'queued',
    attempts integer NOT NULL DEFAULT 0,
    run_after timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tenant_provisioning_jobs_ready ON tenant_provisioning_jobs (run_after) WHERE state = 'queued';

-- Instance-wide settings, no tenant: stays a plain local table.
CREATE TABLE system_settings (
    key text PRIMARY KEY,
    value jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO countries (code, name, phone_code) VALUES
    ('US', 'United States', '+1'), ('CA', 'Canada', '+1'), ('GB', 'United Kingdom', '+44'),
    ('DE', 'Germany', '+49'), ('FR', 'France', '+33'), ('NZ', 'New Zealand', '+64'),
    ('AU', 'Australia', '+61');
INSERT INTO currencies (code, name, symbol) VALUES
    ('USD', 'US Dollar', '$'), ('EUR', 'Euro', '€'), ('GBP', 'Pound Sterling', '£'),
    ('CAD', 'Canadian Dollar', '$'), ('NZD', 'New Zealand Dollar', '$');
INSERT INTO standard_priorities (priority_id, priority_name, order_number, color) VALUES
    (1, 'Low', 1, '#6b7280'), (2, 'Medium', 2, '#2563eb'), (3, 'High', 3, '#f59e0b'),
    (4, 'Urgent', 4, '#dc2626');
INSERT INTO standard_statuses (status_id, name, item_type, order_number, is_closed) VALUES
    (1, 'New', 'ticket', 1, false), (2, 'In Progress', 'ticket', 2, false),
    (3, 'Waiting on Client', 'ticket', 3, false), (4, 'Closed', 'ticket', 4, true),
    (10, 'Planned', 'project', 1, false), (11, 'Active', 'project', 2, false),
    (12, 'Completed', 'project', 3, true),
    (20, 'To Do', 'project_task', 1, false), (21, 'Doing', 'project_task', 2, false),
    (22, 'Done', 'project_task', 3, true),
    (30, 'Draft', 'invoice', 1, false), (31, 'Sent', 'invoice', 2, false),
    (32, 'Paid', 'invoice', 3, true);
INSERT INTO notification_categories (category_id, name, description) VALUES
    (1, 'tickets', 'Ticket created, assigned, updated or closed'),
    (2, 'invoices', 'Invoice generated or paid'),
    (3, 'projects', 'Project and task assignments'),
    (4, 'time_entries', 'Time sheets submitted or approved');

-- migrate:down
DROP TABLE system_settings;
DROP TABLE tenant_provisioning_jobs;
DROP TABLE tenant_settings;
DROP TABLE notification_categories;
DROP TABLE standard_statuses;
DROP TABLE standard_priorities;
DROP TABLE currencies;
DROP TABLE countries;
DROP TABLE tenants;
