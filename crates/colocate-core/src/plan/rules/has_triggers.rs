//! `has-triggers`: Citus refuses to convert a table with triggers.

use super::{Context, Rule};
use crate::plan::{Code, Finding, Severity};
use crate::schema::Table;
use postgres_protocol::escape::escape_identifier;

pub(in crate::plan) const RULE: Rule = Rule {
    code: Code::HasTriggers,
    check,
};

fn check(ctx: &Context, t: &Table, out: &mut Vec<Finding>) {
    if t.triggers.is_empty() || !ctx.role(&t.name).is_some_and(|r| r.is_citus()) {
        return;
    }
    let names: Vec<&str> = t.triggers.iter().map(|x| x.name.as_str()).collect();
    let fix = t
        .triggers
        .iter()
        .map(|x| {
            format!(
                "DROP TRIGGER {} ON {};",
                escape_identifier(&x.name),
                t.name.sql()
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    out.push(Finding::new(
        Code::HasTriggers,
        Severity::Blocker,
        &t.name,
        format!(
            "{} has {} {}: Citus refuses to convert tables with triggers",
            t.name,
            crate::words::noun(names.len(), "trigger"),
            names.join(", ")
        ),
        Some(format!(
            "-- decide first: move the logic into the application, or accept citus.enable_unsafe_triggers\n{fix}"
        )),
        true,
    ));
}

#[cfg(test)]
mod tests {
    use crate::plan::testutil::*;

    #[test]
    fn triggers_block_with_a_manual_fix() {
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
        assert!(f
            .fix
            .as_deref()
            .unwrap()
            .contains("DROP TRIGGER \"set_updated_at\" ON \"public\".\"audited\";"));
    }
}
