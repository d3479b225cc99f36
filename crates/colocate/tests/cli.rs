//! Binary-level tests of `migrate` and `status`: directories merged by version, the history table,
//! configuration discovery, failures inside a transaction, dry runs, targets, out-of-order
//! refusals and two runs at once. Every test has its own database and checks what it holds.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{create_table, migration, Project, UP};

/// Four migrations in two directories, interleaved by version. Each appends its version to
/// `log`, so the order they ran in can be read back; `licenses` refers to `tenants`, so running
/// them out of order would fail.
fn two_dirs(p: &Project) {
    p.write(
        "base",
        "20240101000000_create_tenants.sql",
        &migration(
            "CREATE TABLE log (id serial PRIMARY KEY, v text NOT NULL);\n\
             CREATE TABLE tenants (id int PRIMARY KEY);\n\
             INSERT INTO log (v) VALUES ('20240101000000');",
            Some("DROP TABLE tenants;\nDROP TABLE log;"),
        ),
    );
    p.write(
        "ee",
        "20240102000000_create_licenses.sql",
        &migration(
            "CREATE TABLE licenses (tenant_id int REFERENCES tenants);\n\
             INSERT INTO log (v) VALUES ('20240102000000');",
            Some("DROP TABLE licenses;"),
        ),
    );
    p.write(
        "base",
        "20240103000000_create_users.sql",
        &migration(
            "CREATE TABLE users (id int, tenant_id int REFERENCES tenants);\n\
             INSERT INTO log (v) VALUES ('20240103000000');",
            Some("DROP TABLE users;"),
        ),
    );
    p.write(
        "ee",
        "20240104000000_create_audit.sql",
        &migration(
            "CREATE TABLE audit (at timestamptz);\n\
             INSERT INTO log (v) VALUES ('20240104000000');",
            Some("DROP TABLE audit;"),
        ),
    );
}

const DIRS: &[&str] = &["base", "ee"];

fn run_order(p: &Project) -> String {
    let mut c = p.db.connect();
    c.query_one("SELECT string_agg(v, ',' ORDER BY id) FROM log", &[])
        .expect("read log")
        .get(0)
}

#[test]
fn migrate_applies_two_directories_merged_by_version() {
    let p = Project::new();
    two_dirs(&p);
    let r = p.colocate(DIRS, &["migrate"]).expect(0);

    // Reported in version order, with the directory each file came from.
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{}", r.stdout);
    for (line, (dir, file)) in lines.iter().zip([
        ("base", "20240101000000_create_tenants.sql"),
        ("ee", "20240102000000_create_licenses.sql"),
        ("base", "20240103000000_create_users.sql"),
        ("ee", "20240104000000_create_audit.sql"),
    ]) {
        let path = p.root().join(dir).join(file);
        assert!(
            line.starts_with(&format!("applied   {}  (", path.display())),
            "{line}"
        );
    }
    assert!(
        lines[4].starts_with("batch 1: 4 migrations applied in "),
        "{}",
        lines[4]
    );

    // Ran in version order, each exactly once.
    assert_eq!(
        run_order(&p),
        "20240101000000,20240102000000,20240103000000,20240104000000"
    );

    // One history row each, with the directory, the batch and the file's SHA-256.
    let rows = p.history();
    let expected = [
        ("20240101000000", "create_tenants", "base"),
        ("20240102000000", "create_licenses", "ee"),
        ("20240103000000", "create_users", "base"),
        ("20240104000000", "create_audit", "ee"),
    ];
    assert_eq!(rows.len(), expected.len());
    for (row, (version, name, dir)) in rows.iter().zip(expected) {
        // --dir under the working directory is recorded relative to it.
        assert_eq!(row.source_dir, dir);
        let dir = p.root().join(dir);
        let bytes = std::fs::read(dir.join(format!("{version}_{name}.sql"))).unwrap();
        assert_eq!(row.version, version);
        assert_eq!(row.name, name);
        assert_eq!(row.batch, 1);
        assert_eq!(row.state, "applied");
        assert_eq!(row.progress, None);
        assert_eq!(row.error, None);
        assert_eq!(row.checksum, p.sha256_hex(&bytes), "checksum of {version}");
        assert_eq!(row.checksum.len(), 64);
    }

    // A second run has nothing to do and changes nothing.
    let r = p.colocate(DIRS, &["migrate"]).expect(0);
    assert_eq!(
        r.stdout.trim(),
        "nothing to apply: the database is up to date"
    );
    assert_eq!(p.history(), rows);
    assert_eq!(p.count("SELECT count(*) FROM log"), 4);
}

