INSERT INTO {table} AS h (version, name, source_dir, checksum, batch, duration_ms, state, progress, prefix_checksum, error)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (version) DO UPDATE
SET name = excluded.name, source_dir = excluded.source_dir, checksum = excluded.checksum,
    batch = excluded.batch, duration_ms = h.duration_ms + excluded.duration_ms, applied_at = now(),
    state = excluded.state, progress = excluded.progress,
    prefix_checksum = excluded.prefix_checksum, error = excluded.error
