-- The COPY commands of one run as this node's pg_stat_progress_copy shows them: those of the
-- run's own sessions ($1, int[]) and those of the connections Citus opened for them ($2, text[]:
-- their application names, `citus_internal gpid=N`). On a single Citus node the shards are
-- filled through such connections to the node itself. One row per COPY: pid, the relation
-- (the shard, on Citus) and the rows it has processed so far.
SELECT p.pid, p.relid::bigint, p.tuples_processed
FROM pg_stat_progress_copy p
JOIN pg_stat_activity a USING (pid)
WHERE p.datname = current_database()
  AND (p.pid = ANY ($1::int[]) OR a.application_name = ANY ($2::text[]))
