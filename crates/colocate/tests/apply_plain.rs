//! `apply` and `undistribute` on plain PostgreSQL: a server without the Citus package (apply is
//! a no-op that says so, exit 0, so the same deploy works everywhere), and a database where
//! Citus is installed on the server but not created (apply creates the extension, then
//! converges).

mod common;

use colocate_testkit::skip_without_citus;
use common::{run, Project, Run};
use serde_json::Value;

const SCHEMA: &str = r#"
CREATE TABLE countries (code char(2) PRIMARY KEY, name text NOT NULL);
CREATE TABLE tenants (tenant uuid PRIMARY KEY, name text NOT NULL, country char(2) REFERENCES countries);
CREATE TABLE users (tenant uuid NOT NULL REFERENCES tenants, user_id bigint GENERATED ALWAYS AS IDENTITY,
    email text NOT NULL, PRIMARY KEY (tenant, user_id));
CREATE TABLE notes (tenant uuid NOT NULL REFERENCES tenants, note_id bigint NOT NULL, author bigint NOT NULL,
    body text, PRIMARY KEY (tenant, note_id), FOREIGN KEY (tenant, author) REFERENCES users);
INSERT INTO countries VALUES ('NZ', 'New Zealand'), ('DE', 'Germany');
INSERT INTO tenants SELECT ('00000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, 'tenant ' || g,
    (ARRAY['NZ', 'DE'])[1 + g % 2] FROM generate_series(1, 3) g;
INSERT INTO users (tenant, email) SELECT tenant, 'u' || g || '@example.com' FROM tenants, generate_series(1, 4) g
    ORDER BY 1, 2;
INSERT INTO notes SELECT tenant, user_id, user_id, 'note' FROM users;
"#;

const CONFIG: &str = r#"
[distribution]
root = "tenants"
columns = ["tenant"]
shard_count = 4
"#;

fn project() -> Project {
    let p = Project::new();
    p.db.connect().batch_execute(SCHEMA).expect("schema loads");
    std::fs::write(p.root().join("colocate.toml"), CONFIG).unwrap();
    p
}

/// Run against `url` instead of the project's own URL.
fn colocate_at(p: &Project, url: &str, args: &[&str]) -> Run {
    let mut cmd = common::command();
    cmd.current_dir(p.root())
        .arg("--database-url")
        .arg(url)
        .args(args);
    run(cmd)
}

fn citus_created(p: &Project) -> bool {
    p.count("SELECT count(*) FROM pg_extension WHERE extname = 'citus'") == 1
}

/// A server without the Citus package. This machine has it, so the test database is made to
/// answer as such a server does: its `pg_catalog.pg_available_extensions` view (each database
/// has its own copy) is redefined without citus. colocate reads availability from that view,
/// with `search_path` pinned to pg_catalog, so this is what it sees on a plain server.
#[test]
fn plain_postgres_without_citus_apply_is_a_no_op_and_says_so() {
    let p = project();
    p.hide_citus();
    let url = p.db.url().to_string();
    let tables = p.tables_in(&["public"]);
    let sums = p.checksums(&tables);
    let dump = p.schema_dump();

    let r = colocate_at(&p, &url, &["plan"]).expect(0);
    assert!(
        r.stdout
            .contains("Citus is not installed on this server: the plan shows roles only, no steps"),
        "the shadow works: {}",
        r.stdout
    );
    for args in [
        &["apply"][..],
        &["apply", "--skip-blocked"],
        &["apply", "--dry-run"],
    ] {
        let r = colocate_at(&p, &url, args).expect(0);
        assert_eq!(
            r.stdout,
            "citus is not available on this server: nothing to apply (plain PostgreSQL)\n",
            "{args:?}\n{}",
            r.stderr
        );
        assert_eq!(r.stderr, "", "{args:?}");
    }
    let r = colocate_at(&p, &url, &["apply", "--format", "json"]).expect(0);
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["event"], "summary");
    assert_eq!(v["citus"], "absent");
    assert_eq!(v["steps"], serde_json::json!([]));

    assert!(!citus_created(&p));
    assert!(!p.table_exists("public.colocate_journal"));
    assert_eq!(p.checksums(&tables), sums);
    assert_eq!(p.schema_dump(), dump, "apply changed the schema");
}

