//! `local-references-distributed`: a table without a tenant column (local or reference) cannot
//! keep a foreign key to a distributed table.

use super::{Context, Rule};
use crate::plan::fixes::advice_or_drop_key;
use crate::plan::fixes::display_col;
use crate::plan::{Code, Finding, Role, Severity};
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
        // A table with a tenant column is reference or local only because configuration says
        // so: say that, and that the way out is to let it be distributed.
        let (message, advice) = match ctx.tenant_column(&t.name) {
            Some(c) => (
                format!(
                    "{} has tenant column {} but is a {} table ({}), and {tail}",
                    t.name,
                    display_col(c),
                    role.label(),
                    ctx.reason(&t.name).unwrap_or("by configuration"),
                ),
                format!(
                    "let {} be distributed by {} (take it out of that setting), or drop the key:",
                    t.name,
                    display_col(c)
                ),
            ),
            None => (
                format!("{} has no tenant column but {tail}", t.name),
                format!(
                    "add a tenant column to {} and include it in the key, or drop the key:",
                    t.name
                ),
            ),
        };
        out.push(Finding::new(
            Code::LocalReferencesDistributed,
            Severity::Blocker,
            &t.name,
            message,
            Some(advice_or_drop_key(&advice, t, &fk.name)),
            true,
        ));
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
            let fix = f.fix.as_deref().unwrap_or_default();
            assert!(
                fix.contains("let public.t01 be distributed by tenant"),
                "{fix}"
            );
        }
    }
}
