//! `rollback`: confirmation, the last batch in reverse order, `--steps`, `--to`, `--to 0`, the
//! refusal when a down part is missing, and `--dry-run`.

mod common;

use common::{migration, Project};

const A: &str = "20240101000000";
const B: &str = "20240102000000";
const C: &str = "20240103000000";
const D: &str = "20240104000000";

/// Batch 1: a, b. Batch 2: c (a table), d (rows in it). Every down part but a's appends its
/// letter to `trail`, so the order they ran in can be read back; d's down deletes from `c`, so
/// it would fail if c's down had dropped the table first.
fn two_batches(p: &Project) {
    p.write(
        "m",
        &format!("{A}_a.sql"),
        &migration(
            "CREATE TABLE trail (id serial PRIMARY KEY, v text NOT NULL);\nCREATE TABLE a (id int);",
            Some("DROP TABLE a;\nDROP TABLE trail;"),
        ),
    );
    p.write(
        "m",
        &format!("{B}_b.sql"),
        &migration(
            "CREATE TABLE b (id int);",
            Some("INSERT INTO trail (v) VALUES ('b');\nDROP TABLE b;"),
        ),
    );
    p.write(
        "m",
        &format!("{C}_c.sql"),
        &migration(
            "CREATE TABLE c (id int);",
            Some("INSERT INTO trail (v) VALUES ('c');\nDROP TABLE c;"),
        ),
    );
    p.write(
        "m",
        &format!("{D}_d.sql"),
        &migration(
            "INSERT INTO c VALUES (1), (2);",
            Some("INSERT INTO trail (v) VALUES ('d');\nDELETE FROM c WHERE id IN (1, 2);"),
        ),
    );
    p.colocate(&["m"], &["migrate", "--target", B]).expect(0);
    p.colocate(&["m"], &["migrate"]).expect(0);
    let batches: Vec<(String, i32)> = p
        .history()
        .into_iter()
        .map(|r| (r.version, r.batch))
        .collect();
    assert_eq!(
        batches,
        [(A.into(), 1), (B.into(), 1), (C.into(), 2), (D.into(), 2)]
    );
}

fn trail(p: &Project) -> String {
    let mut c = p.db.connect();
    c.query_one(
        "SELECT coalesce(string_agg(v, ',' ORDER BY id), '') FROM trail",
        &[],
    )
    .expect("read trail")
    .get(0)
}

#[test]
fn without_yes_off_a_terminal_nothing_is_rolled_back() {
    let p = Project::new();
    two_batches(&p);
    let before = p.history();
    let mut cmd = p.cmd();
    cmd.arg("--dir")
        .arg(p.root().join("m"))
        .arg("rollback")
        // A "y" on a pipe is no confirmation: only a terminal can confirm.
        .write_stdin("y\n");
    let r = common::run(cmd).expect(2);
    let err = r.only_error();
    assert!(err.contains("without confirmation"), "{err}");
    assert!(err.contains(&format!("{D}_d")), "{err}");
    assert!(err.contains(&format!("{C}_c")), "{err}");
    assert!(
        r.hint_line().unwrap_or_default().contains("--yes"),
        "{}",
        r.stderr
    );
    p.settings().bind(|| {
        insta::assert_snapshot!("rollback_needs_yes", r.transcript());
    });
    assert_eq!(p.history(), before);
    assert_eq!(p.count("SELECT count(*) FROM c"), 2);
    assert_eq!(trail(&p), "");
}

#[test]
fn yes_undoes_the_last_batch_newest_first() {
    let p = Project::new();
    two_batches(&p);
    let r = p.colocate(&["m"], &["rollback", "--yes"]).expect(0);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", r.stdout);
    assert!(lines[0].starts_with("reverted  ") && lines[0].contains(&format!("{D}_d.sql")));
    assert!(lines[1].starts_with("reverted  ") && lines[1].contains(&format!("{C}_c.sql")));
    assert_eq!(lines[2], "2 migrations rolled back");
    p.settings().bind(|| {
        insta::assert_snapshot!("rollback_last_batch", r.stdout);
    });

    assert_eq!(trail(&p), "d,c");
    assert!(!p.table_exists("c"));
    assert!(p.table_exists("a") && p.table_exists("b"));
    assert_eq!(p.versions(), [A, B]);

    // The next rollback takes batch 1.
    p.colocate(&["m"], &["rollback", "--yes"]).expect(0);
    assert_eq!(p.versions(), Vec::<String>::new());
    assert_eq!(p.table_names(), ["public.colocate_migrations"]);

    // And then there is nothing left.
    let r = p.colocate(&["m"], &["rollback", "--yes"]).expect(0);
    assert_eq!(r.stdout.trim(), "nothing to roll back");
}

#[test]
fn steps_1_undoes_only_the_newest() {
    let p = Project::new();
    two_batches(&p);
    let r = p
        .colocate(&["m"], &["rollback", "--yes", "--steps", "1"])
        .expect(0);
    assert!(r.stdout.contains("1 migration rolled back"), "{}", r.stdout);
    assert_eq!(trail(&p), "d");
    // d's rows are gone, c's table stays.
    assert!(p.table_exists("c"));
    assert_eq!(p.count("SELECT count(*) FROM c"), 0);
    assert_eq!(p.versions(), [A, B, C]);

    // --steps crosses batches.
    p.colocate(&["m"], &["rollback", "--yes", "--steps", "2"])
        .expect(0);
    assert_eq!(trail(&p), "d,c,b");
    assert_eq!(p.versions(), [A]);
}

