//! The migration runner on Citus: a Citus function in a `transaction:false` migration runs, its
//! down part reverses it, on a single node and on a coordinator with two workers. Skipped, with
//! the reason printed, where the citus extension is not installed.

use std::path::Path;
use std::time::Duration;

use colocate_core::history::RollbackScope;
use colocate_core::schema::QualifiedName;
use colocate_core::MigrationSet;
use colocate_pg::verify::{count_rows_many, count_shard_rows};
use colocate_pg::{HistoryTable, MigrateOptions, Runner};
use colocate_testkit::{skip_without_citus, TestDb};

fn write_set(dir: &Path) -> MigrationSet {
    let base = dir.join("server/migrations");
    let citus = dir.join("ee/server/migrations/citus");
    std::fs::create_dir_all(&base).unwrap();
    std::fs::create_dir_all(&citus).unwrap();
    std::fs::write(
        base.join("20240101000000_tenants.sql"),
        "-- migrate:up\nCREATE TABLE tenants (tenant uuid PRIMARY KEY, name text);\n\
         CREATE TABLE tickets (tenant uuid NOT NULL REFERENCES tenants, id bigint NOT NULL, PRIMARY KEY (tenant, id));\n\
         INSERT INTO tenants SELECT gen_random_uuid(), 't' || g FROM generate_series(1, 20) g;\n\
         INSERT INTO tickets SELECT tenant, 1 FROM tenants;\n\
         -- migrate:down\nDROP TABLE tickets;\nDROP TABLE tenants;\n",
    )
    .unwrap();
    std::fs::write(
        citus.join("20240101000100_distribute.sql"),
        "-- migrate:up transaction:false\n\
         SELECT create_distributed_table('tenants', 'tenant');\n\
         SELECT create_distributed_table('tickets', 'tenant', colocate_with => 'tenants');\n\
         SELECT truncate_local_data_after_distributing_table('tickets');\n\
         SELECT truncate_local_data_after_distributing_table('tenants');\n\
         -- migrate:down transaction:false\n\
         SELECT undistribute_table('tickets', cascade_via_foreign_keys => true);\n",
    )
    .unwrap();
    // After distribution: several DDL statements in one transaction, which Citus refuses as
    // one multi-statement query.
    std::fs::write(
        base.join("20240101000200_ticket_notes.sql"),
        "-- migrate:up\nALTER TABLE tickets ADD COLUMN note text;\n\
         ALTER TABLE tickets ALTER COLUMN note SET DEFAULT '';\n\
         CREATE INDEX tickets_note_idx ON tickets (tenant, note);\n\
         -- migrate:down\nDROP INDEX tickets_note_idx;\nALTER TABLE tickets DROP COLUMN note;\n",
    )
    .unwrap();
    MigrationSet::load(&[base, citus]).unwrap()
}

fn round_trip(mut c: postgres::Client, check_placement: impl Fn(&mut postgres::Client)) {
    let tmp = tempfile::tempdir().unwrap();
    let set = write_set(tmp.path());
    let mut run = Runner::new(
        &mut c,
        HistoryTable::new("colocate_migrations"),
        Duration::from_secs(30),
    );
    let report = run
        .migrate(&set, &MigrateOptions::default(), &mut |_| {})
        .unwrap();
    assert_eq!(report.applied.len(), 3);
    let dist: Vec<(String, i32)> = c
        .query(
            "SELECT logicalrelid::regclass::text, colocationid FROM pg_dist_partition \
             WHERE partmethod = 'h' ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(dist.len(), 2, "{dist:?}");
    assert_eq!(dist[0].1, dist[1].1, "tenants and tickets colocated");
    let rows: i64 = c
        .query_one("SELECT count(*) FROM tickets", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, 20);
    check_placement(&mut c);

    let mut run = Runner::new(
        &mut c,
        HistoryTable::new("colocate_migrations"),
        Duration::from_secs(30),
    );
    let back = run
        .rollback(&set, RollbackScope::Steps(2), false, &mut |_| {})
        .unwrap();
    assert_eq!(back.reverted.len(), 2);
    let left: i64 = c
        .query_one("SELECT count(*) FROM pg_dist_partition", &[])
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "undistributed");
    let rows: i64 = c
        .query_one("SELECT count(*) FROM tickets", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, 20, "data kept through undistribute");
}

