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
        out.push(Finding::new(
            Code::LocalReferencesDistributed,
            Severity::Blocker,
            &t.name,
            format!(
                "{} has no tenant column but its foreign key {} references distributed table {}: foreign keys from {} tables to distributed tables are not supported",
                t.name,
                display_col(&fk.name),
                fk.ref_table,
                role.label()
            ),
            Some(advice_or_drop_key(&format!(
                    "add a tenant column to {} and include it in the key, or drop the key:",
                    t.name
                ), t, &fk.name)),
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
    }
}
