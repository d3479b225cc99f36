//! `local-references-reference` (a warning): Citus adds a local table that references a reference
//! table to its metadata as a Citus local table.

use super::{Context, Rule};
use crate::plan::fixes::display_col;
use crate::plan::{Code, Finding, Role, Severity};
use crate::schema::Table;

pub(in crate::plan) const RULE: Rule = Rule {
    code: Code::LocalReferencesReference,
    check,
};

fn check(ctx: &Context, t: &Table, out: &mut Vec<Finding>) {
    for (fk, role, target) in ctx.foreign_keys(t) {
        if role != Role::Local || target != Role::Reference {
            continue;
        }
        out.push(Finding::new(
            Code::LocalReferencesReference,
            Severity::Warning,
            &t.name,
            format!(
                "local table {} references reference table {} ({}): Citus adds it to its metadata as a Citus local table",
                t.name,
                fk.ref_table,
                display_col(&fk.name)
            ),
            None,
            false,
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::plan::testutil::*;

    #[test]
    fn a_local_table_referencing_a_reference_table_is_a_warning() {
        let s = schema(vec![
            tenants(),
            child("tickets").col("country", "text").fk(
                "tickets_country_fkey",
                &["country"],
                "countries",
                &["code"],
            ),
            tbl("countries").col("code", "text").pk(&["code"]),
            tbl("exports").col("country", "text").fk(
                "exports_country_fkey",
                &["country"],
                "countries",
                &["code"],
            ),
        ]);
        let p = run(&s);
        assert_eq!(codes(&p, "exports"), [Code::LocalReferencesReference]);
        assert_eq!(role_of(&p, "exports"), (Role::Local, false));
    }
}
