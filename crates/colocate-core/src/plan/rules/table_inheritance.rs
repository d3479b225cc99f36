//! `table-inheritance`: Citus refuses tables that inherit or are inherited from (INHERITS).

use super::{Context, Rule};
use crate::plan::{Code, Finding};
use crate::schema::Table;

pub(in crate::plan) const RULE: Rule = Rule {
    code: Code::TableInheritance,
    check,
};

fn check(ctx: &Context, t: &Table, out: &mut Vec<Finding>) {
    if (t.inherits.is_empty() && !t.has_inheritors)
        || !ctx.role(&t.name).is_some_and(|r| r.is_citus())
    {
        return;
    }
    out.push(Finding::blocker(
        Code::TableInheritance,
        &t.name,
        format!(
            "{} uses table inheritance (INHERITS), which Citus refuses",
            t.name
        ),
    ));
}

#[cfg(test)]
mod tests {
    use crate::plan::testutil::*;

    #[test]
    fn inheritance_blocks() {
        let mut inh = child("inherited").0;
        inh.inherits.push(q("base"));
        let p = run(&schema(vec![tenants(), T(inh)]));
        assert_eq!(codes(&p, "inherited"), [Code::TableInheritance]);
    }
}
