//! Shared set-up for the binary-level tests: a fresh database and a temporary project directory
//! per test, a way to run the real `colocate` binary against them, direct queries to check what
//! the database holds afterwards, and insta filters that make the output deterministic.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

pub mod knex;

use std::path::{Path, PathBuf};
use std::time::Duration;

use colocate_testkit::TestDb;
use tempfile::TempDir;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_colocate");

/// No test run may hang the suite (the slowest one sleeps two seconds on purpose).
const TIMEOUT: Duration = Duration::from_secs(60);

/// Environment variables that would change where or how the binary connects.
pub const CONNECTION_ENV: &[&str] = &[
    "DATABASE_URL",
    "PGHOST",
    "PGPORT",
    "PGUSER",
    "PGPASSWORD",
    "PGDATABASE",
    "PGCONNECT_TIMEOUT",
];

/// The header every migration file starts with.
pub const UP: &str = "-- migrate:up\n";

/// One test's world: its own database and a temporary directory used as the working directory
/// of every command (so no `colocate.toml` of the surrounding checkout is picked up).
pub struct Project {
    pub db: TestDb,
    pub tmp: TempDir,
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Panic, showing everything the run printed, unless it exited with `code`.
    #[track_caller]
    pub fn expect(self, code: i32) -> Run {
        assert_eq!(
            self.code,
            Some(code),
            "expected exit code {code}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// stdout and stderr together.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// The `error: ...` line (there must be exactly one).
    #[track_caller]
    pub fn error_line(&self) -> &str {
        let errors: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| l.starts_with("error:"))
            .collect();
        assert_eq!(
            errors.len(),
            1,
            "expected exactly one error line\n--- stderr\n{}",
            self.stderr
        );
        errors[0]
    }

    /// A user error: stderr is one `error:` line, optionally followed by `detail:` and `hint:`
    /// lines, and nothing went to stdout. Returns the error line.
    #[track_caller]
    pub fn only_error(&self) -> &str {
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert!(
            !lines.is_empty() && lines[0].starts_with("error: "),
            "stderr must start with the error line\n--- stderr\n{}",
            self.stderr
        );
        assert!(
            lines[1..]
                .iter()
                .all(|l| l.starts_with("detail: ") || l.starts_with("hint: ")),
            "only detail/hint lines may follow the error\n--- stderr\n{}",
            self.stderr
        );
        assert!(self.stdout.is_empty(), "stdout: {}", self.stdout);
        lines[0]
    }

    /// The `hint: ...` line, if any.
    pub fn hint_line(&self) -> Option<&str> {
        self.stderr.lines().find(|l| l.starts_with("hint:"))
    }

    /// What a snapshot shows: the exit code and both streams.
    pub fn transcript(&self) -> String {
        format!(
            "exit: {}\n--- stdout\n{}--- stderr\n{}",
            self.code.map_or("signal".to_string(), |c| c.to_string()),
            self.stdout,
            self.stderr
        )
    }
}

/// Environment variables that would colour the output.
pub const COLOUR_ENV: &[&str] = &["NO_COLOR", "CLICOLOR", "CLICOLOR_FORCE"];

/// The binary with a clean environment (no connection settings nor colour inherited from the
/// test run).
pub fn command() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(BIN);
    for var in CONNECTION_ENV.iter().chain(COLOUR_ENV) {
        cmd.env_remove(var);
    }
    cmd.timeout(TIMEOUT);
    cmd
}

