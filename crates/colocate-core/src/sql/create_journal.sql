CREATE TABLE IF NOT EXISTS {table} (
    id bigserial PRIMARY KEY,
    table_sql text NOT NULL,
    constraint_name text NOT NULL,
    definition text NOT NULL,
    state text NOT NULL CHECK (state IN ({states})),
    recorded_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz
);
-- Columns added after the first version; a journal created by an older colocate gains them.
-- kind foreign_key: a key dropped to break a cycle, or to undo one declarative step without
-- the tables of the others (constraint_name, definition, ref_table_sql);
-- kind identity: an identity column dropped to undistribute (constraint_name = the column,
-- definition = the ADD GENERATED clause, restart = the next value);
-- kind property: what undistribute_table does not carry over (constraint_name = what,
-- definition = the statement that puts it back).
ALTER TABLE {table} ADD COLUMN IF NOT EXISTS kind text NOT NULL DEFAULT {foreign_key};
ALTER TABLE {table} ADD COLUMN IF NOT EXISTS restart bigint;
-- The table a dropped foreign key references (quoted, qualified): the key is restored only once
-- Citus accepts it between the two tables as they are then.
ALTER TABLE {table} ADD COLUMN IF NOT EXISTS ref_table_sql text;
-- A dropped foreign key's comment (dropping the key drops it): put back with the key.
ALTER TABLE {table} ADD COLUMN IF NOT EXISTS comment text;
COMMENT ON TABLE {table} IS {comment};
