-- migrate:up
CREATE TABLE asset_types (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    type_id uuid NOT NULL DEFAULT gen_random_uuid(),
    type_name text NOT NULL,
    parent_type_id uuid,
    attributes_schema jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant, type_id),
    UNIQUE (tenant, type_name),
    FOREIGN KEY (tenant, parent_type_id) REFERENCES asset_types (tenant, type_id)
);

CREATE TABLE assets (
    tenant uuid NOT NULL,
    asset_id uuid NOT NULL DEFAULT gen_random_uuid(),
    type_id uuid NOT NULL,
    company_id uuid NOT NULL,
    location_id uuid,
    asset_tag text NOT NULL,
    serial_number text,
    name text NOT NULL,
    status text NOT NULL DEFAULT 'active',
    purchase_date date,
    warranty_end_date date,
    attributes jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant, asset_id),
    UNIQUE (tenant, asset_tag),
    FOREIGN KEY (tenant) REFERENCES tenants (tenant) ON DELETE CASCADE,
    FOREIGN KEY (tenant, type_id) REFERENCES asset_types (tenant, type_id),
    FOREIGN KEY (tenant, company_id) REFERENCES companies (tenant, company_id),
    FOREIGN KEY (tenant, location_id) REFERENCES company_locations (tenant, location_id)
);

CREATE TABLE asset_relationships (
    tenant uuid NOT NULL,
    parent_asset_id uuid NOT NULL,
    child_asset_id uuid NOT NULL,
    relationship_type text NOT NULL,
    PRIMARY KEY (tenant, parent_asset_id, child_asset_id),
    FOREIGN KEY (tenant, parent_asset_id) REFERENCES assets (tenant, asset_id) ON DELETE CASCADE,
    FOREIGN KEY (tenant, child_asset_id) REFERENCES assets (tenant, asset_id) ON DELETE CASCADE,
    CHECK (parent_asset_id <> child_asset_id)
);

CREATE TABLE asset_maintenance_schedules (
    tenant uuid NOT NULL,
    schedule_id uuid NOT NULL DEFAULT gen_random_uuid(),
    asset_id uuid NOT NULL,
    schedule_name text NOT NULL,
    frequency text NOT NULL,
    next_maintenance date,
    PRIMARY KEY (tenant, schedule_id),
    FOREIGN KEY (tenant, asset_id) REFERENCES assets (tenant, asset_id) ON DELETE CASCADE
);

CREATE TABLE asset_maintenance_history (
    tenant uuid NOT NULL,
    history_id uuid NOT NULL DEFAULT gen_random_uuid(),
    schedule_id uuid NOT NULL,
    asset_id uuid NOT NULL,
    performed_by uuid NOT NULL,
    performed_at timestamptz NOT NULL,
    notes text,
    PRIMARY KEY (tenant, history_id),
    FOREIGN KEY (tenant, schedule_id) REFERENCES asset_maintenance_schedules (tenant, schedule_id) ON DELETE CASCADE,
    FOREIGN KEY (tenant, asset_id) REFERENCES assets (tenant, asset_id) ON DELETE CASCADE,
    FOREIGN KEY (tenant, performed_by) REFERENCES users (tenant, user_id)
);

CREATE TABLE asset_ticket_associations (
    tenant uuid NOT NULL,
    asset_id uuid NOT NULL,
    ticket_id uuid NOT NULL,
    relationship_type text NOT NULL DEFAULT 'affected',
    created_by uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, asset_id, ticket_id),
    FOREIGN KEY (tenant, asset_id) REFERENCES assets (tenant, asset_id) ON DELETE CASCADE,
    FOREIGN KEY (tenant, ticket_id) REFERENCES tickets (tenant, ticket_id) ON DELETE CASCADE,
    FOREIGN KEY (tenant, created_by) REFERENCES users (tenant, user_id)
);

CREATE TABLE documents (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    document_id uuid NOT NULL DEFAULT gen_random_uuid(),
    document_name text NOT NULL,
    mime_type text,
    file_size bigint,
    storage_path text NOT NULL,
    created_by uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, document_id),
    FOREIGN KEY (tenant, created_by) REFERENCES users (tenant, user_id)
);

CREATE TABLE document_associations (
    tenant uuid NOT NULL,
    association_id uuid NOT NULL DEFAULT gen_random_uuid(),
    document_id uuid NOT NULL,
    entity_id uuid NOT NULL,
    entity_type text NOT NULL CHECK (entity_type IN ('ticket', 'company', 'contact', 'asset', 'project_task', 'invoice')),
    PRIMARY KEY (tenant, association_id),
    UNIQUE (tenant, document_id, entity_type, entity_id),
    FOREIGN KEY (tenant, document_id) REFERENCES documents (tenant, document_id) ON DELETE CASCADE
);

-- migrate:down
DROP TABLE document_associations;
DROP TABLE documents;
DROP TABLE asset_ticket_associations;
DROP TABLE asset_maintenance_history;
DROP TABLE asset_maintenance_schedules;
DROP TABLE asset_relationships;
DROP TABLE assets;
DROP TABLE asset_types;
