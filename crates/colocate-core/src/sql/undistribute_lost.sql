-- What undistribute_table does not carry over to the table it builds, as the statements that put
-- it back, in the order they must run ($1: the Citus table, quoted and qualified). Found with
-- pg_dump --schema-only before and after on Citus 13.2 (owner, grants, RLS, policies, triggers,
-- indexes, statistics targets, storage, defaults and replica identity survive):
--   1 NOT VALID check constraints (they come back valid: dropped before, re-added NOT VALID)
--   2 column options (attoptions, e.g. n_distinct)
--   3 rules
--   4 grants on the views over the table (Citus re-creates those views)
--   5 comments on the table, its partitions, their columns, constraints (but foreign keys, which
--     the journal puts back with their key), indexes, triggers, policies and rules, and on the
--     views over them and their columns
-- Names are quoted by format('%I') here, never pasted. colocate-pg runs this with $1 bound;
-- generated down parts run the same text in PL/pgSQL (EXECUTE ... USING).
WITH RECURSIVE rels AS (
    SELECT $1::text::regclass::oid AS oid
    UNION
    SELECT relid FROM pg_partition_tree($1::text::regclass)
), views(oid) AS (
    SELECT r.ev_class
    FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
    WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
      AND d.refobjid IN (SELECT oid FROM rels) AND r.ev_class NOT IN (SELECT oid FROM rels)
    UNION
    SELECT r.ev_class
    FROM views v
    JOIN pg_depend d ON d.refobjid = v.oid AND d.refclassid = 'pg_class'::regclass
                    AND d.classid = 'pg_rewrite'::regclass
    JOIN pg_rewrite r ON r.oid = d.objid
    WHERE r.ev_class <> v.oid
), objs AS (
    SELECT c.oid, c.relkind, c.relacl, format('%I.%I', n.nspname, c.relname) AS q,
           c.oid IN (SELECT oid FROM views) AS is_view
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.oid IN (SELECT oid FROM rels)
       OR c.oid IN (SELECT oid FROM views)
       OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid IN (SELECT oid FROM rels))
), lost(ord, what, stmt) AS (
    SELECT 1, format('NOT VALID check %I on %s', k.conname, o.q),
           format('ALTER TABLE %s DROP CONSTRAINT IF EXISTS %I, ADD CONSTRAINT %I %s',
                  o.q, k.conname, k.conname, pg_get_constraintdef(k.oid))
    FROM pg_constraint k JOIN objs o ON o.oid = k.conrelid
    WHERE k.contype = 'c' AND NOT k.convalidated AND k.coninhcount = 0 AND NOT o.is_view
    UNION ALL
    -- (only the options a column of a table can be given: this server's catalog may hold others)
    SELECT 2, format('options of column %s.%I', o.q, a.attname),
           format('ALTER TABLE ONLY %s ALTER COLUMN %I SET (%s)', o.q, a.attname, x.opts)
    FROM pg_attribute a JOIN objs o ON o.oid = a.attrelid,
         LATERAL (SELECT string_agg(opt, ', ') AS opts FROM unnest(a.attoptions) opt
                  WHERE opt LIKE 'n\_distinct=%' OR opt LIKE 'n\_distinct\_inherited=%') x
    WHERE a.attnum > 0 AND NOT a.attisdropped AND x.opts IS NOT NULL AND o.relkind IN ('r', 'p')
    UNION ALL
    SELECT 3, format('rule %I on %s', w.rulename, o.q),
           regexp_replace(regexp_replace(pg_get_ruledef(w.oid), '^CREATE RULE', 'CREATE OR REPLACE RULE'), ';\s*$', '')
    FROM pg_rewrite w JOIN objs o ON o.oid = w.ev_class
    WHERE w.rulename <> '_RETURN' AND NOT o.is_view
    UNION ALL
    SELECT 4, format('grant on view %s', o.q),
           format('GRANT %s ON TABLE %s TO %s%s', g.privilege_type, o.q,
                  CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(g.grantee)) END,
                  CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
    FROM objs o, aclexplode(o.relacl) g
    WHERE o.is_view
    UNION ALL
    SELECT 4, format('grant on view column %s.%I', o.q, a.attname),
           format('GRANT %s (%I) ON TABLE %s TO %s%s', g.privilege_type, a.attname, o.q,
                  CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(g.grantee)) END,
                  CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
    FROM objs o JOIN pg_attribute a ON a.attrelid = o.oid, aclexplode(a.attacl) g
    WHERE o.is_view AND a.attnum > 0
    UNION ALL
    SELECT 5, format('comment on %s', o.q),
           format('COMMENT ON %s %s IS %L',
                  CASE WHEN o.is_view THEN 'VIEW' WHEN o.relkind IN ('i', 'I') THEN 'INDEX' ELSE 'TABLE' END,
                  o.q, d.description)
    FROM pg_description d JOIN objs o ON o.oid = d.objoid
    WHERE d.classoid = 'pg_class'::regclass AND d.objsubid = 0
    UNION ALL
    SELECT 5, format('comment on column %s.%I', o.q, a.attname),
           format('COMMENT ON COLUMN %s.%I IS %L', o.q, a.attname, d.description)
    FROM pg_description d JOIN objs o ON o.oid = d.objoid
    JOIN pg_attribute a ON a.attrelid = d.objoid AND a.attnum = d.objsubid
    WHERE d.classoid = 'pg_class'::regclass AND d.objsubid > 0
    UNION ALL
    SELECT 5, format('comment on constraint %I on %s', k.conname, o.q),
           format('COMMENT ON CONSTRAINT %I ON %s IS %L', k.conname, o.q, d.description)
    FROM pg_constraint k JOIN objs o ON o.oid = k.conrelid
    JOIN pg_description d ON d.objoid = k.oid AND d.classoid = 'pg_constraint'::regclass
    WHERE k.contype <> 'f'
    UNION ALL
    SELECT 5, format('comment on trigger %I on %s', t.tgname, o.q),
           format('COMMENT ON TRIGGER %I ON %s IS %L', t.tgname, o.q, d.description)
    FROM pg_trigger t JOIN objs o ON o.oid = t.tgrelid
    JOIN pg_description d ON d.objoid = t.oid AND d.classoid = 'pg_trigger'::regclass
    WHERE NOT t.tgisinternal
    UNION ALL
    SELECT 5, format('comment on policy %I on %s', p.polname, o.q),
           format('COMMENT ON POLICY %I ON %s IS %L', p.polname, o.q, d.description)
    FROM pg_policy p JOIN objs o ON o.oid = p.polrelid
    JOIN pg_description d ON d.objoid = p.oid AND d.classoid = 'pg_policy'::regclass
    UNION ALL
    SELECT 5, format('comment on rule %I on %s', w.rulename, o.q),
           format('COMMENT ON RULE %I ON %s IS %L', w.rulename, o.q, d.description)
    FROM pg_rewrite w JOIN objs o ON o.oid = w.ev_class
    JOIN pg_description d ON d.objoid = w.oid AND d.classoid = 'pg_rewrite'::regclass
    WHERE w.rulename <> '_RETURN'
)
SELECT what, stmt FROM lost ORDER BY ord, what, stmt