/// Run a prepared command and collect what it printed.
pub fn run(mut cmd: assert_cmd::Command) -> Run {
    let out = cmd.output().expect("run colocate");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl Project {
    /// Make this database answer as one on a server without the Citus package, for every
    /// session (colocate's, psql's, knex's): the test cluster has Citus installed, so this
    /// database's own `pg_catalog.pg_available_extensions` view (each database has its copy) is
    /// redefined without citus. Where Citus is not installed at all, nothing changes.
    pub fn hide_citus(&self) {
        self.db
            .connect()
            .batch_execute(
                "SET allow_system_table_mods = on;
                 CREATE OR REPLACE VIEW pg_catalog.pg_available_extensions AS
                     SELECT e.name, e.default_version, x.extversion AS installed_version, e.comment
                     FROM pg_available_extensions() e(name, default_version, comment)
                     LEFT JOIN pg_extension x ON e.name = x.extname
                     WHERE e.name <> 'citus';",
            )
            .expect("hide citus from pg_available_extensions");
        assert_eq!(
            self.count("SELECT count(*) FROM pg_available_extensions WHERE name = 'citus'"),
            0,
            "the database must look like plain PostgreSQL"
        );
    }
}

impl Project {
    pub fn new() -> Project {
        Project {
            db: TestDb::new(),
            tmp: tempfile::tempdir().expect("create a temporary directory"),
        }
    }

    pub fn root(&self) -> &Path {
        self.tmp.path()
    }

    /// `root/rel`, created if needed.
    pub fn dir(&self, rel: &str) -> PathBuf {
        let d = self.root().join(rel);
        std::fs::create_dir_all(&d).expect("create a migration directory");
        d
    }

    /// Write `root/dir/file` (creating the directory) and return its path.
    pub fn write(&self, dir: &str, file: &str, body: &str) -> PathBuf {
        let path = self.dir(dir).join(file);
        std::fs::write(&path, body).expect("write a migration file");
        path
    }

    /// The binary, working in the project directory, pointed at this test's database.
    pub fn cmd(&self) -> assert_cmd::Command {
        let mut cmd = command();
        cmd.current_dir(self.root())
            .arg("--database-url")
            .arg(self.db.url());
        cmd
    }

    /// `colocate --database-url URL ARGS...` as a plain process in the project directory,
    /// without the connection settings of the environment: for a run to start, kill or race
    /// (the caller chooses its stdio).
    pub fn process(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new(BIN);
        for var in CONNECTION_ENV {
            cmd.env_remove(var);
        }
        cmd.current_dir(self.root())
            .arg("--database-url")
            .arg(self.db.url())
            .args(args);
        cmd
    }

    /// Run `colocate --database-url URL --dir D... ARGS...`, dirs given relative to the project.
    pub fn colocate(&self, dirs: &[&str], args: &[&str]) -> Run {
        let mut cmd = self.cmd();
        for d in dirs {
            cmd.arg("--dir").arg(self.root().join(d));
        }
        cmd.args(args);
        run(cmd)
    }

    /// Run with no `--dir` (dirs come from `colocate.toml`), from `cwd` under the project.
    pub fn colocate_in(&self, cwd: &str, args: &[&str]) -> Run {
        let mut cmd = self.cmd();
        cmd.current_dir(self.dir(cwd)).args(args);
        run(cmd)
    }

    // --- Direct queries ---------------------------------------------------------------------

    pub fn count(&self, sql: &str) -> i64 {
        let mut c = self.db.connect();
        c.query_one(sql, &[])
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .get(0)
    }

    pub fn table_exists(&self, name: &str) -> bool {
        let mut c = self.db.connect();
        c.query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
            .expect("to_regclass")
            .get(0)
    }

    /// Tables outside the system schemas (the history table included).
    pub fn user_tables(&self) -> i64 {
        self.count(
            "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog','information_schema')",
        )
    }

    /// Names of the user tables, sorted, as `schema.table`.
    pub fn table_names(&self) -> Vec<String> {
        let mut c = self.db.connect();
        c.query(
            "SELECT schemaname || '.' || tablename FROM pg_tables \
             WHERE schemaname NOT IN ('pg_catalog','information_schema') ORDER BY 1",
            &[],
        )
        .expect("list tables")
        .iter()
        .map(|r| r.get(0))
        .collect()
    }

    /// The history table's rows, oldest version first.
    pub fn history(&self) -> Vec<HistoryRow> {
        self.history_in("colocate_migrations")
    }

    pub fn history_in(&self, table: &str) -> Vec<HistoryRow> {
        let mut c = self.db.connect();
        let sql = format!(
            "SELECT version, name, source_dir, checksum, batch, state, progress, error \
             FROM {table} ORDER BY version"
        );
        c.query(&sql, &[])
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .iter()
            .map(|r| HistoryRow {
                version: r.get::<_, i64>(0).to_string(),
                name: r.get(1),
                source_dir: r.get(2),
                checksum: r.get(3),
                batch: r.get(4),
                state: r.get(5),
                progress: r.get(6),
                error: r.get(7),
            })
            .collect()
    }

    /// The versions recorded in the history table.
    pub fn versions(&self) -> Vec<String> {
        self.history().into_iter().map(|r| r.version).collect()
    }

    /// SHA-256 of `bytes` in hex, computed by the server (an implementation independent of the
    /// one under test).
    pub fn sha256_hex(&self, bytes: &[u8]) -> String {
        let mut c = self.db.connect();
        c.query_one("SELECT encode(sha256($1), 'hex')", &[&bytes])
            .expect("sha256")
            .get(0)
    }

    /// Insta settings with this project's paths and database filtered, plus the general ones.
    pub fn settings(&self) -> insta::Settings {
        let mut s = settings();
        // The temporary directory may be reached through a symlink; filter both spellings.
        let canonical = self.root().canonicalize().expect("canonicalize temp dir");
        for p in [canonical.as_path(), self.root()] {
            s.add_filter(&regex_escape(&p.display().to_string()), "[TMP]");
        }
        s.add_filter(&regex_escape(self.db.name()), "[DB]");
        s
    }
}

/// A history table row.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    pub version: String,
    pub name: String,
    pub source_dir: String,
    pub checksum: String,
    pub batch: i32,
    pub state: String,
    pub progress: Option<i32>,
    pub error: Option<String>,
}

