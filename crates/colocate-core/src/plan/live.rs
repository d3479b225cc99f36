//! The plan against the live Citus metadata: what each table is now, and whether that is
//! done, still to do, or a conflict.

use std::collections::BTreeSet;

use super::classify::Classification;
use super::fixes::{alter_distributed, display_col};
use super::{Code, Finding, Live, Role, Severity, State, TablePlan};
use crate::schema::{CitusKind, QualifiedName, Schema};

/// Every table with its role and live state; `Pending` until [`diff`] says otherwise.
pub(super) fn table_plans(
    schema: &Schema,
    classes: &Classification,
    blocked: &BTreeSet<QualifiedName>,
) -> Vec<TablePlan> {
    schema
        .tables
        .values()
        .map(|t| {
            let role = classes.roles[&t.name];
            let live = match &t.citus {
                None => Live::None,
                Some(c) => match c.kind {
                    CitusKind::Distributed => Live::Distributed {
                        column: c.column.clone().unwrap_or_default(),
                        colocation_id: c.colocation_id,
                    },
                    CitusKind::Reference => Live::Reference,
                    CitusKind::CitusLocal => Live::CitusLocal,
                },
            };
            let is_blocked = blocked.contains(&t.name);
            TablePlan {
                name: t.name.clone(),
                role,
                blocked: is_blocked,
                column: classes
                    .columns
                    .get(&t.name)
                    .cloned()
                    .filter(|_| role.is_distributed()),
                colocate_with: match role {
                    Role::Distributed => classes.root.clone(),
                    _ => None,
                },
                reason: classes.reasons.get(&t.name).cloned().unwrap_or_default(),
                live,
                state: if is_blocked {
                    State::Blocked
                } else {
                    State::Pending
                },
                partitions: t.partitions.clone(),
                fixable: false,
                unsafe_triggers: false,
            }
        })
        .collect()
}

/// Compare with what Citus says now: tables already as planned are done, tables placed
/// differently are conflicts.
pub(super) fn diff(
    root: Option<&QualifiedName>,
    tables: &mut [TablePlan],
    findings: &mut Vec<Finding>,
) {
    let root_group = root
        .and_then(|r| tables.iter().find(|t| &t.name == r))
        .and_then(|t| match &t.live {
            Live::Distributed { colocation_id, .. } => Some(*colocation_id),
            _ => None,
        });
    for t in tables.iter_mut() {
        let conflict: Option<(Code, String, Option<String>)> = match (&t.live, t.role) {
            (Live::None | Live::CitusLocal, Role::Local) => {
                t.state = State::Done;
                None
            }
            (Live::None | Live::CitusLocal, _) => None,
            (Live::Reference, Role::Reference) => {
                t.state = State::Done;
                None
            }
            (
                Live::Distributed {
                    column,
                    colocation_id,
                },
                Role::Root | Role::Distributed,
            ) => {
                let want = t.column.clone().unwrap_or_default();
                if *column != want {
                    Some((
                        Code::DistributedByWrongColumn,
                        format!(
                            "{} is distributed by {} but the plan distributes it by {}",
                            t.name,
                            display_col(column),
                            display_col(&want)
                        ),
                        Some(alter_distributed(&t.name, &want, t.colocate_with.as_ref())),
                    ))
                } else if t.role == Role::Distributed
                    && root_group.is_some_and(|g| g != *colocation_id)
                {
                    Some((
                        Code::WrongColocationGroup,
                        format!(
                            "{} is in colocation group {colocation_id}, not in the root's group {}",
                            t.name,
                            root_group.unwrap_or_default()
                        ),
                        Some(alter_distributed(&t.name, &want, root)),
                    ))
                } else {
                    t.state = State::Done;
                    None
                }
            }
            (live, role) => Some((
                Code::WrongCitusTableType,
                format!(
                    "{} is {} in Citus but the plan makes it {}",
                    t.name,
                    match live {
                        Live::Distributed { .. } => "a distributed table",
                        Live::Reference => "a reference table",
                        _ => "a Citus local table",
                    },
                    match role {
                        Role::Local => "local".to_string(),
                        r => format!("a {} table", r.label()),
                    }
                ),
                Some(format!(
                    "SELECT undistribute_table({}, cascade_via_foreign_keys => true);",
                    t.name.regclass_literal()
                )),
            )),
        };
        if let Some((code, msg, fix)) = conflict {
            t.state = State::Conflict;
            findings.push(Finding {
                decision: None,
                automatic: None,
                fixed_by: None,
                subject: None,
                code,
                severity: Severity::Conflict,
                table: t.name.clone(),
                message: msg,
                fix,
                manual: false,
                waits_for: None,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::plan::testutil::*;

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
}
