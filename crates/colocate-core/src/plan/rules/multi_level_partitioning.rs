//! `multi-level-partitioning`: Citus refuses partitions that are partitioned themselves.

use super::{Context, Rule};
use crate::plan::{Code, Finding};
use crate::schema::Table;

pub(in crate::plan) const RULE: Rule = Rule {
    code: Code::MultiLevelPartitioning,
    check,
};

fn check(ctx: &Context, t: &Table, out: &mut Vec<Finding>) {
    if !t.multi_level_partition || !ctx.role(&t.name).is_some_and(|r| r.is_citus()) {
        return;
    }
    out.push(Finding::blocker(
        Code::MultiLevelPartitioning,
        &t.name,
        format!(
            "{} has multi-level partitioning, which Citus refuses",
            t.name
        ),
    ));
}

#[cfg(test)]
mod tests {
    use crate::plan::testutil::*;

    #[test]
    fn multi_level_partitioning_blocks() {
        let mut multi = child("multi").0;
        multi.kind = TableKind::Partitioned;
        multi.multi_level_partition = true;
        let p = run(&schema(vec![tenants(), T(multi)]));
        assert_eq!(codes(&p, "multi"), [Code::MultiLevelPartitioning]);
    }
}
