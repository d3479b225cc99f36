-- migrate:up
CREATE TABLE tax_rates (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    tax_rate_id uuid NOT NULL DEFAULT gen_random_uuid(),
    region_code text NOT NULL,
    name text NOT NULL,
    percentage numeric(6, 3) NOT NULL CHECK (percentage >= 0),
    is_active boolean NOT NULL DEFAULT true,
    PRIMARY KEY (tenant, tax_rate_id)
);

CREATE TABLE service_categories (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    category_id uuid NOT NULL DEFAULT gen_random_uuid(),
    category_name text NOT NULL,
    description text,
    PRIMARY KEY (tenant, category_id),
    UNIQUE (tenant, category_name)
);

CREATE TABLE service_catalog (
    tenant uuid NOT NULL,
    service_id uuid NOT NULL DEFAULT gen_random_uuid(),
    service_name text NOT NULL,
    category_id uuid,
    billing_method text NOT NULL CHECK (billing_method IN ('fixed', 'per_unit', 'hourly')),
    default_rate numeric(12, 2) NOT NULL DEFAULT 0,
    unit_of_measure text,
    tax_rate_id uuid,
    is_active boolean NOT NULL DEFAULT true,
    PRIMARY KEY (tenant, service_id),
    FOREIGN KEY (tenant) REFERENCES tenants (tenant) ON DELETE CASCADE,
    FOREIGN KEY (tenant, category_id) REFERENCES service_categories (tenant, category_id),
    FOREIGN KEY (tenant, tax_rate_id) REFERENCES tax_rates (tenant, tax_rate_id)
);

CREATE TABLE billing_plans (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    plan_id uuid NOT NULL DEFAULT gen_random_uuid(),
    plan_name text NOT NULL,
    description text,
    billing_frequency text NOT NULL CHECK (billing_frequency IN ('weekly', 'monthly', 'quarterly', 'annually')),
    plan_type text NOT NULL CHECK (plan_type IN ('fixed', 'hourly', 'usage', 'bucket')),
    is_custom boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant, plan_id),
    UNIQUE (tenant, plan_name)
);

CREATE TABLE plan_services (
    tenant uuid NOT NULL,
    plan_id uuid NOT NULL,
    service_id uuid NOT NULL,
    quantity numeric(12, 2),
    custom_rate numeric(12, 2),
    PRIMARY KEY (tenant, plan_id, service_id),
    FOREIGN KEY (tenant, plan_id) REFERENCES billing_plans (tenant, plan_id) ON DELETE CASCADE,
    FOREIGN KEY (tenant, service_id) REFERENCES service_catalog (tenant, service_id)
);

CREATE TABLE plan_bundles (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    bundle_id uuid NOT NULL DEFAULT gen_random_uuid(),
    bundle_name text NOT NULL,
    description text,
    is_active boolean NOT NULL DEFAULT true,
    PRIMARY KEY (tenant, bundle_id)
);

CREATE TABLE bundle_billing_plans (
    tenant uuid NOT NULL,
    bundle_id uuid NOT NULL,
    plan_id uuid NOT NULL,
    display_order integer NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, bundle_id, plan_id),
    FOREIGN KEY (tenant, bundle_id) REFERENCES plan_bundles (tenant, bundle_id) ON DELETE CASCADE,
    FOREIGN KEY (tenant, plan_id) REFERENCES billing_plans (tenant, plan_id)
);

CREATE TABLE company_billing_plans (
    tenant uuid NOT NULL,
    company_billing_plan_id uuid NOT NULL DEFAULT gen_random_uuid(),
    company_id uuid NOT NULL,
    plan_id uuid NOT NULL,
    start_date date NOT NULL,
    end_date date,
    is_active boolean NOT NULL DEFAULT true,
    PRIMARY KEY (tenant, company_billing_plan_id),
    FOREIGN KEY (tenant, company_id) REFERENCES companies (tenant, company_id) ON DELETE CASCADE,
    FOREIGN KEY (tenant, plan_id) REFERENCES billing_plans (tenant, plan_id),
    CHECK (end_date IS NULL OR end_date >= start_date)
);

CREATE TABLE company_billing_cycles (
    tenant uuid NOT NULL,
    billing_cycle_id uuid NOT NULL DEFAULT gen_random_uuid(),
    company_id uuid NOT NULL,
    billing_cycle text NOT NULL,
    period_start_date date NOT NULL,
    period_end_date date NOT NULL,
    effective_date date NOT NULL,
    PRIMARY KEY (tenant, billing_cycle_id),
    UNIQUE (tenant, company_id, period_start_date),
    FOREIGN KEY (tenant, company_id) REFERENCES companies (tenant, company_id) ON DELETE CASCADE
);

CREATE TABLE company_tax_settings (
    tenant uuid NOT NULL,
    company_id uuid NOT NULL,
    tax_rate_id uuid,
    is_reverse_charge_applicable boolean NOT NULL DEFAULT false,
    tax_exempt_reason text,
    PRIMARY KEY (tenant, company_id),
    FOREIGN KEY (tenant, company_id) REFERENCES companies (tenant, company_id) ON DELETE CASCADE,
    FOREIGN KEY (tenant, tax_rate_id) REFERENCES tax_rates (tenant, tax_rate_id)
);

-- migrate:down
DROP TABLE company_tax_settings;
DROP TABLE company_billing_cycles;
DROP TABLE company_billing_plans;
DROP TABLE bundle_billing_plans;
DROP TABLE plan_bundles;
DROP TABLE plan_services;
DROP TABLE billing_plans;
DROP TABLE service_catalog;
DROP TABLE service_categories;
DROP TABLE tax_rates;
