//! `key-missing-distribution-column`: every primary key, unique constraint, unique index and
//! exclusion constraint of a distributed table must include its distribution column.

use super::{Context, Rule};
use crate::decision::{Choice, DecisionKind};
use crate::plan::change::Change;
use crate::plan::fixes::{display_col, key_columns, key_label};
use crate::plan::{Case, Code, Finding, Severity};
use crate::schema::Table;

pub(in crate::plan) const RULE: Rule = Rule {
    code: Code::KeyMissingDistributionColumn,
    check,
};

fn check(ctx: &Context, t: &Table, out: &mut Vec<Finding>) {
    let Some((col, _)) = ctx.distribution_column(t) else {
        return;
    };
    for k in t.keys.iter().filter(|k| !k.includes(col)) {
        let widen = ctx.widen(t, k, col);
        // Adding the tenant column keeps the key's meaning only where one of its columns is a
        // surrogate the database hands out (unique across tenants by construction); on a
        // natural or external value (a token, an email, a provider's id) it allows the same
        // value in two tenants: a decision, never automatic.
        let surrogate = k
            .columns
            .iter()
            .flatten()
            .any(|c| t.column(c).is_some_and(|c| c.is_surrogate()));
        let base = format!(
            "{} {} ({}) does not include distribution column {}",
            key_label(k),
            display_col(&k.name),
            key_columns(k),
            display_col(col)
        );
        let finding = |message: String, manual: bool| {
            Finding::new(
                Code::KeyMissingDistributionColumn,
                Severity::Blocker,
                &t.name,
                message,
                None,
                manual,
            )
        };
        match widen {
            Ok(changes) if surrogate => out.push(finding(base, false).fixed_by(changes)),
            Err(why) if surrogate => out.push(finding(format!("{base}; {why}"), true)),
            widen => {
                let dependents = ctx.graph.key_dependents(&t.name, k);
                let drop = if dependents.is_empty() {
                    Ok(vec![Change::DropKey {
                        table: t.name.clone(),
                        key: k.name.clone(),
                    }])
                } else {
                    Err(format!(
                        "foreign keys use it ({})",
                        dependents
                            .iter()
                            .map(|(s, fk)| format!("{} of {}", display_col(&fk.name), s.name))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                };
                let message = format!(
                    "{base}; ({}) is not a surrogate id, so adding the tenant column makes it unique per tenant only, no longer across tenants",
                    key_columns(k),
                );
                out.push(finding(message, true).deciding(Case::new(
                    DecisionKind::UniqueWithoutTenant,
                    Some(&k.name),
                    vec![
                        (Choice::Widen, widen),
                        (Choice::KeepLocal, ctx.keep_local(t)),
                        (Choice::DropConstraint, drop),
                    ],
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::plan::testutil::*;

    #[test]
    fn keys_without_the_distribution_column_are_blocked_with_fixes() {
        let s = schema(vec![
            tenants(),
            tbl("tickets").tenant().pk(&["id"]),
            child("comments").col("ticket_id", "bigint").fk(
                "comments_ticket_fkey",
                &["ticket_id"],
                "tickets",
                &["id"],
            ),
            child("assets")
                .col("serial", "text")
                .key(KeyKind::Unique, "assets_serial_key", &["serial"])
                .key(KeyKind::UniqueIndex, "assets_ext_idx", &["serial", "id"])
                .key(KeyKind::Exclusion, "assets_excl", &["id"]),
        ]);
        let p = run(&s);
        assert_eq!(role_of(&p, "tickets"), (Role::Distributed, true));
        let pk = p.findings.iter().find(|f| f.table == q("tickets")).unwrap();
        assert_eq!(pk.code, Code::KeyMissingDistributionColumn);
        assert!(
            pk.message.contains("primary key tickets_pkey (id)"),
            "{}",
            pk.message
        );
        let fix = pk.fix.as_deref().unwrap();
        assert!(
            fix.contains("ALTER TABLE \"public\".\"comments\" DROP CONSTRAINT IF EXISTS \"comments_ticket_fkey\""),
            "dependent keys dropped first: {fix}"
        );
        let key = fix.find(
            "ALTER TABLE \"public\".\"tickets\" DROP CONSTRAINT IF EXISTS \"tickets_pkey\", ADD CONSTRAINT \"tickets_pkey\" PRIMARY KEY (\"tenant\", \"id\");"
        ).unwrap();
        // ...and re-created with the tenant column on both sides after it.
        let again = fix
            .find("ADD CONSTRAINT \"comments_ticket_fkey\" FOREIGN KEY (\"tenant\", \"ticket_id\") REFERENCES \"public\".\"tickets\" (\"tenant\", \"id\")")
            .unwrap();
        assert!(key < again, "{fix}");
        assert!(!pk.manual);
        // The referencing key is re-created with the tenant on both sides.
        let fk = p
            .findings
            .iter()
            .find(|f| f.code == Code::ForeignKeyMissingDistributionColumn)
            .unwrap();
        assert_eq!(fk.table, q("comments"));
        // Its own fix waits for the key it needs; the key's rebuild above re-creates it.
        assert_eq!(fk.fix, None);
        assert!(
            fk.message
                .ends_with("public.tickets has no key on (tenant, id) to re-create it against yet"),
            "{}",
            fk.message
        );
        let asset_codes = own_codes(&p, "assets");
        assert_eq!(
            asset_codes,
            [
                Code::KeyMissingDistributionColumn,
                Code::KeyMissingDistributionColumn,
                Code::KeyMissingDistributionColumn
            ]
        );
        // A unique key on a natural value is a decision; with the surrogate id it is not.
        let serial = p
            .findings
            .iter()
            .find(|f| f.message.contains("assets_serial_key"))
            .unwrap();
        let case = serial.decision.as_ref().unwrap();
        assert_eq!(case.kind, DecisionKind::UniqueWithoutTenant);
        assert_eq!(
            case.choices,
            [Choice::Widen, Choice::KeepLocal, Choice::DropConstraint]
        );
        assert!(
            serial.message.contains("is not a surrogate id"),
            "{}",
            serial.message
        );
        let excl = p
            .findings
            .iter()
            .find(|f| f.message.contains("exclusion"))
            .unwrap();
        assert!(excl.manual);
        let idx = p
            .findings
            .iter()
            .find(|f| f.message.contains("unique index"))
            .unwrap();
        assert!(idx.fix.as_deref().unwrap().contains(
            "CREATE UNIQUE INDEX \"assets_ext_idx\" ON \"public\".\"assets\" (\"tenant\", \"serial\", \"id\")"
        ));
        // Blocked tables get no steps, and neither does tenants, which they keep a key to.
        assert!(!step_tables(&p, StepKind::CreateDistributedTable).contains(&"tickets".to_string()));
        assert_eq!(codes(&p, "tenants"), [Code::ReferencedByBlockedTable]);
        assert!(step_tables(&p, StepKind::CreateDistributedTable).is_empty());
    }
}