#[test]
fn to_version_keeps_that_version() {
    let p = Project::new();
    two_batches(&p);
    let r = p
        .colocate(&["m"], &["rollback", "--yes", "--to", A])
        .expect(0);
    assert!(
        r.stdout.contains("3 migrations rolled back"),
        "{}",
        r.stdout
    );
    assert_eq!(trail(&p), "d,c,b");
    assert_eq!(p.versions(), [A]);
    assert!(p.table_exists("a"));
    assert!(!p.table_exists("b") && !p.table_exists("c"));

    // A version that is neither applied nor a file is refused.
    let r = p
        .colocate(&["m"], &["rollback", "--yes", "--to", "20230101000000"])
        .expect(2);
    assert!(r.error_line().contains("20230101000000"), "{}", r.stderr);
    assert_eq!(p.versions(), [A]);

    // Applying again after a rollback works (the down parts really undid the up parts).
    p.colocate(&["m"], &["migrate"]).expect(0);
    assert_eq!(p.versions(), [A, B, C, D]);
    assert_eq!(p.count("SELECT count(*) FROM c"), 2);
}

#[test]
fn to_0_undoes_everything() {
    let p = Project::new();
    two_batches(&p);
    let r = p
        .colocate(
            &["m"],
            &["rollback", "--yes", "--to", "0", "--format", "json"],
        )
        .expect(0);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["version"], 1);
    assert_eq!(v["command"], "rollback");
    assert_eq!(v["dry_run"], false);
    let order: Vec<&str> = v["reverted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["version"].as_str().unwrap())
        .collect();
    assert_eq!(order, [D, C, B, A]);
    assert_eq!(p.versions(), Vec::<String>::new());
    assert_eq!(p.table_names(), ["public.colocate_migrations"]);
}

#[test]
fn a_missing_down_part_is_refused_before_anything_runs() {
    let p = Project::new();
    two_batches(&p);
    // c loses its down part; d (newer, same batch) would be undone first if the check were late.
    p.write(
        "m",
        &format!("{C}_c.sql"),
        &migration("CREATE TABLE c (id int);", None),
    );
    let before = p.history();
    let r = p.colocate(&["m"], &["rollback", "--yes"]).expect(2);
    let err = r.only_error();
    assert!(err.contains(&format!("{C}_c.sql")), "{err}");
    assert!(err.contains("no down part"), "{err}");
    assert!(!err.contains(&format!("{D}_d.sql")), "{err}");
    assert!(
        r.hint_line().unwrap_or_default().contains("migrate:down"),
        "{}",
        r.stderr
    );
    p.settings().bind(|| {
        insta::assert_snapshot!("rollback_no_down", r.transcript());
    });
    assert_eq!(p.history(), before);
    assert_eq!(trail(&p), "");
    assert_eq!(p.count("SELECT count(*) FROM c"), 2);

    // The dry run refuses the same way.
    p.colocate(&["m"], &["rollback", "--dry-run"]).expect(2);
    // --steps 1 only needs d, which has a down part.
    p.colocate(&["m"], &["rollback", "--yes", "--steps", "1"])
        .expect(0);
    assert_eq!(trail(&p), "d");
}

#[test]
fn dry_run_shows_the_down_sql_and_changes_nothing() {
    let p = Project::new();
    two_batches(&p);
    let before = p.history();
    // No --yes needed: nothing is changed.
    let r = p.colocate(&["m"], &["rollback", "--dry-run"]).expect(0);
    assert!(
        r.stdout
            .starts_with("would roll back 2 migrations (dry run, nothing changed):"),
        "{}",
        r.stdout
    );
    let d = r
        .stdout
        .find("DELETE FROM c WHERE id IN (1, 2);")
        .expect("d's down");
    let c = r.stdout.find("DROP TABLE c;").expect("c's down");
    assert!(d < c, "newest first:\n{}", r.stdout);
    assert!(!r.stdout.contains("DROP TABLE b"), "{}", r.stdout);
    p.settings().bind(|| {
        insta::assert_snapshot!("rollback_dry_run", r.stdout);
    });
    assert_eq!(p.history(), before);
    assert_eq!(trail(&p), "");
    assert_eq!(p.count("SELECT count(*) FROM c"), 2);

    let r = p
        .colocate(&["m"], &["rollback", "--dry-run", "--to", "0"])
        .expect(0);
    assert!(r.stdout.contains("would roll back 4 migrations"));
    assert!(r.stdout.contains("DROP TABLE trail;"));
    assert_eq!(p.history(), before);
}

#[test]
fn steps_and_to_together_are_a_usage_error() {
    let p = Project::new();
    two_batches(&p);
    let before = p.history();
    let r = p
        .colocate(&["m"], &["rollback", "--yes", "--steps", "1", "--to", A])
        .expect(2);
    assert!(r.stderr.contains("cannot be used with"), "{}", r.stderr);
    assert_eq!(p.history(), before);
}
