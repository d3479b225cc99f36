//! Planner tests on small hand-built schemas: every role, every finding code, cycles,
//! self-references, overrides, partitioned tables and the diff with live Citus metadata.

use super::*;
use crate::distribution::{Forced, TableOverride};
use crate::schema::{CitusTable, Column, Policy, TableKind, Trigger};

fn q(name: &str) -> QualifiedName {
    QualifiedName::parse(name, "public")
}

/// A small table builder: `tbl("tickets").tenant().pk(&["tenant", "id"])`.
struct T(Table);

fn tbl(name: &str) -> T {
    let n = q(name);
    T(Table::new(&n.schema, &n.name))
}

impl T {
    fn col(mut self, name: &str, ty: &str) -> T {
        self.0.columns.push(Column::new(name, ty, true));
        self
    }
    fn tenant(self) -> T {
        self.col("tenant", "uuid").col("id", "bigint")
    }
    fn nullable(mut self, name: &str) -> T {
        for c in &mut self.0.columns {
            if c.name == name {
                c.not_null = false;
            }
        }
        self
    }
    fn key(mut self, kind: KeyKind, name: &str, cols: &[&str]) -> T {
        self.0.keys.push(Key {
            name: name.into(),
            kind,
            columns: cols.iter().map(|c| Some(c.to_string())).collect(),
            predicate: None,
            definition: format!("KEY ({})", cols.join(", ")),
        });
        self
    }
    fn pk(self, cols: &[&str]) -> T {
        let name = format!("{}_pkey", self.0.name.name);
        self.key(KeyKind::PrimaryKey, &name, cols)
    }
    fn fk(self, name: &str, cols: &[&str], target: &str, rcols: &[&str]) -> T {
        self.fk_actions(
            name,
            cols,
            target,
            rcols,
            FkAction::NoAction,
            FkAction::NoAction,
        )
    }
    fn fk_actions(
        mut self,
        name: &str,
        cols: &[&str],
        target: &str,
        rcols: &[&str],
        on_delete: FkAction,
        on_update: FkAction,
    ) -> T {
        self.0.foreign_keys.push(ForeignKey {
            name: name.into(),
            columns: cols.iter().map(|c| c.to_string()).collect(),
            ref_table: q(target),
            ref_columns: rcols.iter().map(|c| c.to_string()).collect(),
            on_delete,
            on_update,
            on_delete_columns: Vec::new(),
            validated: true,
            definition: format!(
                "FOREIGN KEY ({}) REFERENCES {}({})",
                cols.join(", "),
                target,
                rcols.join(", ")
            ),
        });
        self
    }
    fn rows(mut self, n: i64) -> T {
        self.0.row_estimate = n;
        self
    }
    fn live(mut self, kind: CitusKind, column: Option<&str>, group: i32) -> T {
        self.0.citus = Some(CitusTable {
            kind,
            column: column.map(str::to_string),
            colocation_id: group,
            shard_count: Some(32),
        });
        self
    }
}

fn schema(tables: Vec<T>) -> Schema {
    let mut s = Schema {
        citus: CitusState {
            available: true,
            installed: None,
            workers: 0,
        },
        ..Default::default()
    };
    for t in tables {
        s.add(t.0);
    }
    s
}

fn tenants() -> T {
    tbl("tenants").col("tenant", "uuid").pk(&["tenant"])
}

fn child(name: &str) -> T {
    tbl(name).tenant().pk(&["tenant", "id"]).fk(
        &format!("{name}_tenant_fkey"),
        &["tenant"],
        "tenants",
        &["tenant"],
    )
}

fn run(s: &Schema) -> Plan {
    plan(s, &DistributionConfig::default())
}

fn role_of(p: &Plan, name: &str) -> (Role, bool) {
    let t = p
        .table(&q(name))
        .unwrap_or_else(|| panic!("{name} not in plan"));
    (t.role, t.blocked)
}

fn codes(p: &Plan, name: &str) -> Vec<Code> {
    p.findings
        .iter()
        .filter(|f| f.table == q(name))
        .map(|f| f.code)
        .collect()
}

fn step_tables(p: &Plan, kind: StepKind) -> Vec<String> {
    p.steps
        .iter()
        .filter(|s| s.kind() == kind)
        .filter_map(|s| s.table().map(|t| t.name.clone()))
        .collect()
}

