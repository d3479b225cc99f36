//! `local-references-distributed`: a table without a tenant column (local or reference) cannot
//! keep a foreign key to a distributed table.

use super::{Context, Rule};
use crate::decision::{Choice, DecisionKind};
use crate::plan::change::Change;
use crate::plan::fixes::display_col;
use crate::plan::{Case, Code, Finding, Role, Severity};
use crate::schema::Table;

pub(in crate::plan) const RULE: Rule = Rule {
    code: Code::LocalReferencesDistributed,
    check,
};

fn check(ctx: &Context, t: &Table, out: &mut Vec<Finding>) {
    for (fk, role, target) in ctx.foreign_keys(t) {
        if !matches!(role, Role::Local | Role::Reference) || !target.is_distributed() {
            continue;
        }
        let tail = format!(
            "its foreign key {} references distributed table {}: foreign keys from {} tables to distributed tables are not supported",
            display_col(&fk.name),
            fk.ref_table,
            role.label()
        );
        let drop = Change::DropForeignKey {
            table: t.name.clone(),
            key: fk.name.clone(),
        };
        let forced = ctx.reason(&t.name).is_some_and(|r| {
            r.starts_with("forced by") || r.starts_with("kept ") || r.starts_with("made ")
        });
        let (message, case) = match ctx.tenant_column(&t.name) {
            // A table with a tenant column is reference or local only because configuration
            // says so: say that; keeping it so means dropping the key.
            Some(c) => (
                format!(
                    "{} has tenant column {} but is a {} table ({}), and {tail}",
                    t.name,
                    display_col(c),
                    role.label(),
                    ctx.reason(&t.name).unwrap_or("by configuration"),
                ),
                Case::new(
                    DecisionKind::LocalReferencesDistributed,
                    Some(&fk.name),
                    vec![(Choice::DropKeys, Ok(vec![drop]))],
                ),
            ),
            None if forced => (
                format!("{} has no tenant column but {tail}", t.name),
                Case::new(
                    DecisionKind::LocalReferencesDistributed,
                    Some(&fk.name),
                    vec![(Choice::DropKeys, Ok(vec![drop]))],
                ),
            ),
            // A table without a tenant column that hangs off a tenant table: its rows belong
            // to the parent row's tenant.
            None => (
                format!("{} has no tenant column but {tail}", t.name),
                Case::new(
                    DecisionKind::TenantLessChild,
                    Some(&fk.name),
                    vec![
                        (Choice::AddTenantColumn, ctx.add_tenant_column(t)),
                        (
                            Choice::ReferenceDropKey,
                            Ok(vec![
                                Change::SetRole {
                                    table: t.name.clone(),
                                    role: Role::Reference,
                                },
                                drop.clone(),
                            ]),
                        ),
                        (
                            Choice::LocalDropKey,
                            Ok(vec![
                                Change::SetRole {
                                    table: t.name.clone(),
                                    role: Role::Local,
                                },
                                drop,
                            ]),
                        ),
                    ],
                ),
            ),
        };
        out.push(
            Finding::new(
                Code::LocalReferencesDistributed,
                Severity::Blocker,
                &t.name,
                message,
                None,
                true,
            )
            .deciding(case),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::plan::testutil::*;

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
        let f = &p.findings[0];
        assert!(f.message.starts_with("public.search_index has no tenant column but its foreign key search_ticket_fkey references distributed table public.tickets"), "{}", f.message);
        // It hangs off a tenant table: the tenant-less-child decision, all three choices open.
        let case = f.decision.as_ref().unwrap();
        assert_eq!(case.kind, DecisionKind::TenantLessChild);
        assert_eq!(
            case.choices,
            [
                Choice::AddTenantColumn,
                Choice::ReferenceDropKey,
                Choice::LocalDropKey
            ]
        );
    }

    /// `reference = ["t01"]` for a table that has a tenant column: the message says the table
    /// was forced, not that it has no tenant column.
    #[test]
    fn a_table_with_a_tenant_column_forced_reference_is_not_said_to_have_none() {
        let s = schema(vec![
            tenants(),
            child("tickets"),
            child("t01").col("ticket_id", "bigint").fk(
                "t01_ticket_fkey",
                &["tenant", "ticket_id"],
                "tickets",
                &["tenant", "id"],
            ),
        ]);
        let config = DistributionConfig {
            reference: vec![Forced::Name("t01".into())],
            ..Default::default()
        };
        let p = plan(&s, &config);
        let f: Vec<&Finding> = p
            .findings
            .iter()
            .filter(|f| f.code == Code::LocalReferencesDistributed)
            .collect();
        assert_eq!(
            f.len(),
            2,
            "its keys to tenants and tickets: {:?}",
            p.findings
        );
        for f in f {
            assert!(!f.message.contains("no tenant column"), "{}", f.message);
            assert!(
                f.message.starts_with("public.t01 has tenant column tenant but is a reference table (forced by distribution.reference"),
                "{}",
                f.message
            );
            // Kept a reference table by configuration: dropping the keys is the decision.
            let case = f.decision.as_ref().unwrap();
            assert_eq!(case.kind, DecisionKind::LocalReferencesDistributed);
            assert_eq!(case.choices, [Choice::DropKeys]);
        }
    }
}
