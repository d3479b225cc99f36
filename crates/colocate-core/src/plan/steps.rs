//! The steps that carry the plan out: the extension, the session settings, reference tables,
//! the root and the distributed tables in foreign-key order (cycles broken by dropping a key
//! and restoring it after), then the coordinator's leftover rows, layer by layer.

use std::collections::{BTreeMap, BTreeSet};

use super::classify::Classification;
use super::{Live, Role, State, TablePlan, PARALLEL_COPY_BYTES};
use crate::distribution::DistributionConfig;
use crate::graph::FkGraph;
use crate::schema::{ForeignKey, QualifiedName, Schema};
use crate::step::{Action, Colocation, Distribute, Reason, Step};

/// The steps that convert the pending tables, in order, each with its layer (steps of one
/// layer do not depend on each other).
pub(super) fn steps(
    schema: &Schema,
    config: &DistributionConfig,
    graph: &FkGraph,
    classes: &Classification,
    tables: &[TablePlan],
) -> Vec<Step> {
    let citus = &schema.citus;
    if !citus.available && citus.installed.is_none() {
        return Vec::new();
    }
    let pending: BTreeMap<&QualifiedName, &TablePlan> = tables
        .iter()
        .filter(|t| t.state == State::Pending && t.role.is_citus())
        .map(|t| (&t.name, t))
        .collect();
    let step = |action: Action, reason: Reason, layer: usize| Step {
        action,
        reason,
        layer,
    };
    let mut steps = Vec::new();
    if citus.installed.is_none() {
        steps.push(step(Action::CreateExtension, Reason::ExtensionMissing, 0));
    }
    if pending.is_empty() {
        steps.extend(cleanup_steps(schema, graph, tables, 1));
        return steps;
    }
    let references: Vec<&QualifiedName> = pending
        .iter()
        .filter(|(_, t)| t.role == Role::Reference)
        .map(|(q, _)| *q)
        .collect();
    steps.push(step(
        Action::SessionSetting(crate::step::SEQUENTIAL),
        Reason::SequentialMode {
            parallel_from_bytes: PARALLEL_COPY_BYTES,
        },
        0,
    ));
    if !references.is_empty() {
        steps.push(step(
            Action::SessionSetting(crate::step::NO_LOCAL_REFERENCE_KEYS),
            Reason::LocalReferenceKeysOff,
            0,
        ));
    }
    let distributed: Vec<&QualifiedName> = pending
        .iter()
        .filter(|(_, t)| t.role.is_distributed())
        .map(|(q, _)| *q)
        .collect();
    let ref_order = graph.order(references, None);
    let mut dist_order = graph.order(distributed, None);
    // Within one pass ordering is by name; the root leads when nothing must precede it.
    if let Some(root) = &classes.root {
        dist_order.lead_with(root);
    }
    let dropped: Vec<(QualifiedName, ForeignKey)> = ref_order
        .dropped
        .into_iter()
        .chain(dist_order.dropped)
        .collect();
    let (ref_order, dist_order) = (ref_order.tables, dist_order.tables);
    let mut layer_of: BTreeMap<QualifiedName, usize> = BTreeMap::new();
    let dropped_names: BTreeSet<(&QualifiedName, &str)> = dropped
        .iter()
        .map(|(t, fk)| (t, fk.name.as_str()))
        .collect();
    // A cycle's key is dropped right before the first of its two tables converts and restored
    // right after the second: a run that fails in between has as few keys down as it can, for
    // as short a time as it can.
    let mut key_down = vec![false; dropped.len()];
    let mut key_back = vec![false; dropped.len()];
    for q in ref_order.iter().chain(dist_order.iter()) {
        let t = pending[q];
        let table = &schema.tables[q];
        let layer = 1 + table
            .foreign_keys
            .iter()
            .filter(|fk| !dropped_names.contains(&(q, fk.name.as_str())) && &fk.ref_table != q)
            .filter_map(|fk| layer_of.get(&fk.ref_table))
            .max()
            .copied()
            .unwrap_or(0);
        layer_of.insert(q.clone(), layer);
        let column = t.column.clone().unwrap_or_default();
        // A table reaching a reference table only through another table stays sequential:
        // Citus converts a table with a key to a reference table in sequential mode by itself,
        // but not one that reaches it through another table, and then refuses ("cannot
        // execute parallel DDL on table ... after DDL command on reference table").
        let parallel = table.local_bytes >= PARALLEL_COPY_BYTES
            && !graph.reaches_indirectly(q, |t| classes.role(t) == Some(Role::Reference));
        let (action, reason) = match t.role {
            Role::Reference => (
                Action::CreateReferenceTable { table: q.clone() },
                Reason::Reference {
                    why: t.reason.clone(),
                },
            ),
            Role::Root => (
                Action::CreateDistributedTable(Distribute {
                    table: q.clone(),
                    column,
                    colocate_with: Colocation::None,
                    shard_count: config.shard_count,
                    parallel,
                    concurrently: None,
                    unsafe_triggers: t.unsafe_triggers,
                }),
                Reason::Root,
            ),
            _ => (
                Action::CreateDistributedTable(Distribute {
                    table: q.clone(),
                    column: column.clone(),
                    colocate_with: match &t.colocate_with {
                        Some(r) => Colocation::With(r.clone()),
                        None => Colocation::Default,
                    },
                    shard_count: None,
                    parallel,
                    concurrently: None,
                    unsafe_triggers: t.unsafe_triggers,
                }),
                Reason::Distributed {
                    column,
                    colocate_with: t.colocate_with.clone(),
                },
            ),
        };
        for (i, (t, fk)) in dropped.iter().enumerate() {
            if !key_down[i] && (t == q || &fk.ref_table == q) {
                key_down[i] = true;
                steps.push(step(
                    Action::DropForeignKey {
                        table: t.clone(),
                        key: fk.clone(),
                    },
                    Reason::BreaksCycle {
                        table: t.clone(),
                        references: fk.ref_table.clone(),
                    },
                    layer,
                ));
            }
        }
        steps.push(step(action, reason, layer));
        for (i, (t, fk)) in dropped.iter().enumerate() {
            if key_down[i]
                && !key_back[i]
                && layer_of.contains_key(t)
                && layer_of.contains_key(&fk.ref_table)
            {
                key_back[i] = true;
                steps.push(step(
                    Action::RestoreForeignKey {
                        table: t.clone(),
                        key: fk.clone(),
                    },
                    Reason::RestoresCycleKey,
                    layer + 1,
                ));
                if fk.validated {
                    steps.push(step(
                        Action::ValidateForeignKey {
                            table: t.clone(),
                            key: fk.name.clone(),
                        },
                        Reason::ChecksRestoredKey,
                        layer + 1,
                    ));
                }
            }
        }
    }
    let top = layer_of.values().max().copied().unwrap_or(0) + 1;
    // The coordinator keeps the rows it copied into shards until told to drop them; do it
    // sources first, once every referencing table is converted.
    // A table a table that stays local still reaches through foreign keys cannot be
    // truncated (Citus refuses a direct one, the cascade would empty an indirect one, and
    // the local key still checks the coordinator's rows): those wait.
    let referenced_locally = held_by_local(graph, tables);
    for q in ref_order.iter().chain(dist_order.iter()).rev() {
        if schema.tables[q].row_estimate != 0 && !referenced_locally.contains(q) {
            steps.push(step(
                Action::TruncateLocalData {
                    table: (*q).clone(),
                },
                Reason::LeftoverRows,
                top + 1,
            ));
        }
    }
    steps.extend(cleanup_steps(schema, graph, tables, top + 1));
    steps
}

