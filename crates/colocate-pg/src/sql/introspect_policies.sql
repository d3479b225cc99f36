-- Row-level security policies of the tables $1 (oid[]).
SELECT p.polrelid AS table_oid,
       p.polname AS name,
       pg_get_expr(p.polqual, p.polrelid) AS using_expr,
       pg_get_expr(p.polwithcheck, p.polrelid) AS with_check
FROM pg_policy p
WHERE p.polrelid = ANY ($1::oid[])
ORDER BY p.polrelid, p.polname
