-- Primary keys, unique and exclusion constraints and foreign keys of the tables $1 (oid[]).
-- Column lists are names in key order; a NULL name is an expression (exclusion constraints).
-- Foreign-key clones that partitioning adds (conparentid <> 0) are left out: the parent's
-- constraint stands for them.
SELECT con.conrelid AS table_oid,
       con.conname AS name,
       con.contype::text AS kind,
       ARRAY(SELECT a.attname::text
             FROM unnest(con.conkey) WITH ORDINALITY k (attnum, ord)
             LEFT JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
             ORDER BY k.ord) AS columns,
       rn.nspname AS ref_schema,
       r.relname AS ref_name,
       ARRAY(SELECT a.attname::text
             FROM unnest(con.confkey) WITH ORDINALITY k (attnum, ord)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
             ORDER BY k.ord) AS ref_columns,
       NULLIF(con.confdeltype::text, ' ') AS on_delete,
       NULLIF(con.confupdtype::text, ' ') AS on_update,
       -- `ON DELETE SET NULL (cols)` exists from PostgreSQL 15; reading the column through the
       -- row's JSON keeps this one query valid on older servers, where the list is empty.
       ARRAY(SELECT a.attname::text
             FROM jsonb_array_elements_text(
                      CASE WHEN con.contype = 'f'
                           THEN COALESCE(NULLIF(to_jsonb(con) -> 'confdelsetcols', 'null'::jsonb),
                                         '[]'::jsonb)
                           ELSE '[]'::jsonb
                      END) WITH ORDINALITY k (attnum, ord)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum::int2
             ORDER BY k.ord) AS on_delete_columns,
       con.convalidated AS validated,
       pg_get_constraintdef(con.oid) AS definition
FROM pg_constraint con
LEFT JOIN pg_class r ON r.oid = con.confrelid
LEFT JOIN pg_namespace rn ON rn.oid = r.relnamespace
WHERE con.conrelid = ANY ($1::oid[])
  AND con.contype IN ('p', 'u', 'x', 'f')
  AND con.conparentid = 0
ORDER BY con.conrelid, con.conname