#[test]
fn roles_root_distributed_reference_local() {
    let s = schema(vec![
        tenants(),
        child("tickets").col("status_id", "int").fk(
            "tickets_status_fkey",
            &["status_id"],
            "statuses",
            &["status_id"],
        ),
        tbl("statuses")
            .col("status_id", "int")
            .col("country", "text")
            .pk(&["status_id"])
            .fk(
                "statuses_country_fkey",
                &["country"],
                "countries",
                &["code"],
            ),
        tbl("countries").col("code", "text").pk(&["code"]),
        tbl("feature_flags").col("name", "text").pk(&["name"]),
        tbl("email_messages")
            .col("tenant_id", "uuid")
            .col("id", "bigint")
            .pk(&["tenant_id", "id"]),
    ]);
    let p = run(&s);
    assert_eq!(role_of(&p, "tenants"), (Role::Root, false));
    assert_eq!(role_of(&p, "tickets"), (Role::Distributed, false));
    assert_eq!(role_of(&p, "statuses"), (Role::Reference, false));
    assert_eq!(
        role_of(&p, "countries"),
        (Role::Reference, false),
        "referenced through another tenant-less table"
    );
    assert_eq!(role_of(&p, "feature_flags"), (Role::Local, false));
    let email = p.table(&q("email_messages")).unwrap();
    assert_eq!(email.column.as_deref(), Some("tenant_id"));
    assert_eq!(email.colocate_with, Some(q("tenants")));
    assert!(!p.has_problems(), "{:#?}", p.findings);
    // Order: extension, setting, reference tables (countries before statuses), root, children.
    let kinds: Vec<StepKind> = p.steps.iter().map(|s| s.kind()).collect();
    assert_eq!(kinds[0], StepKind::CreateExtension);
    assert_eq!(kinds[1], StepKind::SessionSetting);
    assert_eq!(
        step_tables(&p, StepKind::CreateReferenceTable),
        ["countries", "statuses"]
    );
    assert_eq!(
        step_tables(&p, StepKind::CreateDistributedTable),
        ["tenants", "email_messages", "tickets"]
    );
    let root_step = p
        .steps
        .iter()
        .find(|s| s.table() == Some(&q("tenants")))
        .unwrap();
    assert_eq!(
        root_step.sql(),
        "SELECT create_distributed_table('\"public\".\"tenants\"', 'tenant', colocate_with => 'none');"
    );
    let tickets = p
        .steps
        .iter()
        .find(|s| s.table() == Some(&q("tickets")))
        .unwrap();
    assert!(tickets
        .sql()
        .contains("colocate_with => '\"public\".\"tenants\"'"));
    assert!(
        !tickets.transaction(),
        "Citus functions run outside transactions"
    );
    assert!(tickets.layer > root_step.layer);
}

#[test]
fn first_candidate_column_wins_and_overrides_apply() {
    let s = schema(vec![
        tenants(),
        tbl("both")
            .col("tenant", "uuid")
            .col("tenant_id", "uuid")
            .pk(&["tenant", "tenant_id"]),
        tbl("email")
            .col("tenant", "uuid")
            .col("tenant_id", "uuid")
            .pk(&["tenant_id"]),
        tbl("tokens")
            .col("tenant", "uuid")
            .col("token", "text")
            .pk(&["token"]),
        tbl("currencies").col("code", "text").pk(&["code"]),
        tbl("schema_migrations")
            .col("version", "text")
            .pk(&["version"]),
    ]);
    let config = DistributionConfig {
        tables: [(
            "email".to_string(),
            TableOverride {
                column: Some("tenant_id".into()),
                ..Default::default()
            },
        )]
        .into(),
        local: vec![Forced::WithReason {
            table: "tokens".into(),
            reason: Some("looked up by bare token".into()),
        }],
        reference: vec![Forced::Name("currencies".into())],
        ..Default::default()
    };
    let p = plan(&s, &config);
    assert_eq!(
        p.table(&q("both")).unwrap().column.as_deref(),
        Some("tenant")
    );
    assert_eq!(
        p.table(&q("email")).unwrap().column.as_deref(),
        Some("tenant_id")
    );
    let tokens = p.table(&q("tokens")).unwrap();
    assert_eq!((tokens.role, tokens.blocked), (Role::Local, false));
    assert!(
        tokens.reason.contains("looked up by bare token"),
        "{}",
        tokens.reason
    );
    assert_eq!(role_of(&p, "currencies"), (Role::Reference, false));
    assert_eq!(role_of(&p, "schema_migrations"), (Role::Local, false));
    assert!(codes(&p, "tokens").is_empty());
}

#[test]
fn unknown_config_names_are_warned_about() {
    let s = schema(vec![tenants()]);
    let config = DistributionConfig {
        local: vec![Forced::Name("no_such".into())],
        tables: [(
            "tenants".to_string(),
            TableOverride {
                column: Some("tenant_uuid".into()),
                ..Default::default()
            },
        )]
        .into(),
        ..Default::default()
    };
    let p = plan(&s, &config);
    assert_eq!(codes(&p, "no_such"), [Code::ConfigUnknownTable]);
    assert!(codes(&p, "tenants").contains(&Code::ConfigUnknownColumn));
}

#[test]
fn missing_root_is_a_blocker() {
    let s = schema(vec![child("tickets")]);
    let p = run(&s);
    assert_eq!(codes(&p, "tenants"), [Code::RootMissing]);
    assert!(p.has_problems());
    let s = schema(vec![
        tbl("tenants").col("id", "uuid").pk(&["id"]),
        tbl("x").col("tenant", "uuid").pk(&["tenant"]),
    ]);
    let p = run(&s);
    assert_eq!(codes(&p, "tenants"), [Code::RootWithoutColumn]);
}

#[test]
fn root_found_in_another_schema_by_bare_name() {
    let s = schema(vec![tbl("app.tenants")
        .col("tenant", "uuid")
        .pk(&["tenant"])]);
    let p = run(&s);
    assert_eq!(p.root, Some(q("app.tenants")));
}

