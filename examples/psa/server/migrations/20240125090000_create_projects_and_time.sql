-- migrate:up
CREATE TABLE projects (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    project_id uuid NOT NULL DEFAULT gen_random_uuid(),
    company_id uuid NOT NULL,
    project_name text NOT NULL,
    description text,
    status_id smallint NOT NULL REFERENCES standard_statuses (status_id),
    assigned_to uuid,
    wbs_code text NOT NULL,
    start_date date,
    end_date date,
    budgeted_hours numeric(10, 2),
    is_inactive boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant, project_id),
    UNIQUE (tenant, wbs_code),
    FOREIGN KEY (tenant, company_id) REFERENCES companies (tenant, company_id),
    FOREIGN KEY (tenant, assigned_to) REFERENCES users (tenant, user_id)
);

CREATE TABLE project_phases (
    tenant uuid NOT NULL,
    phase_id uuid NOT NULL DEFAULT gen_random_uuid(),
    project_id uuid NOT NULL,
    phase_name text NOT NULL,
    order_key text NOT NULL,
    start_date date,
    end_date date,
    PRIMARY KEY (tenant, phase_id),
    FOREIGN KEY (tenant, project_id) REFERENCES projects (tenant, project_id) ON DELETE CASCADE
);

CREATE TABLE project_tasks (
    tenant uuid NOT NULL,
    task_id uuid NOT NULL DEFAULT gen_random_uuid(),
    phase_id uuid NOT NULL,
    task_name text NOT NULL,
    description text,
    assigned_to uuid,
    status_id smallint NOT NULL REFERENCES standard_statuses (status_id),
    priority_id smallint REFERENCES standard_priorities (priority_id),
    estimated_hours numeric(8, 2),
    due_date date,
    PRIMARY KEY (tenant, task_id),
    FOREIGN KEY (tenant, phase_id) REFERENCES project_phases (tenant, phase_id) ON DELETE CASCADE,
    FOREIGN KEY (tenant, assigned_to) REFERENCES users (tenant, user_id)
);

CREATE TABLE task_checklist_items (
    tenant uuid NOT NULL,
    checklist_item_id uuid NOT NULL DEFAULT gen_random_uuid(),
    task_id uuid NOT NULL,
    item_name text NOT NULL,
    completed boolean NOT NULL DEFAULT false,
    order_number integer NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, checklist_item_id),
    FOREIGN KEY (tenant, task_id) REFERENCES project_tasks (tenant, task_id) ON DELETE CASCADE
);

CREATE TABLE project_ticket_links (
    tenant uuid NOT NULL,
    link_id uuid NOT NULL DEFAULT gen_random_uuid(),
    project_id uuid NOT NULL,
    task_id uuid,
    ticket_id uuid NOT NULL,
    PRIMARY KEY (tenant, link_id),
    UNIQUE (tenant, task_id, ticket_id),
    FOREIGN KEY (tenant, project_id) REFERENCES projects (tenant, project_id) ON DELETE CASCADE,
    FOREIGN KEY (tenant, task_id) REFERENCES project_tasks (tenant, task_id) ON DELETE CASCADE,
    FOREIGN KEY (tenant, ticket_id) REFERENCES tickets (tenant, ticket_id) ON DELETE CASCADE
);

CREATE TABLE time_periods (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    period_id uuid NOT NULL DEFAULT gen_random_uuid(),
    start_date date NOT NULL,
    end_date date NOT NULL,
    is_closed boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant, period_id),
    UNIQUE (tenant, start_date)
);

CREATE TABLE time_sheets (
    tenant uuid NOT NULL,
    time_sheet_id uuid NOT NULL DEFAULT gen_random_uuid(),
    period_id uuid NOT NULL,
    user_id uuid NOT NULL,
    approval_status text NOT NULL DEFAULT 'draft'
        CHECK (approval_status IN ('draft', 'submitted', 'approved', 'changes_requested')),
    submitted_at timestamptz,
    approved_by uuid,
    approved_at timestamptz,
    PRIMARY KEY (tenant, time_sheet_id),
    UNIQUE (tenant, period_id, user_id),
    FOREIGN KEY (tenant, period_id) REFERENCES time_periods (tenant, period_id),
    FOREIGN KEY (tenant, user_id) REFERENCES users (tenant, user_id),
    FOREIGN KEY (tenant, approved_by) REFERENCES users (tenant, user_id)
);

-- Mistake: the primary key leaves the tenant out (fixed in
-- 20240301090000_add_tenant_to_keys).
CREATE TABLE time_entries (
    tenant uuid NOT NULL,
    entry_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    work_item_id uuid NOT NULL,
    work_item_type text NOT NULL CHECK (work_item_type IN ('ticket', 'project_task', 'interaction')),
    user_id uuid NOT NULL,
    time_sheet_id uuid,
    service_id uuid,
    start_time timestamptz NOT NULL,
    end_time timestamptz NOT NULL,
    billable_duration integer NOT NULL DEFAULT 0,
    notes text,
    approval_status text NOT NULL DEFAULT 'draft',
    invoiced boolean NOT NULL DEFAULT false,
    FOREIGN KEY (tenant) REFERENCES tenants (tenant) ON DELETE CASCADE,
    FOREIGN KEY (tenant, user_id) REFERENCES users (tenant, user_id),
    FOREIGN KEY (tenant, time_sheet_id) REFERENCES time_sheets (tenant, time_sheet_id),
    FOREIGN KEY (tenant, service_id) REFERENCES service_catalog (tenant, service_id),
    CHECK (end_time > start_time)
);
CREATE INDEX time_entries_user_start ON time_entries (tenant, user_id, start_time);

CREATE TABLE schedule_entries (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    entry_id uuid NOT NULL DEFAULT gen_random_uuid(),
    title text NOT NULL,
    work_item_id uuid,
    work_item_type text,
    scheduled_start timestamptz NOT NULL,
    scheduled_end timestamptz NOT NULL,
    recurrence text,
    status text NOT NULL DEFAULT 'scheduled',
    PRIMARY KEY (tenant, entry_id)
);

CREATE TABLE schedule_entry_assignees (
    tenant uuid NOT NULL,
    entry_id uuid NOT NULL,
    user_id uuid NOT NULL,
    PRIMARY KEY (tenant, entry_id, user_id),
    FOREIGN KEY (tenant, entry_id) REFERENCES schedule_entries (tenant, entry_id) ON DELETE CASCADE,
    FOREIGN KEY (tenant, user_id) REFERENCES users (tenant, user_id) ON DELETE CASCADE
);

-- migrate:down
DROP TABLE schedule_entry_assignees;
DROP TABLE schedule_entries;
DROP TABLE time_entries;
DROP TABLE time_sheets;
DROP TABLE time_periods;
DROP TABLE project_ticket_links;
DROP TABLE task_checklist_items;
DROP TABLE project_tasks;
DROP TABLE project_phases;
DROP TABLE projects;
