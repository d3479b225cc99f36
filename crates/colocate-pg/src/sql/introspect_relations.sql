-- Every table and view introspection reads, with what folding partitions and inheritance needs.
-- $1 include (empty: every schema), $2 exclude, $3 oids of Citus shards placed on this node, $4 the
-- comments colocate gives its own tables (history, journal): those are colocate's, not the
-- application's, and are never planned. Partitions are returned whatever their own
-- schema: they belong to their root, and the caller keeps those whose root was selected.
SELECT c.oid,
       n.nspname AS schema,
       c.relname AS name,
       c.relkind::text AS kind,
       c.relispartition AS is_partition,
       c.relrowsecurity AS rls_enabled,
       c.reltuples::float8 AS reltuples,
       pg_relation_size(c.oid) AS bytes,
       CASE WHEN c.relispartition THEN pg_partition_root(c.oid)::oid END AS root,
       -- plain INHERITS parents, in declaration order
       ARRAY(SELECT pn.nspname
             FROM pg_inherits i
             JOIN pg_class p ON p.oid = i.inhparent
             JOIN pg_namespace pn ON pn.oid = p.relnamespace
             WHERE i.inhrelid = c.oid AND NOT c.relispartition
             ORDER BY i.inhseqno) AS parent_schemas,
       ARRAY(SELECT p.relname
             FROM pg_inherits i
             JOIN pg_class p ON p.oid = i.inhparent
             WHERE i.inhrelid = c.oid AND NOT c.relispartition
             ORDER BY i.inhseqno) AS parent_names,
       EXISTS (SELECT 1
               FROM pg_inherits i
               JOIN pg_class ch ON ch.oid = i.inhrelid
               WHERE i.inhparent = c.oid AND NOT ch.relispartition) AS has_inheritors
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema',
                        'citus', 'citus_internal', 'columnar', 'columnar_internal')
  AND n.nspname NOT LIKE 'pg\_toast%'
  AND n.nspname NOT LIKE 'pg\_temp%'
  AND (c.relispartition
       OR ((cardinality($1::text[]) = 0 OR n.nspname = ANY ($1::text[]))
           AND NOT n.nspname = ANY ($2::text[])))
  AND NOT c.oid = ANY ($3::oid[])
  AND NOT coalesce(obj_description(c.oid, 'pg_class'), '') = ANY ($4::text[])
  -- objects an extension created are the extension's business, not the application's
  AND NOT EXISTS (SELECT 1
                  FROM pg_depend d
                  WHERE d.classid = 'pg_class'::regclass
                    AND d.objid = c.oid
                    AND d.deptype = 'e')
