-- Columns of the tables $1 (oid[]), with what a distribution column needs: a default hash
-- operator class for the type and a deterministic collation.
--
-- Hashability follows what hashing a value needs at run time, not only what opclass lookup
-- accepts: Citus 13.2 distributes a json[] column (array_ops matches any array), and the first
-- INSERT then crashes the server (signal 11, observed). Domains are judged by their base
-- type, enums by enum_ops, ranges and multiranges by their subtype, arrays by their element
-- type, composites by record_ops and every field. Binary-coercible types (varchar → text) use
-- the target's class. One level deep: an array of composites, or a composite with an array
-- field, counts as not hashable.
WITH RECURSIVE
cols AS (
    SELECT a.attrelid, a.attnum, a.attname, a.atttypid, a.atttypmod, a.attnotnull,
           a.attidentity, a.attgenerated, a.attcollation
    FROM pg_attribute a
    WHERE a.attrelid = ANY ($1::oid[])
      AND a.attnum > 0
      AND NOT a.attisdropped
),
-- each type involved, down through domains, element types, range subtypes and composite fields
types (oid) AS (
    SELECT DISTINCT atttypid FROM cols
    UNION
    SELECT x.oid
    FROM types t
    JOIN pg_type ty ON ty.oid = t.oid
    CROSS JOIN LATERAL (
        SELECT NULLIF(ty.typbasetype, 0)
        UNION ALL SELECT CASE WHEN ty.typelem <> 0 AND ty.typlen = -1 THEN ty.typelem END
        UNION ALL SELECT r.rngsubtype FROM pg_range r WHERE r.rngtypid = ty.oid
        UNION ALL SELECT r.rngtypid FROM pg_range r WHERE r.rngmultitypid = ty.oid
        UNION ALL SELECT fa.atttypid FROM pg_attribute fa
                  WHERE ty.typtype = 'c' AND fa.attrelid = ty.typrelid
                    AND fa.attnum > 0 AND NOT fa.attisdropped
    ) x (oid)
    WHERE x.oid IS NOT NULL
),
-- a default hash opclass declared for the type itself (or a binary-coercible one, or enum_ops)
direct AS (
    SELECT t.oid,
           EXISTS (SELECT 1
                   FROM pg_opclass oc
                   JOIN pg_am am ON am.oid = oc.opcmethod AND am.amname = 'hash'
                   WHERE oc.opcdefault
                     AND (oc.opcintype = t.oid
                          OR (ty.typtype = 'e' AND oc.opcintype = 'anyenum'::regtype)
                          OR EXISTS (SELECT 1 FROM pg_cast ca
                                     WHERE ca.castsource = t.oid
                                       AND ca.casttarget = oc.opcintype
                                       AND ca.castmethod = 'b'
                                       AND ca.castcontext = 'i'))) AS ok
    FROM types t
    JOIN pg_type ty ON ty.oid = t.oid
),
-- a domain's base type, through domains over domains
base (oid, base) AS (
    SELECT t.oid, t.oid FROM types t
    UNION ALL
    SELECT b.oid, ty.typbasetype
    FROM base b
    JOIN pg_type ty ON ty.oid = b.base
    WHERE ty.typtype = 'd'
),
resolved AS (
    SELECT b.oid, b.base
    FROM base b
    JOIN pg_type ty ON ty.oid = b.base
    WHERE ty.typtype <> 'd'
),
-- hashes by itself: its base type has a class, or is a range / multirange over one that has
scalar AS (
    SELECT r.oid, r.base,
           COALESCE((SELECT d.ok FROM direct d WHERE d.oid = r.base), false)
           OR EXISTS (SELECT 1 FROM pg_range rg
                      JOIN resolved er ON er.oid = rg.rngsubtype
                      JOIN direct d ON d.oid = er.base
                      WHERE (rg.rngtypid = r.base OR rg.rngmultitypid = r.base) AND d.ok) AS ok
    FROM resolved r
),
-- or hashes through its elements: an array of such a type, a composite of such fields
hashable AS (
    SELECT s.oid,
           s.ok
           OR (bt.typelem <> 0 AND bt.typlen = -1
               AND EXISTS (SELECT 1 FROM scalar es WHERE es.oid = bt.typelem AND es.ok))
           OR (bt.typtype = 'c'
               AND EXISTS (SELECT 1 FROM pg_opclass oc
                           JOIN pg_am am ON am.oid = oc.opcmethod AND am.amname = 'hash'
                           WHERE oc.opcdefault AND oc.opcintype = 'record'::regtype)
               AND NOT EXISTS (SELECT 1 FROM pg_attribute fa
                               JOIN scalar fs ON fs.oid = fa.atttypid
                               WHERE fa.attrelid = bt.typrelid AND fa.attnum > 0
                                 AND NOT fa.attisdropped AND NOT fs.ok)) AS ok
    FROM scalar s
    JOIN pg_type bt ON bt.oid = s.base
)
SELECT c.attrelid AS table_oid,
       c.attname AS name,
       format_type(c.atttypid, c.atttypmod) AS type_name,
       c.attnotnull AS not_null,
       NULLIF(c.attidentity::text, '') AS identity,
       c.attgenerated = 's' AS generated,
       COALESCE(h.ok, false) AS hashable,
       COALESCE(coll.collisdeterministic, true) AS deterministic_collation,
       CASE WHEN c.attgenerated = '' THEN pg_get_expr(ad.adbin, ad.adrelid) END AS default_expr
FROM cols c
LEFT JOIN hashable h ON h.oid = c.atttypid
LEFT JOIN pg_collation coll ON coll.oid = c.attcollation
LEFT JOIN pg_attrdef ad ON ad.adrelid = c.attrelid AND ad.adnum = c.attnum
ORDER BY c.attrelid, c.attnum