#[test]
fn status_lists_applied_and_pending_and_check_exits_by_state() {
    let p = Project::new();
    two_dirs(&p);
    p.colocate(DIRS, &["migrate", "--target", "20240102000000"])
        .expect(0);
    assert_eq!(p.versions(), ["20240101000000", "20240102000000"]);

    let status = p.colocate(DIRS, &["status"]).expect(0);
    assert!(status.stderr.is_empty(), "{}", status.stderr);
    p.settings().bind(|| {
        insta::assert_snapshot!("status_two_applied_two_pending", status.stdout);
    });

    // JSON: the same report under a versioned envelope.
    let json = p.colocate(DIRS, &["status", "--format", "json"]).expect(0);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("status JSON parses");
    assert_eq!(v["version"], 1);
    assert_eq!(v["command"], "status");
    assert_eq!(v["counts"]["applied"], 2);
    assert_eq!(v["counts"]["pending"], 2);
    assert_eq!(v["counts"]["changed"], 0);
    assert_eq!(v["counts"]["partial"], 0);
    let entries = v["entries"].as_array().expect("entries");
    let got: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["version"].as_str().unwrap(),
                e["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("20240101000000", "applied"),
            ("20240102000000", "applied"),
            ("20240103000000", "pending"),
            ("20240104000000", "pending"),
        ]
    );
    assert_eq!(entries[1]["batch"], 1);
    assert_eq!(entries[1]["dir"].as_str().unwrap(), "ee");
    assert!(entries[3].get("batch").is_none());

    // --check: 1 while anything is pending, 0 once everything is applied.
    let check = p.colocate(DIRS, &["status", "--check"]).expect(1);
    assert!(check.stdout.contains("2 applied, 2 pending"), "{check:?}");
    p.colocate(DIRS, &["migrate"]).expect(0);
    let check = p.colocate(DIRS, &["status", "--check"]).expect(0);
    assert!(check.stdout.contains("4 applied, 0 pending"), "{check:?}");

    // A file edited after it was applied: "changed", and --check fails again.
    let edited = p.root().join("ee/20240102000000_create_licenses.sql");
    let mut body = std::fs::read_to_string(&edited).unwrap();
    body.push_str("-- an innocent-looking comment\n");
    std::fs::write(&edited, body).unwrap();
    let check = p.colocate(DIRS, &["status", "--check"]).expect(1);
    let row = check
        .stdout
        .lines()
        .find(|l| l.contains("20240102000000"))
        .expect("row of the edited migration");
    assert!(row.contains(" changed "), "{row}");
    assert!(
        check
            .stdout
            .contains("3 applied, 0 pending, 1 changed since applied"),
        "{}",
        check.stdout
    );
    let json = p.colocate(DIRS, &["status", "--format", "json"]).expect(0);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["counts"]["changed"], 1);
    // status reads, never writes.
    assert_eq!(p.history().len(), 4);
}

#[test]
fn status_on_an_empty_database_creates_nothing() {
    let p = Project::new();
    two_dirs(&p);
    let r = p.colocate(DIRS, &["status"]).expect(0);
    assert!(r.stdout.contains("0 applied, 4 pending"), "{}", r.stdout);
    assert_eq!(p.user_tables(), 0);
}

// --- Configuration ----------------------------------------------------------------------------

