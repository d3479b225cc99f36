//! Migrations that opt out of a transaction run statement by statement and record their progress:
//! a failure part way leaves a `partial` row, and the next run resumes after the statements that
//! already ran, as long as those are unchanged in the file.

mod common;

use common::{create_table, Project};

const FILE: &str = "20240102000000_fill_log.sql";

/// Four statements outside a transaction; the third refers to a table that does not exist.
fn body(first: &str, third: &str) -> String {
    format!(
        "-- migrate:up transaction:false\n\
         {first}\n\
         INSERT INTO log VALUES (1);\n\
         {third}\n\
         INSERT INTO log VALUES (3);\n\
         -- migrate:down transaction:false\n\
         DROP TABLE log;\n"
    )
}

const FIRST: &str = "CREATE TABLE log (n int NOT NULL);";
const BROKEN_THIRD: &str = "INSERT INTO nope VALUES (2);";
const FIXED_THIRD: &str = "INSERT INTO log VALUES (2);";

fn set_up(p: &Project) -> common::Run {
    p.write("m", "20240101000000_before.sql", &create_table("before_t"));
    p.write("m", FILE, &body(FIRST, BROKEN_THIRD));
    p.write("m", "20240103000000_after.sql", &create_table("after_t"));
    p.colocate(&["m"], &["migrate"]).expect(2)
}

fn log(p: &Project) -> Vec<i32> {
    let mut c = p.db.connect();
    c.query("SELECT n FROM log ORDER BY n", &[])
        .expect("read log")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[test]
fn failure_at_statement_3_of_4_is_recorded_as_partial() {
    let p = Project::new();
    let r = set_up(&p);
    let file = p.root().join("m").join(FILE);

    let err = r.error_line();
    assert!(
        err.starts_with(&format!("error: {}:4: ", file.display())),
        "{err}"
    );
    assert!(err.contains("statement 3 of 4"), "{err}");
    assert!(err.contains("SQLSTATE 42P01"), "{err}");
    assert!(
        r.hint_line()
            .unwrap_or_default()
            .contains("will not run twice"),
        "{}",
        r.stderr
    );
    p.settings().bind(|| {
        insta::assert_snapshot!("partial_failure", r.transcript());
    });

    // Statements 1 and 2 ran and stay; 3 and 4 did not; the later migration did not run.
    assert_eq!(log(&p), [1]);
    assert!(p.table_exists("before_t"));
    assert!(!p.table_exists("after_t"));
    let rows = p.history();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0].state, "applied");
    let partial = &rows[1];
    assert_eq!(partial.version, "20240102000000");
    assert_eq!(partial.state, "partial");
    assert_eq!(partial.progress, Some(2));
    assert!(
        partial
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("42P01"),
        "{partial:?}"
    );

    // status says how far it got, and --check fails on it.
    let s = p.colocate(&["m"], &["status", "--check"]).expect(1);
    let line = s
        .stdout
        .lines()
        .find(|l| l.contains("20240102000000"))
        .expect("status row");
    assert!(line.contains("partial (2/4 statements)"), "{line}");
    p.settings().bind(|| {
        insta::assert_snapshot!("partial_status", s.stdout);
    });
    let j = p
        .colocate(&["m"], &["status", "--format", "json"])
        .expect(0);
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(v["counts"]["partial"], 1);
    assert_eq!(v["counts"]["pending"], 1);
    assert_eq!(v["entries"][1]["status"], "partial");
    assert_eq!(v["entries"][1]["progress"], serde_json::json!([2, 4]));

    // Rolling back is refused while a migration stopped part way, and changes nothing.
    let before = p.history();
    let rb = p.colocate(&["m"], &["rollback", "--yes"]).expect(2);
    assert!(
        rb.error_line().contains("stopped part way"),
        "{}",
        rb.stderr
    );
    assert_eq!(p.history(), before);
    assert!(p.table_exists("before_t"));
}

