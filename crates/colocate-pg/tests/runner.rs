//! The runner against a real server: names that need quoting, resumable rollbacks, and history
//! rows whose file went away.

use std::path::{Path, PathBuf};
use std::time::Duration;

use colocate_core::history::{RollbackScope, Status};
use colocate_core::MigrationSet;
use colocate_pg::baseline::BaselineSource;
use colocate_pg::{ErrorKind, HistoryTable, MigrateOptions, Runner};
use colocate_testkit::TestDb;

fn write(dir: &Path, file: &str, body: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join(file);
    std::fs::write(&p, body).unwrap();
    p
}

fn load(dirs: &[&Path]) -> MigrationSet {
    MigrationSet::load(&dirs.iter().map(|d| d.to_path_buf()).collect::<Vec<_>>()).unwrap()
}

const AWKWARD_SCHEMA: &str = "Ops Schema";
const AWKWARD_TABLE: &str = "My \"Hist\" Table";

#[test]
fn history_table_names_with_quotes_spaces_capitals_and_schema() {
    let db = TestDb::new();
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    write(
        &a,
        "20240101000000_create_x.sql",
        "-- migrate:up\nCREATE TABLE \"Weird \"\"X\"\"\" (id int);\n-- migrate:down\nDROP TABLE \"Weird \"\"X\"\"\";\n",
    );
    let set = load(&[&a]);
    let mut c = db.connect();
    // Written as in colocate.toml: each part double-quoted, quotes inside doubled.
    let history = HistoryTable::new(&format!(
        "{}.{}",
        postgres_protocol::escape::escape_identifier(AWKWARD_SCHEMA),
        postgres_protocol::escape::escape_identifier(AWKWARD_TABLE)
    ));
    let mut run = Runner::new(&mut c, history, Duration::from_secs(5));
    let report = run
        .migrate(&set, &MigrateOptions::default(), &mut |_| {})
        .unwrap();
    assert_eq!(report.applied.len(), 1);
    let status = run.status(&set).unwrap();
    assert_eq!(status.counts.applied, 1);
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2",
            &[&AWKWARD_SCHEMA, &AWKWARD_TABLE],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 1, "history table created under its exact name");
}

#[test]
fn baseline_reads_a_source_table_whose_name_needs_quoting() {
    let db = TestDb::new();
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    // Running this would fail: baseline must only record it.
    write(
        &a,
        "20240101000000_old.sql",
        "-- migrate:up\nSELECT * FROM no_such_table;\n",
    );
    write(
        &a,
        "20240102000000_new.sql",
        "-- migrate:up\nCREATE TABLE fresh (id int);\n",
    );
    let mut c = db.connect();
    c.batch_execute(
        "CREATE SCHEMA \"Legacy\"; CREATE TABLE \"Legacy\".\"Knex Migrations\" (\"Name\" text);\
         INSERT INTO \"Legacy\".\"Knex Migrations\" VALUES ('20240101000000_old.js'), ('20230101000000_gone.js');",
    )
    .unwrap();
    let set = load(&[&a]);
    let mut run = Runner::new(
        &mut c,
        HistoryTable::new("colocate_migrations"),
        Duration::from_secs(5),
    );
    let report = run
        .baseline(
            &set,
            &BaselineSource::Table {
                table: "Legacy.Knex Migrations".into(),
                column: "Name".into(),
            },
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(report.marked.len(), 1);
    assert_eq!(report.unmatched, vec!["20230101000000_gone.js".to_string()]);
    // Baseline again: nothing new, and it says so.
    let again = run
        .baseline(
            &set,
            &BaselineSource::Table {
                table: "Legacy.Knex Migrations".into(),
                column: "Name".into(),
            },
            &mut |_| {},
        )
        .unwrap();
    assert_eq!((again.marked.len(), again.already_recorded), (0, 1));
    let applied = run
        .migrate(&set, &MigrateOptions::default(), &mut |_| {})
        .unwrap();
    assert_eq!(applied.applied.len(), 1);
    assert_eq!(applied.applied[0].name, "new");

    let err = run
        .baseline(
            &set,
            &BaselineSource::Table {
                table: "Legacy.Knex Migrations".into(),
                column: "name".into(),
            },
            &mut |_| {},
        )
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::NoSuchColumn { .. }),
        "wrong column is named: {err}"
    );
}