#[test]
fn keys_without_the_distribution_column_are_blocked_with_fixes() {
    let s = schema(vec![
        tenants(),
        tbl("tickets").tenant().pk(&["id"]),
        child("comments").col("ticket_id", "bigint").fk(
            "comments_ticket_fkey",
            &["ticket_id"],
            "tickets",
            &["id"],
        ),
        child("assets")
            .col("serial", "text")
            .key(KeyKind::Unique, "assets_serial_key", &["serial"])
            .key(KeyKind::UniqueIndex, "assets_ext_idx", &["serial", "id"])
            .key(KeyKind::Exclusion, "assets_excl", &["id"]),
    ]);
    let p = run(&s);
    assert_eq!(role_of(&p, "tickets"), (Role::Distributed, true));
    let pk = p.findings.iter().find(|f| f.table == q("tickets")).unwrap();
    assert_eq!(pk.code, Code::KeyMissingDistributionColumn);
    assert!(
        pk.message.contains("primary key tickets_pkey (id)"),
        "{}",
        pk.message
    );
    let fix = pk.fix.as_deref().unwrap();
    assert!(
        fix.contains("ALTER TABLE \"public\".\"comments\" DROP CONSTRAINT IF EXISTS \"comments_ticket_fkey\""),
        "dependent keys dropped first: {fix}"
    );
    assert!(fix.ends_with(
        "ALTER TABLE \"public\".\"tickets\" DROP CONSTRAINT \"tickets_pkey\", ADD CONSTRAINT \"tickets_pkey\" PRIMARY KEY (\"tenant\", \"id\");"
    ));
    assert!(!pk.manual);
    // The referencing key is re-created with the tenant on both sides.
    let fk = p
        .findings
        .iter()
        .find(|f| f.code == Code::ForeignKeyMissingDistributionColumn)
        .unwrap();
    assert_eq!(fk.table, q("comments"));
    assert!(fk.fix.as_deref().unwrap().contains(
        "FOREIGN KEY (\"tenant\", \"ticket_id\") REFERENCES \"public\".\"tickets\" (\"tenant\", \"id\")"
    ));
    let asset_codes = codes(&p, "assets");
    assert_eq!(
        asset_codes,
        [
            Code::KeyMissingDistributionColumn,
            Code::KeyMissingDistributionColumn,
            Code::KeyMissingDistributionColumn
        ]
    );
    let excl = p
        .findings
        .iter()
        .find(|f| f.message.contains("exclusion"))
        .unwrap();
    assert!(excl.manual);
    let idx = p
        .findings
        .iter()
        .find(|f| f.message.contains("unique index"))
        .unwrap();
    assert!(idx.fix.as_deref().unwrap().contains(
        "CREATE UNIQUE INDEX \"assets_ext_idx\" ON \"public\".\"assets\" (\"tenant\", \"serial\", \"id\")"
    ));
    // Blocked tables get no steps; the rest still do.
    assert!(!step_tables(&p, StepKind::CreateDistributedTable).contains(&"tickets".to_string()));
    assert!(step_tables(&p, StepKind::CreateDistributedTable).contains(&"tenants".to_string()));
}

#[test]
fn distribution_column_rules() {
    let mut gen = tbl("gen").tenant().pk(&["tenant", "id"]).0;
    gen.columns[0].generated = true;
    let mut nohash = tbl("nohash").tenant().pk(&["tenant", "id"]).0;
    nohash.columns[0].hashable = false;
    let mut coll = tbl("coll").tenant().pk(&["tenant", "id"]).0;
    coll.columns[0].deterministic_collation = false;
    let mut ident = tbl("ident").tenant().pk(&["tenant", "id"]).0;
    ident.columns[1].identity = Some('a');
    let s = schema(vec![
        tenants(),
        tbl("legacy")
            .col("tenant", "character varying(36)")
            .col("id", "bigint")
            .pk(&["tenant", "id"]),
        tbl("loose")
            .tenant()
            .nullable("tenant")
            .pk(&["id", "tenant"]),
        T(gen),
        T(nohash),
        T(coll),
        T(ident),
    ]);
    let p = run(&s);
    assert_eq!(codes(&p, "legacy"), [Code::DistributionColumnTypeMismatch]);
    let fix = p.findings.iter().find(|f| f.table == q("legacy")).unwrap();
    assert!(fix.manual);
    assert!(fix.message.contains("character varying(36)") && fix.message.contains("uuid"));
    assert_eq!(codes(&p, "loose"), [Code::NullableDistributionColumn]);
    assert_eq!(
        role_of(&p, "loose"),
        (Role::Distributed, false),
        "a warning does not block"
    );
    assert_eq!(codes(&p, "gen"), [Code::DistributionColumnGenerated]);
    assert_eq!(codes(&p, "nohash"), [Code::DistributionColumnNotHashable]);
    assert_eq!(codes(&p, "coll"), [Code::DistributionColumnCollation]);
    assert_eq!(codes(&p, "ident"), [Code::IdentityColumn]);
    assert!(!p.table(&q("ident")).unwrap().blocked);
}

