//! `distribution-column-not-hashable`: Citus hashes the distribution column; its type needs a
//! hash function.

use super::{Context, Rule};
use crate::plan::fixes::display_col;
use crate::plan::{Code, Finding};
use crate::schema::Table;

pub(in crate::plan) const RULE: Rule = Rule {
    code: Code::DistributionColumnNotHashable,
    check,
};

fn check(ctx: &Context, t: &Table, out: &mut Vec<Finding>) {
    let Some((col, c)) = ctx.distribution_column(t) else {
        return;
    };
    if !c.hashable {
        out.push(Finding::blocker(
            Code::DistributionColumnNotHashable,
            &t.name,
            format!(
                "{}.{} has type {} which has no hash function",
                t.name,
                display_col(col),
                c.type_name
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::plan::testutil::*;

    #[test]
    fn a_column_without_a_hash_function_blocks() {
        let mut nohash = tbl("nohash").tenant().pk(&["tenant", "id"]).0;
        nohash.columns[0].hashable = false;
        let p = run(&schema(vec![tenants(), T(nohash)]));
        assert_eq!(codes(&p, "nohash"), [Code::DistributionColumnNotHashable]);
    }
}
