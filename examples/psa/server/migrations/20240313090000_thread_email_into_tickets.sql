-- migrate:up
-- Inbound email is threaded into tickets: email_messages.ticket_id becomes a real foreign key.
-- Written after the move to Citus: email_messages (distributed by tenant_id) and tickets (by
-- tenant) share the tenants colocation group, so the key pairs the two tenant columns and each
-- shard checks its rows against the colocated shard of tickets.
ALTER TABLE email_messages ADD CONSTRAINT email_messages_ticket_fkey
    FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant, ticket_id);

-- migrate:down
ALTER TABLE email_messages DROP CONSTRAINT email_messages_ticket_fkey;