#[test]
fn triggers_policies_and_inheritance() {
    let mut trig = child("audited").0;
    trig.triggers.push(Trigger {
        name: "set_updated_at".into(),
        definition: "CREATE TRIGGER ...".into(),
    });
    let mut rls = child("secured").0;
    rls.rls_enabled = true;
    rls.policies.push(Policy {
        name: "tenant_isolation".into(),
        using: Some("(tenant = (current_setting('app.tenant'))::uuid)".into()),
        with_check: None,
    });
    let mut sub = child("subq").0;
    sub.policies.push(Policy {
        name: "members".into(),
        using: Some("(EXISTS ( SELECT 1 FROM members m WHERE m.id = id))".into()),
        with_check: None,
    });
    let mut inh = child("inherited").0;
    inh.inherits.push(q("base"));
    let mut multi = child("multi").0;
    multi.kind = TableKind::Partitioned;
    multi.multi_level_partition = true;
    let s = schema(vec![tenants(), T(trig), T(rls), T(sub), T(inh), T(multi)]);
    let p = run(&s);
    assert_eq!(codes(&p, "audited"), [Code::HasTriggers]);
    let f = p
        .findings
        .iter()
        .find(|f| f.code == Code::HasTriggers)
        .unwrap();
    assert!(f.manual);
    assert!(f
        .fix
        .as_deref()
        .unwrap()
        .contains("DROP TRIGGER \"set_updated_at\" ON \"public\".\"audited\";"));
    assert!(codes(&p, "secured").is_empty(), "a simple policy converts");
    assert_eq!(codes(&p, "subq"), [Code::RlsPolicySubquery]);
    assert_eq!(codes(&p, "inherited"), [Code::TableInheritance]);
    assert_eq!(codes(&p, "multi"), [Code::MultiLevelPartitioning]);
}

#[test]
fn tenantless_table_referencing_a_distributed_table_is_blocked() {
    let s = schema(vec![
        tenants(),
        child("tickets"),
        tbl("search_index")
            .col("ticket_tenant", "uuid")
            .col("ticket_id", "bigint")
            .fk(
                "search_ticket_fkey",
                &["ticket_tenant", "ticket_id"],
                "tickets",
                &["tenant", "id"],
            ),
    ]);
    let p = run(&s);
    assert_eq!(role_of(&p, "search_index"), (Role::Local, true));
    assert_eq!(
        codes(&p, "search_index"),
        [Code::LocalReferencesDistributed]
    );
}

#[test]
fn citus_tables_cannot_reference_forced_local_tables_and_blocks_propagate() {
    let s = schema(vec![
        tenants(),
        child("tickets").col("region", "text").fk(
            "tickets_region_fkey",
            &["region"],
            "regions",
            &["code"],
        ),
        tbl("regions").col("code", "text").pk(&["code"]),
        child("comments").col("ticket_id", "bigint").fk(
            "comments_ticket_fkey",
            &["tenant", "ticket_id"],
            "tickets",
            &["tenant", "id"],
        ),
        tbl("local_notes").col("code", "text").fk(
            "notes_region_fkey",
            &["code"],
            "regions2",
            &["code"],
        ),
        tbl("regions2").col("code", "text").pk(&["code"]),
    ]);
    let config = DistributionConfig {
        local: vec![Forced::Name("regions".into())],
        reference: vec![Forced::Name("regions2".into())],
        ..Default::default()
    };
    let p = plan(&s, &config);
    assert_eq!(codes(&p, "tickets"), [Code::ReferencesLocalTable]);
    assert_eq!(codes(&p, "comments"), [Code::ReferencesBlockedTable]);
    assert_eq!(role_of(&p, "comments"), (Role::Distributed, true));
    assert_eq!(codes(&p, "local_notes"), [Code::LocalReferencesReference]);
}

#[test]
fn foreign_key_actions_on_the_distribution_column() {
    let mut set_null_cols = child("b")
        .col("a_id", "bigint")
        .fk_actions(
            "b_a_fkey",
            &["tenant", "a_id"],
            "a",
            &["tenant", "id"],
            FkAction::SetNull,
            FkAction::NoAction,
        )
        .0;
    set_null_cols.foreign_keys[1].on_delete_columns = vec!["a_id".into()];
    let s = schema(vec![
        tenants(),
        child("a"),
        T(set_null_cols),
        child("c").col("a_id", "bigint").fk_actions(
            "c_a_fkey",
            &["tenant", "a_id"],
            "a",
            &["tenant", "id"],
            FkAction::SetNull,
            FkAction::NoAction,
        ),
        child("d").col("a_id", "bigint").fk_actions(
            "d_a_fkey",
            &["tenant", "a_id"],
            "a",
            &["tenant", "id"],
            FkAction::Cascade,
            FkAction::Cascade,
        ),
    ]);
    let p = run(&s);
    // Citus refuses SET NULL even with a column list that keeps the tenant.
    assert_eq!(codes(&p, "b"), [Code::ForeignKeyActionOnDistributionColumn]);
    assert_eq!(codes(&p, "c"), [Code::ForeignKeyActionOnDistributionColumn]);
    let f = p.findings.iter().find(|f| f.table == q("c")).unwrap();
    let fix = f.fix.clone().unwrap();
    assert!(f.manual);
    assert!(
        fix.contains("REFERENCES \"public\".\"a\" (\"tenant\", \"id\");"),
        "{fix}"
    );
    assert!(!fix.contains("SET NULL"), "{fix}");
    assert_eq!(codes(&p, "d"), [Code::ForeignKeyActionOnDistributionColumn]);
    let f = p.findings.iter().find(|f| f.table == q("d")).unwrap();
    assert!(
        f.message.contains("ON UPDATE CASCADE") && !f.message.contains("ON DELETE"),
        "{}",
        f.message
    );
    let fix = f.fix.clone().unwrap();
    assert!(
        fix.contains("ON DELETE CASCADE") && !fix.contains("ON UPDATE"),
        "{fix}"
    );
}

