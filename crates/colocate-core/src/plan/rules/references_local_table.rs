//! `references-local-table`: a Citus table cannot reference a table that stays local.

use super::{Context, Rule};
use crate::plan::fixes::advice_or_drop_key;
use crate::plan::fixes::display_col;
use crate::plan::{Code, Finding, Role, Severity};
use crate::schema::Table;

pub(in crate::plan) const RULE: Rule = Rule {
    code: Code::ReferencesLocalTable,
    check,
};

fn check(ctx: &Context, t: &Table, out: &mut Vec<Finding>) {
    for (fk, role, target) in ctx.foreign_keys(t) {
        if !role.is_citus() || target != Role::Local {
            continue;
        }
        out.push(Finding::new(
            Code::ReferencesLocalTable,
            Severity::Blocker,
            &t.name,
            format!(
                "foreign key {} of {} references {}, which stays local: Citus tables cannot reference local tables",
                display_col(&fk.name),
                t.name,
                fk.ref_table
            ),
            Some(advice_or_drop_key(&format!(
                    "or make {} a reference table (distribution.reference)",
                    fk.ref_table
                ), t, &fk.name)),
            true,
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::plan::testutil::*;

    #[test]
    fn a_reference_table_cannot_reference_a_forced_local_table() {
        let s = schema(vec![
            tbl("lookup").col("code", "text").fk(
                "lookup_region_fkey",
                &["code"],
                "regions",
                &["code"],
            ),
            tbl("regions").col("code", "text").pk(&["code"]),
        ]);
        let config = DistributionConfig {
            reference: vec![Forced::Name("lookup".into())],
            local: vec![Forced::Name("regions".into())],
            ..Default::default()
        };
        let p = plan(&s, &config);
        assert_eq!(codes(&p, "lookup"), [Code::ReferencesLocalTable]);
        let f = p.findings.iter().find(|f| f.table == q("lookup")).unwrap();
        assert!(f.fix.as_deref().unwrap().ends_with(
            "ALTER TABLE \"public\".\"lookup\" DROP CONSTRAINT \"lookup_region_fkey\";"
        ));
    }
}
