//! `plan` and `check` through the binary on a real server: plain PostgreSQL (no Citus extension
//! in the database), and Citus on a single node and on a coordinator with two workers, where a
//! partly distributed database is planned down to its remaining work and converged by running
//! exactly the statements `plan --format sql` prints.

mod common;

use colocate_testkit::skip_without_citus;
use common::{run, Project};
use serde_json::Value;

/// A small multi-tenant schema with every role, awkward names and a foreign-key cycle.
const SCHEMA: &str = r#"
CREATE SCHEMA "Billing Ops";
CREATE TABLE tenants (tenant uuid PRIMARY KEY, name text NOT NULL);
CREATE TABLE countries (code text PRIMARY KEY, name text NOT NULL);
CREATE TABLE users (tenant uuid NOT NULL REFERENCES tenants, user_id bigint NOT NULL,
    team_id bigint, country text REFERENCES countries, PRIMARY KEY (tenant, user_id));
CREATE TABLE teams (tenant uuid NOT NULL REFERENCES tenants, team_id bigint NOT NULL,
    lead_id bigint, PRIMARY KEY (tenant, team_id),
    FOREIGN KEY (tenant, lead_id) REFERENCES users (tenant, user_id));
ALTER TABLE users ADD CONSTRAINT users_team_fkey FOREIGN KEY (tenant, team_id) REFERENCES teams (tenant, team_id);
CREATE TABLE "Billing Ops"."Invoice Lines" ("Tenant" uuid NOT NULL REFERENCES tenants, line_id bigint NOT NULL,
    PRIMARY KEY ("Tenant", line_id));
CREATE TABLE email_messages (tenant_id uuid NOT NULL REFERENCES tenants (tenant), id bigint NOT NULL,
    PRIMARY KEY (tenant_id, id));
CREATE TABLE feature_flags (name text PRIMARY KEY, enabled boolean NOT NULL);
INSERT INTO tenants SELECT gen_random_uuid(), 't' || g FROM generate_series(1, 5) g;
INSERT INTO countries VALUES ('NZ', 'New Zealand'), ('FR', 'France');
INSERT INTO users SELECT tenant, 1, NULL, 'NZ' FROM tenants;
INSERT INTO teams SELECT tenant, 1, 1 FROM tenants;
UPDATE users SET team_id = 1;
INSERT INTO "Billing Ops"."Invoice Lines" SELECT tenant, g FROM tenants, generate_series(1, 3) g;
INSERT INTO email_messages SELECT tenant, 1 FROM tenants;
ANALYZE;
"#;

const CONFIG: &str = r#"
[distribution]
columns = ["tenant", "tenant_id", "Tenant"]
local = [{ table = "feature_flags", reason = "control plane" }]
"#;

fn project() -> Project {
    let p = Project::new();
    p.db.connect().batch_execute(SCHEMA).expect("schema loads");
    std::fs::write(p.root().join("colocate.toml"), CONFIG).unwrap();
    p
}

fn plan_json(p: &Project) -> Value {
    let r = run({
        let mut c = p.cmd();
        c.args(["plan", "--format", "json"]);
        c
    });
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", r.stdout, r.stderr))
}

fn colocate(p: &Project, args: &[&str]) -> common::Run {
    let mut c = p.cmd();
    c.args(args);
    run(c)
}

fn table_state(plan: &Value, name: &str) -> (String, String) {
    let t = plan["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"]["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in plan"));
    (
        t["role"].as_str().unwrap().to_string(),
        t["state"].as_str().unwrap().to_string(),
    )
}

/// Run the statements `plan --format sql` prints, one at a time in one session, as a person
/// would paste them into psql.
fn run_plan_sql(p: &Project) {
    let r = colocate(p, &["plan", "--format", "sql"]);
    let mut c = p.db.connect();
    for stmt in colocate_core::split_statements(&r.stdout).unwrap() {
        c.batch_execute(&stmt.sql)
            .unwrap_or_else(|e| panic!("{}: {e}", stmt.sql));
    }
}

