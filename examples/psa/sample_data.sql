-- Sample rows for three tenants, loaded by `colocate demo` and the example's tests. Their ids are
-- chosen so that on two workers (32 shards) their rows land on both: Acme and Globex on one, Initech
-- on the other.
INSERT INTO tenants (tenant, company_name, email) VALUES
    ('11111111-1111-1111-1111-111111111111', 'Acme IT', 'ops@acme.test'),
    ('22222222-2222-2222-2222-222222222222', 'Globex Services', 'it@globex.test'),
    ('77777777-7777-7777-7777-777777777777', 'Initech MSP', 'help@initech.test');
INSERT INTO tenant_settings (tenant, default_currency, country_code)
    SELECT tenant, 'USD', 'US' FROM tenants;
INSERT INTO users (tenant, user_id, username, email, first_name)
    SELECT t.tenant, md5(t.tenant::text || g)::uuid, 'tech' || g, 'tech' || g || '@' || split_part(t.email, '@', 2), 'Tech ' || g
    FROM tenants t, generate_series(1, 3) g;
INSERT INTO companies (tenant, company_id, company_name, country_code, account_manager_id)
    SELECT t.tenant, md5('company' || t.tenant::text || g)::uuid, 'Client ' || g, 'GB', md5(t.tenant::text || 1)::uuid
    FROM tenants t, generate_series(1, 2) g;
INSERT INTO contacts (tenant, contact_name_id, company_id, full_name, email)
    SELECT tenant, md5('contact' || company_id::text)::uuid, company_id, 'Pat ' || company_name, 'pat@client.test'
    FROM companies;
UPDATE companies SET primary_contact_id = md5('contact' || company_id::text)::uuid;
INSERT INTO channels (tenant, channel_id, channel_name, is_default)
    SELECT tenant, md5('channel' || tenant::text)::uuid, 'Service desk', true FROM tenants;
INSERT INTO tickets (tenant, ticket_id, ticket_number, title, channel_id, company_id, status_id, priority_id, entered_by)
    SELECT c.tenant, md5('ticket' || c.company_id::text || g)::uuid, 'T-' || row_number() OVER (PARTITION BY c.tenant ORDER BY c.company_id, g),
           'Printer on fire #' || g, md5('channel' || c.tenant::text)::uuid, c.company_id, 1, 3, md5(c.tenant::text || 1)::uuid
    FROM companies c, generate_series(1, 2) g;
INSERT INTO ticket_comments (tenant, ticket_id, user_id, note)
    SELECT tenant, ticket_id, entered_by, 'Looking into it' FROM tickets;
INSERT INTO ticket_activity (tenant, ticket_id, user_id, activity_type)
    SELECT tenant, ticket_id, entered_by, 'created' FROM tickets;
INSERT INTO email_providers (tenant_id, provider_id, provider_type, mailbox)
    SELECT tenant, md5('mailbox' || tenant::text)::uuid, 'imap', 'support@' || split_part(email, '@', 2) FROM tenants;
INSERT INTO email_messages (tenant_id, provider_id, ticket_id, direction, from_address)
    SELECT tenant, md5('mailbox' || tenant::text)::uuid, ticket_id, 'inbound', 'pat@client.test' FROM tickets;
INSERT INTO invoices (tenant, invoice_id, company_id, invoice_number, status_id, invoice_date, due_date, total_amount)
    SELECT tenant, md5('invoice' || company_id::text)::uuid, company_id, 'INV-' || left(md5(company_id::text), 6), 31, DATE '2024-03-01', DATE '2024-03-31', 120
    FROM companies;
INSERT INTO invoice_items (tenant, invoice_id, description, unit_price, net_amount)
    SELECT tenant, invoice_id, 'Managed services', 120, 120 FROM invoices;
INSERT INTO payments (tenant, company_id, invoice_id, amount, payment_method)
    SELECT tenant, company_id, invoice_id, 120, 'card' FROM invoices;
INSERT INTO audit_logs (tenant, user_id, table_name, operation, record_id)
    SELECT tenant, entered_by, 'tickets', 'INSERT', ticket_id FROM tickets;
