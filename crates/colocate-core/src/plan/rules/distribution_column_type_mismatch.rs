//! `distribution-column-type-mismatch`: tables can only be colocated when their distribution
//! columns have the root's type.

use super::{Context, Rule};
use crate::decision::{Choice, DecisionKind};
use crate::plan::change::Change;
use crate::plan::fixes::display_col;
use crate::plan::Role;
use crate::plan::{Case, Code, Finding, Severity};
use crate::schema::Table;

pub(in crate::plan) const RULE: Rule = Rule {
    code: Code::DistributionColumnTypeMismatch,
    check,
};

fn check(ctx: &Context, t: &Table, out: &mut Vec<Finding>) {
    let (Some((col, c)), Some(rt)) = (ctx.distribution_column(t), ctx.root_type) else {
        return;
    };
    if c.type_name == rt || ctx.role(&t.name) == Some(Role::Root) {
        return;
    }
    out.push(
        Finding::new(
            Code::DistributionColumnTypeMismatch,
            Severity::Blocker,
            &t.name,
            format!(
                "{}.{} is {} but the root's column is {rt}: tables can only be colocated when the types match",
                t.name,
                display_col(col),
                c.type_name
            ),
            None,
            true,
        )
        .deciding(Case::new(
            DecisionKind::TenantColumnType,
            None,
            vec![
                (
                    Choice::Convert,
                    Ok(vec![Change::ConvertColumn {
                        table: t.name.clone(),
                        column: col.to_string(),
                        to: rt.to_string(),
                    }]),
                ),
                (Choice::KeepLocal, ctx.keep_local(t)),
            ],
        )),
    );
}

#[cfg(test)]
mod tests {
    use crate::plan::testutil::*;

    #[test]
    fn a_column_of_another_type_than_the_roots_blocks() {
        let s = schema(vec![
            tenants(),
            tbl("legacy")
                .col("tenant", "character varying(36)")
                .col("id", "bigint")
                .pk(&["tenant", "id"]),
        ]);
        let p = run(&s);
        assert_eq!(codes(&p, "legacy"), [Code::DistributionColumnTypeMismatch]);
        let fix = p.findings.iter().find(|f| f.table == q("legacy")).unwrap();
        assert!(fix.manual);
        assert!(fix.message.contains("character varying(36)") && fix.message.contains("uuid"));
    }
}