#[test]
fn config_is_found_walking_up_and_sets_dirs_and_history_table() {
    let p = Project::new();
    p.write(
        ".",
        "colocate.toml",
        "# dirs are relative to this file\nmigration_dirs = [\"db/base\", \"db/ee\"]\nhistory_table = \"ops.hist\"\n",
    );
    p.write("db/base", "20240101000000_a.sql", &create_table("a"));
    p.write("db/ee", "20240102000000_b.sql", &create_table("b"));
    p.dir("app/src/deep");

    let r = p.colocate_in("app/src/deep", &["migrate"]).expect(0);
    assert!(r.stdout.contains("2 migrations applied"), "{}", r.stdout);
    assert!(p.table_exists("public.a") && p.table_exists("public.b"));
    // The configured history table, in its own schema; not the default one.
    assert!(p.table_exists("ops.hist"));
    assert!(!p.table_exists("public.colocate_migrations"));
    let rows = p.history_in("ops.hist");
    assert_eq!(rows.len(), 2);
    // Recorded relative to the file's directory: the same on every machine that runs it.
    assert_eq!(rows[0].source_dir, "db/base");
    assert_eq!(rows[1].source_dir, "db/ee");

    // status from another sub-directory finds the same file and the same history.
    let s = p.colocate_in("app", &["status", "--check"]).expect(0);
    assert!(s.stdout.contains("2 applied, 0 pending"), "{}", s.stdout);

    // --dir replaces migration_dirs (the history table still comes from the file).
    p.write("other", "20240103000000_c.sql", &create_table("c"));
    let mut cmd = p.cmd();
    cmd.current_dir(p.dir("app/src/deep"))
        .arg("--dir")
        .arg(p.root().join("other"))
        .arg("migrate");
    let r = common::run(cmd).expect(0);
    assert!(r.stdout.contains("20240103000000_c.sql"), "{}", r.stdout);
    assert!(!r.stdout.contains("_a.sql"), "{}", r.stdout);
    assert!(p.table_exists("public.c"));
    let rows = p.history_in("ops.hist");
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[2].batch, 2);
    // --dir is relative to the working directory; this one is outside it, so stays absolute.
    assert_eq!(
        rows[2].source_dir,
        p.root().join("other").display().to_string()
    );
    assert!(!p.table_exists("public.colocate_migrations"));
    // A row an older version recorded with the absolute path of its machine.
    p.db.connect()
        .execute(
            "UPDATE ops.hist SET source_dir = $1 WHERE name = 'a'",
            &[&p.root().join("db/base").display().to_string()],
        )
        .unwrap();

    // Seen through --dir other only, the first two are no longer local files.
    let mut cmd = p.cmd();
    cmd.current_dir(p.root())
        .arg("--dir")
        .arg(p.root().join("other"))
        .args(["status", "--format", "json"]);
    let r = common::run(cmd).expect(0);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["counts"]["applied"], 1);
    assert_eq!(v["counts"]["missing"], 2);
    // Missing rows show the directory recorded, the old absolute one relative to this run's
    // working directory; the local file's directory is relative to it too.
    let dirs: Vec<&str> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["dir"].as_str().unwrap())
        .collect();
    assert_eq!(dirs, ["db/base", "db/ee", "other"]);
}

#[test]
fn explicit_config_flag_is_used_instead_of_discovery() {
    let p = Project::new();
    // A decoy the walk-up would find.
    p.write(".", "colocate.toml", "migration_dirs = [\"decoy\"]\n");
    p.write("decoy", "20240101000000_decoy.sql", &create_table("decoy"));
    p.write(
        "conf",
        "prod.toml",
        "migration_dirs = [\"../real\"]\nhistory_table = \"schema_history\"\n",
    );
    p.write("real", "20240101000000_real.sql", &create_table("real_t"));
    let mut cmd = p.cmd();
    cmd.arg("--config")
        .arg(p.root().join("conf/prod.toml"))
        .arg("migrate");
    common::run(cmd).expect(0);
    assert_eq!(
        p.table_names(),
        ["public.real_t", "public.schema_history"],
        "only the configured directory and history table"
    );
}

// --- A migration failing inside its transaction -------------------------------------------------

fn failing_in_transaction(p: &Project) {
    p.write("m", "20240101000000_first.sql", &create_table("first_t"));
    p.write(
        "m",
        "20240102000000_broken.sql",
        &migration(
            "CREATE TABLE broken_t (id int);\nINSERT INTO missing_table VALUES (1);",
            Some("DROP TABLE broken_t;"),
        ),
    );
    p.write("m", "20240103000000_after.sql", &create_table("after_t"));
}

