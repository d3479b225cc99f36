//! `generate` through the binary, and the generated sets run the way users run them: the toml
//! and sql sets by `colocate migrate` in one chain with a base SQL migration directory, the knex
//! set by node (with a stand-in `knex` that records what it would send) and the recorded SQL
//! against the server. On PostgreSQL without Citus every step is a no-op that says so; on Citus
//! (one node, and a coordinator with workers) the set converges, `check` passes, foreign keys
//! and rows are kept, `--with-fixes` brings the fixable tables along, and rollback undoes it.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use colocate_testkit::skip_without_citus;
use common::{migration, Project, Run};
use serde_json::Value;

const BASE: &str = "20240101000000_schema.sql";
const BASE_VERSION: &str = "20240101000000";

/// The root, a lookup table, a foreign-key cycle (users <-> teams), a `tenant_id` table, a
/// table in the second layer, a local table, a key without the tenant (fixable, with a table
/// referencing it; its tenant column nullable, so the rebuilt key makes it NOT NULL) and a
/// table with a trigger (a decision, never fixed automatically).
const SCHEMA: &str = r#"
CREATE TABLE tenants (tenant uuid PRIMARY KEY, name text NOT NULL);
CREATE TABLE countries (code text PRIMARY KEY, name text NOT NULL);
CREATE TABLE users (tenant uuid NOT NULL REFERENCES tenants, user_id bigint NOT NULL,
    team_id bigint, country text REFERENCES countries, PRIMARY KEY (tenant, user_id));
CREATE TABLE teams (tenant uuid NOT NULL REFERENCES tenants, team_id bigint NOT NULL,
    lead_id bigint, PRIMARY KEY (tenant, team_id),
    CONSTRAINT teams_lead_fkey FOREIGN KEY (tenant, lead_id) REFERENCES users (tenant, user_id));
ALTER TABLE users ADD CONSTRAINT users_team_fkey FOREIGN KEY (tenant, team_id) REFERENCES teams (tenant, team_id);
CREATE TABLE email_messages (tenant_id uuid NOT NULL REFERENCES tenants (tenant), id bigint NOT NULL,
    PRIMARY KEY (tenant_id, id));
CREATE TABLE invoices (tenant uuid NOT NULL, id bigint NOT NULL, user_id bigint NOT NULL,
    PRIMARY KEY (tenant, id), FOREIGN KEY (tenant, user_id) REFERENCES users (tenant, user_id));
CREATE TABLE feature_flags (name text PRIMARY KEY, enabled boolean NOT NULL);
CREATE TABLE tokens (tenant uuid REFERENCES tenants, token text PRIMARY KEY);
CREATE TABLE token_uses (tenant uuid NOT NULL REFERENCES tenants, id bigint NOT NULL,
    token text REFERENCES tokens (token), PRIMARY KEY (tenant, id));
CREATE TABLE audit_events (tenant uuid NOT NULL, id bigint NOT NULL, PRIMARY KEY (tenant, id));
CREATE FUNCTION audit_stamp() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER audit_events_stamp BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION audit_stamp();
INSERT INTO tenants SELECT gen_random_uuid(), 't' || g FROM generate_series(1, 5) g;
INSERT INTO countries VALUES ('NZ', 'New Zealand'), ('FR', 'France');
INSERT INTO users SELECT tenant, 1, NULL, 'NZ' FROM tenants;
INSERT INTO teams SELECT tenant, 1, 1 FROM tenants;
UPDATE users SET team_id = 1;
INSERT INTO email_messages SELECT tenant, g FROM tenants, generate_series(1, 3) g;
INSERT INTO invoices SELECT tenant, g, 1 FROM tenants, generate_series(1, 2) g;
INSERT INTO feature_flags VALUES ('beta', true);
INSERT INTO tokens SELECT tenant, 'tok-' || name FROM tenants;
INSERT INTO token_uses SELECT tenant, 1, 'tok-' || name FROM tenants;
INSERT INTO audit_events SELECT tenant, 1 FROM tenants;
ANALYZE;
"#;

const DROP: &str = "DROP TABLE audit_events, token_uses, tokens, feature_flags, invoices, \
    email_messages, teams, users, countries, tenants CASCADE; DROP FUNCTION audit_stamp();";

const TABLES: &[&str] = &[
    "tenants",
    "countries",
    "users",
    "teams",
    "email_messages",
    "invoices",
    "feature_flags",
    "tokens",
    "token_uses",
    "audit_events",
];

const CONFIG: &str = r#"
[distribution]
columns = ["tenant", "tenant_id"]
"#;

/// The same, with the table that needs a decision kept local on purpose: `check` passes once
/// everything else converged.
const CONFIG_AUDIT_LOCAL: &str = r#"
[distribution]
columns = ["tenant", "tenant_id"]
local = [{ table = "audit_events", reason = "its trigger awaits a product decision" }]
"#;

/// A project with the base migration applied.
fn project() -> Project {
    let p = Project::new();
    std::fs::write(p.root().join("colocate.toml"), CONFIG).unwrap();
    p.write("base", BASE, &migration(SCHEMA, Some(DROP)));
    p.colocate(&["base"], &["migrate"]).expect(0);
    p
}

