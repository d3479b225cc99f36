//! The integrity closure through the binary, on fixtures/closure-schema: `plan` says which table
//! holds which back; `apply --skip-blocked` (single node, and a coordinator with two workers)
//! converts what is free and leaves every table that waits for a blocked one, so no foreign key
//! leads from a table that is not distributed into a distributed one, every such key stays
//! enforced, and `check` reports none; apply's summary warns about keys that did not hold before
//! it and then never says the database matches the plan.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;

use colocate_testkit::skip_without_citus;
use common::Project;
use serde_json::Value;

fn fixture(file: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/closure-schema")
        .join(file);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn project() -> Project {
    let p = Project::new();
    p.db.connect()
        .batch_execute(&fixture("schema.sql"))
        .expect("schema loads");
    std::fs::write(p.root().join("colocate.toml"), fixture("colocate.toml")).unwrap();
    p
}

/// What the plan leaves plain, by table: the blocked tables and those waiting for them.
const LEFT: &[(&str, &str)] = &[
    ("api_keys", "local-references-distributed"),
    ("api_scopes", "referenced-by-blocked-table"),
    ("import_batches", "referenced-by-blocked-table"),
    ("import_errors", "references-blocked-table"),
    ("import_rows", "has-triggers"),
    ("token_kinds", "referenced-by-blocked-table"),
    ("tokens", "key-missing-distribution-column"),
];

fn left() -> BTreeSet<(String, String)> {
    LEFT.iter()
        .map(|(t, c)| (t.to_string(), c.to_string()))
        .collect()
}

/// `check`'s drift as (table, code).
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

/// `schema.name` of the hash-distributed and of the reference tables.
fn placed(p: &Project) -> (Vec<String>, Vec<String>) {
    let t = p.citus_tables();
    let of = |m: &str| -> Vec<String> {
        t.iter()
            .filter(|(_, c)| c.method == m)
            .map(|(n, _)| n.clone())
            .collect()
    };
    (of("h"), of("n"))
}

#[test]
fn plan_says_which_table_holds_which_back() {
    let p = project();
    let r = p.colocate(&[], &["plan"]).expect(1);
    let blocked: Vec<&str> = r
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("BLOCKED"))
        .take_while(|l| !l.is_empty())
        .collect();
    let row = |t: &str| {
        blocked
            .iter()
            .find(|l| l.trim_start().starts_with(&format!("public.{t} ")))
            .unwrap_or_else(|| panic!("{t} not in BLOCKED:\n{}", r.stdout))
            .split_whitespace()
            .collect::<Vec<&str>>()
    };
    assert!(blocked[1].contains("WAITS FOR"), "{}", r.stdout);
    assert_eq!(
        row("import_batches")[3..],
        ["referenced-by-blocked-table", "public.import_rows"]
    );
    assert_eq!(
        row("import_errors")[3..],
        ["references-blocked-table", "public.import_rows"]
    );
    assert_eq!(row("import_rows")[3..], ["has-triggers"]);
    assert!(
        r.stdout.contains("[referenced-by-blocked-table] public.api_scopes is referenced by public.api_keys (api_keys_tenant_scope_id_fkey), which stays plain because it is blocked (local-references-distributed): converting public.api_scopes would leave that key checking only the coordinator's shell; it converts together with public.api_keys"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("    what clears it:\n      -- fix the blockers of public.tokens first\n"),
        "{}",
        r.stdout
    );

    let r = p.colocate(&[], &["plan", "--format", "json"]).expect(1);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let f = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["table"]["name"] == "token_kinds")
        .unwrap();
    assert_eq!(f["code"], "referenced-by-blocked-table");
    assert_eq!(f["severity"], "blocker");
    assert_eq!(f["waits_for"]["name"], "tokens");
}