#[test]
fn a_half_done_rollback_outside_a_transaction_resumes_where_it_stopped() {
    let db = TestDb::new();
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let up = "-- migrate:up\nCREATE TABLE log (n int);\nCREATE TABLE t1 (id int);\nCREATE TABLE t2 (id int);\n";
    let broken_down = "-- migrate:down transaction:false\nINSERT INTO log VALUES (1);\nDROP TABLE t1;\nDROP TABLE no_such_table;\nDROP TABLE t2;\nDROP TABLE log;\n";
    let fixed_down = "-- migrate:down transaction:false\nINSERT INTO log VALUES (1);\nDROP TABLE t1;\nDROP TABLE IF EXISTS no_such_table;\nDROP TABLE t2;\nDROP TABLE log;\n";
    let file = write(
        &a,
        "20240101000000_tables.sql",
        &format!("{up}{broken_down}"),
    );
    let mut c = db.connect();
    let set = load(&[&a]);
    let mut run = Runner::new(
        &mut c,
        HistoryTable::new("colocate_migrations"),
        Duration::from_secs(5),
    );
    run.migrate(&set, &MigrateOptions::default(), &mut |_| {})
        .unwrap();
    let err = run
        .rollback(&set, RollbackScope::LastBatch, false, &mut |_| {})
        .unwrap_err();
    let ErrorKind::Failed(f) = err.kind() else {
        panic!("expected a migration failure, got {err}")
    };
    assert_eq!(f.statement, Some((3, 5)));
    assert_eq!(f.cause.server().map(|s| s.sqlstate.as_str()), Some("42P01"));
    let status = run.status(&set).unwrap();
    assert_eq!(status.entries[0].status, Status::Reverting);
    assert_eq!(status.entries[0].progress, Some((2, 5)));
    // migrate refuses while a rollback is half done.
    let refused = run
        .migrate(&set, &MigrateOptions::default(), &mut |_| {})
        .unwrap_err();
    assert!(matches!(refused.kind(), ErrorKind::Refused(_)), "{refused}");

    std::fs::write(&file, format!("{up}{fixed_down}")).unwrap();
    let set = load(&[&a]);
    let mut run = Runner::new(
        &mut c,
        HistoryTable::new("colocate_migrations"),
        Duration::from_secs(5),
    );
    let report = run
        .rollback(&set, RollbackScope::LastBatch, false, &mut |_| {})
        .unwrap();
    assert_eq!(report.reverted[0].resumed_at, 2);
    let left: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE tablename IN ('t1', 't2', 'log')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
    let rows: i64 = c
        .query_one("SELECT count(*) FROM colocate_migrations", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, 0);
}

#[test]
fn applied_migrations_whose_file_is_gone_are_reported_missing_and_block_rollback() {
    let db = TestDb::new();
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    write(
        &a,
        "20240101000000_one.sql",
        "-- migrate:up\nCREATE TABLE one (id int);\n-- migrate:down\nDROP TABLE one;\n",
    );
    let gone = write(
        &b,
        "20240102000000_two.sql",
        "-- migrate:up\nCREATE TABLE two (id int);\n-- migrate:down\nDROP TABLE two;\n",
    );
    let mut c = db.connect();
    let mut run = Runner::new(
        &mut c,
        HistoryTable::new("colocate_migrations"),
        Duration::from_secs(5),
    );
    run.migrate(&load(&[&a, &b]), &MigrateOptions::default(), &mut |_| {})
        .unwrap();
    std::fs::remove_file(gone).unwrap();
    let set = load(&[&a, &b]);
    let status = run.status(&set).unwrap();
    assert_eq!(status.counts.missing, 1);
    assert_eq!(status.entries[1].status, Status::Missing);
    assert!(status.entries[1].dir.ends_with("b"));
    let err = run
        .rollback(&set, RollbackScope::LastBatch, false, &mut |_| {})
        .unwrap_err();
    assert!(err.to_string().contains("20240102000000_two"), "{err}");
    let tables: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE tablename IN ('one', 'two')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 2, "refused before anything ran");
}