#[test]
fn failure_inside_a_transaction_leaves_no_trace_of_that_migration() {
    let p = Project::new();
    failing_in_transaction(&p);
    let r = p.colocate(&["m"], &["migrate"]).expect(2);
    let broken = p.root().join("m/20240102000000_broken.sql");

    // file:line of the failing statement, the server's message and SQLSTATE.
    let err = r.error_line();
    assert!(
        err.starts_with(&format!("error: {}:3: ", broken.display())),
        "{err}"
    );
    assert!(err.contains("missing_table"), "{err}");
    assert!(err.contains("SQLSTATE 42P01"), "{err}");
    assert!(r.stdout.is_empty(), "{}", r.stdout);

    // Its first statement's table is gone, it has no history row, and the run stopped there.
    assert!(!p.table_exists("broken_t"));
    assert!(!p.table_exists("after_t"));
    // The migration before it in the same run stays applied.
    assert!(p.table_exists("first_t"));
    let rows = p.history();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].version, "20240101000000");
    assert_eq!(rows[0].state, "applied");

    // If the message says what was completed, it must name exactly that migration.
    if r.stderr.contains("completed") {
        assert!(
            r.stderr.contains("20240101000000_first.sql"),
            "{}",
            r.stderr
        );
        assert!(!r.stderr.contains("after.sql"), "{}", r.stderr);
    }
    p.settings().bind(|| {
        insta::assert_snapshot!("failure_in_transaction", r.transcript());
    });

    let s = p.colocate(&["m"], &["status"]).expect(0);
    assert!(s.stdout.contains("1 applied, 2 pending"), "{}", s.stdout);
}

/// CONVENTIONS.md: "A failed run reports what it had already done so the user knows the state."
/// `MigrationFailure::completed` is filled by the runner but never printed by the binary.
#[test]
fn failure_reports_the_migrations_completed_before_it() {
    let p = Project::new();
    failing_in_transaction(&p);
    let r = p.colocate(&["m"], &["migrate"]).expect(2);
    assert!(
        r.stderr.contains("20240101000000_first.sql"),
        "the error output should say that 20240101000000_first.sql was applied and stays applied:\n{}",
        r.stderr
    );
}

#[test]
fn concurrent_index_in_a_transaction_fails_with_a_hint_to_opt_out() {
    let p = Project::new();
    p.write("m", "20240101000000_t.sql", &create_table("t"));
    p.write(
        "m",
        "20240102000000_index_t.sql",
        &migration(
            "CREATE INDEX CONCURRENTLY t_id_idx ON t (id);",
            Some("DROP INDEX CONCURRENTLY t_id_idx;"),
        ),
    );
    let r = p.colocate(&["m"], &["migrate"]).expect(2);
    let err = r.error_line();
    assert!(err.contains("20240102000000_index_t.sql"), "{err}");
    assert!(err.contains("SQLSTATE 25001"), "{err}");
    let hint = r.hint_line().expect("a hint");
    assert!(hint.contains("transaction:false"), "{hint}");
    p.settings().bind(|| {
        insta::assert_snapshot!("concurrent_index_in_transaction", r.transcript());
    });
    assert_eq!(p.versions(), ["20240101000000"]);
    assert_eq!(
        p.count("SELECT count(*) FROM pg_indexes WHERE indexname = 't_id_idx'"),
        0
    );

    // Following the hint works.
    p.write(
        "m",
        "20240102000000_index_t.sql",
        "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY t_id_idx ON t (id);\n\
         -- migrate:down transaction:false\nDROP INDEX CONCURRENTLY t_id_idx;\n",
    );
    p.colocate(&["m"], &["migrate"]).expect(0);
    assert_eq!(
        p.count("SELECT count(*) FROM pg_indexes WHERE indexname = 't_id_idx'"),
        1
    );
    assert_eq!(p.versions(), ["20240101000000", "20240102000000"]);
}

// --- Dry runs, targets, order ---------------------------------------------------------------------

