//! `foreign-key-missing-distribution-column`: a foreign key between distributed tables must pair
//! their distribution columns.

use super::{Context, Rule};
use crate::plan::fixes::{display_col, fk_fix};
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
        out.push(Finding::new(
            Code::ForeignKeyMissingDistributionColumn,
            Severity::Blocker,
            &t.name,
            format!(
                "foreign key {} ({}) -> {} ({}) does not pair distribution columns {} and {}",
                display_col(&fk.name),
                names(&fk.columns),
                fk.ref_table,
                names(&fk.ref_columns),
                display_col(sc),
                display_col(tc)
            ),
            Some(fk_fix(t, fk, sc, tc, ctx.schema.table(&fk.ref_table))),
            false,
        ));
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
