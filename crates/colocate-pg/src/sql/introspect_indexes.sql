-- Unique indexes of the tables $1 (oid[]) that back no constraint (those are read as
-- constraints). Key columns only (not INCLUDE), in order; a NULL name is an expression.
SELECT i.indrelid AS table_oid,
       ic.relname AS name,
       ARRAY(SELECT a.attname::text
             FROM unnest(i.indkey::int2[]) WITH ORDINALITY k (attnum, ord)
             LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid
                                     AND a.attnum = k.attnum AND k.attnum <> 0
             WHERE k.ord <= i.indnkeyatts
             ORDER BY k.ord) AS columns,
       pg_get_expr(i.indpred, i.indrelid) AS predicate,
       pg_get_indexdef(i.indexrelid) AS definition
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
WHERE i.indrelid = ANY ($1::oid[])
  AND i.indisunique
  AND NOT EXISTS (SELECT 1
                  FROM pg_constraint con
                  WHERE con.conindid = i.indexrelid
                    AND con.conrelid = i.indrelid
                    AND con.contype IN ('p', 'u', 'x'))
ORDER BY i.indrelid, ic.relname
