-- What the server offers before anything else is read: whether the citus extension can be
-- created here (installed and preloaded), whether it is installed but not preloaded, and, if it
-- is created in this database, its version. Citus's own catalogs are queried only when it is
-- installed: they do not exist otherwise. {loadable} and {not_preloaded} are
-- colocate_core::schema's CITUS_LOADABLE_SQL and CITUS_NOT_PRELOADED_SQL.
SELECT {loadable} AS citus_available,
       {not_preloaded} AS citus_not_preloaded,
       (SELECT extversion FROM pg_extension WHERE extname = 'citus') AS citus_installed
