//! Test support for colocate: every test gets its own fresh database on the loopback test cluster
//! that `scripts/pg-test-cluster` started, so tests run in parallel without seeing each other.
//! The cluster's admin URL comes from `COLOCATE_TEST_URL`, or from the running cluster's state
//! directory when the variable is unset (so a plain `cargo test` works after
//! `scripts/pg-test-cluster start`). Tests that need Citus ask [`citus_available`] and skip with a
//! printed reason when it is absent; tests that run real knex ask [`skip_without_knex`].
//! [`synth`] generates large multi-tenant schemas with blockers in real proportions, and the
//! facts to check a plan against.

pub mod proxy;
pub mod synth;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use postgres::{Client, NoTls};
use postgres_protocol::escape::escape_identifier;

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn state_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("COLOCATE_PG_STATE") {
        return PathBuf::from(dir);
    }
    std::env::temp_dir().join("colocate-pg-test")
}

fn ports() -> Option<Vec<u16>> {
    let text = std::fs::read_to_string(state_dir().join("ports")).ok()?;
    let ports: Vec<u16> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
    (!ports.is_empty()).then_some(ports)
}

/// The directory of the test cluster's Unix sockets (every role may connect there without a
/// password).
pub fn socket_dir() -> PathBuf {
    state_dir()
}

/// The admin URL of the test cluster's coordinator.
pub fn admin_url() -> String {
    if let Ok(url) = std::env::var("COLOCATE_TEST_URL") {
        return url;
    }
    match ports() {
        Some(p) => format!("postgres://postgres@127.0.0.1:{}/postgres", p[0]),
        None => panic!(
            "no test cluster: set COLOCATE_TEST_URL or run `scripts/pg-test-cluster start` \
             (the README's test command does both)"
        ),
    }
}

/// Ports of the test cluster's Citus workers (empty for a single instance).
pub fn worker_ports() -> Vec<u16> {
    if let Ok(list) = std::env::var("COLOCATE_TEST_WORKER_PORTS") {
        return list
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
    }
    ports().map(|p| p[1..].to_vec()).unwrap_or_default()
}

/// Replace the database part of a `postgres://` URL.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[scheme_end..]
        .find('/')
        .map(|i| i + scheme_end)
        .unwrap_or(base.len());
    let mut out = format!("{}/{}", &base[..host_end], db);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Connect with the test harness's own settings (no TLS on loopback).
pub fn connect(url: &str) -> Client {
    Client::connect(url, NoTls).unwrap_or_else(|e| panic!("connect to test cluster failed: {e}"))
}

/// Whether the Citus extension can be created on the test cluster.
pub fn citus_available() -> bool {
    let mut c = connect(&admin_url());
    let row = c
        .query_one(
            "SELECT count(*) FROM pg_available_extensions WHERE name = 'citus'",
            &[],
        )
        .expect("query pg_available_extensions");
    row.get::<_, i64>(0) > 0
}

/// Print why a Citus test is skipped and return true when it must be. Either way the outcome is
/// recorded under `$COLOCATE_TIER_DIR` (set by `scripts/test`), so the run can say how many Citus
/// tests ran rather than guess from the machine.
pub fn skip_without_citus(test: &str) -> bool {
    let available = citus_available();
    if let Ok(dir) = std::env::var("COLOCATE_TIER_DIR") {
        let mark = if available { "ran" } else { "skipped" };
        let _ = std::fs::write(
            std::path::Path::new(&dir).join(format!("{mark}-{test}")),
            "",
        );
    }
    if available {
        return false;
    }
    eprintln!("SKIPPED {test}: the citus extension is not installed on the test cluster");
    true
}