#[test]
fn plain_postgres_plan_shows_roles_and_check_says_citus_is_absent() {
    let p = project();
    let r = colocate(&p, &["plan"]).expect(0);
    assert!(r.stdout.contains("ROOT (1)"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("\"Billing Ops\".\"Invoice Lines\"  Tenant"),
        "{}",
        r.stdout
    );
    let plan = plan_json(&p);
    assert_eq!(plan["version"], 1);
    assert_eq!(table_state(&plan, "countries").0, "reference");
    assert_eq!(table_state(&plan, "feature_flags").0, "local");
    assert_eq!(table_state(&plan, "email_messages").0, "distributed");
    let r = colocate(&p, &["check"]).expect(0);
    assert!(r.stdout.contains("citus is not installed"), "{}", r.stdout);
    let r = colocate(&p, &["check", "--require-citus"]).expect(1);
    assert!(r.stdout.contains("citus is not installed"), "{}", r.stdout);
    let r = colocate(&p, &["check", "--require-citus", "--format", "github"]).expect(1);
    assert!(
        r.stdout.starts_with("::error title=colocate check::"),
        "{}",
        r.stdout
    );
    // plan and check changed nothing.
    assert_eq!(
        p.count("SELECT count(*) FROM pg_extension WHERE extname = 'citus'"),
        0
    );
}

#[test]
fn plan_exits_1_and_prints_fixes_for_blockers() {
    let p = project();
    p.db.connect()
        .batch_execute("CREATE TABLE tokens (tenant uuid NOT NULL, token uuid PRIMARY KEY DEFAULT gen_random_uuid())")
        .unwrap();
    let r = colocate(&p, &["plan"]).expect(1);
    assert!(r.stdout.contains("[key-missing-distribution-column] primary key tokens_pkey (token) does not include distribution column tenant"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("ADD CONSTRAINT \"tokens_pkey\" PRIMARY KEY (\"tenant\", \"token\")"),
        "{}",
        r.stdout
    );
    for format in ["dot", "mermaid", "sql"] {
        let r = colocate(&p, &["plan", "--format", format]).expect(1);
        assert!(!r.stdout.is_empty(), "{format}");
    }
    let dot = colocate(&p, &["plan", "--format", "dot"]).stdout;
    assert!(
        dot.starts_with("digraph colocate {")
            && dot.contains(
                "\"public.tokens\" [fillcolor=\"#8ecae6\", tooltip=\"distributed BLOCKED\""
            ),
        "{dot}"
    );
}

fn converge(p: &Project, workers: usize) {
    let mut c = p.db.connect();
    // Partly distributed by hand: the root and the lookup table only.
    // (Reference table first, with local-to-reference keys kept out of Citus, as CITUS.md says.)
    c.batch_execute("SET citus.enable_local_reference_table_foreign_keys TO off")
        .unwrap();
    c.batch_execute("SELECT create_reference_table('countries')")
        .unwrap();
    c.batch_execute("SELECT create_distributed_table('tenants', 'tenant')")
        .unwrap();

    let plan = plan_json(p);
    assert_eq!(
        table_state(&plan, "tenants"),
        ("root".into(), "done".into())
    );
    assert_eq!(
        table_state(&plan, "countries"),
        ("reference".into(), "done".into())
    );
    assert_eq!(
        table_state(&plan, "users"),
        ("distributed".into(), "pending".into())
    );
    let steps = plan["steps"].as_array().unwrap();
    let stepped: Vec<String> = steps
        .iter()
        .filter(|s| s["kind"] != "truncate_local_data")
        .filter_map(|s| s["table"]["name"].as_str().map(str::to_string))
        .collect();
    // Converted by hand without removing the coordinator's copy: cleaned up, not converted.
    let cleaned: Vec<&str> = steps
        .iter()
        .filter(|s| s["kind"] == "truncate_local_data")
        .filter_map(|s| s["table"]["name"].as_str())
        .collect();
    assert!(
        cleaned.contains(&"tenants") && cleaned.contains(&"countries"),
        "{cleaned:?}"
    );
    assert!(
        !stepped.contains(&"tenants".to_string()),
        "only the remaining work: {stepped:?}"
    );
    assert!(!stepped.contains(&"countries".to_string()), "{stepped:?}");
    assert!(
        stepped.contains(&"Invoice Lines".to_string()),
        "{stepped:?}"
    );
    assert_eq!(plan["citus"]["workers"], workers);

    let r = colocate(p, &["check"]).expect(1);
    assert!(
        r.stdout.contains("[not-distributed] public.users"),
        "{}",
        r.stdout
    );
    let gh = colocate(p, &["check", "--format", "github"]).expect(1);
    assert!(gh.stdout.contains("::error title=colocate check (not-distributed)::public.users: tenant table is not distributed"), "{}", gh.stdout);
    let rows_before = p.count("SELECT count(*) FROM \"Billing Ops\".\"Invoice Lines\"");

    run_plan_sql(p);

    let r = colocate(p, &["check"]).expect(0);
    assert!(r.stdout.contains("converged"), "{}", r.stdout);
    let json: Value =
        serde_json::from_str(&colocate(p, &["check", "--format", "json"]).expect(0).stdout)
            .unwrap();
    assert_eq!(json["converged"], true);
    let plan = plan_json(p);
    assert!(
        plan["steps"].as_array().unwrap().is_empty(),
        "{:#?}",
        plan["steps"]
    );
    assert_eq!(
        p.count("SELECT count(*) FROM \"Billing Ops\".\"Invoice Lines\""),
        rows_before
    );
    assert_eq!(
        p.count(
            "SELECT count(DISTINCT colocationid) FROM pg_dist_partition WHERE partmethod = 'h'"
        ),
        1,
        "every distributed table in the root's group"
    );
    // The cycle's key was dropped and restored.
    assert_eq!(p.count("SELECT count(*) FROM pg_constraint WHERE conname IN ('users_team_fkey', 'teams_tenant_lead_id_fkey') AND convalidated"), 2);

    // Drift: a table distributed by the wrong column is a conflict, and check fails.
    c.batch_execute(
        "CREATE TABLE notes (tenant uuid NOT NULL, id bigint NOT NULL, PRIMARY KEY (tenant, id));\
         SELECT create_distributed_table('notes', 'id');",
    )
    .unwrap();
    let r = colocate(p, &["check"]).expect(1);
    assert!(
        r.stdout
            .contains("[distributed-by-wrong-column] public.notes is distributed by id"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("alter_distributed_table"), "{}", r.stdout);
    colocate(p, &["plan"]).expect(1);
}

#[test]
fn citus_single_node_partly_distributed_plan_converges_and_check_gates() {
    if skip_without_citus("citus_single_node_partly_distributed_plan_converges_and_check_gates") {
        return;
    }
    let p = project();
    p.db.citus_single_node();
    converge(&p, 0);
}

#[test]
fn citus_two_workers_partly_distributed_plan_converges_and_check_gates() {
    if skip_without_citus("citus_two_workers_partly_distributed_plan_converges_and_check_gates") {
        return;
    }
    let p = project();
    p.db.citus_with_workers();
    converge(&p, colocate_testkit::worker_ports().len());
}

/// The adversarial case: a table whose name holds a newline and SQL, with a key to a lookup
/// table (so step reasons name it). `psql -f` on `plan --format sql` must convert the tables
/// and never run the payload.
#[test]
fn citus_plan_sql_through_psql_never_runs_sql_hidden_in_names() {
    if skip_without_citus("citus_plan_sql_through_psql_never_runs_sql_hidden_in_names") {
        return;
    }
    let p = Project::new();
    let mut c = p.db.citus_single_node();
    c.batch_execute(
        r#"
        CREATE TABLE victim (id int);
        CREATE TABLE tenants (tenant uuid PRIMARY KEY);
        CREATE TABLE lookup (id int PRIMARY KEY);
        CREATE TABLE "y
DROP TABLE victim; --" (tenant uuid NOT NULL REFERENCES tenants, id int NOT NULL,
            lookup_id int CONSTRAINT "k */ DROP TABLE victim; /*
DROP TABLE victim; --" REFERENCES lookup, PRIMARY KEY (tenant, id));
        CREATE TABLE "$$
DROP TABLE victim; $$" (tenant uuid NOT NULL REFERENCES tenants, id int, PRIMARY KEY (tenant, id),
            FOREIGN KEY (tenant, id) REFERENCES "y
DROP TABLE victim; --" (tenant, id));
        "#,
    )
    .unwrap();
    std::fs::write(
        p.root().join("colocate.toml"),
        "[distribution]\nlocal = [\"victim\"]\n",
    )
    .unwrap();
    let r = colocate(&p, &["plan", "--format", "sql"]).expect(0);
    assert!(r.stdout.contains("DROP TABLE victim"), "{}", r.stdout);
    let out = std::process::Command::new("psql")
        .args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            p.db.url(),
            "-f",
            "-",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(r.stdout.as_bytes())?;
            child.wait_with_output()
        })
        .expect("run psql");
    assert!(
        out.status.success(),
        "psql failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        r.stdout
    );
    assert!(
        p.table_exists("victim"),
        "psql ran a name as SQL:\n{}",
        r.stdout
    );
    let distributed = p.count("SELECT count(*) FROM pg_dist_partition WHERE partmethod = 'h'");
    assert_eq!(distributed, 3, "{}", r.stdout);
}

/// Which configuration a plan used is said on stderr and in JSON: a run in a directory without
/// `colocate.toml` no longer plans with the built-in defaults without a word.
#[test]
fn plan_and_check_say_which_configuration_they_used() {
    let p = Project::new();
    p.db.connect().batch_execute(SCHEMA).unwrap();
    let mut cmd = p.cmd();
    cmd.args(["plan", "--format", "json"]);
    let r = run(cmd);
    assert!(
        r.stderr.contains("config: no colocate.toml in ")
            && r.stderr
                .contains("or its parents: the built-in defaults apply (root tenants, columns tenant, tenant_id)"),
        "{}",
        r.stderr
    );
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["config"]["defaults"], true);
    assert_eq!(v["config"]["path"], Value::Null);

    // The same plan as a pull-request comment, names escaped for Markdown.
    let mut cmd = p.cmd();
    cmd.args(["plan", "--format", "markdown"]);
    let md = run(cmd);
    assert!(
        md.stdout.starts_with("### colocate plan\n\n**"),
        "{}",
        md.stdout
    );
    assert!(md.stdout.contains("email\\_messages"), "{}", md.stdout);

    std::fs::write(p.root().join("colocate.toml"), CONFIG).unwrap();
    let file = p.root().join("colocate.toml").display().to_string();
    let mut cmd = p.cmd();
    cmd.args(["check", "--format", "json"]);
    let r = run(cmd);
    assert!(
        r.stderr.lines().any(|l| l == format!("config: {file}")),
        "{}",
        r.stderr
    );
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["config"]["path"], file.as_str());
    assert_eq!(v["config"]["defaults"], false);
}
