//! `distribution-column-generated`: Citus refuses a stored generated distribution column.

use super::{Context, Rule};
use crate::plan::fixes::display_col;
use crate::plan::{Code, Finding};
use crate::schema::Table;

pub(in crate::plan) const RULE: Rule = Rule {
    code: Code::DistributionColumnGenerated,
    check,
};

fn check(ctx: &Context, t: &Table, out: &mut Vec<Finding>) {
    let Some((col, c)) = ctx.distribution_column(t) else {
        return;
    };
    if c.generated {
        out.push(Finding::blocker(
            Code::DistributionColumnGenerated,
            &t.name,
            format!(
                "{}.{} is a stored generated column",
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
    fn a_generated_column_blocks() {
        let mut gen = tbl("gen").tenant().pk(&["tenant", "id"]).0;
        gen.columns[0].generated = true;
        let p = run(&schema(vec![tenants(), T(gen)]));
        assert_eq!(codes(&p, "gen"), [Code::DistributionColumnGenerated]);
    }
}