/// Filters for what varies between runs: timestamps, durations, ports, pids, database names.
pub fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_prepend_module_to_snapshot(false);
    // Same width as what it replaces, so table columns stay aligned.
    s.add_filter(
        r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z",
        "YYYY-MM-DDTHH:MM:SSZ",
    );
    s.add_filter(r"\(\d+(\.\d+)? ms\)", "([DURATION])");
    s.add_filter(r"\b\d+(\.\d+)? ms\b", "[DURATION]");
    // Progress lines: `done in 2 ms`, `done in 7.9 s`.
    s.add_filter(r"done in \d+(\.\d+)? m?s\b", "done in [DURATION]");
    s.add_filter(r"gave up after \d+(\.\d+)?s", "gave up after [SECONDS]s");
    s.add_filter(r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]");
    s.add_filter(r"\bpid \d+", "pid [PID]");
    s.add_filter(r"colocate_test_\d+_\d+_\d+", "[DB]");
    s.add_filter(r"/tmp/\.tmp[A-Za-z0-9]+", "[TMP]");
    s
}

/// Escape `s` for use as a literal in a regular expression.
pub fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A migration file body with an up part and an optional down part.
pub fn migration(up: &str, down: Option<&str>) -> String {
    match down {
        Some(d) => format!("{UP}{up}\n-- migrate:down\n{d}\n"),
        None => format!("{UP}{up}\n"),
    }
}

/// `CREATE TABLE name` up, `DROP TABLE name` down.
pub fn create_table(name: &str) -> String {
    migration(
        &format!("CREATE TABLE {name} (id int);"),
        Some(&format!("DROP TABLE {name};")),
    )
}

/// A unique suffix for cluster-wide names (roles).
pub fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}_{}", std::process::id(), nanos)
}

// --- Citus tier: what a conversion must keep (apply and undistribute tests) -------------------

use std::collections::{BTreeMap, BTreeSet};

