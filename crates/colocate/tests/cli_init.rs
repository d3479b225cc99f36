//! `init`: a first, commented `colocate.toml` from the migration directories it finds and,
//! given a database, the root and tenant columns of its schema; it never writes over a file.

mod common;

use common::{create_table, Project};

/// Without a database: the directories holding migration files (not build output, not hidden
/// ones), relative to the file, and the default root and columns; the file works at once.
#[test]
fn init_finds_the_migration_directories_and_writes_a_config_that_works() {
    let p = Project::new();
    p.write(
        "server/migrations",
        "20240101000000_a.sql",
        &create_table("a"),
    );
    p.write(
        "ee/server/migrations",
        "20240102000000_b.sql",
        &create_table("b"),
    );
    p.write(
        "target/debug/junk",
        "20240103000000_c.sql",
        &create_table("c"),
    );
    p.write(".cache/m", "20240104000000_d.sql", &create_table("d"));
    p.write("docs", "README.md", "not a migration");
    let mut cmd = common::command();
    cmd.current_dir(p.root()).arg("init");
    let r = common::run(cmd).expect(0);
    assert!(
        r.stdout
            .contains("2 migration directories: ee/server/migrations, server/migrations"),
        "{}",
        r.stdout
    );
    let text = std::fs::read_to_string(p.root().join("colocate.toml")).unwrap();
    assert!(
        text.contains("migration_dirs = [\"ee/server/migrations\", \"server/migrations\"]\n"),
        "{text}"
    );
    assert!(text.contains("root = \"tenants\"\n"), "{text}");

    // The chain runs with it, from a sub-directory too.
    let r = p.colocate_in("server", &["status"]).expect(0);
    assert!(r.stdout.contains("0 applied, 2 pending"), "{}", r.stdout);

    // It never writes over a file, unless asked to.
    std::fs::write(p.root().join("colocate.toml"), "# mine\n").unwrap();
    let mut cmd = common::command();
    cmd.current_dir(p.root()).arg("init");
    let r = common::run(cmd).expect(2);
    assert!(
        r.only_error().contains("colocate.toml already exists"),
        "{}",
        r.stderr
    );
    assert_eq!(
        std::fs::read_to_string(p.root().join("colocate.toml")).unwrap(),
        "# mine\n"
    );
    let mut cmd = common::command();
    cmd.current_dir(p.root()).args(["init", "--force"]);
    common::run(cmd).expect(0);
    assert_ne!(
        std::fs::read_to_string(p.root().join("colocate.toml")).unwrap(),
        "# mine\n"
    );
}

/// Given a database: the root is the table the tenant keys point at, and the tenant columns are
/// those the tables have, quoted camelCase included.
#[test]
fn init_with_a_database_detects_the_root_and_the_tenant_columns() {
    let p = Project::new();
    p.db.connect()
        .batch_execute(
            r#"CREATE TABLE teams (id uuid PRIMARY KEY, name text);
               CREATE TABLE users ("teamId" uuid NOT NULL REFERENCES teams, id uuid, PRIMARY KEY ("teamId", id));
               CREATE TABLE documents ("teamId" uuid NOT NULL REFERENCES teams, id uuid, PRIMARY KEY ("teamId", id));
               CREATE TABLE countries (code text PRIMARY KEY);"#,
        )
        .unwrap();
    p.write("migrations", "20240101000000_a.sql", &create_table("a"));
    let mut cmd = p.cmd();
    cmd.arg("init");
    let r = common::run(cmd).expect(0);
    assert!(r.stdout.contains("root: public.teams"), "{}", r.stdout);
    assert!(r.stdout.contains("tenant columns: teamId"), "{}", r.stdout);
    let text = std::fs::read_to_string(p.root().join("colocate.toml")).unwrap();
    assert!(text.contains("root = \"teams\"\n"), "{text}");
    assert!(text.contains("columns = [\"teamId\"]\n"), "{text}");
    assert!(text.contains("(teamId in 2 tables)"), "{text}");
    // The plan reads it: the root and its children by "teamId".
    let mut cmd = p.cmd();
    cmd.args(["plan", "--format", "json"]);
    let r = common::run(cmd);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["root"]["name"], "teams", "{}", r.stdout);
    let users = v["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"]["name"] == "users")
        .unwrap();
    assert_eq!(users["column"], "teamId", "{users}");
}