/// As [`skip_without_citus`] for the fault tier, which needs Citus and two workers (a proxy
/// stands in front of each); recorded as `fault-ran-*` / `fault-skipped-*` so the run counts the
/// tier on its own.
pub fn skip_without_fault_tier(test: &str) -> bool {
    let available = citus_available() && worker_ports().len() >= 2;
    if let Ok(dir) = std::env::var("COLOCATE_TIER_DIR") {
        let mark = if available {
            "fault-ran"
        } else {
            "fault-skipped"
        };
        let _ = std::fs::write(
            std::path::Path::new(&dir).join(format!("{mark}-{test}")),
            "",
        );
    }
    if !available {
        eprintln!("SKIPPED {test}: the fault tier needs Citus and two workers on the test cluster");
    }
    !available
}

/// Where the knex tier's packages are: `$COLOCATE_KNEX_DIR` (an absolute path), or the
/// repository's `.ci/knex`, where `scripts/install-deps` runs `npm ci` on the committed
/// package.json and lock (real `knex` and `pg` from npm). The directory holds `node_modules`
/// with both packages.
pub fn knex_dir() -> PathBuf {
    match std::env::var_os("COLOCATE_KNEX_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.ci/knex"),
    }
}

/// Why knex cannot run here (node missing, or the packages not installed), or `None` when it can.
pub fn knex_missing() -> Option<String> {
    let node = std::process::Command::new("node").arg("--version").output();
    if !matches!(&node, Ok(out) if out.status.success()) {
        return Some("node is not installed (scripts/install-deps installs it from Debian)".into());
    }
    let modules = knex_dir().join("node_modules");
    for package in ["knex", "pg"] {
        if !modules.join(package).join("package.json").is_file() {
            return Some(format!(
                "npm package {package} is not installed in {} (scripts/install-deps runs npm ci there; or set COLOCATE_KNEX_DIR)",
                modules.display()
            ));
        }
    }
    None
}

/// As [`skip_without_citus`] for the knex tier, which runs migrations with real knex from
/// [`knex_dir`]; recorded as `knex-ran-*` / `knex-skipped-*`.
pub fn skip_without_knex(test: &str) -> bool {
    let missing = knex_missing();
    record(
        if missing.is_none() {
            "knex-ran"
        } else {
            "knex-skipped"
        },
        test,
    );
    match missing {
        None => false,
        Some(why) => {
            eprintln!("SKIPPED {test}: {why}");
            true
        }
    }
}

/// For a test of both tiers (real knex on Citus): it runs only when both are there, and is
/// recorded in both tiers as run, or in both as skipped, so neither count includes a test that
/// did not run.
pub fn skip_without_citus_and_knex(test: &str) -> bool {
    let mut missing = Vec::new();
    if !citus_available() {
        missing.push("the citus extension is not installed on the test cluster".to_string());
    }
    missing.extend(knex_missing());
    let (citus, knex) = if missing.is_empty() {
        ("ran", "knex-ran")
    } else {
        ("skipped", "knex-skipped")
    };
    record(citus, test);
    record(knex, test);
    if missing.is_empty() {
        return false;
    }
    eprintln!("SKIPPED {test}: {}", missing.join("; "));
    true
}

/// Mark `test` as `{mark}-{test}` under `$COLOCATE_TIER_DIR` (set by `scripts/test`).
fn record(mark: &str, test: &str) {
    if let Ok(dir) = std::env::var("COLOCATE_TIER_DIR") {
        let _ = std::fs::write(
            std::path::Path::new(&dir).join(format!("{mark}-{test}")),
            "",
        );
    }
}

pub(crate) fn port_of(url: &str) -> u16 {
    url.rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or(5432)
}

/// A fresh database that is dropped (forcefully) when the value goes out of scope.
pub struct TestDb {
    name: String,
    url: String,
    admin: String,
}

impl TestDb {
    pub fn new() -> TestDb {
        let admin = admin_url();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "colocate_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst),
            nanos
        );
        let mut c = connect(&admin);
        c.batch_execute(&format!(
            "CREATE DATABASE {} TEMPLATE template0",
            escape_identifier(&name)
        ))
        .unwrap_or_else(|e| panic!("create test database {name}: {e}"));
        let url = with_database(&admin, &name);
        TestDb { name, url, admin }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn connect(&self) -> Client {
        connect(&self.url)
    }