/// `schema.name` (as the planner prints it, unquoted) → a quoted SQL name.
pub fn quote_table(name: &str) -> String {
    let (schema, table) = name.split_once('.').expect("schema.table");
    format!(
        "\"{}\".\"{}\"",
        schema.replace('"', "\"\""),
        table.replace('"', "\"\"")
    )
}

/// One row of `pg_dist_partition`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CitusTable {
    /// `h` hash-distributed, `n` none (reference or Citus local).
    pub method: String,
    pub column: Option<String>,
    pub colocation: i32,
    /// `t` for reference tables.
    pub repmodel: String,
}

/// A foreign key as the catalog states it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ForeignKey {
    pub table: String,
    pub name: String,
    pub definition: String,
    pub validated: bool,
}

impl Project {
    /// Every table and partition in `schemas`, as `schema.name`, sorted. (Citus hides the shards
    /// a single-node coordinator holds from catalog queries like this one.)
    pub fn tables_in(&self, schemas: &[&str]) -> Vec<String> {
        let schemas: Vec<String> = schemas.iter().map(|s| s.to_string()).collect();
        self.db
            .connect()
            .query(
                "SELECT n.nspname || '.' || c.relname FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p') ORDER BY 1",
                &[&schemas],
            )
            .expect("list tables")
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    /// Row count and an md5 of all rows (as text, sorted) per table: equal before and after a
    /// conversion when no row was lost, duplicated or changed.
    pub fn checksums(&self, tables: &[String]) -> BTreeMap<String, (i64, String)> {
        let mut c = self.db.connect();
        tables
            .iter()
            .map(|t| {
                let sql = format!(
                    "SELECT count(*), coalesce(md5(string_agg(x, '|' ORDER BY x)), '') \
                     FROM (SELECT r::text AS x FROM {} r) s",
                    quote_table(t)
                );
                let row = c
                    .query_one(&sql, &[])
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
                (t.clone(), (row.get(0), row.get(1)))
            })
            .collect()
    }

    /// The foreign keys declared on `tables` (inherited copies on partitions left out).
    pub fn foreign_keys(&self, tables: &[String]) -> BTreeSet<ForeignKey> {
        let tables: Vec<String> = tables.to_vec();
        self.db
            .connect()
            .query(
                "SELECT n.nspname || '.' || c.relname, k.conname, pg_get_constraintdef(k.oid), k.convalidated \
                 FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE k.contype = 'f' AND k.conparentid = 0 AND n.nspname || '.' || c.relname = ANY($1)",
                &[&tables],
            )
            .expect("list foreign keys")
            .iter()
            .map(|r| ForeignKey {
                table: r.get(0),
                name: r.get(1),
                definition: r.get(2),
                validated: r.get(3),
            })
            .collect()
    }

    /// `pg_dist_partition` by table (`schema.name`); empty when Citus is not created.
    pub fn citus_tables(&self) -> BTreeMap<String, CitusTable> {
        if self.count("SELECT count(*) FROM pg_extension WHERE extname = 'citus'") == 0 {
            return BTreeMap::new();
        }
        self.db
            .connect()
            .query(
                "SELECT n.nspname || '.' || c.relname, p.partmethod::text, \
                        CASE WHEN p.partkey IS NOT NULL THEN column_to_column_name(p.logicalrelid, p.partkey) END, \
                        p.colocationid, p.repmodel::text \
                 FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace",
                &[],
            )
            .expect("read pg_dist_partition")
            .iter()
            .map(|r| {
                (
                    r.get(0),
                    CitusTable {
                        method: r.get(1),
                        column: r.get(2),
                        colocation: r.get(3),
                        repmodel: r.get(4),
                    },
                )
            })
            .collect()
    }

    /// Citus tables whose coordinator table (the shell) still holds data pages: rows a
    /// conversion copied into shards and left behind.
    pub fn coordinator_leftovers(&self) -> Vec<(String, i64)> {
        if self.count("SELECT count(*) FROM pg_extension WHERE extname = 'citus'") == 0 {
            return Vec::new();
        }
        self.db
            .connect()
            .query(
                "SELECT n.nspname || '.' || c.relname, pg_relation_size(c.oid) \
                 FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE pg_relation_size(c.oid) > 0 ORDER BY 1",
                &[],
            )
            .expect("shell sizes")
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    }

    /// `table.key` of every foreign key from a table that is not distributed (plain, Citus
    /// local or reference) into a distributed one, sorted: such a key checks only the
    /// coordinator's shell of its target, and no run of colocate may leave one behind.
    pub fn keys_into_distributed(&self) -> Vec<String> {
        if self.count("SELECT count(*) FROM pg_extension WHERE extname = 'citus'") == 0 {
            return Vec::new();
        }
        self.db
            .connect()
            .query(
                "SELECT c.conrelid::regclass::text || '.' || c.conname FROM pg_constraint c \
                 WHERE c.contype = 'f' AND c.conrelid <> c.confrelid \
                   AND EXISTS (SELECT 1 FROM pg_dist_partition d \
                               WHERE d.logicalrelid = c.confrelid AND d.partmethod = 'h') \
                   AND NOT EXISTS (SELECT 1 FROM pg_dist_partition d \
                                   WHERE d.logicalrelid = c.conrelid AND d.partmethod = 'h') \
                 ORDER BY 1",
                &[],
            )
            .expect("keys into distributed tables")
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    /// Journal rows (`kind table name state`) not yet validated; empty without a journal.
    pub fn journal_open(&self) -> Vec<String> {
        if !self.table_exists("public.colocate_journal") {
            return Vec::new();
        }
        self.db
            .connect()
            .query(
                "SELECT concat_ws(' ', kind, table_sql, constraint_name, state) \
                 FROM public.colocate_journal WHERE state <> 'validated' ORDER BY id",
                &[],
            )
            .expect("read the journal")
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    /// `pg_dump --schema-only` of this database with the same major version as the server,
    /// without colocate's journal (and its sequence) and without the random `\restrict` keys of newer pg_dumps.
    pub fn schema_dump(&self) -> String {
        self.schema_dump_without(&[])
    }

    /// As [`Project::schema_dump`], leaving out the tables (and sequences) matching each
    /// pg_dump pattern in `exclude` as well (another runner's history, e.g. `public.knex_migrations*`).
    pub fn schema_dump_without(&self, exclude: &[&str]) -> String {
        let bin = std::env::var("COLOCATE_PG_BIN")
            .unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".to_string());
        let mut cmd = std::process::Command::new(Path::new(&bin).join("pg_dump"));
        for var in CONNECTION_ENV {
            cmd.env_remove(var);
        }
        let out = cmd
            .args([
                "--schema-only",
                "--exclude-table=public.colocate_journal",
                "--exclude-table=public.colocate_journal_id_seq",
            ])
            .args(exclude.iter().map(|t| format!("--exclude-table={t}")))
            .arg("--dbname")
            .arg(self.db.url())
            .output()
            .expect("run pg_dump");
        assert!(
            out.status.success(),
            "pg_dump failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
            .map(|l| format!("{l}\n"))
            .collect()
    }
}

/// The lines that differ between two texts (a small diff for assertion messages).
pub fn line_diff(before: &str, after: &str) -> String {
    let a: Vec<&str> = before.lines().collect();
    let b: Vec<&str> = after.lines().collect();
    let only_a: Vec<&&str> = a.iter().filter(|l| !b.contains(l)).collect();
    let only_b: Vec<&&str> = b.iter().filter(|l| !a.contains(l)).collect();
    let mut out = String::new();
    for l in only_a.iter().take(40) {
        out.push_str(&format!("- {l}\n"));
    }
    for l in only_b.iter().take(40) {
        out.push_str(&format!("+ {l}\n"));
    }
    if out.is_empty() && a != b {
        out.push_str("(same lines, different order)\n");
    }
    out
}