/// `apply --skip-blocked`: the free tables convert, the waiting ones stay plain with the blocked
/// ones, and their keys among themselves stay enforced.
fn skip_blocked(p: &Project) {
    let tables = p.tables_in(&["public"]);
    let sums = p.checksums(&tables);
    let keys = p.foreign_keys(&tables);

    // Without --skip-blocked: refused, naming every table left, the waiting ones included.
    let r = p.colocate(&[], &["apply"]).expect(2);
    assert!(
        r.error_line().contains("7 blockers in the plan"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("[referenced-by-blocked-table] public.import_batches is referenced by public.import_rows"),
        "{}",
        r.stderr
    );
    assert!(p.citus_tables().is_empty());

    let r = p.colocate(&[], &["apply", "--skip-blocked"]).expect(0);
    assert!(
        r.stdout.contains("foreign keys present and enforced"),
        "{}",
        r.all()
    );
    assert!(
        r.stderr
            .contains("left as they are (--skip-blocked): 7 findings"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("warning:"), "{}", r.stderr);
    let (distributed, reference) = placed(p);
    assert_eq!(
        distributed,
        [
            "public.events",
            "public.invoices",
            "public.tenants",
            "public.users"
        ]
    );
    assert_eq!(reference, ["public.countries"]);
    assert_eq!(p.keys_into_distributed(), Vec::<String>::new());
    assert_eq!(drift(p), left(), "no foreign-key-into-distributed");
    assert_eq!(p.checksums(&tables), sums, "every row kept");
    assert_eq!(p.foreign_keys(&tables), keys, "every key kept");

    // The keys into the tables that waited still check every row: deleting a referenced row
    // is refused, as on plain PostgreSQL (converted alone, those tables would have let it pass).
    let mut c = p.db.connect();
    for t in ["import_batches", "api_scopes", "token_kinds"] {
        let e = c.batch_execute(&format!("DELETE FROM {t}")).expect_err(t);
        assert_eq!(
            e.code(),
            Some(&postgres::error::SqlState::FOREIGN_KEY_VIOLATION),
            "{t}: {e}"
        );
    }

    // Again: nothing to do, and no claim that the database matches the plan.
    let r = p.colocate(&[], &["apply", "--skip-blocked"]).expect(0);
    assert!(
        r.stdout
            .contains("nothing to apply: 7 blocked tables stay as they are"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("matches the plan"), "{}", r.stdout);
}

#[test]
fn citus_single_node_apply_skip_blocked_leaves_no_key_into_a_distributed_table() {
    if skip_without_citus(
        "citus_single_node_apply_skip_blocked_leaves_no_key_into_a_distributed_table",
    ) {
        return;
    }
    let p = project();
    p.db.citus_single_node();
    skip_blocked(&p);
}

#[test]
fn citus_workers_apply_skip_blocked_leaves_no_key_into_a_distributed_table() {
    if skip_without_citus("citus_workers_apply_skip_blocked_leaves_no_key_into_a_distributed_table")
    {
        return;
    }
    let p = project();
    p.db.citus_with_workers();
    skip_blocked(&p);
}

/// Keys that did not hold before a run are warnings in its summary (and in JSON), which then
/// never says that the database matches the plan; a converted table that had such a key into
/// it is not held back (it was distributed already).
#[test]
fn citus_apply_warns_about_keys_that_did_not_hold_before_it() {
    if skip_without_citus("citus_apply_warns_about_keys_that_did_not_hold_before_it") {
        return;
    }
    let p = Project::new();
    std::fs::write(
        p.root().join("colocate.toml"),
        "[distribution]\ncolumns = [\"tenant\"]\nshard_count = 4\n",
    )
    .unwrap();
    let mut c = p.db.citus_single_node();
    c.batch_execute(
        "CREATE TABLE tenants (tenant uuid PRIMARY KEY);
         CREATE TABLE users (tenant uuid NOT NULL REFERENCES tenants, id bigint NOT NULL,
             PRIMARY KEY (tenant, id));
         CREATE TABLE notes (tenant uuid NOT NULL, id bigint NOT NULL, user_id bigint NOT NULL,
             PRIMARY KEY (tenant, id));
         ALTER TABLE notes ADD CONSTRAINT notes_user_fkey FOREIGN KEY (tenant, user_id)
             REFERENCES users (tenant, id) NOT VALID;
         INSERT INTO tenants VALUES ('00000000-0000-4000-8000-000000000001');
         INSERT INTO users VALUES ('00000000-0000-4000-8000-000000000001', 1);",
    )
    .unwrap();
    let r = p.colocate(&[], &["apply"]).expect(0);
    assert!(
        r.stdout
            .contains("foreign keys present (1 not enforced, see the warnings)"),
        "{}",
        r.all()
    );
    assert!(
        r.stderr
            .contains("warning: foreign key notes_user_fkey on public.notes is NOT VALID"),
        "{}",
        r.stderr
    );
    let r = p.colocate(&[], &["apply"]).expect(0);
    assert_eq!(
        r.stdout,
        "nothing to apply: 1 foreign key is not enforced (see the warnings; `colocate check` fails on it); no DDL was run\n"
    );
    c.batch_execute("ALTER TABLE notes VALIDATE CONSTRAINT notes_user_fkey")
        .unwrap();

    // A plain table created after the move with a key into a distributed table (Citus accepts
    // it), and a trigger: blocked, and its key checks only users' shell.
    c.batch_execute(
        "CREATE TABLE audit (tenant uuid NOT NULL, id bigint NOT NULL, user_id bigint NOT NULL,
             PRIMARY KEY (tenant, id),
             CONSTRAINT audit_user_fkey FOREIGN KEY (tenant, user_id) REFERENCES users (tenant, id));
         CREATE FUNCTION audit_stamp() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
         CREATE TRIGGER audit_stamp BEFORE INSERT ON audit FOR EACH ROW EXECUTE FUNCTION audit_stamp();",
    )
    .unwrap();
    let r = p.colocate(&[], &["apply", "--skip-blocked"]).expect(0);
    assert!(
        r.stdout
            .contains("nothing to apply: 1 blocked table stays as it is"),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr.contains("warning: foreign key audit_user_fkey on public.audit leads from a table that is not distributed into a distributed one"),
        "{}",
        r.stderr
    );
    let r = p
        .colocate(&[], &["apply", "--skip-blocked", "--format", "json"])
        .expect(0);
    let v: Value = serde_json::from_str(r.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(
        v["unenforced"],
        serde_json::json!([{
            "table": {"schema": "public", "name": "audit"},
            "key": "audit_user_fkey",
            "state": "into-distributed"
        }])
    );
    assert_eq!(
        drift(&p),
        BTreeSet::from([
            (
                "audit".to_string(),
                "foreign-key-into-distributed".to_string()
            ),
            ("audit".to_string(), "has-triggers".to_string()),
        ])
    );

    // Once the trigger is gone, apply converts audit: the key holds again.
    c.batch_execute("DROP TRIGGER audit_stamp ON audit")
        .unwrap();
    let r = p.colocate(&[], &["apply"]).expect(0);
    assert!(
        r.stdout.contains("foreign keys present and enforced"),
        "{}",
        r.all()
    );
    assert!(!r.stderr.contains("warning:"), "{}", r.stderr);
    assert_eq!(p.keys_into_distributed(), Vec::<String>::new());
    let r = p.colocate(&[], &["check"]).expect(0);
    assert!(r.stdout.contains("converged"), "{}", r.stdout);
}
