//! `nullable-distribution-column` (a warning): a row with NULL in the distribution column fails
//! the copy into shards.

use super::{Context, Rule};
use crate::plan::fixes::display_col;
use crate::plan::{Code, Finding, Severity};
use crate::schema::Table;
use postgres_protocol::escape::escape_identifier;

pub(in crate::plan) const RULE: Rule = Rule {
    code: Code::NullableDistributionColumn,
    check,
};

fn check(ctx: &Context, t: &Table, out: &mut Vec<Finding>) {
    let Some((col, c)) = ctx.distribution_column(t) else {
        return;
    };
    if c.not_null {
        return;
    }
    out.push(Finding::new(
        Code::NullableDistributionColumn,
        Severity::Warning,
        &t.name,
        format!(
            "{}.{} allows NULL: a row with NULL there fails the copy into shards",
            t.name,
            display_col(col)
        ),
        Some(format!(
            "ALTER TABLE {} ALTER COLUMN {} SET NOT NULL;",
            t.name.sql(),
            escape_identifier(col)
        )),
        false,
    ));
}

#[cfg(test)]
mod tests {
    use crate::plan::testutil::*;

    #[test]
    fn a_nullable_column_is_a_warning_that_does_not_block() {
        let s = schema(vec![
            tenants(),
            tbl("loose")
                .tenant()
                .nullable("tenant")
                .pk(&["id", "tenant"]),
        ]);
        let p = run(&s);
        assert_eq!(codes(&p, "loose"), [Code::NullableDistributionColumn]);
        assert_eq!(
            role_of(&p, "loose"),
            (Role::Distributed, false),
            "a warning does not block"
        );
    }
}