/// Make this database look like PostgreSQL without Citus to every session colocate opens: the
/// test cluster has Citus installed, so a view in front of `pg_catalog` hides it from
/// `pg_available_extensions` (the catalog that says what the server offers). Where Citus is not
/// installed at all, this changes nothing.
fn without_citus(p: &Project) {
    let mut c = p.db.connect();
    c.batch_execute(&format!(
        "CREATE SCHEMA no_citus;
         CREATE VIEW no_citus.pg_available_extensions AS
             SELECT * FROM pg_catalog.pg_available_extensions WHERE name <> 'citus';
         ALTER DATABASE {} SET search_path = \"$user\", public, no_citus, pg_catalog;",
        quote_ident(p.db.name())
    ))
    .unwrap();
    let offered = p.count("SELECT count(*) FROM pg_available_extensions WHERE name = 'citus'");
    assert_eq!(offered, 0, "the database must look like plain PostgreSQL");
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn generate(p: &Project, dirs: &[&str], out: &str, extra: &[&str]) -> Vec<PathBuf> {
    let mut args = vec!["generate", "--out", out];
    args.extend_from_slice(extra);
    let r = p.colocate(dirs, &args).expect(0);
    let files: Vec<PathBuf> = r.stdout.lines().map(PathBuf::from).collect();
    assert!(!files.is_empty(), "{}", r.all());
    for f in &files {
        assert!(f.is_file(), "{} was printed but not written", f.display());
    }
    files
}

fn count_rows(p: &Project) -> Vec<(String, i64)> {
    TABLES
        .iter()
        .map(|t| (t.to_string(), p.count(&format!("SELECT count(*) FROM {t}"))))
        .collect()
}

/// `table.constraint` of every foreign key on the schema's tables (not on Citus shards).
fn foreign_keys(p: &Project) -> BTreeSet<String> {
    let mut c = p.db.connect();
    let names: Vec<String> = TABLES.iter().map(|t| t.to_string()).collect();
    c.query(
        "SELECT conrelid::regclass::text || '.' || conname FROM pg_constraint \
         WHERE contype = 'f' AND conrelid = ANY($1::text[]::regclass[])",
        &[&names],
    )
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

fn citus_tables(p: &Project) -> i64 {
    if p.count("SELECT count(*) FROM pg_extension WHERE extname = 'citus'") == 0 {
        return 0;
    }
    p.count("SELECT count(*) FROM pg_dist_partition")
}

fn drift(p: &Project) -> BTreeSet<(String, String)> {
    let r = p.colocate(&[], &["check", "--format", "json"]);
    let v: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.all()));
    v["drift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["table"]["name"].as_str().unwrap().to_string(),
                d["code"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pair(t: &str, code: &str) -> (String, String) {
    (t.to_string(), code.to_string())
}

/// A client that keeps the server's notices.
fn noticing(p: &Project) -> (postgres::Client, Arc<Mutex<Vec<String>>>) {
    let notices = Arc::new(Mutex::new(Vec::new()));
    let sink = notices.clone();
    let mut config: postgres::Config = p.db.url().parse().unwrap();
    config.notice_callback(move |n| sink.lock().unwrap().push(n.message().to_string()));
    (config.connect(postgres::NoTls).unwrap(), notices)
}

// --- knex ----------------------------------------------------------------------------------

/// Loads a knex migration, runs `up` or `down` with a stand-in `knex` whose `raw` records the
/// SQL as knex's PostgreSQL client would send it (`?` becomes `$n`, `\?` becomes `?`; a
/// placeholder is an error here, since no bindings are passed), and prints the config and the
/// SQL as JSON.
const FAKE_KNEX: &str = r#"
const [file, direction] = process.argv.slice(2);
const migration = require(file);
const sql = [];
const knex = {
  raw(text, bindings) {
    if (bindings !== undefined) throw new Error('unexpected bindings');
    let n = 0;
    const sent = text.replace(/(\\*)(\?)/g, (m, escapes) => (escapes.length % 2 ? '?' : '$' + ++n));
    if (n > 0) throw new Error('a bind placeholder in raw SQL: ' + sent);
    sql.push(sent);
    return Promise.resolve({ rows: [] });
  },
};
if (typeof migration.up !== 'function' || typeof migration.down !== 'function') {
  throw new Error('exports.up and exports.down must be functions');
}
migration[direction](knex).then(
  () => process.stdout.write(JSON.stringify({ config: migration.config, sql })),
  (e) => { console.error(e); process.exit(1); },
);
"#;

/// What a knex migration's `up` or `down` sends: (runs in a transaction, statements).
fn knex_sql(p: &Project, file: &Path, direction: &str) -> (bool, Vec<String>) {
    let script = p.root().join("fake-knex.cjs");
    std::fs::write(&script, FAKE_KNEX).unwrap();
    let out = std::process::Command::new("node")
        .arg(&script)
        .arg(file)
        .arg(direction)
        .output()
        .expect("run node");
    assert!(
        out.status.success(),
        "node {} {direction}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let transaction = v["config"]["transaction"].as_bool() != Some(false);
    let sql = v["sql"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    (transaction, sql)
}

fn db_error(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{} ({})", d.message(), d.code().code()),
        None => e.to_string(),
    }
}

/// Run a knex set in order (up) or in reverse (down), executing the recorded SQL the way knex
/// would: in one transaction where the migration asks for one, else statement by statement.
fn run_knex(p: &Project, files: &[PathBuf], direction: &str) -> Vec<String> {
    let (mut c, notices) = noticing(p);
    let ordered: Vec<&PathBuf> = match direction {
        "up" => files.iter().collect(),
        _ => files.iter().rev().collect(),
    };
    for f in ordered {
        let (transaction, sql) = knex_sql(p, f, direction);
        assert!(!sql.is_empty(), "{} {direction} sends nothing", f.display());
        let is_fixes = f.to_string_lossy().contains("citus_fixes");
        assert_eq!(transaction, is_fixes, "{}", f.display());
        if transaction {
            let mut tx = c.transaction().unwrap();
            for s in &sql {
                tx.batch_execute(s).unwrap_or_else(|e| {
                    panic!("{} {direction}: {s}: {}", f.display(), db_error(&e))
                });
            }
            tx.commit().unwrap();
        } else {
            for s in &sql {
                c.batch_execute(s).unwrap_or_else(|e| {
                    panic!("{} {direction}: {s}: {}", f.display(), db_error(&e))
                });
            }
        }
    }
    let n = notices.lock().unwrap().clone();
    n
}

// --- plain PostgreSQL ------------------------------------------------------------------------

#[test]
fn plain_postgres_toml_and_sql_sets_are_noops_that_say_so_and_roll_back() {
    let p = project();
    without_citus(&p);
    let toml = generate(
        &p,
        &["base"],
        &p.root().join("citus-toml").display().to_string(),
        &[],
    );
    let sql = generate(
        &p,
        &["base", "citus-toml"],
        &p.root().join("citus-sql").display().to_string(),
        &["--format", "sql", "--with-fixes"],
    );
    assert_eq!(toml.len(), 6, "{toml:?}");
    assert!(toml.iter().all(|f| f.extension().unwrap() == "toml"));
    // The sql set starts with the fixes, after the toml set's versions.
    assert!(sql[0].to_string_lossy().ends_with("_citus_fixes.sql"));
    assert!(sql.iter().all(|f| f.extension().unwrap() == "sql"));
    let newest_toml = toml.last().unwrap().file_name().unwrap().to_string_lossy()[..14].to_string();
    let first_sql = sql[0].file_name().unwrap().to_string_lossy()[..14].to_string();
    assert!(first_sql > newest_toml);

    let dirs = ["base", "citus-toml", "citus-sql"];
    let dry = p.colocate(&dirs, &["migrate", "--dry-run"]).expect(0);
    assert!(
        dry.stdout.contains("-- declarative step: distribute public.tenants by tenant as the root of a new colocation group"),
        "{}",
        dry.stdout
    );
    let rows = count_rows(&p);
    let r = p.colocate(&dirs, &["migrate"]).expect(0);
    let skipped = r
        .stdout
        .lines()
        .filter(|l| {
            l.trim_start()
                .starts_with("skipped: citus is not available on this server (plain PostgreSQL)")
        })
        .count();
    assert_eq!(skipped, toml.len(), "{}", r.stdout);
    assert!(r.stdout.contains("stay local tables"), "{}", r.stdout);
    // Every file recorded, nothing converted, the fixes applied for real.
    assert_eq!(p.history().len(), 1 + toml.len() + sql.len());
    assert_eq!(
        p.count("SELECT count(*) FROM pg_extension WHERE extname = 'citus'"),
        0
    );
    assert_eq!(
        p.count("SELECT count(*) FROM pg_constraint WHERE conname = 'tokens_pkey' AND pg_get_constraintdef(oid) = 'PRIMARY KEY (tenant, token)'"),
        1
    );
    assert_eq!(count_rows(&p), rows);
    let st = p.colocate(&dirs, &["status", "--check"]).expect(0);
    assert!(st.stdout.contains("citus_distribute_root"), "{}", st.stdout);
    // A second run has nothing to do.
    let again = p.colocate(&dirs, &["migrate"]).expect(0);
    assert!(
        again.stdout.contains("nothing to apply"),
        "{}",
        again.stdout
    );

    let r = p
        .colocate(&dirs, &["rollback", "--to", "0", "--yes"])
        .expect(0);
    assert!(
        r.stdout
            .contains("nothing to undo: citus is not installed in this database"),
        "{}",
        r.stdout
    );
    assert!(p.history().is_empty());
    assert_eq!(p.table_names(), ["public.colocate_migrations"]);
}

#[test]
fn plain_postgres_knex_set_runs_under_a_stand_in_knex() {
    let p = project();
    without_citus(&p);
    let keys_before = foreign_keys(&p);
    let files = generate(
        &p,
        &["base"],
        &p.root().join("knex").display().to_string(),
        &["--format", "knex", "--with-fixes"],
    );
    assert!(files.iter().all(|f| f.extension().unwrap() == "cjs"));
    let notices = run_knex(&p, &files, "up");
    assert!(
        notices.contains(
            &"colocate: citus is not available on this server (plain PostgreSQL): skipped"
                .to_string()
        ),
        "{notices:?}"
    );
    assert!(
        notices.contains(
            &"colocate: citus is not installed: public.users stays a local table".to_string()
        ),
        "{notices:?}"
    );
    assert_eq!(
        p.count("SELECT count(*) FROM pg_extension WHERE extname = 'citus'"),
        0
    );
    let notices = run_knex(&p, &files, "down");
    assert!(
        notices.contains(
            &"colocate: citus is not installed: public.users is a local table".to_string()
        ),
        "{notices:?}"
    );
    // The fixes' down part put the keys back as they were.
    assert_eq!(foreign_keys(&p), keys_before);
    assert_eq!(
        p.count("SELECT count(*) FROM pg_constraint WHERE conname = 'tokens_pkey' AND pg_get_constraintdef(oid) = 'PRIMARY KEY (token)'"),
        1
    );
}

#[test]
fn generate_creates_the_directory_and_a_second_set_follows_the_first() {
    let p = project();
    let out = p.root().join("deep/new/dir");
    let first = generate(&p, &["base"], &out.display().to_string(), &[]);
    assert!(first.iter().all(|f| f.parent() == Some(out.as_path())));
    // The files already in the output directory count: the next set comes after them, so a
    // file is never overwritten.
    let second = generate(
        &p,
        &["base"],
        &out.display().to_string(),
        &["--format", "sql"],
    );
    let version = |f: &PathBuf| f.file_name().unwrap().to_string_lossy()[..14].to_string();
    assert!(version(&second[0]) > version(first.last().unwrap()));
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        first.len() + second.len()
    );
    // Knex files may not go into a colocate migration directory.
    let base = p.root().join("base").display().to_string();
    let r = p
        .colocate(&["base"], &["generate", "--out", &base, "--format", "knex"])
        .expect(2);
    assert!(
        r.only_error()
            .contains("is a colocate migration directory, where knex's .cjs files are not allowed"),
        "{}",
        r.stderr
    );
    p.colocate(
        &["base"],
        &["generate", "--out", "x", "--tables-per-file", "0"],
    )
    .expect(2);
}

#[test]
fn a_bad_step_file_is_an_error_naming_it_before_anything_runs() {
    let p = project();
    p.write(
        "steps",
        "20240201000000_distribute.toml",
        "[distribute]\ncolumn = \"tenant\"\ntables = [\"users\", \"teams\"]\n",
    );
    let r = p.colocate(&["base", "steps"], &["migrate"]).expect(2);
    let line = r.only_error();
    assert!(
        line.ends_with("steps/20240201000000_distribute.toml: [distribute] lists 2 tables without colocate_with: name the table they are colocated with (only a file that distributes the root alone may omit it)"),
        "{line}"
    );
    assert_eq!(p.history().len(), 1);
}

// --- Citus -----------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Format {
    Toml,
    Sql,
    Knex,
}

impl Format {
    fn arg(self) -> &'static str {
        match self {
            Format::Toml => "toml",
            Format::Sql => "sql",
            Format::Knex => "knex",
        }
    }
}

/// Generate a set on a Citus database, run it, and check the result; then undo it.
fn converge(p: &Project, format: Format, with_fixes: bool) {
    // The schema as the chain found it (the citus extension included): rolling the set back
    // gives back exactly this, pg_dump being the judge.
    let dump = p.schema_dump();
    let rows = count_rows(p);
    let keys = foreign_keys(p);
    let out = format!("citus-{}", format.arg());
    let mut extra = vec!["--format", format.arg()];
    if with_fixes {
        extra.push("--with-fixes");
    }
    let files = generate(
        p,
        &["base"],
        &p.root().join(&out).display().to_string(),
        &extra,
    );
    let dirs = ["base", out.as_str()];
    match format {
        Format::Knex => {
            run_knex(p, &files, "up");
        }
        _ => {
            let r = p.colocate(&dirs, &["migrate"]).expect(0);
            if format == Format::Toml {
                assert!(
                    r.stdout.contains("distributed: public.tenants"),
                    "{}",
                    r.stdout
                );
                assert!(
                    r.stdout
                        .contains("made reference table(s): public.countries"),
                    "{}",
                    r.stdout
                );
            }
        }
    }

    let left = drift(p);
    if with_fixes {
        assert_eq!(left, BTreeSet::from([pair("audit_events", "has-triggers")]));
        std::fs::write(p.root().join("colocate.toml"), CONFIG_AUDIT_LOCAL).unwrap();
        let r = p.colocate(&[], &["check"]).expect(0);
        assert!(r.stdout.contains("converged"), "{}", r.stdout);
        std::fs::write(p.root().join("colocate.toml"), CONFIG).unwrap();
        assert_eq!(
            p.count("SELECT count(*) FROM pg_dist_partition WHERE logicalrelid IN ('tokens'::regclass, 'token_uses'::regclass) AND partmethod = 'h'"),
            2
        );
    } else {
        assert_eq!(
            left,
            BTreeSet::from([
                pair("audit_events", "has-triggers"),
                pair("token_uses", "foreign-key-missing-distribution-column"),
                pair("tokens", "key-missing-distribution-column"),
                // The blocked tables stayed plain with keys into distributed tables: those
                // keys check only the coordinator's shell, and check says so (#13 makes the
                // planner hold such tables back instead).
                pair("token_uses", "foreign-key-into-distributed"),
                pair("tokens", "foreign-key-into-distributed"),
            ])
        );
    }
    assert_eq!(foreign_keys(p), keys, "every foreign key is kept");
    assert_eq!(count_rows(p), rows, "every row is kept");
    assert_eq!(
        p.count(
            "SELECT count(DISTINCT colocationid) FROM pg_dist_partition WHERE partmethod = 'h'"
        ),
        1,
        "every distributed table in the root's group"
    );
    assert_eq!(
        p.count("SELECT count(*) FROM pg_dist_partition WHERE logicalrelid = 'countries'::regclass AND repmodel = 't'"),
        1
    );
    assert_eq!(
        p.count("SELECT count(*) FROM pg_dist_partition WHERE logicalrelid IN ('feature_flags'::regclass, 'audit_events'::regclass)"),
        0
    );
    // The coordinator keeps no copy of rows that are in shards, except where a plain table
    // still references the table (tokens, left out, references tenants).
    let leftover = p.count(
        "SELECT count(*) FROM pg_dist_partition WHERE pg_relation_size(logicalrelid) > 0 AND logicalrelid <> 'tenants'::regclass",
    );
    assert_eq!(leftover, 0);

    // Run again: nothing changes. (knex, like colocate, would not run a migration twice; the
    // conversion files are idempotent anyway, and run again here to show it. The fixes are not
    // meant to run twice.)
    match format {
        Format::Knex => {
            let conversions: Vec<PathBuf> = files
                .iter()
                .filter(|f| !f.to_string_lossy().contains("citus_fixes"))
                .cloned()
                .collect();
            run_knex(p, &conversions, "up");
        }
        _ => {
            let r = p.colocate(&dirs, &["migrate"]).expect(0);
            assert!(r.stdout.contains("nothing to apply"), "{}", r.stdout);
        }
    }
    // Without fixes: the 3 blockers and the 2 keys from the plain tables they leave into
    // distributed ones.
    assert_eq!(drift(p).len(), if with_fixes { 1 } else { 5 });

    // Undo the newest file only: its tables are plain again and the others stay in Citus;
    // running it again brings back every key, validated.
    let citus_before = citus_tables(p);
    let not_valid =
        || p.count("SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND NOT convalidated");
    let not_valid_before = not_valid();
    let newest = &files[files.len() - 1..];
    match format {
        Format::Knex => {
            run_knex(p, newest, "down");
        }
        _ => {
            p.colocate(&dirs, &["rollback", "--steps", "1", "--yes"])
                .expect(0);
        }
    }
    let partly = citus_tables(p);
    assert!(
        partly > 1 && partly < citus_before,
        "{partly} Citus tables left of {citus_before}"
    );
    assert_eq!(count_rows(p), rows, "every row is kept");
    match format {
        Format::Knex => {
            run_knex(p, newest, "up");
        }
        _ => {
            p.colocate(&dirs, &["migrate"]).expect(0);
        }
    }
    assert_eq!(citus_tables(p), citus_before);
    assert_eq!(foreign_keys(p), keys, "every key back");
    assert_eq!(not_valid(), not_valid_before, "and validated");

    // Undo the set: no Citus table is left, keys and rows as before.
    match format {
        Format::Knex => {
            run_knex(p, &files, "down");
        }
        _ => {
            let r = p
                .colocate(&dirs, &["rollback", "--to", BASE_VERSION, "--yes"])
                .expect(0);
            if format == Format::Toml {
                // Each step undoes its own tables; keys to earlier steps' tables wait in the
                // journal and come back as those steps are undone.
                assert!(r.stdout.contains("kept in the journal"), "{}", r.stdout);
                assert!(
                    !r.stdout
                        .contains("the cascade through foreign keys also undistributed"),
                    "{}",
                    r.stdout
                );
                assert!(
                    r.stdout
                        .contains("kept extension citus: it existed before this migration"),
                    "{}",
                    r.stdout
                );
            }
        }
    }
    assert_eq!(citus_tables(p), 0);
    assert_eq!(foreign_keys(p), keys);
    assert_eq!(count_rows(p), rows);
    // The extension that existed stays; a NOT NULL the fixes' key rebuild added is gone.
    let after = p.schema_dump();
    assert!(
        after == dump,
        "pg_dump --schema-only differs after rolling the set back:\n{}",
        common::line_diff(&dump, &after)
    );
    if format != Format::Knex {
        p.colocate(&dirs, &["rollback", "--to", "0", "--yes"])
            .expect(0);
        let mut left = p.table_names();
        // The apply engine's journal of dropped foreign keys (all restored) stays.
        left.retain(|t| t != "public.colocate_journal");
        assert_eq!(left, ["public.colocate_migrations"]);
    }
}

fn single_node(format: Format, with_fixes: bool) {
    let p = project();
    p.db.citus_single_node();
    converge(&p, format, with_fixes);
}

fn with_workers(format: Format, with_fixes: bool) {
    let p = project();
    p.db.citus_with_workers();
    converge(&p, format, with_fixes);
}

#[test]
fn citus_single_node_toml_set_converges_leaving_blocked_tables() {
    if skip_without_citus("citus_single_node_toml_set_converges_leaving_blocked_tables") {
        return;
    }
    single_node(Format::Toml, false);
}

#[test]
fn citus_single_node_toml_set_with_fixes_converges() {
    if skip_without_citus("citus_single_node_toml_set_with_fixes_converges") {
        return;
    }
    single_node(Format::Toml, true);
}

#[test]
fn citus_single_node_sql_set_with_fixes_converges() {
    if skip_without_citus("citus_single_node_sql_set_with_fixes_converges") {
        return;
    }
    single_node(Format::Sql, true);
}

#[test]
fn citus_single_node_knex_set_with_fixes_converges() {
    if skip_without_citus("citus_single_node_knex_set_with_fixes_converges") {
        return;
    }
    single_node(Format::Knex, true);
}

#[test]
fn citus_workers_toml_set_with_fixes_converges() {
    if skip_without_citus("citus_workers_toml_set_with_fixes_converges") {
        return;
    }
    with_workers(Format::Toml, true);
}

#[test]
fn citus_workers_sql_set_converges_leaving_blocked_tables() {
    if skip_without_citus("citus_workers_sql_set_converges_leaving_blocked_tables") {
        return;
    }
    with_workers(Format::Sql, false);
}

#[test]
fn citus_workers_knex_set_with_fixes_converges() {
    if skip_without_citus("citus_workers_knex_set_with_fixes_converges") {
        return;
    }
    with_workers(Format::Knex, true);
}

#[test]
fn citus_a_step_with_a_blocker_fails_with_the_engine_s_message() {
    if skip_without_citus("citus_a_step_with_a_blocker_fails_with_the_engine_s_message") {
        return;
    }
    let p = project();
    p.db.citus_single_node();
    p.write(
        "steps",
        "20240201000000_distribute_tenants.toml",
        "[distribute]\ncolumn = \"tenant\"\ntables = [\"tenants\"]\n",
    );
    p.write(
        "steps",
        "20240201000001_distribute_tokens.toml",
        "[distribute]\ncolumn = \"tenant\"\ncolocate_with = \"tenants\"\ntables = [\"tokens\"]\n",
    );
    let r: Run = p.colocate(&["base", "steps"], &["migrate"]).expect(2);
    let line = r.error_line();
    assert!(
        line.contains("steps/20240201000001_distribute_tokens.toml: migration failed: apply stopped before changing anything: 1 blocker(s) or conflict(s) in the plan (public.tokens)"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("[key-missing-distribution-column] primary key tokens_pkey (token)"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("note: this run applied 1 migration(s) before the failure"),
        "{}",
        r.stderr
    );
    assert!(r
        .hint_line()
        .unwrap()
        .contains("take those tables out of the step file"));
    // The root's step is recorded; the failed one is not.
    assert_eq!(p.versions(), [BASE_VERSION, "20240201000000"]);

    // A step colocating with a root that is not distributed says so.
    p.write(
        "other",
        "20240301000000_emails.toml",
        "[distribute]\ncolumn = \"tenant_id\"\ncolocate_with = \"countries\"\ntables = [\"email_messages\"]\n",
    );
    std::fs::remove_file(p.root().join("steps/20240201000001_distribute_tokens.toml")).unwrap();
    let r = p
        .colocate(&["base", "steps", "other"], &["migrate"])
        .expect(2);
    assert!(
        r.error_line()
            .contains("public.countries is not a distributed table yet"),
        "{}",
        r.stderr
    );
}

/// The extension step's down part drops only an extension its up part created: one that
/// existed before the chain stays; one it created is not dropped while Citus tables remain,
/// and is dropped once none does.
#[test]
fn citus_the_extension_step_drops_only_what_it_created_and_not_while_citus_tables_remain() {
    if skip_without_citus(
        "citus_the_extension_step_drops_only_what_it_created_and_not_while_citus_tables_remain",
    ) {
        return;
    }
    let step = "[citus]\nextension = true\n";
    // Existed before: kept.
    let p = project();
    p.db.citus_single_node();
    p.write("steps", "20240201000000_citus.toml", step);
    let r = p.colocate(&["base", "steps"], &["migrate"]).expect(0);
    assert!(
        r.stdout.contains("extension citus already exists"),
        "{}",
        r.stdout
    );
    let r = p
        .colocate(&["base", "steps"], &["rollback", "--yes"])
        .expect(0);
    assert!(
        r.stdout
            .contains("kept extension citus: it existed before this migration"),
        "{}",
        r.stdout
    );
    assert_eq!(
        p.count("SELECT count(*) FROM pg_extension WHERE extname = 'citus'"),
        1
    );

    // Created by the step: not dropped while a Citus table remains, dropped after.
    let p = project();
    p.write("steps", "20240201000000_citus.toml", step);
    let r = p.colocate(&["base", "steps"], &["migrate"]).expect(0);
    assert!(r.stdout.contains("created extension citus"), "{}", r.stdout);
    p.db.connect()
        .batch_execute(
            "SELECT citus_set_coordinator_host('127.0.0.1', inet_server_port()); \
             SET citus.enable_local_reference_table_foreign_keys TO off; \
             SELECT create_reference_table('feature_flags')",
        )
        .unwrap();
    let r = p
        .colocate(&["base", "steps"], &["rollback", "--yes"])
        .expect(2);
    assert!(
        r.error_line().contains("steps/20240201000000_citus.toml: rollback failed: cannot drop extension citus: 1 Citus table(s) remain (feature_flags)"),
        "{}",
        r.stderr
    );
    assert!(
        r.hint_line().unwrap().contains("undistribute"),
        "{}",
        r.stderr
    );
    assert_eq!(p.versions(), [BASE_VERSION, "20240201000000"]);
    p.db.connect()
        .batch_execute("SELECT undistribute_table('feature_flags')")
        .unwrap();
    let r = p
        .colocate(&["base", "steps"], &["rollback", "--yes"])
        .expect(0);
    assert!(r.stdout.contains("dropped extension citus"), "{}", r.stdout);
    assert_eq!(
        p.count("SELECT count(*) FROM pg_extension WHERE extname = 'citus'"),
        0
    );
}

/// A `tenant_id` table referencing a `tenant` table, and a lookup both kinds reference: each
/// step must see what earlier steps converted, whatever their column, or the `tenant_id` step
/// calls its target blocked and the lookup keeps its coordinator rows.
#[test]
fn citus_single_node_mixed_columns_track_converges_without_leftovers() {
    if skip_without_citus("citus_single_node_mixed_columns_track_converges_without_leftovers") {
        return;
    }
    let p = Project::new();
    p.db.citus_single_node();
    std::fs::write(
        p.root().join("colocate.toml"),
        "[distribution]\ncolumns = [\"tenant\", \"tenant_id\"]\n",
    )
    .unwrap();
    p.write(
        "base",
        "20240101000000_schema.sql",
        &migration(
            "CREATE TABLE tenants (tenant uuid PRIMARY KEY);
             CREATE TABLE kinds (code text PRIMARY KEY);
             INSERT INTO kinds VALUES ('a'), ('b');
             CREATE TABLE tickets (tenant uuid NOT NULL REFERENCES tenants, id bigint NOT NULL,
                 kind text REFERENCES kinds, PRIMARY KEY (tenant, id));
             CREATE TABLE emails (tenant_id uuid NOT NULL REFERENCES tenants (tenant), id bigint NOT NULL,
                 ticket_id bigint, kind text REFERENCES kinds, PRIMARY KEY (tenant_id, id),
                 FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant, id));
             INSERT INTO tenants SELECT gen_random_uuid() FROM generate_series(1, 3);
             INSERT INTO tickets SELECT tenant, 1, 'a' FROM tenants;
             INSERT INTO emails SELECT tenant, 1, 1, 'b' FROM tenants;",
            Some("DROP TABLE emails, tickets, kinds, tenants;"),
        ),
    );
    p.colocate(&["base"], &["migrate"]).expect(0);
    let out = p.root().join("citus");
    generate(&p, &["base"], out.to_str().unwrap(), &[]);
    let r = p.colocate(&["base", "citus"], &["migrate"]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    p.colocate(&["base", "citus"], &["check"]).expect(0);
    let left = p
        .colocate(&["base", "citus"], &["apply", "--dry-run"])
        .expect(0);
    assert!(
        left.stdout.contains("nothing to apply"),
        "leftover work: {}",
        left.stdout
    );
    assert_eq!(p.count("SELECT count(*) FROM emails"), 3);
    assert_eq!(p.count("SELECT count(*) FROM kinds"), 2);
}

/// Rolling back one declarative step undoes that step's tables only: the keys to other steps'
/// tables wait in the journal, come back when the step runs again, and a rollback to the start
/// leaves the schema, its keys and its data exactly as before.
#[test]
fn citus_two_workers_rolling_back_one_step_leaves_the_others_distributed() {
    if skip_without_citus("citus_two_workers_rolling_back_one_step_leaves_the_others_distributed") {
        return;
    }
    let p = Project::new();
    p.db.citus_with_workers();
    std::fs::write(
        p.root().join("colocate.toml"),
        "[distribution]\ncolumns = [\"tenant\", \"tenant_id\"]\n",
    )
    .unwrap();
    p.write(
        "base",
        "20240101000000_schema.sql",
        &migration(
            "CREATE TABLE tenants (tenant uuid PRIMARY KEY);
             CREATE TABLE kinds (code text PRIMARY KEY);
             INSERT INTO kinds VALUES ('a'), ('b');
             CREATE TABLE tickets (tenant uuid NOT NULL REFERENCES tenants, id bigint NOT NULL,
                 kind text REFERENCES kinds, PRIMARY KEY (tenant, id));
             CREATE TABLE emails (tenant_id uuid NOT NULL REFERENCES tenants (tenant), id bigint NOT NULL,
                 ticket_id bigint, kind text REFERENCES kinds, PRIMARY KEY (tenant_id, id),
                 CONSTRAINT \"Email's ticket\" FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant, id));
             INSERT INTO tenants SELECT gen_random_uuid() FROM generate_series(1, 5);
             INSERT INTO tickets SELECT tenant, g, 'a' FROM tenants, generate_series(1, 4) g;
             INSERT INTO emails SELECT tenant, g, g, 'b' FROM tenants, generate_series(1, 3) g;",
            Some("DROP TABLE emails, tickets, kinds, tenants;"),
        ),
    );
    p.write(
        "citus",
        "20240201000000_reference.toml",
        "[reference]\ntables = [\"kinds\"]\n",
    );
    p.write(
        "citus",
        "20240201000001_root.toml",
        "[distribute]\ncolumn = \"tenant\"\ntables = [\"tenants\"]\nshard_count = 4\n",
    );
    p.write(
        "citus",
        "20240201000002_tickets.toml",
        "[distribute]\ncolumn = \"tenant\"\ncolocate_with = \"tenants\"\ntables = [\"tickets\"]\n",
    );
    p.write(
        "citus",
        "20240201000003_emails.toml",
        "[distribute]\ncolumn = \"tenant_id\"\ncolocate_with = \"tenants\"\ntables = [\"emails\"]\n",
    );
    let dirs = ["base", "citus"];
    p.colocate(&["base"], &["migrate"]).expect(0);
    let tables: Vec<String> = p
        .tables_in(&["public"])
        .into_iter()
        .filter(|t| !t.starts_with("public.colocate_"))
        .collect();
    let sums = p.checksums(&tables);
    let keys = p.foreign_keys(&tables);
    assert_eq!(keys.len(), 5);
    let journal_open = || {
        p.count(
            "SELECT count(*) FROM colocate_journal WHERE state <> 'validated' AND kind = 'foreign_key'",
        )
    };
    let citus = || -> Vec<String> { p.citus_tables().into_keys().collect() };

    p.colocate(&dirs, &["migrate"]).expect(0);
    assert_eq!(
        citus(),
        [
            "public.emails",
            "public.kinds",
            "public.tenants",
            "public.tickets"
        ]
    );
    assert_eq!(p.foreign_keys(&tables), keys);

    // Undo the emails step only: emails is plain again, the rest stays in Citus.
    let r = p
        .colocate(&dirs, &["rollback", "--to", "20240201000002", "--yes"])
        .expect(0);
    assert_eq!(
        citus(),
        ["public.kinds", "public.tenants", "public.tickets"],
        "{}",
        r.all()
    );
    assert!(r.stdout.contains("kept in the journal"), "{}", r.all());
    let now = p.foreign_keys(&tables);
    let missing: Vec<&str> = keys.difference(&now).map(|k| k.name.as_str()).collect();
    assert_eq!(
        missing,
        [
            "Email's ticket",
            "emails_kind_fkey",
            "emails_tenant_id_fkey"
        ],
        "the keys from emails to the other steps' tables wait"
    );
    assert_eq!(journal_open(), 3);
    assert_eq!(p.checksums(&tables), sums, "no row lost or changed");
    assert_eq!(
        p.versions(),
        [
            "20240101000000",
            "20240201000000",
            "20240201000001",
            "20240201000002"
        ]
    );

    // Running the step again converts emails and restores its keys, validated.
    let r = p.colocate(&dirs, &["migrate"]).expect(0);
    assert!(r.stdout.contains("restored foreign key"), "{}", r.all());
    assert_eq!(p.foreign_keys(&tables), keys, "{}", r.all());
    assert_eq!(journal_open(), 0);
    assert_eq!(citus().len(), 4);
    assert!(p.coordinator_leftovers().is_empty());
    assert_eq!(p.checksums(&tables), sums);
    p.colocate(&dirs, &["check"]).expect(0);

    // Undo tickets and emails: the key between them is restored as soon as both are plain.
    p.colocate(&dirs, &["rollback", "--to", "20240201000001", "--yes"])
        .expect(0);
    assert_eq!(citus(), ["public.kinds", "public.tenants"]);
    let now = p.foreign_keys(&tables);
    assert!(now
        .iter()
        .any(|k| k.name == "Email's ticket" && k.validated));
    assert_eq!(journal_open(), 4, "keys to tenants and kinds wait");

    // Back to the base schema: every key back as it was, every row kept, no Citus table.
    p.colocate(&dirs, &["rollback", "--to", "20240101000000", "--yes"])
        .expect(0);
    assert_eq!(citus(), Vec::<String>::new());
    assert_eq!(p.foreign_keys(&tables), keys);
    assert_eq!(journal_open(), 0);
    assert_eq!(p.checksums(&tables), sums);
}

/// In parallel mode Citus 13.2 deadlocks with itself on a table whose name is 63 characters
/// long. `apply` converts in sequential mode; a generated `--format sql` set must run with the
/// same settings, or its migration stops half way. Every format: the knex set raises the same
/// SQL, and the toml set runs through apply.
#[test]
fn citus_workers_sql_and_toml_sets_convert_a_63_character_table_name() {
    if skip_without_citus("citus_workers_sql_and_toml_sets_convert_a_63_character_table_name") {
        return;
    }
    let long = format!("events_{}", "x".repeat(56));
    assert_eq!(long.len(), 63);
    for format in ["sql", "toml"] {
        let p = Project::new();
        p.db.citus_with_workers();
        std::fs::write(
            p.root().join("colocate.toml"),
            "[distribution]\nroot = \"tenants\"\ncolumns = [\"tenant\"]\nshard_count = 4\n",
        )
        .unwrap();
        p.write(
            "base",
            BASE,
            &migration(
                &format!(
                    "CREATE TABLE tenants (tenant uuid PRIMARY KEY);
                     CREATE TABLE {long} (tenant uuid NOT NULL REFERENCES tenants, id bigint NOT NULL,
                         parent_id bigint, PRIMARY KEY (tenant, id),
                         FOREIGN KEY (tenant, parent_id) REFERENCES {long} (tenant, id));
                     INSERT INTO tenants SELECT gen_random_uuid() FROM generate_series(1, 8);
                     INSERT INTO {long} SELECT tenant, g, NULLIF(g - 1, 0) FROM tenants, generate_series(1, 200) g;"
                ),
                None,
            ),
        );
        p.colocate(&["base"], &["migrate"]).expect(0);
        let out = p.root().join("set").display().to_string();
        generate(&p, &["base"], &out, &["--format", format]);
        let r = p.colocate(&["base", "set"], &["migrate"]);
        assert_eq!(r.code, Some(0), "{format}: {}", r.all());
        assert_eq!(
            p.count(&format!(
                "SELECT count(*) FROM pg_dist_partition WHERE logicalrelid = '{long}'::regclass AND partmethod = 'h'"
            )),
            1,
            "{format}"
        );
        assert_eq!(
            p.count(&format!("SELECT count(*) FROM {long}")),
            1600,
            "{format}"
        );
        assert_eq!(
            p.count(&format!(
                "SELECT count(*) FROM pg_constraint WHERE conrelid = '{long}'::regclass AND contype = 'f' AND convalidated"
            )),
            2,
            "{format}: both keys there"
        );
    }
}