    /// Make this database a single-node Citus cluster: the coordinator holds the shards itself.
    pub fn citus_single_node(&self) -> Client {
        let mut c = self.connect();
        let port = i32::from(port_of(&self.url));
        c.batch_execute("CREATE EXTENSION citus")
            .expect("create extension citus");
        c.execute(
            "SELECT citus_set_coordinator_host('127.0.0.1', $1)",
            &[&port],
        )
        .expect("citus_set_coordinator_host");
        c.execute(
            "SELECT citus_set_node_property('127.0.0.1', $1, 'shouldhaveshards', true)",
            &[&port],
        )
        .expect("let the coordinator hold shards");
        c
    }

    /// Make this database a Citus coordinator with every test-cluster worker registered
    /// (the extension is created in the worker databases first). Panics when there are none.
    pub fn citus_with_workers(&self) -> Client {
        self.citus_with_workers_at(&worker_ports())
    }

    /// As [`TestDb::citus_with_workers`], but the coordinator reaches worker `i` at
    /// `registered[i]` (a [`proxy::FaultProxy`] in front of it) instead of its own port.
    pub fn citus_with_workers_at(&self, registered: &[u16]) -> Client {
        let workers = worker_ports();
        assert_eq!(registered.len(), workers.len(), "one port per worker");
        assert!(
            !workers.is_empty(),
            "no Citus workers: start the cluster with `scripts/pg-test-cluster start --workers 2`"
        );
        for i in 0..workers.len() {
            let url = self.on_worker(i);
            connect(&url)
                .batch_execute("CREATE EXTENSION citus")
                .expect("create extension citus on a worker");
        }
        let mut c = self.connect();
        let port = i32::from(port_of(&self.url));
        c.batch_execute("CREATE EXTENSION citus")
            .expect("create extension citus");
        c.execute(
            "SELECT citus_set_coordinator_host('127.0.0.1', $1)",
            &[&port],
        )
        .expect("citus_set_coordinator_host");
        for p in registered {
            // Test databases registering the same workers at once can collide on a worker's
            // shared catalog ("tuple concurrently updated", then "failure on connection marked
            // as essential"); the call rolled back whole, so it is made again.
            let mut tries = 0;
            while let Err(e) =
                c.execute("SELECT citus_add_node('127.0.0.1', $1)", &[&i32::from(*p)])
            {
                tries += 1;
                let essential = e.as_db_error().is_some_and(|d| {
                    d.message()
                        .starts_with("failure on connection marked as essential")
                });
                assert!(essential && tries < 5, "citus_add_node: {e}");
                std::thread::sleep(std::time::Duration::from_millis(100 * tries));
            }
        }
        c
    }

    /// Start this database's Citus operation ids at a number no other test database uses.
    /// Citus names the replication slots of `create_distributed_table_concurrently` after the
    /// node, the owner and the operation id (`citus_shard_split_slot_2_10_1`), and slots are
    /// per server, not per database: two test databases converting online at the same time
    /// would otherwise both want operation 1's slot ("replication slot ... already exists").
    pub fn citus_operation_ids_apart(&self) {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let start = i64::try_from(
            (u128::from(std::process::id()) << 32 | (nanos & 0xffff_ffff)) % (1 << 52),
        )
        .unwrap_or(1)
            + 1;
        self.connect()
            .execute(
                "SELECT setval('pg_catalog.pg_dist_operationid_seq', $1)",
                &[&start],
            )
            .expect("set Citus's operation id sequence");
    }

    /// The same database on worker `i`'s port (0-based), creating it there first.
    pub fn on_worker(&self, i: usize) -> String {
        let port = worker_ports()[i];
        let worker_admin = format!("postgres://postgres@127.0.0.1:{port}/postgres");
        let mut c = connect(&worker_admin);
        c.batch_execute(&format!(
            "CREATE DATABASE {} TEMPLATE template0",
            escape_identifier(&self.name)
        ))
        .unwrap_or_else(|e| panic!("create worker database {}: {e}", self.name));
        with_database(&worker_admin, &self.name)
    }
}

