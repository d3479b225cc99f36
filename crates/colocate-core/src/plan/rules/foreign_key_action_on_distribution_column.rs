//! `foreign-key-action-on-distribution-column`: Citus 13.2 refuses SET NULL / SET DEFAULT on
//! delete for any key that includes the distribution column, even PostgreSQL 15's column list that
//! leaves it out (EnsureSupportedFKeyOnDistKey), and SET NULL / SET DEFAULT / CASCADE on update.

use super::{Context, Rule};
use crate::decision::{Choice, DecisionKind};
use crate::plan::change::Change;
use crate::plan::fixes::display_col;
use crate::plan::{Case, Code, Finding, Severity};
use crate::schema::{FkAction, Table};

pub(in crate::plan) const RULE: Rule = Rule {
    code: Code::ForeignKeyActionOnDistributionColumn,
    check,
};

fn check(ctx: &Context, t: &Table, out: &mut Vec<Finding>) {
    for (fk, _, _) in ctx.foreign_keys(t) {
        let Some((sc, _)) = ctx.distributed_pair(t, fk) else {
            continue;
        };
        let includes_dist = fk.columns.iter().any(|c| c == sc);
        let bad_delete =
            matches!(fk.on_delete, FkAction::SetNull | FkAction::SetDefault) && includes_dist;
        let bad_update = matches!(
            fk.on_update,
            FkAction::SetNull | FkAction::SetDefault | FkAction::Cascade
        ) && includes_dist;
        if !bad_delete && !bad_update {
            continue;
        }
        let mut which = Vec::new();
        if bad_delete {
            which.push(format!("ON DELETE {}", fk.on_delete.sql()));
        }
        if bad_update {
            which.push(format!("ON UPDATE {}", fk.on_update.sql()));
        }
        // NO ACTION in place of what Citus refuses; the other action stays as it was.
        let no_action = Change::RecreateForeignKey {
            table: t.name.clone(),
            key: fk.name.clone(),
            columns: fk.columns.clone(),
            ref_columns: fk.ref_columns.clone(),
            on_delete: if bad_delete {
                FkAction::NoAction
            } else {
                fk.on_delete
            },
            on_update: if bad_update {
                FkAction::NoAction
            } else {
                fk.on_update
            },
            on_delete_columns: if bad_delete {
                Vec::new()
            } else {
                fk.on_delete_columns.clone()
            },
        };
        let drop = Change::DropForeignKey {
            table: t.name.clone(),
            key: fk.name.clone(),
        };
        out.push(
            Finding::new(
                Code::ForeignKeyActionOnDistributionColumn,
                Severity::Blocker,
                &t.name,
                format!(
                    "foreign key {} of {} has {}, which Citus refuses on a key that includes distribution column {}",
                    display_col(&fk.name),
                    t.name,
                    which.join(" and "),
                    display_col(sc)
                ),
                None,
                true,
            )
            .deciding(Case::new(
                DecisionKind::KeyActionOnTenant,
                Some(&fk.name),
                vec![(Choice::NoAction, Ok(vec![no_action])), (Choice::DropKey, Ok(vec![drop]))],
            )),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::plan::testutil::*;

    #[test]
    fn foreign_key_actions_on_the_distribution_column() {
        let mut set_null_cols = child("b")
            .col("a_id", "bigint")
            .fk_actions(
                "b_a_fkey",
                &["tenant", "a_id"],
                "a",
                &["tenant", "id"],
                FkAction::SetNull,
                FkAction::NoAction,
            )
            .0;
        set_null_cols.foreign_keys[1].on_delete_columns = vec!["a_id".into()];
        let s = schema(vec![
            tenants(),
            child("a"),
            T(set_null_cols),
            child("c").col("a_id", "bigint").fk_actions(
                "c_a_fkey",
                &["tenant", "a_id"],
                "a",
                &["tenant", "id"],
                FkAction::SetNull,
                FkAction::NoAction,
            ),
            child("d").col("a_id", "bigint").fk_actions(
                "d_a_fkey",
                &["tenant", "a_id"],
                "a",
                &["tenant", "id"],
                FkAction::Cascade,
                FkAction::Cascade,
            ),
        ]);
        let p = run(&s);
        // Citus refuses SET NULL even with a column list that keeps the tenant.
        assert_eq!(codes(&p, "b"), [Code::ForeignKeyActionOnDistributionColumn]);
        assert_eq!(codes(&p, "c"), [Code::ForeignKeyActionOnDistributionColumn]);
        let f = p.findings.iter().find(|f| f.table == q("c")).unwrap();
        assert!(f.manual);
        let case = f.decision.as_ref().unwrap();
        assert_eq!(case.kind, DecisionKind::KeyActionOnTenant);
        assert_eq!(case.constraint.as_deref(), Some("c_a_fkey"));
        assert_eq!(case.choices, [Choice::NoAction, Choice::DropKey]);
        let Ok([Change::RecreateForeignKey { on_delete, .. }]) = case.changes(Choice::NoAction)
        else {
            panic!("{case:?}")
        };
        assert_eq!(*on_delete, FkAction::NoAction);
        assert_eq!(codes(&p, "d"), [Code::ForeignKeyActionOnDistributionColumn]);
        let f = p.findings.iter().find(|f| f.table == q("d")).unwrap();
        assert!(
            f.message.contains("ON UPDATE CASCADE") && !f.message.contains("ON DELETE"),
            "{}",
            f.message
        );
        // NO ACTION only where Citus refuses: the delete action stays.
        let case = f.decision.as_ref().unwrap();
        let Ok(
            [Change::RecreateForeignKey {
                on_delete,
                on_update,
                ..
            }],
        ) = case.changes(Choice::NoAction)
        else {
            panic!("{case:?}")
        };
        assert_eq!(
            (*on_delete, *on_update),
            (FkAction::Cascade, FkAction::NoAction)
        );
    }
}
