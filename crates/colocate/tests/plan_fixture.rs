//! The planner on a realistic application schema (fixtures/psa-schema: 212 tables, two schemas,
//! a partitioned table, a foreign-key cycle, self-references, triggers, RLS and the mistakes real
//! schemas have), introspected from the real server and compared with roles a person reviewed
//! by hand (fixtures/psa-schema/expected-roles.toml), not with the planner's own output.
//!
//! The expectation lists each table's role and the blockers the rules find on the table itself;
//! the integrity closure on top (a table waiting for a blocked one it references, or for a
//! blocked one that references it) is checked as a whole: in this schema the blocked tables
//! keep keys to `tenants`, so every tenant table waits.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use colocate_core::distribution::DistributionConfig;
use colocate_core::plan::{plan, Code, Plan, Role, Severity, State, StepKind};
use colocate_core::schema::{QualifiedName, Schema};
use colocate_pg::introspect::introspect;
use colocate_testkit::TestDb;
use serde::Deserialize;

#[derive(Deserialize)]
struct Expected {
    tables: BTreeMap<String, ExpectedTable>,
}

#[derive(Deserialize)]
struct ExpectedTable {
    role: String,
    would_be: Option<String>,
    column: Option<String>,
    #[serde(default)]
    blockers: Vec<String>,
}

#[derive(Deserialize)]
struct Config {
    distribution: DistributionConfig,
}

