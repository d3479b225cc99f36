//! `foreign-key-missing-distribution-column`: a foreign key between distributed tables must pair
//! their distribution columns.

use super::{Context, Rule};
use crate::plan::change::Change;
use crate::plan::fixes::display_col;
use crate::plan::{Code, Finding, Severity};
use crate::schema::Table;

pub(in crate::plan) const RULE: Rule = Rule {
    code: Code::ForeignKeyMissingDistributionColumn,
    check,
};

fn check(ctx: &Context, t: &Table, out: &mut Vec<Finding>) {
    for (fk, _, _) in ctx.foreign_keys(t) {
        let Some((sc, tc)) = ctx.distributed_pair(t, fk) else {
            continue;
        };
        let aligned = fk
            .columns
            .iter()
            .zip(&fk.ref_columns)
            .any(|(a, b)| a == sc && b == tc);
        if aligned {
            continue;
        }
        let names = |cols: &[String]| {
            cols.iter()
                .map(|c| display_col(c))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let change = Change::aligned_key(&t.name, fk, sc, tc);
        let Change::RecreateForeignKey { ref_columns, .. } = &change else {
            unreachable!("aligned_key re-creates a foreign key")
        };
        // The target needs a key on exactly the new referenced columns; when its own key is
        // rebuilt with the tenant column, that rebuild re-creates this key with it.
        let mut wanted: Vec<&str> = ref_columns.iter().map(String::as_str).collect();
        wanted.sort_unstable();
        let target_has_key = ctx.schema.table(&fk.ref_table).is_some_and(|target| {
            target.keys.iter().any(|k| {
                let mut cols = k.column_names();
                cols.sort_unstable();
                k.predicate.is_none()
                    && k.kind != crate::schema::KeyKind::Exclusion
                    && cols == wanted
            })
        });
        let finding = Finding::new(
            Code::ForeignKeyMissingDistributionColumn,
            Severity::Blocker,
            &t.name,
            format!(
                "foreign key {} ({}) -> {} ({}) does not pair distribution columns {} and {}{}",
                display_col(&fk.name),
                names(&fk.columns),
                fk.ref_table,
                names(&fk.ref_columns),
                display_col(sc),
                display_col(tc),
                if target_has_key {
                    String::new()
                } else {
                    format!(
                        "; {} has no key on ({}) to re-create it against yet",
                        fk.ref_table,
                        names(ref_columns)
                    )
                }
            ),
            None,
            !target_has_key,
        )
        .about(&fk.name);
        out.push(if target_has_key {
            finding.fixed_by(vec![change])
        } else {
            finding
        });
    }
}

#[cfg(test)]
mod tests {
    use crate::plan::testutil::*;

    #[test]
    fn misaligned_foreign_keys_between_distributed_tables() {
        let s = schema(vec![
            tenants(),
            child("a"),
            child("b").col("a_id", "bigint").fk(
                "b_a_fkey",
                &["a_id", "tenant"],
                "a",
                &["id", "tenant"],
            ),
            child("c").col("a_id", "bigint").fk(
                "c_a_fkey",
                &["tenant", "a_id"],
                "a",
                &["id", "tenant"],
            ),
        ]);
        let p = run(&s);
        assert!(
            own_codes(&p, "b").is_empty(),
            "pairing counts, not position 0"
        );
        assert_eq!(codes(&p, "c"), [Code::ForeignKeyMissingDistributionColumn]);
    }
}