#[test]
fn misaligned_foreign_keys_between_distributed_tables() {
    let s = schema(vec![
        tenants(),
        child("a"),
        child("b").col("a_id", "bigint").fk(
            "b_a_fkey",
            &["a_id", "tenant"],
            "a",
            &["id", "tenant"],
        ),
        child("c").col("a_id", "bigint").fk(
            "c_a_fkey",
            &["tenant", "a_id"],
            "a",
            &["id", "tenant"],
        ),
    ]);
    let p = run(&s);
    assert!(codes(&p, "b").is_empty(), "pairing counts, not position 0");
    assert_eq!(codes(&p, "c"), [Code::ForeignKeyMissingDistributionColumn]);
}

#[test]
fn cycles_are_broken_by_dropping_and_restoring_one_edge() {
    let s = schema(vec![
        tenants(),
        child("users").col("team_id", "bigint").fk(
            "users_team_fkey",
            &["tenant", "team_id"],
            "teams",
            &["tenant", "id"],
        ),
        child("teams").col("manager_id", "bigint").fk(
            "teams_manager_fkey",
            &["tenant", "manager_id"],
            "users",
            &["tenant", "id"],
        ),
        child("companies").col("parent_id", "bigint").fk(
            "companies_parent_fkey",
            &["tenant", "parent_id"],
            "companies",
            &["tenant", "id"],
        ),
    ]);
    let p = run(&s);
    assert!(!p.has_problems(), "{:#?}", p.findings);
    let dropped: Vec<&Step> = p
        .steps
        .iter()
        .filter(|s| s.kind() == StepKind::DropForeignKey)
        .collect();
    assert_eq!(
        dropped.len(),
        1,
        "one edge of the cycle, none for the self-reference"
    );
    // Name order in the cycle: teams, users; the edge teams -> users points forward: dropped.
    assert_eq!(
        dropped[0].sql(),
        "ALTER TABLE \"public\".\"teams\" DROP CONSTRAINT \"teams_manager_fkey\";"
    );
    let order = step_tables(&p, StepKind::CreateDistributedTable);
    assert_eq!(order, ["tenants", "companies", "teams", "users"]);
    let restore = p
        .steps
        .iter()
        .find(|s| s.kind() == StepKind::RestoreForeignKey)
        .unwrap();
    assert!(restore.sql().ends_with("NOT VALID;"));
    assert!(restore
        .sql()
        .contains("FOREIGN KEY (tenant, manager_id) REFERENCES users(tenant, id)"));
    let kinds: Vec<StepKind> = p.steps.iter().map(|s| s.kind()).collect();
    let pos = |k| kinds.iter().position(|x| *x == k).unwrap();
    assert!(pos(StepKind::DropForeignKey) < pos(StepKind::CreateDistributedTable));
    assert!(
        pos(StepKind::RestoreForeignKey)
            > kinds
                .iter()
                .rposition(|x| *x == StepKind::CreateDistributedTable)
                .unwrap()
    );
    assert!(pos(StepKind::ValidateForeignKey) > pos(StepKind::RestoreForeignKey));
}

#[test]
fn a_three_table_cycle_terminates_and_orders_every_table() {
    let s = schema(vec![
        tenants(),
        child("a")
            .col("b_id", "bigint")
            .fk("a_b", &["tenant", "b_id"], "b", &["tenant", "id"]),
        child("b")
            .col("c_id", "bigint")
            .fk("b_c", &["tenant", "c_id"], "c", &["tenant", "id"]),
        child("c")
            .col("a_id", "bigint")
            .fk("c_a", &["tenant", "a_id"], "a", &["tenant", "id"]),
    ]);
    let p = run(&s);
    let order = step_tables(&p, StepKind::CreateDistributedTable);
    assert_eq!(order.len(), 4);
    let dropped = step_tables(&p, StepKind::DropForeignKey);
    assert!(!dropped.is_empty());
    // Every kept edge has its target converted first.
    let pos = |n: &str| order.iter().position(|x| x == n).unwrap();
    let dropped_sql: Vec<String> = p
        .steps
        .iter()
        .filter(|s| s.kind() == StepKind::DropForeignKey)
        .map(|s| s.sql())
        .collect();
    for (src, dst, name) in [("a", "b", "a_b"), ("b", "c", "b_c"), ("c", "a", "c_a")] {
        if !dropped_sql
            .iter()
            .any(|s| s.contains(&format!("\"{name}\"")))
        {
            assert!(pos(dst) < pos(src), "{dst} before {src}");
        }
    }
}

#[test]
fn partitioned_tables_are_planned_as_one() {
    let mut t = child("events").0;
    t.kind = TableKind::Partitioned;
    t.partitions = vec![q("events_2024"), q("events_2025")];
    let s = schema(vec![tenants(), T(t)]);
    let p = run(&s);
    let e = p.table(&q("events")).unwrap();
    assert_eq!(e.partitions.len(), 2);
    assert_eq!(p.tables.len(), 2, "partitions are not tables of their own");
    assert!(step_tables(&p, StepKind::CreateDistributedTable).contains(&"events".to_string()));
}