/// Tables that a table staying local (local role or blocked) reaches through foreign keys:
/// their coordinator rows must stay (Citus refuses a direct truncate, the cascade would
/// empty an indirect one, and the local key still checks them).
fn held_by_local<'s>(graph: &FkGraph<'s>, tables: &[TablePlan]) -> BTreeSet<&'s QualifiedName> {
    let stays_local: BTreeSet<&QualifiedName> = tables
        .iter()
        .filter(|t| t.role == Role::Local || t.blocked)
        .map(|t| &t.name)
        .collect();
    graph.reached_from(&stays_local)
}

/// Tables already in Citus whose coordinator heap still holds rows: an earlier conversion
/// stopped (or was done by hand) before the local data was removed.
fn cleanup_steps(
    schema: &Schema,
    graph: &FkGraph,
    tables: &[TablePlan],
    layer: usize,
) -> Vec<Step> {
    let referenced_locally = held_by_local(graph, tables);
    tables
        .iter()
        .filter(|t| t.state == State::Done && t.role.is_citus())
        .filter(|t| matches!(t.live, Live::Distributed { .. } | Live::Reference))
        .filter(|t| schema.tables[&t.name].local_bytes > 0)
        .filter(|t| !referenced_locally.contains(&t.name))
        .map(|t| Step {
            action: Action::TruncateLocalData {
                table: t.name.clone(),
            },
            reason: Reason::EarlierLeftoverRows,
            layer,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::plan::testutil::*;

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
        // The key goes down right before the first of its tables converts (teams, after
        // tenants and companies) and comes back right after the second (users): a run that
        // fails earlier or later has it in place.
        let kinds: Vec<StepKind> = p.steps.iter().map(|s| s.kind()).collect();
        let pos = |k| kinds.iter().position(|x| *x == k).unwrap();
        let converts = |name: &str| {
            p.steps
                .iter()
                .position(|s| {
                    s.kind() == StepKind::CreateDistributedTable
                        && s.table().is_some_and(|t| t.name == name)
                })
                .unwrap()
        };
        assert_eq!(pos(StepKind::DropForeignKey) + 1, converts("teams"));
        assert!(pos(StepKind::DropForeignKey) > converts("companies"));
        assert_eq!(pos(StepKind::RestoreForeignKey), converts("users") + 1);
        assert_eq!(
            pos(StepKind::ValidateForeignKey),
            pos(StepKind::RestoreForeignKey) + 1
        );
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
                .col("country", "text")
                .pk(&["id"])
                .fk("bc_country", &["country"], "countries", &["code"]),
        ]);
        let p = run(&s);
        assert_eq!(role_of(&p, "exports"), (Role::Local, false));
        assert_eq!(role_of(&p, "blocked_child"), (Role::Distributed, true));
        let truncs = step_tables(&p, StepKind::TruncateLocalData);
        // A distributed table is never left with a plain referrer (the closure holds it back
        // instead), but a reference table may be.
        assert_eq!(
            truncs,
            ["tickets", "offices", "tenants"],
            "countries (a local and a blocked referrer) waits"
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
                .find(|s| {
                    s.kind() == StepKind::CreateDistributedTable && s.table() == Some(&q(name))
                })
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
}