#[test]
fn dry_run_prints_the_sql_and_changes_nothing() {
    let p = Project::new();
    two_dirs(&p);
    let r = p.colocate(DIRS, &["migrate", "--dry-run"]).expect(0);
    assert!(
        r.stdout
            .starts_with("would apply 4 migrations (dry run, nothing changed):"),
        "{}",
        r.stdout
    );
    assert!(r
        .stdout
        .contains("CREATE TABLE licenses (tenant_id int REFERENCES tenants);"));
    assert!(r
        .stdout
        .contains("INSERT INTO log (v) VALUES ('20240104000000');"));
    // Not even the history table.
    assert_eq!(p.user_tables(), 0);
    p.settings().bind(|| {
        insta::assert_snapshot!("dry_run_fresh", r.stdout);
    });

    // After part is applied, the dry run lists only what is left, still changing nothing.
    p.colocate(DIRS, &["migrate", "--target", "20240102000000"])
        .expect(0);
    let before = p.history();
    let r = p.colocate(DIRS, &["migrate", "--dry-run"]).expect(0);
    assert!(r.stdout.starts_with("would apply 2 migrations"));
    assert!(!r.stdout.contains("CREATE TABLE tenants"), "{}", r.stdout);
    assert!(r.stdout.contains("CREATE TABLE users"), "{}", r.stdout);
    assert_eq!(p.history(), before);
    assert!(!p.table_exists("users"));

    // JSON dry run: the SQL is in the report.
    let r = p
        .colocate(DIRS, &["migrate", "--dry-run", "--format", "json"])
        .expect(0);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["command"], "migrate");
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["applied"].as_array().unwrap().len(), 2);
    assert!(v["applied"][0]["sql"]
        .as_str()
        .unwrap()
        .contains("CREATE TABLE users"));
    assert_eq!(p.history(), before);
}

#[test]
fn target_stops_at_that_version() {
    let p = Project::new();
    two_dirs(&p);
    let r = p
        .colocate(DIRS, &["migrate", "--target", "20240103000000"])
        .expect(0);
    assert!(r.stdout.contains("3 migrations applied"), "{}", r.stdout);
    assert_eq!(
        p.versions(),
        ["20240101000000", "20240102000000", "20240103000000"]
    );
    assert!(p.table_exists("users"));
    assert!(!p.table_exists("audit"));

    // A target that is no migration is refused before anything runs.
    let r = p
        .colocate(DIRS, &["migrate", "--target", "20240105000000"])
        .expect(2);
    assert!(r.error_line().contains("20240105000000"), "{}", r.stderr);
    assert_eq!(p.history().len(), 3);

    // A malformed target is a usage error.
    let r = p
        .colocate(DIRS, &["migrate", "--target", "20241301000000"])
        .expect(2);
    assert!(r.stderr.contains("month 13"), "{}", r.stderr);

    let r = p.colocate(DIRS, &["migrate"]).expect(0);
    assert!(r.stdout.contains("batch 2: 1 migration"), "{}", r.stdout);
    assert_eq!(run_order(&p).split(',').count(), 4);
}

/// `Refusal` promises nothing has run; on a fresh database the history table is created before
/// the target is checked (runner.rs: `history.ensure` comes before `plan_migrate`).
#[test]
fn unknown_target_on_a_fresh_database_creates_nothing() {
    let p = Project::new();
    two_dirs(&p);
    p.colocate(DIRS, &["migrate", "--target", "20240105000000"])
        .expect(2);
    assert_eq!(p.table_names(), Vec::<String>::new());
}

#[test]
fn older_pending_migration_is_refused_unless_allowed() {
    let p = Project::new();
    p.write("m", "20240101000000_a.sql", &create_table("a"));
    p.write("m", "20240103000000_c.sql", &create_table("c"));
    p.colocate(&["m"], &["migrate"]).expect(0);
    // A colleague's branch lands with an older timestamp.
    p.write("m", "20240102000000_b.sql", &create_table("b"));
    p.write("m", "20240104000000_d.sql", &create_table("d"));

    let before = p.history();
    let r = p.colocate(&["m"], &["migrate"]).expect(2);
    let err = r.error_line();
    assert!(err.contains("20240102000000_b.sql"), "{err}");
    assert!(err.contains("20240103000000"), "{err}");
    assert!(
        r.hint_line()
            .unwrap_or_default()
            .contains("--allow-out-of-order"),
        "{}",
        r.stderr
    );
    p.settings().bind(|| {
        insta::assert_snapshot!("out_of_order_refused", r.transcript());
    });
    // Refused before anything ran: not even the newer one.
    assert_eq!(p.history(), before);
    assert!(!p.table_exists("b") && !p.table_exists("d"));

    let r = p
        .colocate(&["m"], &["migrate", "--allow-out-of-order"])
        .expect(0);
    assert!(r.stdout.contains("2 migrations applied"), "{}", r.stdout);
    assert_eq!(
        p.versions(),
        [
            "20240101000000",
            "20240102000000",
            "20240103000000",
            "20240104000000"
        ]
    );
    assert!(p.table_exists("b") && p.table_exists("d"));
}

