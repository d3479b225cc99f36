-- Citus metadata for the tables $1 (oid[]). Only sent when the citus extension is installed.
-- Reads pg_dist_partition and pg_dist_shard on the coordinator; never the citus_tables view,
-- which contacts every worker and fails when one is down.
SELECT p.logicalrelid::oid AS table_oid,
       p.partmethod::text AS partmethod,
       p.repmodel::text AS repmodel,
       CASE WHEN p.partkey IS NOT NULL
            THEN column_to_column_name(p.logicalrelid, p.partkey)
       END AS column_name,
       p.colocationid AS colocation_id,
       (SELECT count(*)::int4 FROM pg_dist_shard s WHERE s.logicalrelid = p.logicalrelid) AS shard_count
FROM pg_dist_partition p
WHERE p.logicalrelid = ANY ($1::oid[])
