-- migrate:up
-- Written after the move to Citus: a new tenant table is created here and distributed by the
-- Citus step that follows it (ee/server/migrations/citus/20240311090100_...). It references
-- only tenant tables (a new table that also referenced a reference table would have to be
-- created without that key and get it after distribution).
CREATE TABLE ticket_sla_events (
    tenant uuid NOT NULL,
    sla_event_id uuid NOT NULL DEFAULT gen_random_uuid(),
    ticket_id uuid NOT NULL,
    kind text NOT NULL CHECK (kind IN ('first_response', 'resolution')),
    due_at timestamptz NOT NULL,
    met_at timestamptz,
    breached boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant, sla_event_id),
    UNIQUE (tenant, ticket_id, kind),
    FOREIGN KEY (tenant, ticket_id) REFERENCES tickets (tenant, ticket_id) ON DELETE CASCADE
);

-- migrate:down
DROP TABLE ticket_sla_events;
