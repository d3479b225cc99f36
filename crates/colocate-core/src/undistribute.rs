//! Turning a Citus table back into a plain one so that it gives back exactly what was there:
//! what `undistribute_table` loses or refuses, as the queries both reverse paths run. The
//! executor in colocate-pg (`colocate undistribute`, the declarative steps' down parts) runs
//! them with bound parameters; the down parts of generated sql and knex sets run the same text
//! in PL/pgSQL with `EXECUTE ... USING` ([`crate::journal::plpgsql::record_lost`]). One query
//! each, so both paths journal and give back the same things.
//!
//! On Citus 13.2 `undistribute_table` drops comments, brings `NOT VALID` checks back valid and
//! forgets column options, rules and the grants of the views it re-creates ([`LOST_SQL`]
//! journals them as the statements that put them back); it refuses identity columns
//! ([`IDENTITY_OPTIONS_SQL`] journals each one's clause and next value before it is dropped);
//! and its cascade through foreign keys takes the locks of a whole group in one transaction, so
//! each table is undistributed alone ([`call`]), its keys journaled and dropped first.

use crate::schema::QualifiedName;

/// What `undistribute_table` does not carry over to the table it builds, as `(what, stmt)` rows:
/// the statements that put it back, in the order they must run. `$1`: the table, quoted and
/// qualified (text).
pub const LOST_SQL: &str = include_str!("sql/undistribute_lost.sql");

/// The statements (`stmt`) that drop the `NOT VALID` check constraints of a table and its
/// partitions, which `undistribute_table` would bring back valid. `$1`: the table (text).
pub const NOT_VALID_CHECKS_SQL: &str = include_str!("sql/not_valid_checks.sql");

/// An identity column's `ADD GENERATED ...` clause (`clause`) and the next value it should hand
/// out (`next_value`). `$1`: the table (text), `$2`: the column.
pub const IDENTITY_OPTIONS_SQL: &str = include_str!("sql/identity_options.sql");

/// `undistribute_table` for `t` alone, as an expression (never Citus's cascade).
pub fn call(t: &QualifiedName) -> String {
    format!(
        "undistribute_table({}, cascade_via_foreign_keys => false)",
        t.regclass_literal()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The positional parameters a query mentions.
    fn params(sql: &str) -> Vec<u32> {
        let mut out: Vec<u32> = sql
            .match_indices('$')
            .filter_map(|(i, _)| {
                let digits: String = sql[i + 1..]
                    .chars()
                    .take_while(|c| c.is_ascii_digit())
                    .collect();
                digits.parse().ok()
            })
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    #[test]
    fn each_query_takes_the_parameters_it_documents() {
        assert_eq!(params(LOST_SQL), [1]);
        assert_eq!(params(NOT_VALID_CHECKS_SQL), [1]);
        assert_eq!(params(IDENTITY_OPTIONS_SQL), [1, 2]);
        // Generated knex files carry these queries: knex turns every `?` into a bind parameter.
        for q in [LOST_SQL, NOT_VALID_CHECKS_SQL, IDENTITY_OPTIONS_SQL] {
            assert!(!q.contains('?'), "{q}");
        }
    }

    #[test]
    fn one_table_at_a_time() {
        assert_eq!(
            call(&QualifiedName::new("public", "it's")),
            "undistribute_table('\"public\".\"it''s\"', cascade_via_foreign_keys => false)"
        );
    }
}
