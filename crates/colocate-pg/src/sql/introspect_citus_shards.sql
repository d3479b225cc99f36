-- Shards of Citus tables that exist as relations on this node (the coordinator holds shards on
-- a single-node cluster or when it is set to have shards). Only sent when citus is installed.
-- shard_name() leaves out a schema that is on the search path (and introspection runs with
-- search_path = pg_catalog), so the shard is looked up in its table's schema by its last name
-- part rather than through to_regclass.
SELECT c.oid
FROM pg_dist_shard s
JOIN pg_class t ON t.oid = s.logicalrelid
JOIN pg_class c
  ON c.relnamespace = t.relnamespace
 AND c.relname = (SELECT p[cardinality(p)]
                  FROM parse_ident(shard_name(s.logicalrelid, s.shardid)) AS p)
UNION
-- Shard relations Citus has listed for deferred removal (what a concurrent distribution or a
-- shard move leaves behind until the maintenance daemon drops them): not application tables.
SELECT to_regclass(d.object_name)::oid
FROM pg_dist_cleanup d
WHERE d.object_type = 1
  AND d.node_group_id = (SELECT groupid FROM pg_dist_local_group)
  AND to_regclass(d.object_name) IS NOT NULL
