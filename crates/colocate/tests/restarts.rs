//! Servers that crash and come back in the middle of an `apply`: a cluster of its own (a
//! coordinator and two workers, started for the test), the coordinator or a worker stopped
//! `-m immediate` while apply copies the large table into shards, then started again. The next
//! `apply` must converge with every row, checksum and foreign key as before, and `check` pass.
//! Part of the fault tier.

mod common;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use colocate_testkit::{connect, skip_without_fault_tier, with_database, Server};
use common::{run, Run, BIN, CONNECTION_ENV};

const SCHEMA: &str = r#"
CREATE TABLE tenants (tenant bigint PRIMARY KEY, name text NOT NULL);
CREATE TABLE orders (tenant bigint NOT NULL REFERENCES tenants, id bigint NOT NULL, note text NOT NULL,
    PRIMARY KEY (tenant, id));
CREATE TABLE order_lines (tenant bigint NOT NULL REFERENCES tenants, id bigint NOT NULL,
    order_id bigint NOT NULL, qty int NOT NULL, PRIMARY KEY (tenant, id),
    FOREIGN KEY (tenant, order_id) REFERENCES orders (tenant, id));
INSERT INTO tenants SELECT g, 'tenant ' || g FROM generate_series(1, 8) g;
INSERT INTO orders SELECT t, g, repeat('x', 40) || g FROM generate_series(1, 8) t, generate_series(1, 60000) g;
INSERT INTO order_lines SELECT t, g, 1 + g % 60000, g % 7 FROM generate_series(1, 8) t, generate_series(1, 30000) g;
ANALYZE;
"#;

const CONFIG: &str =
    "[distribution]\nroot = \"tenants\"\ncolumns = [\"tenant\"]\nshard_count = 4\n";

const TABLES: &[&str] = &["tenants", "orders", "order_lines"];

/// Rows and an order-independent checksum of each table, and the foreign keys (table, name,
/// validated).
type State = (BTreeMap<String, (i64, String)>, Vec<(String, String, bool)>);

fn state(url: &str) -> State {
    let mut c = connect(url);
    let sums = TABLES
        .iter()
        .map(|t| {
            let row = c
                .query_one(
                    &format!(
                        "SELECT count(*), coalesce(md5(string_agg(x::text, ',' ORDER BY x::text)), '') FROM {t} x"
                    ),
                    &[],
                )
                .unwrap();
            (t.to_string(), (row.get(0), row.get(1)))
        })
        .collect();
    let keys = c
        .query(
            "SELECT conrelid::regclass::text, conname::text, convalidated FROM pg_constraint \
             WHERE contype = 'f' ORDER BY 1, 2",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    (sums, keys)
}

/// A cluster of its own with Citus in database `app` on every node, the workers registered,
/// and the schema loaded.
fn cluster() -> (Server, String, tempfile::TempDir) {
    let server = Server::cluster(2);
    let ports = server.ports();
    assert_eq!(ports.len(), 3, "{ports:?}");
    let node = |p: u16| format!("postgres://postgres@127.0.0.1:{p}/postgres");
    for p in &ports {
        let mut c = connect(&node(*p));
        // The test clusters run with synchronous_commit off for speed: a crash then loses
        // transactions that committed (PostgreSQL's documented trade-off), which no tool can
        // recover from. A crash test needs the durability a production server has.
        for sql in [
            "ALTER SYSTEM SET synchronous_commit = on",
            "SELECT pg_reload_conf()",
            "CREATE DATABASE app",
        ] {
            c.batch_execute(sql).unwrap();
        }
        let mut c = connect(&with_database(&node(*p), "app"));
        c.batch_execute("CREATE EXTENSION citus").unwrap();
    }
    let url = with_database(&node(ports[0]), "app");
    let mut c = connect(&url);
    c.execute(
        "SELECT citus_set_coordinator_host('127.0.0.1', $1)",
        &[&i32::from(ports[0])],
    )
    .unwrap();
    for p in &ports[1..] {
        c.execute("SELECT citus_add_node('127.0.0.1', $1)", &[&i32::from(*p)])
            .unwrap();
    }
    c.batch_execute(SCHEMA).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("colocate.toml"), CONFIG).unwrap();
    (server, url, dir)
}

fn colocate(dir: &std::path::Path, url: &str, args: &[&str]) -> Run {
    let mut c = common::command();
    c.current_dir(dir)
        .arg("--database-url")
        .arg(url)
        .args(args)
        .timeout(Duration::from_secs(300));
    run(c)
}

/// Start `apply`, crash node `node` once the large table's copy is running, start it again,
/// then run `apply` until it converges: nothing may be lost.
fn crash_during_copy(test: &str, node: usize) {
    if skip_without_fault_tier(test) {
        return;
    }
    let (server, url, dir) = cluster();
    let before = state(&url);

    let mut cmd = std::process::Command::new(BIN);
    for var in CONNECTION_ENV {
        cmd.env_remove(var);
    }
    let child = cmd
        .current_dir(dir.path())
        .arg("--database-url")
        .arg(&url)
        .arg("apply")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Watch from a session of the coordinator's `postgres` database, which outlives nothing:
    // it is opened again for every look.
    let admin = with_database(&url, "postgres");
    let t0 = Instant::now();
    loop {
        let copying: i64 = connect(&admin)
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = 'app' \
                 AND application_name LIKE 'colocate apply%' AND state = 'active' \
                 AND query LIKE '%create_distributed_table%orders%'",
                &[],
            )
            .unwrap()
            .get(0);
        if copying > 0 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "apply never reached the copy of orders"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(150));
    server.crash_and_restart(node);
    let out = child.wait_with_output().unwrap();
    let first = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!("the crashed run: {:?}\n{first}", out.status.code());
    assert_ne!(out.status.code(), Some(101), "panicked:\n{first}");

    // The next run converges (a crashed coordinator may need a moment to accept connections
    // after recovery; the restart waited for that).
    let r = colocate(dir.path(), &url, &["apply"]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    let r = colocate(dir.path(), &url, &["check"]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert_eq!(state(&url), before, "rows, checksums or keys changed");
    let distributed: i64 = connect(&url)
        .query_one(
            "SELECT count(*) FROM pg_dist_partition WHERE partmethod = 'h'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(distributed, 3);
    // Nothing is left prepared on any node.
    for p in server.ports() {
        let n: i64 = connect(&format!("postgres://postgres@127.0.0.1:{p}/app"))
            .query_one("SELECT count(*) FROM pg_prepared_xacts", &[])
            .unwrap()
            .get(0);
        assert_eq!(n, 0, "prepared transactions left on port {p}");
    }
}

#[test]
fn fault_restart_the_coordinator_crashes_during_a_copy_and_the_next_apply_converges() {
    crash_during_copy(
        "fault_restart_the_coordinator_crashes_during_a_copy_and_the_next_apply_converges",
        0,
    );
}

#[test]
fn fault_restart_a_worker_crashes_during_a_copy_and_the_next_apply_converges() {
    crash_during_copy(
        "fault_restart_a_worker_crashes_during_a_copy_and_the_next_apply_converges",
        1,
    );
}
