-- migrate:up
CREATE TABLE next_number (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    entity_type text NOT NULL,
    prefix text NOT NULL DEFAULT '',
    last_number bigint NOT NULL DEFAULT 0,
    padding_length smallint NOT NULL DEFAULT 6,
    PRIMARY KEY (tenant, entity_type)
);

CREATE TABLE channels (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    channel_id uuid NOT NULL DEFAULT gen_random_uuid(),
    channel_name text NOT NULL,
    is_default boolean NOT NULL DEFAULT false,
    is_inactive boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant, channel_id),
    UNIQUE (tenant, channel_name)
);

CREATE TABLE ticket_categories (
    tenant uuid NOT NULL,
    category_id uuid NOT NULL DEFAULT gen_random_uuid(),
    category_name text NOT NULL,
    parent_category uuid,
    channel_id uuid NOT NULL,
    PRIMARY KEY (tenant, category_id),
    FOREIGN KEY (tenant, channel_id) REFERENCES channels (tenant, channel_id) ON DELETE CASCADE,
    FOREIGN KEY (tenant, parent_category) REFERENCES ticket_categories (tenant, category_id)
);

CREATE TABLE tickets (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    ticket_id uuid NOT NULL DEFAULT gen_random_uuid(),
    ticket_number text NOT NULL,
    title text NOT NULL,
    channel_id uuid NOT NULL,
    category_id uuid,
    company_id uuid,
    contact_name_id uuid,
    status_id smallint NOT NULL REFERENCES standard_statuses (status_id),
    priority_id smallint NOT NULL REFERENCES standard_priorities (priority_id),
    entered_by uuid NOT NULL,
    assigned_to uuid,
    attributes jsonb NOT NULL DEFAULT '{}',
    entered_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    closed_at timestamptz,
    PRIMARY KEY (tenant, ticket_id),
    -- The first comments feature joined on ticket_id alone (see ticket_comments below).
    CONSTRAINT tickets_ticket_id_key UNIQUE (ticket_id),
    UNIQUE (tenant, ticket_number),
    FOREIGN KEY (tenant, channel_id) REFERENCES channels (tenant, channel_id),
    FOREIGN KEY (tenant, category_id) REFERENCES ticket_categories (tenant, category_id),
    FOREIGN KEY (tenant, company_id) REFERENCES companies (tenant, company_id),
    FOREIGN KEY (tenant, contact_name_id) REFERENCES contacts (tenant, contact_name_id),
    FOREIGN KEY (tenant, entered_by) REFERENCES users (tenant, user_id),
    FOREIGN KEY (tenant, assigned_to) REFERENCES users (tenant, user_id)
);
CREATE INDEX tickets_open_by_assignee ON tickets (tenant, assigned_to) WHERE closed_at IS NULL;

-- Keeps updated_at current. (Citus refuses tables with triggers: a later migration moves this
-- into the application.)
CREATE FUNCTION set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
CREATE TRIGGER tickets_set_updated_at BEFORE UPDATE ON tickets
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE ticket_resources (
    tenant uuid NOT NULL,
    assignment_id uuid NOT NULL DEFAULT gen_random_uuid(),
    ticket_id uuid NOT NULL,
    assigned_to uuid NOT NULL,
    additional_user_id uuid,
    role text,
    assigned_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, assignment_id),
    FOREIGN KEY (tenant, ticket_id) REFERENCES tickets (tenant, ticket_id) ON DELETE CASCADE,
    FOREIGN KEY (tenant, assigned_to) REFERENCES users (tenant, user_id),
    FOREIGN KEY (tenant, additional_user_id) REFERENCES users (tenant, user_id)
);

-- Mistake: the foreign key to tickets leaves the tenant out (fixed in
-- 20240301090000_add_tenant_to_keys).
CREATE TABLE ticket_comments (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    comment_id uuid NOT NULL DEFAULT gen_random_uuid(),
    ticket_id uuid NOT NULL REFERENCES tickets (ticket_id) ON DELETE CASCADE,
    user_id uuid,
    contact_name_id uuid,
    note text NOT NULL,
    is_internal boolean NOT NULL DEFAULT false,
    is_resolution boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, comment_id),
    FOREIGN KEY (tenant, user_id) REFERENCES users (tenant, user_id),
    FOREIGN KEY (tenant, contact_name_id) REFERENCES contacts (tenant, contact_name_id)
);
CREATE INDEX ticket_comments_ticket ON ticket_comments (ticket_id, created_at);

CREATE TABLE ticket_activity (
    tenant uuid NOT NULL,
    activity_id uuid NOT NULL DEFAULT gen_random_uuid(),
    ticket_id uuid NOT NULL,
    user_id uuid,
    activity_type text NOT NULL,
    details jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, activity_id),
    FOREIGN KEY (tenant, ticket_id) REFERENCES tickets (tenant, ticket_id) ON DELETE CASCADE,
    FOREIGN KEY (tenant, user_id) REFERENCES users (tenant, user_id)
);

CREATE TABLE ticket_watchers (
    tenant uuid NOT NULL,
    ticket_id uuid NOT NULL,
    user_id uuid NOT NULL,
    added_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, ticket_id, user_id),
    FOREIGN KEY (tenant, ticket_id) REFERENCES tickets (tenant, ticket_id) ON DELETE CASCADE,
    FOREIGN KEY (tenant, user_id) REFERENCES users (tenant, user_id) ON DELETE CASCADE
);

-- migrate:down
DROP TABLE ticket_watchers;
DROP TABLE ticket_activity;
DROP TABLE ticket_comments;
DROP TABLE ticket_resources;
DROP TRIGGER tickets_set_updated_at ON tickets;
DROP FUNCTION set_updated_at();
DROP TABLE tickets;
DROP TABLE ticket_categories;
DROP TABLE channels;
DROP TABLE next_number;
