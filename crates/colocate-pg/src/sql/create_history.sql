CREATE TABLE {table} (
    version bigint PRIMARY KEY,
    name text NOT NULL,
    source_dir text NOT NULL,
    checksum text NOT NULL,
    batch integer NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    duration_ms double precision NOT NULL DEFAULT 0,
    state text NOT NULL DEFAULT 'applied' CHECK (state IN ('applied', 'partial', 'reverting')),
    progress integer,
    prefix_checksum text,
    error text
);
COMMENT ON TABLE {table} IS {comment};
