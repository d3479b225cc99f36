-- migrate:up
-- The inbound/outbound email service was written by another team: its tables name the tenant
-- column tenant_id.
CREATE TABLE email_providers (
    tenant_id uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    provider_id uuid NOT NULL DEFAULT gen_random_uuid(),
    provider_type text NOT NULL CHECK (provider_type IN ('google', 'microsoft', 'imap', 'smtp')),
    mailbox text NOT NULL,
    is_active boolean NOT NULL DEFAULT true,
    last_sync_at timestamptz,
    PRIMARY KEY (tenant_id, provider_id),
    UNIQUE (tenant_id, mailbox)
);

CREATE TABLE email_domains (
    tenant_id uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    domain_id uuid NOT NULL DEFAULT gen_random_uuid(),
    domain_name text NOT NULL,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'verified', 'failed')),
    dns_records jsonb NOT NULL DEFAULT '[]',
    verified_at timestamptz,
    PRIMARY KEY (tenant_id, domain_id),
    UNIQUE (tenant_id, domain_name)
);

CREATE TABLE email_templates (
    tenant_id uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    template_id uuid NOT NULL DEFAULT gen_random_uuid(),
    name text NOT NULL,
    purpose text NOT NULL DEFAULT 'notification',
    subject text NOT NULL,
    html_body text NOT NULL,
    text_body text,
    PRIMARY KEY (tenant_id, template_id),
    UNIQUE (tenant_id, name)
);

CREATE TABLE email_messages (
    tenant_id uuid NOT NULL,
    message_id uuid NOT NULL DEFAULT gen_random_uuid(),
    provider_id uuid NOT NULL,
    ticket_id uuid,
    direction text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    rfc822_message_id text,
    subject text,
    from_address text NOT NULL,
    to_addresses text[] NOT NULL DEFAULT '{}',
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, message_id),
    UNIQUE (tenant_id, provider_id, rfc822_message_id),
    FOREIGN KEY (tenant_id) REFERENCES tenants (tenant) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, provider_id) REFERENCES email_providers (tenant_id, provider_id) ON DELETE CASCADE
);

CREATE TABLE email_sending_logs (
    tenant_id uuid NOT NULL,
    log_id bigserial,
    template_id uuid,
    message_id uuid,
    to_address text NOT NULL,
    status text NOT NULL CHECK (status IN ('queued', 'sent', 'bounced', 'failed')),
    error_message text,
    sent_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, log_id),
    FOREIGN KEY (tenant_id) REFERENCES tenants (tenant) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, template_id) REFERENCES email_templates (tenant_id, template_id),
    FOREIGN KEY (tenant_id, message_id) REFERENCES email_messages (tenant_id, message_id)
);

CREATE TABLE notification_settings (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    category_id smallint NOT NULL REFERENCES notification_categories (category_id),
    is_enabled boolean NOT NULL DEFAULT true,
    rate_limit_per_minute integer NOT NULL DEFAULT 60,
    PRIMARY KEY (tenant, category_id)
);

CREATE TABLE user_notification_preferences (
    tenant uuid NOT NULL,
    user_id uuid NOT NULL,
    category_id smallint NOT NULL REFERENCES notification_categories (category_id),
    email_enabled boolean NOT NULL DEFAULT true,
    in_app_enabled boolean NOT NULL DEFAULT true,
    PRIMARY KEY (tenant, user_id, category_id),
    FOREIGN KEY (tenant, user_id) REFERENCES users (tenant, user_id) ON DELETE CASCADE
);

CREATE TABLE user_notifications (
    tenant uuid NOT NULL,
    notification_id uuid NOT NULL DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL,
    category_id smallint NOT NULL REFERENCES notification_categories (category_id),
    title text NOT NULL,
    message text,
    link text,
    read_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, notification_id),
    FOREIGN KEY (tenant, user_id) REFERENCES users (tenant, user_id) ON DELETE CASCADE
);
CREATE INDEX user_notifications_unread ON user_notifications (tenant, user_id) WHERE read_at IS NULL;

-- migrate:down
DROP TABLE user_notifications;
DROP TABLE user_notification_preferences;
DROP TABLE notification_settings;
DROP TABLE email_sending_logs;
DROP TABLE email_messages;
DROP TABLE email_templates;
DROP TABLE email_domains;
DROP TABLE email_providers;