#[test]
fn citus_single_node_migration_track_runs_and_rolls_back() {
    if skip_without_citus("citus_single_node_migration_track_runs_and_rolls_back") {
        return;
    }
    let db = TestDb::new();
    round_trip(db.citus_single_node(), |c| {
        let nodes: i64 = c
            .query_one("SELECT count(DISTINCT groupid) FROM pg_dist_placement", &[])
            .unwrap()
            .get(0);
        assert_eq!(nodes, 1, "every shard on the coordinator");
    });
}

#[test]
fn citus_two_workers_migration_track_runs_and_rolls_back() {
    if skip_without_citus("citus_two_workers_migration_track_runs_and_rolls_back") {
        return;
    }
    let db = TestDb::new();
    let workers = colocate_testkit::worker_ports().len() as i64;
    round_trip(db.citus_with_workers(), |c| {
        let nodes: i64 = c
            .query_one(
                "SELECT count(DISTINCT n.nodeport) FROM pg_dist_placement p \
                 JOIN pg_dist_node n ON n.groupid = p.groupid WHERE n.groupid <> 0",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(nodes, workers, "shards spread over every worker");
    });
}

/// Row counts summed from the shards on every node (apply's verification) agree with
/// `count(*)`, for hash-distributed (with the coordinator's leftover rows not yet removed),
/// partitioned, reference (replicated on every node) and empty tables with awkward names; plain
/// tables are left to `count(*)`.
fn shard_counts_agree(mut c: postgres::Client) {
    c.batch_execute(
        "CREATE SCHEMA \"Ops Schema\";
         CREATE TABLE tenants (tenant uuid PRIMARY KEY);
         INSERT INTO tenants SELECT gen_random_uuid() FROM generate_series(1, 37);
         CREATE TABLE \"Ops Schema\".\"My \"\"Odd\"\" Table\" (tenant uuid NOT NULL, id int NOT NULL, PRIMARY KEY (tenant, id));
         INSERT INTO \"Ops Schema\".\"My \"\"Odd\"\" Table\" SELECT tenant, g FROM tenants, generate_series(1, 7) g;
         CREATE TABLE events (tenant uuid NOT NULL, at date NOT NULL, n int) PARTITION BY RANGE (at);
         CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
         CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
         INSERT INTO events SELECT tenant, date '2024-06-01' + (g * 40), g FROM tenants, generate_series(1, 9) g;
         CREATE TABLE countries (code text PRIMARY KEY);
         INSERT INTO countries SELECT 'c' || g FROM generate_series(1, 11) g;
         CREATE TABLE empty_one (tenant uuid NOT NULL);
         CREATE TABLE plain (id int);
         INSERT INTO plain SELECT generate_series(1, 5);
         SELECT create_distributed_table('tenants', 'tenant', shard_count => 8);
         SELECT truncate_local_data_after_distributing_table('tenants');
         SELECT create_distributed_table('\"Ops Schema\".\"My \"\"Odd\"\" Table\"', 'tenant', colocate_with => 'tenants');
         SELECT create_distributed_table('events', 'tenant', colocate_with => 'tenants');
         SELECT create_reference_table('countries');
         SELECT create_distributed_table('empty_one', 'tenant', colocate_with => 'tenants');",
    )
    .unwrap();
    let names = [
        "public.tenants",
        "Ops Schema.My \"Odd\" Table",
        "public.events",
        "public.countries",
        "public.empty_one",
        "public.plain",
    ];
    let tables: Vec<QualifiedName> = names
        .iter()
        .map(|n| {
            let (schema, name) = n.split_once('.').unwrap();
            QualifiedName::new(schema, name)
        })
        .collect();
    let refs: Vec<&QualifiedName> = tables.iter().collect();
    let from_shards = count_shard_rows(&mut c, &refs).unwrap();
    let all = count_rows_many(&mut c, &tables).unwrap();
    for t in &tables {
        let n: i64 = c
            .query_one(&format!("SELECT count(*) FROM {}", t.sql()), &[])
            .unwrap()
            .get(0);
        assert_eq!(all[t], n, "{t}");
        if t.name == "plain" {
            assert!(!from_shards.contains_key(t), "a plain table has no shards");
        } else {
            assert_eq!(from_shards.get(t), Some(&n), "{t} counted from its shards");
        }
    }
    assert_eq!(all[&tables[1]], 37 * 7);
    assert_eq!(all[&tables[2]], 37 * 9);
}

#[test]
fn citus_single_node_row_counts_from_shards_agree_with_count() {
    if skip_without_citus("citus_single_node_row_counts_from_shards_agree_with_count") {
        return;
    }
    let db = TestDb::new();
    shard_counts_agree(db.citus_single_node());
}

#[test]
fn citus_two_workers_row_counts_from_shards_agree_with_count() {
    if skip_without_citus("citus_two_workers_row_counts_from_shards_agree_with_count") {
        return;
    }
    let db = TestDb::new();
    shard_counts_agree(db.citus_with_workers());
}

/// Working sessions: with more connections allowed, apply renews the session its steps run on
/// every `CONVERSIONS_PER_SESSION` conversions (the settings made again on each: the tables
/// referencing the reference table convert only in sequential mode); without, it uses the
/// caller's alone. Either way everything converges.
#[test]
fn citus_single_node_apply_renews_its_working_session() {
    if skip_without_citus("citus_single_node_apply_renews_its_working_session") {
        return;
    }
    use colocate_core::distribution::DistributionConfig;
    use colocate_pg::apply::{apply, ApplyOptions, CONVERSIONS_PER_SESSION};

    for more in [true, false] {
        let db = TestDb::new();
        let mut c = db.citus_single_node();
        c.batch_execute(
            "CREATE TABLE tenants (tenant uuid PRIMARY KEY);
             INSERT INTO tenants SELECT gen_random_uuid() FROM generate_series(1, 3);
             CREATE TABLE kinds (code text PRIMARY KEY);
             INSERT INTO kinds VALUES ('a');
             CREATE TABLE t_0 (tenant uuid NOT NULL REFERENCES tenants, id int NOT NULL,
                 kind text REFERENCES kinds, PRIMARY KEY (tenant, id));
             INSERT INTO t_0 SELECT tenant, 1, 'a' FROM tenants;
             DO $$ BEGIN FOR i IN 1..43 LOOP
               EXECUTE format('CREATE TABLE t_%s (tenant uuid NOT NULL REFERENCES tenants,
                   id int NOT NULL, parent int, PRIMARY KEY (tenant, id),
                   FOREIGN KEY (tenant, parent) REFERENCES t_0 (tenant, id))', i);
               EXECUTE format('INSERT INTO t_%s SELECT tenant, 1, 1 FROM tenants', i);
             END LOOP; END $$;",
        )
        .unwrap();
        let target = colocate_pg::Target::new(Some(db.url())).unwrap();
        let opts = ApplyOptions {
            more_connections: more.then(|| target.clone()),
            ..ApplyOptions::default()
        };
        let report = apply(&mut c, &DistributionConfig::default(), &opts, &mut |_| {}).unwrap();
        // 46 conversions: tenants, kinds, t_0 .. t_43.
        let conversions: usize = 46;
        let expected = if more {
            conversions.div_ceil(CONVERSIONS_PER_SESSION)
        } else {
            0
        };
        assert_eq!(report.sessions, expected, "more connections: {more}");
        let citus: i64 = c
            .query_one("SELECT count(*) FROM pg_dist_partition", &[])
            .unwrap()
            .get(0);
        assert_eq!(citus, conversions as i64);
        let setting: String = c
            .query_one("SHOW citus.multi_shard_modify_mode", &[])
            .unwrap()
            .get(0);
        assert_eq!(
            setting, "parallel",
            "the caller's session gets its settings back"
        );
    }
}