fn fixture(file: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/psa-schema")
        .join(file);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn load() -> (TestDb, colocate_core::schema::Schema, DistributionConfig) {
    let db = TestDb::new();
    let mut c = db.connect();
    c.batch_execute(&fixture("schema.sql"))
        .expect("fixture schema loads");
    let config: Config = toml::from_str(&fixture("colocate.toml")).unwrap();
    let schema = introspect(&mut c, &config.distribution.schema_filter()).unwrap();
    (db, schema, config.distribution)
}

#[test]
fn fixture_schema_is_planned_as_reviewed_by_hand() {
    let (_db, schema, config) = load();
    let expected: Expected = toml::from_str(&fixture("expected-roles.toml")).unwrap();
    assert!(schema.tables.len() >= 150, "{} tables", schema.tables.len());
    let p = plan(&schema, &config);
    let own = own_blockers(&p);

    let mut mismatches = Vec::new();
    let planned: Vec<String> = p
        .tables
        .iter()
        .map(|t| format!("{}.{}", t.name.schema, t.name.name))
        .collect();
    for name in expected.tables.keys() {
        if !planned.contains(name) {
            mismatches.push(format!("{name}: expected but not in the plan"));
        }
    }
    for t in &p.tables {
        let key = format!("{}.{}", t.name.schema, t.name.name);
        let Some(e) = expected.tables.get(&key) else {
            mismatches.push(format!("{key}: in the plan but not expected"));
            continue;
        };
        let blocked = own.contains_key(&t.name);
        let got_role = if blocked { "blocked" } else { t.role.label() };
        if got_role != e.role {
            mismatches.push(format!("{key}: role {got_role}, expected {}", e.role));
        }
        if blocked {
            let would_be = e.would_be.as_deref().unwrap_or("?");
            if t.role.label() != would_be && !(would_be == "distributed" && t.role == Role::Root) {
                mismatches.push(format!(
                    "{key}: would be {}, expected {would_be}",
                    t.role.label()
                ));
            }
        }
        if t.column != e.column {
            mismatches.push(format!(
                "{key}: column {:?}, expected {:?}",
                t.column, e.column
            ));
        }
        let codes: Vec<String> = own
            .get(&t.name)
            .map(|c| c.iter().map(|c| c.to_string()).collect())
            .unwrap_or_default();
        let mut want = e.blockers.clone();
        want.sort();
        if codes != want {
            mismatches.push(format!("{key}: blockers {codes:?}, expected {want:?}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatch(es):\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );

    // The closure: api_keys (a trigger) and others stay plain with keys to tenants, so tenants
    // waits, and with it every tenant table (each references tenants, or a table that waits).
    // Only the reference and local tables are left to convert.
    for t in &p.tables {
        let waits = t.blocked && !own.contains_key(&t.name);
        let distributed = matches!(t.role, Role::Root | Role::Distributed);
        assert_eq!(
            waits,
            distributed && !own.contains_key(&t.name),
            "{}: {:?}",
            t.name,
            p.findings
                .iter()
                .filter(|f| f.table == t.name)
                .collect::<Vec<_>>()
        );
    }
    let tenants = p
        .findings
        .iter()
        .find(|f| f.table.name == "tenants")
        .unwrap();
    assert_eq!(tenants.code, Code::ReferencedByBlockedTable);
    assert!(
        tenants.message.starts_with("public.tenants is referenced by public.api_keys (api_keys_tenant_fkey), which stays plain because it is blocked (has-triggers)"),
        "{}",
        tenants.message
    );
    assert_eq!(
        tenants.fix.as_deref(),
        Some("-- fix the blockers of public.api_keys first")
    );
    assert_no_key_from_plain_into_converted(&schema, &p);
}

/// The blocker codes each table has of its own (not those saying it waits for another table).
fn own_blockers(p: &Plan) -> BTreeMap<QualifiedName, Vec<Code>> {
    let mut own: BTreeMap<QualifiedName, Vec<Code>> = BTreeMap::new();
    for f in &p.findings {
        if f.severity == Severity::Blocker && !f.code.waits_for_another_table() {
            own.entry(f.table.clone()).or_default().push(f.code);
        }
    }
    for codes in own.values_mut() {
        codes.sort();
        codes.dedup();
    }
    own
}

/// The integrity closure on a plan: once its steps ran, no table that stays plain keeps a key
/// into a table they distributed.
fn assert_no_key_from_plain_into_converted(schema: &Schema, p: &Plan) {
    let converted: BTreeSet<&QualifiedName> = p
        .steps
        .iter()
        .filter(|s| s.kind() == StepKind::CreateDistributedTable)
        .filter_map(|s| s.table())
        .collect();
    for t in schema.tables.values() {
        if converted.contains(&t.name) || t.citus.is_some() {
            continue;
        }
        for fk in &t.foreign_keys {
            assert!(
                !converted.contains(&fk.ref_table),
                "{} stays plain with {} into {}, which the plan distributes",
                t.name,
                fk.name,
                fk.ref_table
            );
        }
    }
}

#[test]
fn fixture_plan_orders_every_foreign_key_target_first_and_breaks_the_cycle() {
    let (_db, schema, config) = load();
    let p = plan(&schema, &config);
    // Plain PostgreSQL without Citus has no steps; plan as if Citus were available to check
    // the order the executor would follow. And without the blocked tables (as once they are
    // fixed): with them, every tenant table waits (see above), and there is no order to check.
    let own = own_blockers(&p);
    let mut with_citus = schema.clone();
    with_citus.citus.available = true;
    with_citus.tables.retain(|q, _| !own.contains_key(q));
    let p2 = plan(&with_citus, &config);
    assert!(
        p2.blockers().next().is_none(),
        "{:?}",
        p2.blockers().collect::<Vec<_>>()
    );
    assert_no_key_from_plain_into_converted(&with_citus, &p2);
    if !schema.citus.available {
        assert!(p.steps.is_empty(), "no Citus: no steps");
    }
    let position: BTreeMap<_, _> = p2
        .steps
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            matches!(
                s.kind(),
                StepKind::CreateDistributedTable | StepKind::CreateReferenceTable
            )
        })
        .map(|(i, s)| (s.table().unwrap(), i))
        .collect();
    let dropped: Vec<(String, String)> = p2
        .steps
        .iter()
        .filter(|s| s.kind() == StepKind::DropForeignKey)
        .map(|s| (s.table().unwrap().name.clone(), s.sql()))
        .collect();
    assert_eq!(
        dropped.len(),
        1,
        "one edge of the users <-> teams cycle: {dropped:?}"
    );
    assert!(
        dropped[0].0 == "teams" || dropped[0].0 == "users",
        "{dropped:?}"
    );
    let mut checked = 0;
    for t in schema.tables.values() {
        let Some(&src) = position.get(&t.name) else {
            continue;
        };
        for fk in &t.foreign_keys {
            if fk.ref_table == t.name
                || dropped
                    .iter()
                    .any(|(_, sql)| sql.contains(&format!("\"{}\"", fk.name)))
            {
                continue;
            }
            let dst = position[&fk.ref_table];
            assert!(
                dst < src,
                "{} converts before its target {}",
                t.name,
                fk.ref_table
            );
            checked += 1;
        }
    }
    assert!(checked > 200, "checked {checked} foreign keys");
    // The root leads the distributed tables; reference tables come before it.
    let first_dist = p2
        .steps
        .iter()
        .find(|s| s.kind() == StepKind::CreateDistributedTable)
        .unwrap();
    assert_eq!(first_dist.table().unwrap().name, "tenants");
    let last_ref = p2
        .steps
        .iter()
        .rposition(|s| s.kind() == StepKind::CreateReferenceTable)
        .unwrap();
    let first_dist_pos = p2
        .steps
        .iter()
        .position(|s| s.kind() == StepKind::CreateDistributedTable)
        .unwrap();
    assert!(last_ref < first_dist_pos);
    // Blocked tables get no step; everything else that is Citus-bound does.
    for t in &p2.tables {
        let has_step = position.contains_key(&t.name);
        let should = t.state == State::Pending && t.role != Role::Local;
        assert_eq!(has_step, should, "{}", t.name);
    }
}