#[test]
fn fixing_the_failed_statement_resumes_after_the_ones_that_ran() {
    let p = Project::new();
    set_up(&p);
    let file = p.write("m", FILE, &body(FIRST, FIXED_THIRD));

    // The dry run shows only what is left.
    let dry = p.colocate(&["m"], &["migrate", "--dry-run"]).expect(0);
    assert!(
        dry.stdout
            .contains("[outside a transaction] [resuming at statement 3]"),
        "{}",
        dry.stdout
    );
    assert!(dry.stdout.contains(FIXED_THIRD), "{}", dry.stdout);
    assert!(!dry.stdout.contains(FIRST), "{}", dry.stdout);
    assert_eq!(log(&p), [1]);

    let r = p.colocate(&["m"], &["-v", "migrate"]).expect(0);
    assert!(
        r.stderr
            .contains(&format!("[1/2] {FILE} (resuming at statement 3)")),
        "{}",
        r.stderr
    );
    assert!(r.stdout.contains("2 migrations applied"), "{}", r.stdout);

    // Statements 1 and 2 did not run again: one CREATE (no "already exists"), one row 1.
    assert_eq!(log(&p), [1, 2, 3]);
    assert!(p.table_exists("after_t"));

    let rows = p.history();
    assert_eq!(rows.len(), 3);
    let row = &rows[1];
    assert_eq!(row.state, "applied");
    assert_eq!(row.progress, None);
    assert_eq!(row.error, None);
    assert_eq!(
        row.checksum,
        p.sha256_hex(&std::fs::read(&file).unwrap()),
        "the checksum is that of the fixed file"
    );
    p.colocate(&["m"], &["status", "--check"]).expect(0);

    // And nothing is left to do.
    let again = p.colocate(&["m"], &["migrate"]).expect(0);
    assert!(
        again.stdout.contains("nothing to apply"),
        "{}",
        again.stdout
    );
    assert_eq!(log(&p), [1, 2, 3]);
}

#[test]
fn editing_a_statement_that_already_ran_is_refused() {
    let p = Project::new();
    set_up(&p);
    let before = p.history();
    p.write(
        "m",
        FILE,
        &body("CREATE TABLE log (n bigint NOT NULL);", FIXED_THIRD),
    );

    let r = p.colocate(&["m"], &["migrate"]).expect(2);
    let err = r.only_error();
    assert!(err.contains(FILE), "{err}");
    assert!(err.contains("stopped after 2 statements"), "{err}");
    assert!(err.contains("changed"), "{err}");
    assert!(
        r.hint_line()
            .unwrap_or_default()
            .contains("restore the statements that already ran"),
        "{}",
        r.stderr
    );
    p.settings().bind(|| {
        insta::assert_snapshot!("partial_prefix_changed", r.transcript());
    });

    // Nothing ran: same history, same rows, the table still as statement 1 first made it.
    assert_eq!(p.history(), before);
    assert_eq!(log(&p), [1]);
    assert!(!p.table_exists("after_t"));
    assert_eq!(
        p.count(
            "SELECT count(*) FROM information_schema.columns \
             WHERE table_name = 'log' AND column_name = 'n' AND data_type = 'integer'"
        ),
        1
    );

    // Putting statement 1 back lets it resume.
    p.write("m", FILE, &body(FIRST, FIXED_THIRD));
    p.colocate(&["m"], &["migrate"]).expect(0);
    assert_eq!(log(&p), [1, 2, 3]);
}

#[test]
fn turning_a_partial_migration_into_a_transactional_one_is_refused() {
    let p = Project::new();
    set_up(&p);
    let before = p.history();
    let text = body(FIRST, FIXED_THIRD).replace(" transaction:false", "");
    p.write("m", FILE, &text);
    let r = p.colocate(&["m"], &["migrate"]).expect(2);
    assert!(r.only_error().contains(FILE), "{}", r.stderr);
    assert_eq!(p.history(), before);
    assert_eq!(log(&p), [1]);
}