/// No Citus in the database: undistribute has nothing to do, and says so.
#[test]
fn plain_postgres_undistribute_has_nothing_to_do() {
    let p = project();
    let dump = p.schema_dump();
    for args in [
        &["undistribute", "--all"][..],
        &["undistribute", "--all", "--yes"],
        &["undistribute", "users", "--yes"],
    ] {
        let mut cmd = p.cmd();
        cmd.args(args);
        let r = run(cmd).expect(0);
        assert_eq!(
            r.stdout, "citus is not installed in this database: nothing to undistribute\n",
            "{args:?}"
        );
    }
    assert!(!citus_created(&p));
    assert_eq!(p.schema_dump(), dump);
}

/// Citus installed on the server but not created in the database: `--dry-run` shows the
/// `CREATE EXTENSION` first and creates nothing; apply creates it and converges.
#[test]
fn citus_available_but_not_created_apply_creates_the_extension_and_converges() {
    if skip_without_citus(
        "citus_available_but_not_created_apply_creates_the_extension_and_converges",
    ) {
        return;
    }
    let p = project();
    let tables = p.tables_in(&["public"]);
    let sums = p.checksums(&tables);
    let keys = p.foreign_keys(&tables);
    let dump = p.schema_dump();

    let mut cmd = p.cmd();
    cmd.args(["plan"]);
    let r = run(cmd).expect(0);
    assert!(
        r.stdout
            .contains("Citus is available but not created in this database (apply creates it)"),
        "{}",
        r.stdout
    );
    let mut cmd = p.cmd();
    cmd.args(["apply", "--dry-run"]);
    let dry = run(cmd).expect(0);
    let lines: Vec<&str> = dry.stdout.lines().collect();
    assert_eq!(
        lines.get(1),
        Some(&"CREATE EXTENSION IF NOT EXISTS citus;"),
        "{}",
        dry.stdout
    );
    assert!(!citus_created(&p), "--dry-run created the extension");
    assert_eq!(p.schema_dump(), dump);

    let mut cmd = p.cmd();
    cmd.args(["apply"]);
    let r = run(cmd).expect(0);
    assert!(
        r.stdout.contains("created the citus extension"),
        "{}",
        r.all()
    );
    assert!(citus_created(&p));
    let citus = p.citus_tables();
    assert_eq!(citus.len(), 4, "{citus:#?}");
    assert_eq!(citus["public.countries"].repmodel, "t");
    for t in ["public.tenants", "public.users", "public.notes"] {
        assert_eq!(citus[t].method, "h", "{t}");
        assert_eq!(citus[t].column.as_deref(), Some("tenant"), "{t}");
        assert_eq!(
            citus[t].colocation, citus["public.tenants"].colocation,
            "{t}"
        );
    }
    assert_eq!(p.checksums(&tables), sums);
    assert_eq!(p.foreign_keys(&tables), keys);
    assert_eq!(p.coordinator_leftovers(), vec![]);
    let mut cmd = p.cmd();
    cmd.args(["check"]);
    run(cmd).expect(0);
}

/// `apply --dry-run --format sql` is a script: run statement by statement as a migration runner
/// would, it converges the database exactly as apply does (before, `--format sql` was refused).
/// Without --dry-run the format is refused before connecting.
#[test]
fn citus_apply_dry_run_format_sql_is_a_script_that_converges() {
    if skip_without_citus("citus_apply_dry_run_format_sql_is_a_script_that_converges") {
        return;
    }
    let p = project();
    let tables = p.tables_in(&["public"]);
    let sums = p.checksums(&tables);
    let keys = p.foreign_keys(&tables);

    let mut cmd = p.cmd();
    cmd.args(["apply", "--format", "sql"]);
    let r = run(cmd).expect(2);
    assert!(r.only_error().contains("needs --dry-run"), "{}", r.stderr);
    assert!(!citus_created(&p));

    let mut cmd = p.cmd();
    cmd.args(["apply", "--dry-run", "--format", "sql"]);
    let script = run(cmd).expect(0).stdout;
    assert!(
        script.starts_with("-- generated by colocate apply --dry-run --format sql\n"),
        "{script}"
    );
    assert!(
        script.contains("-- step 1: ") && script.contains("CREATE EXTENSION IF NOT EXISTS citus;"),
        "{script}"
    );
    assert!(!citus_created(&p), "--dry-run created the extension");

    let mut c = p.db.connect();
    for s in colocate_core::split_statements(&script).unwrap() {
        c.batch_execute(&s.sql)
            .unwrap_or_else(|e| panic!("{}: {e}", s.sql));
    }
    assert_eq!(p.citus_tables().len(), 4);
    assert_eq!(p.checksums(&tables), sums);
    assert_eq!(p.foreign_keys(&tables), keys);
    let mut cmd = p.cmd();
    cmd.args(["check"]);
    run(cmd).expect(0);
    // Converged: the script apply would run now is empty.
    let mut cmd = p.cmd();
    cmd.args(["apply", "--dry-run", "--format", "sql"]);
    let again = run(cmd).expect(0).stdout;
    assert!(again.contains("-- nothing to apply"), "{again}");
}

