-- The same on every worker, through Citus (the coordinator's own pg_stat_progress_copy shows
-- nothing of a copy into shards on workers: the worker backends that Citus's connections reach
-- do the COPY). $1 (text[]): the application names of the run's Citus connections. Each
-- worker answers `pid relid rows` triples joined by commas; a worker that fails is left out.
SELECT w.nodename || ':' || w.nodeport, w.result
FROM run_command_on_workers(format(
    $cmd$SELECT coalesce(string_agg(format('%%s %%s %%s', p.pid, p.relid::bigint, p.tuples_processed), ','), '') FROM pg_stat_progress_copy p JOIN pg_stat_activity a USING (pid) WHERE p.datname = current_database() AND a.application_name = ANY (%L::text[])$cmd$,
    $1::text[])) AS w
WHERE w.success
