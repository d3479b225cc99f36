CREATE TABLE IF NOT EXISTS {table} (
    id bigserial PRIMARY KEY,
    table_sql text NOT NULL,
    constraint_name text NOT NULL,
    definition text NOT NULL,
    state text NOT NULL CHECK (state IN ('dropped', 'restored', 'validated')),
    recorded_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz
);
COMMENT ON TABLE {table} IS {comment};
