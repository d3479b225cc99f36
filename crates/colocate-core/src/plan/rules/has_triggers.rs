//! `has-triggers`: Citus refuses to convert a table with triggers.

use super::{Context, Rule};
use crate::decision::{Choice, DecisionKind};
use crate::plan::change::Change;
use crate::plan::fixes::display_col;
use crate::plan::{Case, Code, Finding, Severity};
use crate::schema::Table;

pub(in crate::plan) const RULE: Rule = Rule {
    code: Code::HasTriggers,
    check,
};

fn check(ctx: &Context, t: &Table, out: &mut Vec<Finding>) {
    if t.triggers.is_empty() || !ctx.role(&t.name).is_some_and(|r| r.is_citus()) {
        return;
    }
    let names: Vec<String> = t.triggers.iter().map(|x| x.name.clone()).collect();
    let listed = names
        .iter()
        .map(|n| display_col(n))
        .collect::<Vec<_>>()
        .join(", ");
    if ctx.unsafe_triggers(&t.name) {
        out.push(Finding::new(
            Code::HasTriggers,
            Severity::Warning,
            &t.name,
            format!(
                "{} keeps {} {listed} by decision: it converts with citus.enable_unsafe_triggers, and they run on the shards, where they must only touch the same tenant's rows",
                t.name,
                crate::words::noun(names.len(), "trigger"),
            ),
            None,
            false,
        ));
        return;
    }
    out.push(
        Finding::new(
            Code::HasTriggers,
            Severity::Blocker,
            &t.name,
            format!(
                "{} has {} {listed}: Citus refuses to convert tables with triggers",
                t.name,
                crate::words::noun(names.len(), "trigger"),
            ),
            None,
            true,
        )
        .deciding(Case::new(
            DecisionKind::Triggers,
            None,
            vec![
                (
                    Choice::Drop,
                    Ok(vec![Change::DropTriggers {
                        table: t.name.clone(),
                        triggers: names,
                    }]),
                ),
                (
                    Choice::KeepUnsafe,
                    Ok(vec![Change::UnsafeTriggers {
                        table: t.name.clone(),
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
    fn triggers_are_a_decision() {
        let mut trig = child("audited").0;
        trig.triggers.push(Trigger {
            name: "set_updated_at".into(),
            definition: "CREATE TRIGGER ...".into(),
        });
        let p = run(&schema(vec![tenants(), T(trig)]));
        assert_eq!(codes(&p, "audited"), [Code::HasTriggers]);
        let f = p
            .findings
            .iter()
            .find(|f| f.code == Code::HasTriggers)
            .unwrap();
        assert!(f.manual);
        let case = f.decision.as_ref().unwrap();
        assert_eq!(case.kind, DecisionKind::Triggers);
        assert_eq!(
            case.choices,
            [Choice::Drop, Choice::KeepUnsafe, Choice::KeepLocal]
        );
        assert!(f.fix.as_deref().unwrap().contains("triggers = {"));
    }
}
