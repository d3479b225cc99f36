//! `baseline`: adopt colocate on a database another runner migrated, marking what it applied
//! without running it, so the next `migrate` runs only the rest.

mod common;

use common::{create_table, migration, Project};

const X: &str = "20240101000000_create_x.sql";
const Y: &str = "20240102000000_create_y.sql";
const Z: &str = "20240103000000_create_z.sql";

/// x and y were applied by knex long ago; their SQL fails if it ever runs again. z is new.
fn adopted(p: &Project) {
    p.write(
        "m",
        X,
        &migration("INSERT INTO table_knex_made VALUES (1);", Some("SELECT 1;")),
    );
    p.write(
        "m",
        Y,
        &migration("SELECT * FROM another_table_knex_made;", Some("SELECT 1;")),
    );
    p.write("m", Z, &create_table("z"));
}

fn knex_table(p: &Project, table: &str, names: &[&str]) {
    let mut c = p.db.connect();
    c.batch_execute(&format!(
        "CREATE TABLE {table} (id serial PRIMARY KEY, name varchar(255), batch int, migration_time timestamptz DEFAULT now())"
    ))
    .unwrap();
    for n in names {
        c.execute(
            &format!("INSERT INTO {table} (name, batch) VALUES ($1, 1)"),
            &[n],
        )
        .unwrap();
    }
}

#[test]
fn from_table_marks_known_names_and_warns_about_the_rest() {
    let p = Project::new();
    adopted(&p);
    knex_table(
        &p,
        "knex_migrations",
        &[
            "20240101000000_create_x.js",
            "20240102000000_create_y.js",
            "20231201000000_legacy_thing.js",
        ],
    );

    let r = p
        .colocate(&["m"], &["baseline", "--from-table", "knex_migrations"])
        .expect(0);
    assert!(
        r.stdout.contains(&format!(
            "marked applied  {}",
            p.root().join("m").join(X).display()
        )),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains(Y), "{}", r.stdout);
    assert!(!r.stdout.contains(Z), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("2 migrations marked applied as batch 1, 0 already recorded"),
        "{}",
        r.stdout
    );
    assert!(r.stderr.starts_with("warning: "), "{}", r.stderr);
    assert!(
        r.stderr.contains("20231201000000_legacy_thing.js"),
        "{}",
        r.stderr
    );
    p.settings().bind(|| {
        insta::assert_snapshot!("baseline_from_knex", r.transcript());
    });

    // Recorded as applied, with the files' checksums, and not run.
    let rows = p.history();
    assert_eq!(rows.len(), 2);
    for (row, file) in rows.iter().zip([X, Y]) {
        assert_eq!(format!("{}_{}.sql", row.version, row.name), file);
        assert_eq!(row.state, "applied");
        assert_eq!(row.batch, 1);
        let bytes = std::fs::read(p.root().join("m").join(file)).unwrap();
        assert_eq!(row.checksum, p.sha256_hex(&bytes));
    }
    assert_eq!(
        p.table_names(),
        ["public.colocate_migrations", "public.knex_migrations"]
    );
    let s = p
        .colocate(&["m"], &["status", "--format", "json"])
        .expect(0);
    let v: serde_json::Value = serde_json::from_str(&s.stdout).unwrap();
    assert_eq!(v["counts"]["applied"], 2);
    assert_eq!(v["counts"]["pending"], 1);

    // migrate runs only the rest (running x or y would fail).
    let r = p.colocate(&["m"], &["migrate"]).expect(0);
    assert!(r.stdout.contains(Z), "{}", r.stdout);
    assert!(r.stdout.contains("batch 2: 1 migration"), "{}", r.stdout);
    assert!(p.table_exists("z"));
    assert_eq!(
        p.versions(),
        ["20240101000000", "20240102000000", "20240103000000"]
    );

    // A second baseline changes nothing.
    let r = p
        .colocate(
            &["m"],
            &[
                "baseline",
                "--from-table",
                "knex_migrations",
                "--format",
                "json",
            ],
        )
        .expect(0);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["command"], "baseline");
    assert_eq!(v["marked"].as_array().unwrap().len(), 0);
    assert_eq!(v["already_recorded"], 2);
    assert_eq!(
        v["unmatched"],
        serde_json::json!(["20231201000000_legacy_thing.js"])
    );
    assert_eq!(p.history().len(), 3);
}

#[test]
fn from_table_with_a_schema_and_another_column() {
    let p = Project::new();
    adopted(&p);
    let mut c = p.db.connect();
    c.batch_execute(
        "CREATE SCHEMA legacy;\n\
         CREATE TABLE legacy.schema_migrations (version varchar(128) PRIMARY KEY);\n\
         INSERT INTO legacy.schema_migrations VALUES ('20240101000000');",
    )
    .unwrap();
    let r = p
        .colocate(
            &["m"],
            &[
                "baseline",
                "--from-table",
                "legacy.schema_migrations",
                "--column",
                "version",
            ],
        )
        .expect(0);
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    assert_eq!(p.versions(), ["20240101000000"]);
    // Only x was marked: migrate runs y, whose SQL fails.
    let r = p.colocate(&["m"], &["migrate"]).expect(2);
    assert!(r.error_line().contains(Y), "{}", r.stderr);
}

#[test]
fn from_a_missing_table_or_column_is_refused_and_creates_nothing() {
    let p = Project::new();
    adopted(&p);
    let r = p
        .colocate(&["m"], &["baseline", "--from-table", "knex_migrations"])
        .expect(2);
    assert!(r.only_error().contains("knex_migrations"), "{}", r.stderr);
    assert_eq!(p.user_tables(), 0);

    knex_table(&p, "knex_migrations", &["20240101000000_create_x.js"]);
    let r = p
        .colocate(
            &["m"],
            &[
                "baseline",
                "--from-table",
                "knex_migrations",
                "--column",
                "filename",
            ],
        )
        .expect(2);
    let err = r.only_error();
    assert!(err.contains("filename"), "{err}");
    assert!(err.contains("knex_migrations"), "{err}");
    assert_eq!(p.table_names(), ["public.knex_migrations"]);
}

#[test]
fn to_version_marks_everything_up_to_it() {
    let p = Project::new();
    adopted(&p);
    let r = p
        .colocate(&["m"], &["baseline", "--to", "20240102000000"])
        .expect(0);
    assert!(
        r.stdout
            .contains("2 migrations marked applied as batch 1, 0 already recorded"),
        "{}",
        r.stdout
    );
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    assert_eq!(p.versions(), ["20240101000000", "20240102000000"]);
    assert_eq!(p.table_names(), ["public.colocate_migrations"]);

    let r = p.colocate(&["m"], &["migrate"]).expect(0);
    assert!(r.stdout.contains("1 migration applied"), "{}", r.stdout);
    assert!(p.table_exists("z"));
}

#[test]
fn to_an_unknown_version_is_refused_and_creates_nothing() {
    let p = Project::new();
    adopted(&p);
    let r = p
        .colocate(&["m"], &["baseline", "--to", "20240102000001"])
        .expect(2);
    assert!(r.only_error().contains("20240102000001"), "{}", r.stderr);
    assert!(r.hint_line().is_some(), "{}", r.stderr);
    assert_eq!(p.user_tables(), 0);
}

#[test]
fn baseline_needs_a_source() {
    let p = Project::new();
    adopted(&p);
    let r = p.colocate(&["m"], &["baseline"]).expect(2);
    assert!(r.stderr.contains("--from-table"), "{}", r.stderr);
    assert_eq!(p.user_tables(), 0);
}
