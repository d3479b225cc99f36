-- User triggers of the tables $1 (oid[]); internal ones (foreign-key enforcement) excluded.
SELECT t.tgrelid AS table_oid,
       t.tgname AS name,
       pg_get_triggerdef(t.oid) AS definition
FROM pg_trigger t
WHERE t.tgrelid = ANY ($1::oid[])
  AND NOT t.tgisinternal
ORDER BY t.tgrelid, t.tgname
