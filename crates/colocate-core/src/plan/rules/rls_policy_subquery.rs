//! `rls-policy-subquery`: Citus refuses row level security policies that use a subquery.

use super::{Context, Rule};
use crate::plan::fixes::display_col;
use crate::plan::{Code, Finding};
use crate::schema::Table;

pub(in crate::plan) const RULE: Rule = Rule {
    code: Code::RlsPolicySubquery,
    check,
};

fn check(ctx: &Context, t: &Table, out: &mut Vec<Finding>) {
    if ctx.distribution_column(t).is_none() {
        return;
    }
    for p in &t.policies {
        let text = format!(
            "{} {}",
            p.using.as_deref().unwrap_or(""),
            p.with_check.as_deref().unwrap_or("")
        )
        .to_ascii_lowercase();
        if text
            .split(|ch: char| !ch.is_ascii_alphanumeric() && ch != '_')
            .any(|w| w == "select")
        {
            out.push(Finding::blocker(
                Code::RlsPolicySubquery,
                &t.name,
                format!(
                    "row level security policy {} on {} uses a subquery, which Citus refuses",
                    display_col(&p.name),
                    t.name
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::plan::testutil::*;

    #[test]
    fn a_policy_with_a_subquery_blocks_a_simple_one_does_not() {
        let mut rls = child("secured").0;
        rls.rls_enabled = true;
        rls.policies.push(Policy {
            name: "tenant_isolation".into(),
            using: Some("(tenant = (current_setting('app.tenant'))::uuid)".into()),
            with_check: None,
        });
        let mut sub = child("subq").0;
        sub.policies.push(Policy {
            name: "members".into(),
            using: Some("(EXISTS ( SELECT 1 FROM members m WHERE m.id = id))".into()),
            with_check: None,
        });
        let p = run(&schema(vec![tenants(), T(rls), T(sub)]));
        assert!(
            own_codes(&p, "secured").is_empty(),
            "a simple policy converts"
        );
        assert_eq!(codes(&p, "subq"), [Code::RlsPolicySubquery]);
    }
}