#[test]
fn rows_left_on_the_coordinator_are_truncated_after_everything_converted() {
    let s = schema(vec![
        tenants().rows(10),
        child("tickets").rows(100),
        child("empty").rows(0),
    ]);
    let p = run(&s);
    let truncs = step_tables(&p, StepKind::TruncateLocalData);
    assert_eq!(
        truncs,
        ["tickets", "tenants"],
        "sources first, empty tables skipped"
    );
    let last_create = p
        .steps
        .iter()
        .rposition(|s| s.kind() == StepKind::CreateDistributedTable)
        .unwrap();
    let first_trunc = p
        .steps
        .iter()
        .position(|s| s.kind() == StepKind::TruncateLocalData)
        .unwrap();
    assert!(first_trunc > last_create);
}

#[test]
fn diff_with_live_topology() {
    let mut s = schema(vec![
        tenants().live(CitusKind::Distributed, Some("tenant"), 7),
        child("done").live(CitusKind::Distributed, Some("tenant"), 7),
        child("wrong_column")
            .col("other", "uuid")
            .live(CitusKind::Distributed, Some("id"), 7),
        child("wrong_group").live(CitusKind::Distributed, Some("tenant"), 9),
        child("as_reference").live(CitusKind::Reference, None, 0),
        child("half_done").live(CitusKind::CitusLocal, None, 0),
        child("todo"),
        tbl("countries")
            .col("code", "text")
            .pk(&["code"])
            .live(CitusKind::Reference, None, 0),
        tbl("flags")
            .col("k", "text")
            .live(CitusKind::Distributed, Some("k"), 3),
    ]);
    s.citus.installed = Some("13.2-1".into());
    let p = run(&s);
    let state = |n: &str| p.table(&q(n)).unwrap().state;
    assert_eq!(state("tenants"), State::Done);
    assert_eq!(state("done"), State::Done);
    assert_eq!(state("countries"), State::Done);
    assert_eq!(state("wrong_column"), State::Conflict);
    assert_eq!(codes(&p, "wrong_column"), [Code::DistributedByWrongColumn]);
    let fix = p
        .findings
        .iter()
        .find(|f| f.table == q("wrong_column"))
        .unwrap();
    assert!(fix.fix.as_deref().unwrap().starts_with("SELECT alter_distributed_table('\"public\".\"wrong_column\"', distribution_column := 'tenant'"));
    assert_eq!(codes(&p, "wrong_group"), [Code::WrongColocationGroup]);
    assert_eq!(codes(&p, "as_reference"), [Code::WrongCitusTableType]);
    assert_eq!(codes(&p, "flags"), [Code::WrongCitusTableType]);
    assert_eq!(state("half_done"), State::Pending);
    assert_eq!(state("todo"), State::Pending);
    // Only the remaining work has steps; no extension step when it exists.
    let order = step_tables(&p, StepKind::CreateDistributedTable);
    assert_eq!(order, ["half_done", "todo"]);
    assert!(p
        .steps
        .iter()
        .all(|s| s.kind() != StepKind::CreateExtension));
    assert!(p.has_problems());
}

#[test]
fn no_citus_means_no_steps_but_the_same_roles() {
    let mut s = schema(vec![tenants(), child("tickets")]);
    s.citus = CitusState::default();
    let p = run(&s);
    assert!(p.steps.is_empty());
    assert_eq!(role_of(&p, "tickets"), (Role::Distributed, false));
}

#[test]
fn names_with_quotes_spaces_capitals_and_schemas_are_escaped() {
    let s = schema(vec![
        tenants(),
        tbl("\"Billing Ops\".\"Invoice \"\"Lines\"\"\"")
            .col("Tenant", "uuid")
            .pk(&["Tenant"]),
    ]);
    let config = DistributionConfig {
        columns: vec!["tenant".into(), "Tenant".into()],
        ..Default::default()
    };
    let p = plan(&s, &config);
    let step = p
        .steps
        .iter()
        .find(|s| s.table().is_some_and(|t| t.schema == "Billing Ops"))
        .unwrap();
    assert_eq!(
        step.sql(),
        "SELECT create_distributed_table('\"Billing Ops\".\"Invoice \"\"Lines\"\"\"', 'Tenant', colocate_with => '\"public\".\"tenants\"');"
    );
}

#[test]
fn output_is_deterministic() {
    let build = || {
        schema(vec![
            tenants(),
            child("b").col("x", "int").fk("b_x", &["x"], "l2", &["x"]),
            child("a").col("x", "int").fk("a_x", &["x"], "l1", &["x"]),
            tbl("l1").col("x", "int").pk(&["x"]),
            tbl("l2").col("x", "int").pk(&["x"]),
        ])
    };
    assert_eq!(run(&build()), run(&build()));
    let codes: Vec<String> = [Code::KeyMissingDistributionColumn, Code::RootMissing]
        .iter()
        .map(|c| c.as_str())
        .collect();
    assert_eq!(codes, ["key-missing-distribution-column", "root-missing"]);
}

#[test]
fn tables_still_referenced_by_local_tables_are_not_truncated() {
    let s = schema(vec![
        tenants().rows(5),
        child("tickets").rows(5),
        tbl("countries").col("code", "text").pk(&["code"]).rows(5),
        child("offices")
            .col("country", "text")
            .fk("offices_country_fkey", &["country"], "countries", &["code"])
            .rows(5),
        tbl("exports")
            .col("country", "text")
            .fk("exports_country_fkey", &["country"], "countries", &["code"])
            .rows(5),
        tbl("blocked_child")
            .tenant()
            .pk(&["id"])
            .fk("bc_t", &["tenant"], "tenants", &["tenant"]),
    ]);
    let p = run(&s);
    assert_eq!(role_of(&p, "exports"), (Role::Local, false));
    assert_eq!(role_of(&p, "blocked_child"), (Role::Distributed, true));
    let truncs = step_tables(&p, StepKind::TruncateLocalData);
    assert_eq!(
        truncs,
        ["tickets", "offices"],
        "countries (local referrer) and tenants (blocked referrer) wait"
    );
}

