SELECT version, name, source_dir, checksum, batch,
       to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
       duration_ms, state, progress, prefix_checksum, error
FROM {table}
ORDER BY version
