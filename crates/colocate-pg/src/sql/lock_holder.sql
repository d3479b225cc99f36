SELECT a.pid,
       coalesce(a.application_name, ''),
       coalesce(a.usename::text, ''),
       coalesce(host(a.client_addr), 'local socket'),
       to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
FROM pg_locks l
JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory'
  AND l.granted
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid::bigint = $1
  AND l.objid::bigint = $2
  AND l.objsubid = 1
LIMIT 1
