-- The NOT VALID check constraints of a table and its partitions, as the statements that drop them
-- ($1: the Citus table, quoted and qualified). undistribute_table would bring them back valid (or
-- fail on a row that violates one): undistribute_lost.sql journals them first, to be re-added
-- NOT VALID once the table is local. Names are quoted by format('%I') here, never pasted.
SELECT format('ALTER TABLE %I.%I DROP CONSTRAINT %I', n.nspname, k.relname, x.conname) AS stmt
FROM pg_constraint x
JOIN pg_class k ON k.oid = x.conrelid
JOIN pg_namespace n ON n.oid = k.relnamespace
WHERE x.contype = 'c' AND NOT x.convalidated AND x.coninhcount = 0
  AND (x.conrelid = to_regclass($1)
       OR x.conrelid IN (SELECT relid FROM pg_partition_tree(to_regclass($1))))
ORDER BY n.nspname, k.relname, x.conname