#[test]
fn a_table_a_plain_table_reaches_through_others_is_not_truncated() {
    // audit (blocked: a trigger) -> tickets -> countries: truncating countries would cascade
    // through tickets into audit's own rows.
    let mut audit = child("audit")
        .col("ticket", "bigint")
        .fk(
            "audit_ticket_fkey",
            &["tenant", "ticket"],
            "tickets",
            &["tenant", "id"],
        )
        .rows(5)
        .0;
    audit.triggers.push(Trigger {
        name: "audit_stamp".into(),
        definition: "CREATE TRIGGER ...".into(),
    });
    let s = schema(vec![
        tenants().rows(5),
        tbl("countries").col("code", "text").pk(&["code"]).rows(5),
        child("tickets")
            .col("country", "text")
            .fk("tickets_country_fkey", &["country"], "countries", &["code"])
            .rows(5),
        T(audit),
    ]);
    let p = run(&s);
    assert_eq!(role_of(&p, "audit"), (Role::Distributed, true));
    assert!(
        step_tables(&p, StepKind::TruncateLocalData).is_empty(),
        "{:?}",
        step_tables(&p, StepKind::TruncateLocalData)
    );
}

#[test]
fn drift_lists_pending_conflicts_and_blockers_but_not_warnings() {
    let mut s = schema(vec![
        tenants().live(CitusKind::Distributed, Some("tenant"), 1),
        child("todo"),
        child("loose")
            .nullable("tenant")
            .live(CitusKind::Distributed, Some("tenant"), 1),
        tbl("countries").col("code", "text").pk(&["code"]),
        child("uses_country")
            .col("c", "text")
            .fk("uc", &["c"], "countries", &["code"])
            .live(CitusKind::Distributed, Some("tenant"), 1),
        child("wrong").live(CitusKind::Distributed, Some("id"), 1),
        tbl("bad").tenant().pk(&["id"]),
    ]);
    s.citus.installed = Some("13.2-1".into());
    let p = run(&s);
    let got: Vec<(String, String)> = p
        .drift()
        .into_iter()
        .map(|d| (d.table.name, d.code))
        .collect();
    assert_eq!(
        got,
        [
            ("bad".into(), "key-missing-distribution-column".into()),
            ("countries".into(), "not-reference".into()),
            ("todo".into(), "not-distributed".into()),
            ("wrong".into(), "distributed-by-wrong-column".into()),
        ]
    );
}

#[test]
fn leftover_coordinator_rows_of_converted_tables_are_cleaned_up() {
    let mut s = schema(vec![
        tenants().live(CitusKind::Distributed, Some("tenant"), 1),
        child("clean").live(CitusKind::Distributed, Some("tenant"), 1),
        child("leftover").live(CitusKind::Distributed, Some("tenant"), 1),
    ]);
    s.citus.installed = Some("13.2-1".into());
    s.tables.get_mut(&q("leftover")).unwrap().local_bytes = 8192;
    let p = run(&s);
    assert_eq!(step_tables(&p, StepKind::TruncateLocalData), ["leftover"]);
    assert_eq!(p.table(&q("leftover")).unwrap().state, State::Done);
    // check fails on them: rows left in the coordinator are one of the ways a move goes wrong.
    let drift = p.drift();
    assert_eq!(drift.len(), 1, "{drift:?}");
    assert_eq!(drift[0].code, "coordinator-leftover");
    assert_eq!(drift[0].table, q("leftover"));
    assert_eq!(
        drift[0].fix.as_deref(),
        Some("SELECT truncate_local_data_after_distributing_table('\"public\".\"leftover\"');")
    );
}

#[test]
fn a_deep_foreign_key_chain_is_ordered_target_first() {
    let mut tables = vec![tenants()];
    for i in 0..300 {
        let mut t = child(&format!("c{i:03}"));
        if i > 0 {
            t = t.col("prev_id", "bigint").fk(
                &format!("c{i:03}_prev"),
                &["tenant", "prev_id"],
                &format!("c{:03}", i - 1),
                &["tenant", "id"],
            );
        }
        tables.push(t);
    }
    let p = run(&schema(tables));
    let order = step_tables(&p, StepKind::CreateDistributedTable);
    let expected: Vec<String> = std::iter::once("tenants".to_string())
        .chain((0..300).map(|i| format!("c{i:03}")))
        .collect();
    assert_eq!(order, expected);
    let layers: Vec<usize> = p
        .steps
        .iter()
        .filter(|s| s.kind() == StepKind::CreateDistributedTable)
        .map(|s| s.layer)
        .collect();
    assert!(
        layers.windows(2).all(|w| w[0] < w[1]),
        "one layer per link: {layers:?}"
    );
}