// --- Two runs at once ------------------------------------------------------------------------------

fn slow_set(p: &Project) {
    p.write(
        "m",
        "20240101000000_runs.sql",
        &migration(
            "CREATE TABLE runs (v text NOT NULL);\nINSERT INTO runs VALUES ('a');",
            None,
        ),
    );
    p.write(
        "m",
        "20240102000000_slow.sql",
        &migration(
            "SELECT pg_sleep(2);\nINSERT INTO runs VALUES ('slow');",
            None,
        ),
    );
    p.write(
        "m",
        "20240103000000_last.sql",
        &migration("INSERT INTO runs VALUES ('last');", None),
    );
}

/// `colocate migrate` as a plain child process, so two can run at once.
fn spawn_migrate(p: &Project, extra: &[&str]) -> std::process::Child {
    let dir = p.root().join("m");
    let mut args = vec!["--dir", dir.to_str().unwrap(), "migrate"];
    args.extend_from_slice(extra);
    p.process(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn colocate")
}

fn finish(child: std::process::Child) -> common::Run {
    let out = child.wait_with_output().expect("wait for colocate");
    common::Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Wait until some session holds an advisory lock in the test database.
fn wait_for_advisory_lock(p: &Project) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut c = p.db.connect();
    loop {
        let n: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                &[],
            )
            .expect("read pg_locks")
            .get(0);
        if n > 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the first run never took the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn two_concurrent_runs_apply_each_migration_once() {
    let p = Project::new();
    slow_set(&p);
    let first = spawn_migrate(&p, &[]);
    let second = spawn_migrate(&p, &[]);
    let (a, b) = (finish(first).expect(0), finish(second).expect(0));

    // One did the work, the other waited for it and found nothing left to do.
    let (worker, waiter) = if a.stdout.contains("applied   ") {
        (a, b)
    } else {
        (b, a)
    };
    assert!(worker.stdout.contains("3 migrations applied"), "{worker:?}");
    assert!(
        waiter.stdout.contains("nothing to apply"),
        "{waiter:?}\n{worker:?}"
    );
    assert!(
        waiter.stderr.contains("waiting for the migration lock"),
        "{waiter:?}"
    );

    assert_eq!(
        p.versions(),
        ["20240101000000", "20240102000000", "20240103000000"]
    );
    assert!(p.history().iter().all(|r| r.batch == 1));
    assert_eq!(
        p.count("SELECT count(*) FROM runs"),
        3,
        "every INSERT ran exactly once"
    );
    assert_eq!(p.count("SELECT count(DISTINCT v) FROM runs"), 3);
}

#[test]
fn lock_timeout_names_the_holder() {
    let p = Project::new();
    slow_set(&p);
    let first = spawn_migrate(&p, &[]);
    wait_for_advisory_lock(&p);
    let started = Instant::now();
    let second = finish(spawn_migrate(&p, &["--lock-timeout", "300ms"]));
    let waited = started.elapsed();
    let first = finish(first);

    let second = second.expect(2);
    let err = second.error_line();
    assert!(
        err.contains("another run holds the migration lock"),
        "{err}"
    );
    assert!(err.contains("pid "), "{err}");
    assert!(err.contains("colocate migrate"), "{err}");
    assert!(
        second
            .hint_line()
            .unwrap_or_default()
            .contains("--lock-timeout"),
        "{}",
        second.stderr
    );
    assert!(
        waited < Duration::from_millis(1900),
        "gave up after {waited:?}, should be about 300ms"
    );
    let mut settings = p.settings();
    // Who and from where depends on how the test cluster is reached.
    settings.add_filter(r"user [^,]+, from [^,]+,", "user [USER], from [CLIENT],");
    settings.bind(|| {
        insta::assert_snapshot!("lock_timeout", second.transcript());
    });

    // The holder was not disturbed and applied everything once.
    let first = first.expect(0);
    assert!(first.stdout.contains("3 migrations applied"), "{first:?}");
    assert_eq!(p.count("SELECT count(*) FROM runs"), 3);
    assert_eq!(p.history().len(), 3);
}

/// Off a terminal the progress lines stream anyway; `-v` asks for them on a terminal too, so
/// here it changes nothing.
#[test]
fn verbose_shows_each_migration_as_it_starts_and_ends() {
    let p = Project::new();
    p.write("m", "20240101000000_a.sql", &format!("{UP}SELECT 1;\n"));
    p.write("m", "20240102000000_b.sql", &format!("{UP}SELECT 2;\n"));
    let r = p.colocate(&["m"], &["-v", "migrate"]).expect(0);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 4, "{}", r.stderr);
    assert_eq!(lines[0], "[1/2] 20240101000000_a.sql");
    assert!(lines[1].starts_with("[1/2] 20240101000000_a.sql: done in "));
    assert_eq!(lines[2], "[2/2] 20240102000000_b.sql");
    assert!(lines[3].starts_with("[2/2] 20240102000000_b.sql: done in "));
}

/// A file edited after it ran is not run again, and `migrate` says so on stderr (before, it
/// said nothing). A history row whose file is in no directory (here: a directory left out of
/// `--dir`) fails `status --check`, unless `--allow-missing`.
#[test]
fn migrate_warns_about_edited_files_and_status_check_fails_on_missing_ones() {
    let p = Project::new();
    p.write("base", "20240101000000_a.sql", &create_table("a"));
    let edited = p.write("base", "20240102000000_b.sql", &create_table("b"));
    p.write("citus", "20240103000000_c.sql", &create_table("c"));
    p.colocate(&["base", "citus"], &["migrate"]).expect(0);

    std::fs::write(&edited, create_table("b") + "\n-- an afterthought\n").unwrap();
    let r = p.colocate(&["base", "citus"], &["migrate"]).expect(0);
    assert!(r.stdout.contains("nothing to apply"), "{}", r.stdout);
    assert!(
        r.stderr.contains(
            "warning: 1 applied migration has changed since it ran (its file's checksum differs from the one recorded), and is not run again: 20240102000000_b.sql"
        ),
        "{}",
        r.stderr
    );
    let json = p
        .colocate(&["base", "citus"], &["migrate", "--format", "json"])
        .expect(0);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["changed"], serde_json::json!(["20240102000000_b.sql"]));
    std::fs::write(&edited, create_table("b")).unwrap();

    // The README's old example: the Citus directory left out.
    let r = p.colocate(&["base"], &["status", "--check"]).expect(1);
    assert!(r.stdout.contains("missing"), "{}", r.stdout);
    p.colocate(&["base"], &["status", "--check", "--allow-missing"])
        .expect(0);
    p.colocate(&["base", "citus"], &["status", "--check"])
        .expect(0);
}

