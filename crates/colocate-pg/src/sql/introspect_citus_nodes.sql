-- Active primary workers (the coordinator is group 0). Only sent when citus is installed.
SELECT count(*)::int8 AS workers
FROM pg_dist_node
WHERE isactive
  AND groupid <> 0
  AND noderole = 'primary'
