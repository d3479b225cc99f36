-- migrate:up
CREATE TABLE invoice_templates (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    template_id uuid NOT NULL DEFAULT gen_random_uuid(),
    name text NOT NULL,
    layout text NOT NULL,
    is_default boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant, template_id)
);

-- Mistake: the primary key leaves the tenant out, and the keys that point at it below do too
-- (fixed in 20240301090000_add_tenant_to_keys).
CREATE TABLE invoices (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    invoice_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id uuid NOT NULL,
    invoice_number text NOT NULL,
    billing_cycle_id uuid,
    template_id uuid,
    status_id smallint NOT NULL REFERENCES standard_statuses (status_id),
    currency_code char(3) NOT NULL DEFAULT 'USD' REFERENCES currencies (code),
    invoice_date date NOT NULL,
    due_date date NOT NULL,
    subtotal numeric(14, 2) NOT NULL DEFAULT 0,
    tax numeric(14, 2) NOT NULL DEFAULT 0,
    total_amount numeric(14, 2) NOT NULL DEFAULT 0,
    finalized_at timestamptz,
    UNIQUE (tenant, invoice_number),
    FOREIGN KEY (tenant, company_id) REFERENCES companies (tenant, company_id),
    FOREIGN KEY (tenant, billing_cycle_id) REFERENCES company_billing_cycles (tenant, billing_cycle_id),
    FOREIGN KEY (tenant, template_id) REFERENCES invoice_templates (tenant, template_id)
);

CREATE TABLE invoice_items (
    tenant uuid NOT NULL,
    item_id uuid NOT NULL DEFAULT gen_random_uuid(),
    invoice_id uuid NOT NULL REFERENCES invoices (invoice_id) ON DELETE CASCADE,
    service_id uuid,
    description text NOT NULL,
    quantity numeric(12, 2) NOT NULL DEFAULT 1,
    unit_price numeric(12, 2) NOT NULL,
    tax_amount numeric(12, 2) NOT NULL DEFAULT 0,
    net_amount numeric(14, 2) NOT NULL,
    is_manual boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant, item_id),
    FOREIGN KEY (tenant) REFERENCES tenants (tenant) ON DELETE CASCADE,
    FOREIGN KEY (tenant, service_id) REFERENCES service_catalog (tenant, service_id)
);

CREATE TABLE payments (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    payment_id uuid NOT NULL DEFAULT gen_random_uuid(),
    company_id uuid NOT NULL,
    invoice_id uuid REFERENCES invoices (invoice_id),
    amount numeric(14, 2) NOT NULL CHECK (amount > 0),
    payment_method text NOT NULL,
    reference text,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, payment_id),
    FOREIGN KEY (tenant, company_id) REFERENCES companies (tenant, company_id)
);

CREATE TABLE transactions (
    tenant uuid NOT NULL,
    transaction_id uuid NOT NULL DEFAULT gen_random_uuid(),
    company_id uuid NOT NULL,
    payment_id uuid,
    amount numeric(14, 2) NOT NULL,
    type text NOT NULL CHECK (type IN ('invoice_generated', 'payment', 'credit_issuance', 'credit_application', 'adjustment')),
    description text,
    balance_after numeric(14, 2),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, transaction_id),
    FOREIGN KEY (tenant) REFERENCES tenants (tenant) ON DELETE CASCADE,
    FOREIGN KEY (tenant, company_id) REFERENCES companies (tenant, company_id),
    FOREIGN KEY (tenant, payment_id) REFERENCES payments (tenant, payment_id)
);

-- migrate:down
DROP TABLE transactions;
DROP TABLE payments;
DROP TABLE invoice_items;
DROP TABLE invoices;
DROP TABLE invoice_templates;
