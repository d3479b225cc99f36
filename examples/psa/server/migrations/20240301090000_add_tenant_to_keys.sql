-- migrate:up
-- Every key between tenant tables includes the tenant, so a tenant's rows can live together
-- (and Citus can distribute the tables): rebuild the keys the first migrations got wrong,
-- each unique key before the foreign keys that use it.

-- tickets: ticket_comments joined on ticket_id alone, through a unique key without the tenant.
ALTER TABLE ticket_comments DROP CONSTRAINT ticket_comments_ticket_id_fkey;
ALTER TABLE tickets DROP CONSTRAINT tickets_ticket_id_key;
ALTER TABLE ticket_comments ADD CONSTRAINT ticket_comments_ticket_id_fkey
    FOREIGN KEY (tenant, ticket_id) REFERENCES tickets (tenant, ticket_id) ON DELETE CASCADE;
DROP INDEX ticket_comments_ticket;
CREATE INDEX ticket_comments_ticket ON ticket_comments (tenant, ticket_id, created_at);

-- time_entries: primary key without the tenant.
ALTER TABLE time_entries DROP CONSTRAINT time_entries_pkey;
ALTER TABLE time_entries ADD CONSTRAINT time_entries_pkey PRIMARY KEY (tenant, entry_id);

-- invoices: primary key without the tenant, and the keys into it.
ALTER TABLE invoice_items DROP CONSTRAINT invoice_items_invoice_id_fkey;
ALTER TABLE payments DROP CONSTRAINT payments_invoice_id_fkey;
ALTER TABLE invoices DROP CONSTRAINT invoices_pkey;
ALTER TABLE invoices ADD CONSTRAINT invoices_pkey PRIMARY KEY (tenant, invoice_id);
ALTER TABLE invoice_items ADD CONSTRAINT invoice_items_invoice_id_fkey
    FOREIGN KEY (tenant, invoice_id) REFERENCES invoices (tenant, invoice_id) ON DELETE CASCADE;
ALTER TABLE payments ADD CONSTRAINT payments_invoice_id_fkey
    FOREIGN KEY (tenant, invoice_id) REFERENCES invoices (tenant, invoice_id);

-- updated_at moves into the application: Citus refuses tables with triggers.
DROP TRIGGER tickets_set_updated_at ON tickets;
DROP FUNCTION set_updated_at();

-- migrate:down
CREATE FUNCTION set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
CREATE TRIGGER tickets_set_updated_at BEFORE UPDATE ON tickets
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

ALTER TABLE payments DROP CONSTRAINT payments_invoice_id_fkey;
ALTER TABLE invoice_items DROP CONSTRAINT invoice_items_invoice_id_fkey;
ALTER TABLE invoices DROP CONSTRAINT invoices_pkey;
ALTER TABLE invoices ADD CONSTRAINT invoices_pkey PRIMARY KEY (invoice_id);
ALTER TABLE invoice_items ADD CONSTRAINT invoice_items_invoice_id_fkey
    FOREIGN KEY (invoice_id) REFERENCES invoices (invoice_id) ON DELETE CASCADE;
ALTER TABLE payments ADD CONSTRAINT payments_invoice_id_fkey
    FOREIGN KEY (invoice_id) REFERENCES invoices (invoice_id);

ALTER TABLE time_entries DROP CONSTRAINT time_entries_pkey;
ALTER TABLE time_entries ADD CONSTRAINT time_entries_pkey PRIMARY KEY (entry_id);

DROP INDEX ticket_comments_ticket;
CREATE INDEX ticket_comments_ticket ON ticket_comments (ticket_id, created_at);
ALTER TABLE ticket_comments DROP CONSTRAINT ticket_comments_ticket_id_fkey;
ALTER TABLE tickets ADD CONSTRAINT tickets_ticket_id_key UNIQUE (ticket_id);
ALTER TABLE ticket_comments ADD CONSTRAINT ticket_comments_ticket_id_fkey
    FOREIGN KEY (ticket_id) REFERENCES tickets (ticket_id) ON DELETE CASCADE;
