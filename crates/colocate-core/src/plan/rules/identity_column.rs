//! `identity-column` (a warning): the table converts, but `undistribute_table` and
//! `alter_distributed_table` refuse tables with identity columns.

use super::{Context, Rule};
use crate::plan::{Code, Finding, Severity};
use crate::schema::Table;

pub(in crate::plan) const RULE: Rule = Rule {
    code: Code::IdentityColumn,
    check,
};

fn check(ctx: &Context, t: &Table, out: &mut Vec<Finding>) {
    if ctx.distribution_column(t).is_none() {
        return;
    }
    let identity: Vec<&str> = t
        .columns
        .iter()
        .filter(|c| c.identity.is_some())
        .map(|c| c.name.as_str())
        .collect();
    if identity.is_empty() {
        return;
    }
    out.push(Finding::new(
        Code::IdentityColumn,
        Severity::Warning,
        &t.name,
        format!(
            "{} has identity {} {}: undistribute_table and alter_distributed_table refuse such tables",
            t.name,
            crate::words::noun(identity.len(), "column"),
            identity.join(", ")
        ),
        None,
        false,
    ));
}

#[cfg(test)]
mod tests {
    use crate::plan::testutil::*;

    #[test]
    fn an_identity_column_is_a_warning() {
        let mut ident = tbl("ident").tenant().pk(&["tenant", "id"]).0;
        ident.columns[1].identity = Some('a');
        let p = run(&schema(vec![tenants(), T(ident)]));
        assert_eq!(codes(&p, "ident"), [Code::IdentityColumn]);
        assert!(!p.table(&q("ident")).unwrap().blocked);
    }
}
