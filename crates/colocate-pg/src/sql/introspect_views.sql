-- The relations each view or materialized view in $1 (oid[]) reads, through its rewrite rule's
-- dependencies. A view that reads no relation still gets one row, with NULL names.
SELECT v.oid AS view_oid,
       dn.nspname AS dep_schema,
       d.relname AS dep_name
FROM pg_class v
LEFT JOIN LATERAL (
    SELECT DISTINCT dep.refobjid
    FROM pg_rewrite rw
    JOIN pg_depend dep ON dep.classid = 'pg_rewrite'::regclass
                      AND dep.objid = rw.oid
                      AND dep.refclassid = 'pg_class'::regclass
                      AND dep.refobjid <> v.oid
    WHERE rw.ev_class = v.oid
) refs ON true
LEFT JOIN pg_class d ON d.oid = refs.refobjid AND d.relkind IN ('r', 'p', 'v', 'm', 'f')
LEFT JOIN pg_namespace dn ON dn.oid = d.relnamespace
WHERE v.oid = ANY ($1::oid[])
