-- What Citus makes of two tables ($1 referencing, $2 referenced; quoted qualified names):
-- 'distributed', 'reference', 'citus_local' or NULL (a plain table, or no Citus), and their
-- colocation groups.
WITH t AS (
    SELECT i, to_regclass(name) AS rel
    FROM unnest(ARRAY[$1::text, $2::text]) WITH ORDINALITY AS u(name, i)
), k AS (
    SELECT t.i,
           CASE WHEN p.partmethod = 'h' THEN 'distributed'
                WHEN p.repmodel = 't' THEN 'reference'
                ELSE 'citus_local' END AS kind,
           p.colocationid
    FROM t
    JOIN pg_dist_partition p ON p.logicalrelid = t.rel
)
SELECT (SELECT kind FROM k WHERE i = 1),
       (SELECT kind FROM k WHERE i = 2),
       (SELECT colocationid FROM k WHERE i = 1),
       (SELECT colocationid FROM k WHERE i = 2)