#[test]
fn conversions_run_sequentially_except_large_tables_that_can_go_parallel() {
    let mut s = schema(vec![
        tenants(),
        child("small"),
        child("big"),
        // Big, but reaching the reference table `statuses` through `tickets`: Citus refuses
        // parallel DDL on it after touching the reference table.
        child("big_via_tickets").col("ticket_id", "bigint").fk(
            "big_via_tickets_ticket_fkey",
            &["tenant", "ticket_id"],
            "tickets",
            &["tenant", "id"],
        ),
        child("tickets").col("status_id", "int").fk(
            "tickets_status_fkey",
            &["status_id"],
            "statuses",
            &["status_id"],
        ),
        tbl("statuses").col("status_id", "int").pk(&["status_id"]),
    ]);
    for name in ["big", "big_via_tickets"] {
        s.tables.get_mut(&q(name)).unwrap().local_bytes = PARALLEL_COPY_BYTES;
    }
    s.tables.get_mut(&q("small")).unwrap().local_bytes = PARALLEL_COPY_BYTES - 1;
    let p = run(&s);
    assert!(!p.has_problems(), "{:#?}", p.findings);
    let settings: Vec<String> = p
        .steps
        .iter()
        .filter(|s| s.kind() == StepKind::SessionSetting)
        .map(|s| s.sql())
        .collect();
    assert_eq!(settings[0], SEQUENTIAL_SESSION, "{settings:?}");
    // The setting comes before every conversion.
    let first_setting = p.steps.iter().position(|s| s.sql() == SEQUENTIAL_SESSION);
    let first_conversion = p.steps.iter().position(|s| {
        matches!(
            s.kind(),
            StepKind::CreateDistributedTable | StepKind::CreateReferenceTable
        )
    });
    assert!(first_setting < first_conversion);
    let sql = |name: &str| {
        p.steps
            .iter()
            .find(|s| s.kind() == StepKind::CreateDistributedTable && s.table() == Some(&q(name)))
            .unwrap()
            .sql()
            .clone()
    };
    assert!(sql("big").starts_with(PARALLEL_MODE), "{}", sql("big"));
    assert!(sql("small").starts_with("SELECT create_distributed_table("));
    assert!(sql("big_via_tickets").starts_with("SELECT create_distributed_table("));
    assert!(sql("tickets").starts_with("SELECT create_distributed_table("));
}

#[test]
fn nothing_to_convert_means_no_session_setting() {
    let mut s = schema(vec![tenants()]);
    s.citus.installed = Some("13.2-1".into());
    s.tables.get_mut(&q("tenants")).unwrap().citus = Some(CitusTable {
        kind: CitusKind::Distributed,
        column: Some("tenant".into()),
        colocation_id: 1,
        shard_count: Some(32),
    });
    let p = run(&s);
    assert!(
        p.steps.iter().all(|s| s.kind() != StepKind::SessionSetting),
        "{:#?}",
        p.steps
    );
}

/// Names that end a `--` comment or open a block one must never run as SQL: every fix and
/// every step (with its reason as a comment, the way `plan --format sql` writes it) splits,
/// the way the server reads it, into statements none of which is the payload.
#[test]
fn hostile_names_stay_inside_comments_of_fixes_and_steps() {
    for (i, evil) in crate::sqltext::tests::HOSTILE.iter().enumerate() {
        let (tenantless, child_name, lookup) = (
            format!("{evil} orphan{i}"),
            format!("{evil} child{i}"),
            format!("{evil} lookup{i}"),
        );
        let mut expr_key = child(&child_name);
        expr_key.0.keys.push(Key {
            name: format!("{evil} idx"),
            kind: KeyKind::UniqueIndex,
            columns: vec![None],
            predicate: None,
            definition: format!("CREATE UNIQUE INDEX \"{evil}\" ON t (lower(x))"),
        });
        let mut s = schema(vec![
            tenants(),
            expr_key.col("lookup_id", "bigint").fk(
                &format!("{evil} fk"),
                &["lookup_id"],
                &lookup,
                &["id"],
            ),
            tbl(&lookup).col("id", "bigint").pk(&["id"]),
            tbl(&tenantless)
                .col("id", "bigint")
                .col("child_id", "bigint")
                .fk(&format!("{evil} fk2"), &["child_id"], &child_name, &["id"]),
            child(&format!("{evil} blocked{i}"))
                .col("o_id", "bigint")
                .fk(
                    &format!("{evil} fk3"),
                    &["tenant", "o_id"],
                    &tenantless,
                    &["id", "id"],
                ),
        ]);
        s.citus.installed = Some("13.2-1".into());
        let p = run(&s);
        let mut texts: Vec<String> = p.findings.iter().filter_map(|f| f.fix.clone()).collect();
        texts.extend(p.steps.iter().map(|st| {
            format!(
                "{}\n{};",
                crate::sqltext::comment(&st.reason.to_string()),
                st.sql()
            )
        }));
        assert!(
            texts
                .iter()
                .any(|t| t.contains(evil.split('\n').next().unwrap_or(evil))),
            "the names reach no fix or step: {texts:#?}"
        );
        for text in &texts {
            for st in crate::split_statements(text).unwrap_or_else(|e| panic!("{e}: {text}")) {
                let sql = st.sql.to_ascii_uppercase();
                assert!(
                    !sql.starts_with("DROP TABLE VICTIM") && !sql.starts_with("$$"),
                    "a name escaped its comment in:\n{text}"
                );
            }
        }
    }
}