/// A file `colocate new` just made has an empty up part: `status` lists it as `empty` and goes
/// on (before, exit 2 and nothing listed); `--check` fails on it; `migrate` refuses it, naming
/// the file, before running anything.
#[test]
fn status_lists_a_new_empty_file_and_migrate_refuses_it() {
    let p = Project::new();
    p.write("m", "20240101000000_a.sql", &create_table("a"));
    let mut cmd = p.cmd();
    cmd.args(["--dir"])
        .arg(p.root().join("m"))
        .args(["new", "add_b"]);
    common::run(cmd).expect(0);
    // At a fixed version, for the snapshot.
    let made = std::fs::read_dir(p.root().join("m"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|f| f.to_string_lossy().ends_with("_add_b.sql"))
        .unwrap();
    std::fs::rename(&made, p.root().join("m/20240102000000_add_b.sql")).unwrap();
    let r = p.colocate(&["m"], &["status"]).expect(0);
    assert!(r.stdout.contains(" empty "), "{}", r.stdout);
    p.settings()
        .bind(|| insta::assert_snapshot!("status_with_an_empty_new_file", r.transcript()));
    p.colocate(&["m"], &["status", "--check"]).expect(1);
    let json = p
        .colocate(&["m"], &["status", "--format", "json"])
        .expect(0);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["counts"]["empty"], 1);
    assert_eq!(v["entries"][1]["status"], "empty");

    let r = p.colocate(&["m"], &["migrate"]).expect(2);
    assert!(
        r.only_error()
            .contains("_add_b.sql: the up section has no statements"),
        "{}",
        r.stderr
    );
    assert!(!p.table_exists("public.a"), "nothing ran");
}
