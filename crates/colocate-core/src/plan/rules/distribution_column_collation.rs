//! `distribution-column-collation`: Citus refuses a distribution column with a non-deterministic
//! collation.

use super::{Context, Rule};
use crate::plan::fixes::display_col;
use crate::plan::{Code, Finding};
use crate::schema::Table;

pub(in crate::plan) const RULE: Rule = Rule {
    code: Code::DistributionColumnCollation,
    check,
};

fn check(ctx: &Context, t: &Table, out: &mut Vec<Finding>) {
    let Some((col, c)) = ctx.distribution_column(t) else {
        return;
    };
    if !c.deterministic_collation {
        out.push(Finding::blocker(
            Code::DistributionColumnCollation,
            &t.name,
            format!(
                "{}.{} has a non-deterministic collation",
                t.name,
                display_col(col)
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::plan::testutil::*;

    #[test]
    fn a_non_deterministic_collation_blocks() {
        let mut coll = tbl("coll").tenant().pk(&["tenant", "id"]).0;
        coll.columns[0].deterministic_collation = false;
        let p = run(&schema(vec![tenants(), T(coll)]));
        assert_eq!(codes(&p, "coll"), [Code::DistributionColumnCollation]);
    }
}
