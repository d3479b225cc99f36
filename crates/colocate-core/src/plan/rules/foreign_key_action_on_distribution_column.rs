//! `foreign-key-action-on-distribution-column`: Citus 13.2 refuses SET NULL / SET DEFAULT on
//! delete for any key that includes the distribution column, even PostgreSQL 15's column list that
//! leaves it out (EnsureSupportedFKeyOnDistKey), and SET NULL / SET DEFAULT / CASCADE on update.

use postgres_protocol::escape::escape_identifier;

use super::{Context, Rule};
use crate::plan::fixes::{display_col, idents};
use crate::plan::{Code, Finding, Severity};
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
        let delete = if !bad_delete && fk.on_delete != FkAction::NoAction {
            format!(" ON DELETE {}", fk.on_delete.sql())
        } else {
            String::new()
        };
        let update = if !bad_update && fk.on_update != FkAction::NoAction {
            format!(" ON UPDATE {}", fk.on_update.sql())
        } else {
            String::new()
        };
        out.push(Finding::new(
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
            Some(format!(
                "-- decide first: the application must then do what the action did (e.g. clear the column)\n\
                 ALTER TABLE {t} DROP CONSTRAINT {n}, ADD CONSTRAINT {n} FOREIGN KEY ({cols}) REFERENCES {r} ({rcols}){delete}{update};",
                t = t.name.sql(),
                n = escape_identifier(&fk.name),
                cols = idents(&fk.columns),
                r = fk.ref_table.sql(),
                rcols = idents(&fk.ref_columns),
            )),
            true,
        ));
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
        let fix = f.fix.clone().unwrap();
        assert!(f.manual);
        assert!(
            fix.contains("REFERENCES \"public\".\"a\" (\"tenant\", \"id\");"),
            "{fix}"
        );
        assert!(!fix.contains("SET NULL"), "{fix}");
        assert_eq!(codes(&p, "d"), [Code::ForeignKeyActionOnDistributionColumn]);
        let f = p.findings.iter().find(|f| f.table == q("d")).unwrap();
        assert!(
            f.message.contains("ON UPDATE CASCADE") && !f.message.contains("ON DELETE"),
            "{}",
            f.message
        );
        let fix = f.fix.clone().unwrap();
        assert!(
            fix.contains("ON DELETE CASCADE") && !fix.contains("ON UPDATE"),
            "{fix}"
        );
    }
}
