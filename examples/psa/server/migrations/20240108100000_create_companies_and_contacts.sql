-- migrate:up
CREATE TABLE companies (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    company_id uuid NOT NULL DEFAULT gen_random_uuid(),
    company_name text NOT NULL,
    client_type text NOT NULL DEFAULT 'company' CHECK (client_type IN ('company', 'individual')),
    url text,
    country_code char(2) REFERENCES countries (code),
    account_manager_id uuid,
    primary_contact_id uuid,
    credit_balance numeric(14, 2) NOT NULL DEFAULT 0,
    is_inactive boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, company_id),
    UNIQUE (tenant, company_name),
    FOREIGN KEY (tenant, account_manager_id) REFERENCES users (tenant, user_id)
);

CREATE TABLE company_locations (
    tenant uuid NOT NULL,
    location_id uuid NOT NULL DEFAULT gen_random_uuid(),
    company_id uuid NOT NULL,
    location_name text NOT NULL,
    address_line1 text,
    city text,
    postal_code text,
    country_code char(2) REFERENCES countries (code),
    is_default boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant, location_id),
    FOREIGN KEY (tenant, company_id) REFERENCES companies (tenant, company_id) ON DELETE CASCADE
);

CREATE TABLE contacts (
    tenant uuid NOT NULL,
    contact_name_id uuid NOT NULL DEFAULT gen_random_uuid(),
    company_id uuid,
    full_name text NOT NULL,
    email text,
    phone_number text,
    role text,
    is_inactive boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, contact_name_id),
    FOREIGN KEY (tenant) REFERENCES tenants (tenant) ON DELETE CASCADE,
    FOREIGN KEY (tenant, company_id) REFERENCES companies (tenant, company_id)
);
CREATE INDEX contacts_email ON contacts (tenant, lower(email));

-- A company's primary contact is one of its contacts: companies and contacts reference each
-- other (a foreign-key cycle).
ALTER TABLE companies ADD CONSTRAINT companies_primary_contact_fkey
    FOREIGN KEY (tenant, primary_contact_id) REFERENCES contacts (tenant, contact_name_id);

CREATE TABLE tags (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    tag_id uuid NOT NULL DEFAULT gen_random_uuid(),
    tag_text text NOT NULL,
    tagged_type text NOT NULL,
    color text,
    PRIMARY KEY (tenant, tag_id),
    UNIQUE (tenant, tagged_type, tag_text)
);

CREATE TABLE tag_mappings (
    tenant uuid NOT NULL,
    mapping_id uuid NOT NULL DEFAULT gen_random_uuid(),
    tag_id uuid NOT NULL,
    tagged_id uuid NOT NULL,
    tagged_type text NOT NULL,
    PRIMARY KEY (tenant, mapping_id),
    UNIQUE (tenant, tag_id, tagged_id),
    FOREIGN KEY (tenant, tag_id) REFERENCES tags (tenant, tag_id) ON DELETE CASCADE
);

CREATE TABLE interaction_types (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    type_id uuid NOT NULL DEFAULT gen_random_uuid(),
    type_name text NOT NULL,
    icon text,
    PRIMARY KEY (tenant, type_id),
    UNIQUE (tenant, type_name)
);

CREATE TABLE interactions (
    tenant uuid NOT NULL,
    interaction_id uuid NOT NULL DEFAULT gen_random_uuid(),
    type_id uuid NOT NULL,
    company_id uuid,
    contact_name_id uuid,
    user_id uuid NOT NULL,
    title text NOT NULL,
    notes text,
    interaction_date timestamptz NOT NULL DEFAULT now(),
    duration_minutes integer,
    PRIMARY KEY (tenant, interaction_id),
    FOREIGN KEY (tenant, type_id) REFERENCES interaction_types (tenant, type_id),
    FOREIGN KEY (tenant, company_id) REFERENCES companies (tenant, company_id) ON DELETE CASCADE,
    FOREIGN KEY (tenant, contact_name_id) REFERENCES contacts (tenant, contact_name_id) ON DELETE CASCADE,
    FOREIGN KEY (tenant, user_id) REFERENCES users (tenant, user_id)
);

-- migrate:down
DROP TABLE interactions;
DROP TABLE interaction_types;
DROP TABLE tag_mappings;
DROP TABLE tags;
ALTER TABLE companies DROP CONSTRAINT companies_primary_contact_fkey;
DROP TABLE contacts;
DROP TABLE company_locations;
DROP TABLE companies;