impl Default for TestDb {
    fn default() -> Self {
        TestDb::new()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let drop_sql = format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            escape_identifier(&self.name)
        );
        if let Ok(mut c) = Client::connect(&self.admin, NoTls) {
            let _ = c.batch_execute(&drop_sql);
        }
        for port in worker_ports() {
            let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
            if let Ok(mut c) = Client::connect(&url, NoTls) {
                let _ = c.batch_execute(&drop_sql);
            }
        }
    }
}

/// A server of its own, started by `scripts/pg-test-cluster` with a state directory of its own
/// and stopped (its data deleted) when the value is dropped. For the rare test that needs a
/// server configured unlike the shared one: [`Server::without_preload`].
pub struct Server {
    state: PathBuf,
    url: String,
}

impl Server {
    /// The Citus package installed but not in `shared_preload_libraries`: the ordinary laptop
    /// with the package and an unconfigured server.
    pub fn without_preload() -> Server {
        Server::start(&["--no-preload"])
    }

    /// A coordinator and `workers` workers of their own (Citus preloaded where installed), for
    /// a test that restarts servers, which the shared cluster's other tests must never see.
    pub fn cluster(workers: usize) -> Server {
        Server::start(&["--workers", &workers.to_string()])
    }

    fn start(args: &[&str]) -> Server {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        // Directly under the temporary directory: the server's own user must reach it.
        let state = std::env::temp_dir().join(format!(
            "colocate-server-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let out = std::process::Command::new(script())
            .arg("start")
            .args(args)
            .env("COLOCATE_PG_STATE", &state)
            .env("COLOCATE_PG_PORT", "27432")
            .output()
            .expect("run scripts/pg-test-cluster");
        let server = Server {
            state,
            url: String::from_utf8_lossy(&out.stdout).trim().to_string(),
        };
        assert!(
            out.status.success(),
            "start a server ({args:?}): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        server
    }

    /// The coordinator's admin URL (database `postgres`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The ports of every node, coordinator first.
    pub fn ports(&self) -> Vec<u16> {
        std::fs::read_to_string(self.state.join("ports"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Stop node `i` (0: the coordinator) at once, as a crash does (`-m immediate`: no
    /// checkpoint, every connection cut), then start it again and wait until it accepts
    /// connections.
    pub fn crash_and_restart(&self, i: usize) {
        let data = self.state.join(format!("node{i}"));
        let pg_ctl = std::env::var("COLOCATE_PG_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from("/usr/lib/postgresql/15/bin"))
            .join("pg_ctl");
        let log = self.state.join(format!("node{i}.log"));
        let run = |args: &[&str]| {
            let root = std::fs::read_to_string("/proc/self/status")
                .map(|s| {
                    s.lines()
                        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
                })
                .unwrap_or(false);
            let mut c = if root {
                let mut c = std::process::Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(&pg_ctl);
                c
            } else {
                std::process::Command::new(&pg_ctl)
            };
            let out = c
                .arg("-D")
                .arg(&data)
                .args(args)
                .output()
                .expect("run pg_ctl");
            assert!(
                out.status.success(),
                "pg_ctl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&["-m", "immediate", "stop"]);
        run(&[
            "-l",
            log.to_str().unwrap_or_default(),
            "-w",
            "-t",
            "60",
            "start",
        ]);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::process::Command::new(script())
            .arg("stop")
            .env("COLOCATE_PG_STATE", &self.state)
            .output();
    }
}

/// The repository's `scripts/pg-test-cluster`.
fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pg-test-cluster")
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn with_database_replaces_only_the_database() {
        assert_eq!(
            with_database("postgres://u@h:5/postgres", "x"),
            "postgres://u@h:5/x"
        );
        assert_eq!(
            with_database("postgres://u@h:5/postgres?sslmode=disable", "x"),
            "postgres://u@h:5/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h:5", "x"), "postgres://u@h:5/x");
    }
}
