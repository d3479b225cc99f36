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
