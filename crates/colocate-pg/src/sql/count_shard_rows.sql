-- Row counts of Citus tables, summed from their shards: every node counts the shards it holds
-- in one command (run_command_on_all_nodes, in parallel), instead of one distributed count(*)
-- per table, whose planning and 32 round trips cost ~3.5 ms a table on the coordinator.
-- $1: the tables, as quoted qualified names (text[]). Returns one row per Citus table among
-- them: name, its shard count, how many shards were counted, and their rows. A table with
-- fewer counted shards than it has (a node that failed, a shard that moved) is counted by the
-- caller with count(*) instead. Shard names come from shard_name() and reach the nodes as
-- literals (format's %L); each node casts them with to_regclass and counts those it holds.
WITH wanted AS (
    SELECT w.name, to_regclass(w.name) AS rel
    FROM unnest($1::text[]) AS w(name)
), shards AS (
    SELECT wanted.name, s.shardid, shard_name(s.logicalrelid, s.shardid) AS shard
    FROM wanted
    JOIN pg_dist_shard s ON s.logicalrelid = wanted.rel
), command AS (
    SELECT format(
        $cmd$SELECT coalesce(json_object_agg(id, (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %%s', rel), false, true, '')))[1]::text::bigint), '{}') FROM unnest(%L::text[], %L::bigint[]) AS s(name, id), LATERAL to_regclass(name) AS rel WHERE rel IS NOT NULL$cmd$,
        array_agg(shard), array_agg(shardid)) AS sql
    FROM shards
    HAVING count(*) > 0
), counted AS (
    -- A replicated shard (reference tables) is counted on every node that holds it: the
    -- copies must agree.
    SELECT e.key::bigint AS shardid, min(e.value::bigint) AS n, max(e.value::bigint) AS n_max
    FROM command
    CROSS JOIN LATERAL run_command_on_all_nodes(command.sql) AS r
    CROSS JOIN LATERAL json_each_text(CASE WHEN r.success THEN r.result::json ELSE '{}' END) AS e
    GROUP BY e.key
)
SELECT shards.name,
       count(*)::bigint AS shards,
       count(counted.shardid) FILTER (WHERE counted.n = counted.n_max)::bigint AS counted,
       coalesce(sum(counted.n), 0)::bigint AS n
FROM shards
LEFT JOIN counted ON counted.shardid = shards.shardid
GROUP BY shards.name
