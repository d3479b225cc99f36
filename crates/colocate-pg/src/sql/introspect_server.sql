-- What the server offers before anything else is read: whether the citus extension can be
-- created here and, if it is installed in this database, its version. Citus's own catalogs are
-- queried only when it is installed: they do not exist otherwise.
SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'citus') AS citus_available,
       (SELECT extversion FROM pg_extension WHERE extname = 'citus') AS citus_installed
