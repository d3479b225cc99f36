-- migrate:up
CREATE TABLE workflow_registrations (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    registration_id uuid NOT NULL DEFAULT gen_random_uuid(),
    name text NOT NULL,
    category text,
    trigger_event text,
    is_active boolean NOT NULL DEFAULT true,
    created_by uuid,
    PRIMARY KEY (tenant, registration_id),
    UNIQUE (tenant, name),
    FOREIGN KEY (tenant, created_by) REFERENCES users (tenant, user_id)
);

CREATE TABLE workflow_versions (
    tenant uuid NOT NULL,
    version_id uuid NOT NULL DEFAULT gen_random_uuid(),
    registration_id uuid NOT NULL,
    version integer NOT NULL,
    definition jsonb NOT NULL,
    is_current boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, version_id),
    UNIQUE (tenant, registration_id, version),
    FOREIGN KEY (tenant, registration_id) REFERENCES workflow_registrations (tenant, registration_id) ON DELETE CASCADE
);

CREATE TABLE workflow_executions (
    tenant uuid NOT NULL,
    execution_id uuid NOT NULL DEFAULT gen_random_uuid(),
    registration_id uuid NOT NULL,
    version_id uuid NOT NULL,
    status text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'waiting', 'completed', 'failed', 'cancelled')),
    context jsonb NOT NULL DEFAULT '{}',
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    PRIMARY KEY (tenant, execution_id),
    FOREIGN KEY (tenant, registration_id) REFERENCES workflow_registrations (tenant, registration_id),
    FOREIGN KEY (tenant, version_id) REFERENCES workflow_versions (tenant, version_id)
);
CREATE INDEX workflow_executions_active ON workflow_executions (tenant, status) WHERE status IN ('running', 'waiting');

CREATE TABLE workflow_events (
    tenant uuid NOT NULL,
    event_id uuid NOT NULL DEFAULT gen_random_uuid(),
    execution_id uuid NOT NULL,
    event_name text NOT NULL,
    payload jsonb NOT NULL DEFAULT '{}',
    user_id uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, event_id),
    FOREIGN KEY (tenant, execution_id) REFERENCES workflow_executions (tenant, execution_id) ON DELETE CASCADE,
    FOREIGN KEY (tenant, user_id) REFERENCES users (tenant, user_id)
);

CREATE TABLE workflow_action_results (
    tenant uuid NOT NULL,
    result_id uuid NOT NULL DEFAULT gen_random_uuid(),
    execution_id uuid NOT NULL,
    event_id uuid,
    action_name text NOT NULL,
    idempotency_key text NOT NULL,
    success boolean NOT NULL,
    result jsonb,
    error_message text,
    completed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, result_id),
    UNIQUE (tenant, idempotency_key),
    FOREIGN KEY (tenant, execution_id) REFERENCES workflow_executions (tenant, execution_id) ON DELETE CASCADE,
    FOREIGN KEY (tenant, event_id) REFERENCES workflow_events (tenant, event_id) ON DELETE CASCADE
);

CREATE TABLE workflow_timers (
    tenant uuid NOT NULL,
    timer_id uuid NOT NULL DEFAULT gen_random_uuid(),
    execution_id uuid NOT NULL,
    timer_name text NOT NULL,
    fire_at timestamptz NOT NULL,
    fired boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant, timer_id),
    FOREIGN KEY (tenant, execution_id) REFERENCES workflow_executions (tenant, execution_id) ON DELETE CASCADE
);
CREATE INDEX workflow_timers_due ON workflow_timers (fire_at) WHERE NOT fired;

-- migrate:down
DROP TABLE workflow_timers;
DROP TABLE workflow_action_results;
DROP TABLE workflow_events;
DROP TABLE workflow_executions;
DROP TABLE workflow_versions;
DROP TABLE workflow_registrations;