/// The ordinary laptop: the Citus package installed, the server not configured to preload it.
/// `CREATE EXTENSION citus` fails there (`Citus can only be loaded via shared_preload_libraries`),
/// so the chain treats the server as plain PostgreSQL, as promised, and every command says why
/// and how to enable Citus (before, the chain's first Citus step failed with exit 2).
#[test]
fn citus_installed_but_not_preloaded_is_plain_postgres_and_says_how_to_enable_it() {
    if skip_without_citus(
        "citus_installed_but_not_preloaded_is_plain_postgres_and_says_how_to_enable_it",
    ) {
        return;
    }
    let server = colocate_testkit::Server::without_preload();
    let p = Project::new();
    let url = server.url().to_string();
    let mut c = colocate_testkit::connect(&url);
    assert_eq!(
        c.query_one(
            "SELECT count(*) FROM pg_available_extensions WHERE name = 'citus'",
            &[]
        )
        .unwrap()
        .get::<_, i64>(0),
        1,
        "the package is installed"
    );
    std::fs::write(p.root().join("colocate.toml"), CONFIG).unwrap();
    p.write(
        "m",
        "20240101000000_schema.sql",
        &format!("-- migrate:up\n{SCHEMA}\n-- migrate:down\nDROP TABLE notes, users, tenants, countries;\n"),
    );
    p.write(
        "m",
        "20240102000000_citus.toml",
        "[citus]\nextension = true\n",
    );
    p.write(
        "m",
        "20240103000000_reference.toml",
        "[reference]\ntables = [\"countries\"]\n",
    );
    p.write(
        "m",
        "20240104000000_root.toml",
        "[distribute]\ncolumn = \"tenant\"\ntables = [\"tenants\"]\n",
    );
    let dir = p.root().join("m").display().to_string();
    let note = "add citus to shared_preload_libraries";

    let r = colocate_at(&p, &url, &["--dir", &dir, "migrate"]).expect(0);
    assert!(r.stdout.contains(note), "{}", r.all());
    assert_eq!(
        c.query_one(
            "SELECT count(*) FROM pg_extension WHERE extname = 'citus'",
            &[]
        )
        .unwrap()
        .get::<_, i64>(0),
        0
    );
    let r = colocate_at(&p, &url, &["plan"]).expect(0);
    assert!(r.stdout.contains(note), "{}", r.all());
    let r = colocate_at(&p, &url, &["apply"]).expect(0);
    assert!(r.stdout.contains("nothing to apply"), "{}", r.all());
    assert!(r.stdout.contains(note), "{}", r.all());
    let r = colocate_at(&p, &url, &["check"]).expect(0);
    assert!(r.stdout.contains(note), "{}", r.all());
    let r = colocate_at(
        &p,
        &url,
        &["check", "--require-citus", "--format", "github"],
    )
    .expect(1);
    assert!(r.stdout.starts_with("::error "), "{}", r.all());
    assert!(r.stdout.contains(note), "{}", r.all());
    // Generated files (planned where Citus runs) are no-ops here too, saying why.
    p.db.connect().batch_execute(SCHEMA).expect("schema loads");
    let gen = p.root().join("gen").display().to_string();
    let mut cmd = p.cmd();
    cmd.args(["generate", "--format", "sql", "--out", &gen]);
    run(cmd).expect(0);
    let r = colocate_at(&p, &url, &["--dir", &dir, "--dir", &gen, "migrate"]).expect(0);
    assert!(r.stdout.contains("applied"), "{}", r.all());
    let r = colocate_at(
        &p,
        &url,
        &["--dir", &dir, "--dir", &gen, "status", "--check"],
    )
    .expect(0);
    assert!(r.stdout.contains("0 pending"), "{}", r.all());
    assert_eq!(
        c.query_one(
            "SELECT count(*) FROM pg_extension WHERE extname = 'citus'",
            &[]
        )
        .unwrap()
        .get::<_, i64>(0),
        0
    );
    // And back: the chain rolls back on the same server.
    colocate_at(
        &p,
        &url,
        &[
            "--dir", &dir, "--dir", &gen, "rollback", "--to", "0", "--yes",
        ],
    )
    .expect(0);
    assert_eq!(
        c.query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' \
             AND tablename NOT LIKE 'colocate\\_%'",
            &[]
        )
        .unwrap()
        .get::<_, i64>(0),
        0
    );
}
