//! The SQL a finding suggests: rebuilding a key or a foreign key with the distribution column,
//! re-distributing a table, and the names as a person reads them in messages.

use postgres_protocol::escape::{escape_identifier, escape_literal};

use crate::schema::{Key, KeyKind, QualifiedName, Table};
use crate::sqltext::comment;

/// A column name as a person reads it.
pub fn display_col(c: &str) -> String {
    crate::schema::display_ident(c)
}

pub(super) fn idents(cols: &[String]) -> String {
    cols.iter()
        .map(|c| escape_identifier(c))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn key_label(k: &Key) -> &'static str {
    match k.kind {
        KeyKind::PrimaryKey => "primary key",
        KeyKind::Unique => "unique constraint",
        KeyKind::UniqueIndex => "unique index",
        KeyKind::Exclusion => "exclusion constraint",
    }
}

pub(super) fn key_columns(k: &Key) -> String {
    k.columns
        .iter()
        .map(|c| {
            c.as_deref()
                .map(display_col)
                .unwrap_or_else(|| "(expression)".into())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Advice (made inert as a comment), then the statement that drops the key: the fix when the
/// alternative is a decision about the table.
pub(super) fn advice_or_drop_key(advice: &str, t: &Table, key: &str) -> String {
    format!(
        "{}\nALTER TABLE {} DROP CONSTRAINT {};",
        comment(advice),
        t.name.sql(),
        escape_identifier(key)
    )
}

pub(super) fn alter_distributed(
    t: &QualifiedName,
    column: &str,
    colocate_with: Option<&QualifiedName>,
) -> String {
    format!(
        "SELECT alter_distributed_table({}, distribution_column := {}{});",
        t.regclass_literal(),
        escape_literal(column),
        colocate_with
            .map(|r| format!(", colocate_with := {}", r.regclass_literal()))
            .unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use crate::plan::testutil::*;

    #[test]
    fn hostile_names_stay_inside_comments_of_fixes_and_steps() {
        for (i, evil) in crate::sqltext::tests::HOSTILE.iter().enumerate() {
            let (tenantless, child_name, lookup) = (
                format!("{evil} orphan{i}"),
                format!("{evil} child{i}"),
                format!("{evil} lookup{i}"),
            );
            let mut expr_key = child(&child_name);
            expr_key.0.keys.push(Key {
                name: format!("{evil} idx"),
                kind: KeyKind::UniqueIndex,
                columns: vec![None],
                predicate: None,
                definition: format!("CREATE UNIQUE INDEX \"{evil}\" ON t (lower(x))"),
            });
            let mut s = schema(vec![
                tenants(),
                expr_key.col("lookup_id", "bigint").fk(
                    &format!("{evil} fk"),
                    &["lookup_id"],
                    &lookup,
                    &["id"],
                ),
                tbl(&lookup).col("id", "bigint").pk(&["id"]),
                tbl(&tenantless)
                    .col("id", "bigint")
                    .col("child_id", "bigint")
                    .fk(&format!("{evil} fk2"), &["child_id"], &child_name, &["id"]),
                child(&format!("{evil} blocked{i}"))
                    .col("o_id", "bigint")
                    .fk(
                        &format!("{evil} fk3"),
                        &["tenant", "o_id"],
                        &tenantless,
                        &["id", "id"],
                    ),
            ]);
            s.citus.installed = Some("13.2-1".into());
            let p = run(&s);
            let mut texts: Vec<String> = p.findings.iter().filter_map(|f| f.fix.clone()).collect();
            texts.extend(p.steps.iter().map(|st| {
                format!(
                    "{}\n{};",
                    crate::sqltext::comment(&st.reason.to_string()),
                    st.sql()
                )
            }));
            assert!(
                texts
                    .iter()
                    .any(|t| t.contains(evil.split('\n').next().unwrap_or(evil))),
                "the names reach no fix or step: {texts:#?}"
            );
            for text in &texts {
                for st in crate::split_statements(text).unwrap_or_else(|e| panic!("{e}: {text}")) {
                    let sql = st.sql.to_ascii_uppercase();
                    assert!(
                        !sql.starts_with("DROP TABLE VICTIM") && !sql.starts_with("$$"),
                        "a name escaped its comment in:\n{text}"
                    );
                }
            }
        }
    }
}
