//! The SQL a finding suggests: rebuilding a key or a foreign key with the distribution column,
//! re-distributing a table, and the names as a person reads them in messages.

use postgres_protocol::escape::{escape_identifier, escape_literal};

use crate::graph::FkGraph;
use crate::schema::{FkAction, ForeignKey, Key, KeyKind, QualifiedName, Table};
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

/// SQL that rebuilds a key with the distribution column first. Foreign keys that use the key
/// are dropped first (their own findings re-create them with the tenant column).
pub(super) fn key_fix(graph: &FkGraph, t: &Table, k: &Key, col: &str) -> (String, bool) {
    let mut cols = vec![escape_identifier(col)];
    let mut has_expr = false;
    for c in &k.columns {
        match c {
            Some(c) => cols.push(escape_identifier(c)),
            None => has_expr = true,
        }
    }
    let name = escape_identifier(&k.name);
    let table = t.name.sql();
    let mut sql = String::new();
    let dependents = graph.key_dependents(&t.name, k);
    for (s, fk) in &dependents {
        sql.push_str(&format!(
            "ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}; -- re-created with the tenant column by its own fix\n",
            s.name.sql(),
            escape_identifier(&fk.name)
        ));
    }
    match k.kind {
        KeyKind::PrimaryKey => sql.push_str(&format!(
            "ALTER TABLE {table} DROP CONSTRAINT {name}, ADD CONSTRAINT {name} PRIMARY KEY ({});",
            cols.join(", ")
        )),
        KeyKind::Unique => sql.push_str(&format!(
            "ALTER TABLE {table} DROP CONSTRAINT {name}, ADD CONSTRAINT {name} UNIQUE ({});",
            cols.join(", ")
        )),
        KeyKind::UniqueIndex if !has_expr => {
            let pred = k
                .predicate
                .as_ref()
                .map(|p| format!(" WHERE {p}"))
                .unwrap_or_default();
            sql.push_str(&format!(
                "DROP INDEX {};\nCREATE UNIQUE INDEX {name} ON {table} ({}){pred};",
                QualifiedName::new(t.name.schema.clone(), k.name.clone()).sql(),
                cols.join(", ")
            ))
        }
        KeyKind::UniqueIndex => sql.push_str(&format!(
            "{}\n{}",
            comment(&format!(
                "the index has expressions: re-create it with {} as its first column",
                escape_identifier(col)
            )),
            comment(&k.definition)
        )),
        KeyKind::Exclusion => sql.push_str(&format!(
            "{}\n{}",
            comment(&format!(
                "add `{} WITH =` to the exclusion constraint (needs the btree_gist extension)",
                escape_identifier(col)
            )),
            comment(&k.definition)
        )),
    }
    let manual = has_expr || k.kind == KeyKind::Exclusion;
    (sql, manual)
}

/// SQL that re-creates a foreign key with the distribution columns paired first.
pub(super) fn fk_fix(
    t: &Table,
    fk: &ForeignKey,
    sc: &str,
    tc: &str,
    target: Option<&Table>,
) -> String {
    let mut cols = vec![escape_identifier(sc)];
    let mut rcols = vec![escape_identifier(tc)];
    for (a, b) in fk.columns.iter().zip(&fk.ref_columns) {
        if a == sc || b == tc {
            continue;
        }
        cols.push(escape_identifier(a));
        rcols.push(escape_identifier(b));
    }
    let mut actions = String::new();
    if fk.on_delete != FkAction::NoAction {
        actions.push_str(&format!(" ON DELETE {}", fk.on_delete.sql()));
        if !fk.on_delete_columns.is_empty() {
            actions.push_str(&format!(" ({})", idents(&fk.on_delete_columns)));
        }
    }
    if fk.on_update != FkAction::NoAction {
        actions.push_str(&format!(" ON UPDATE {}", fk.on_update.sql()));
    }
    let needs_key = target.is_some_and(|tt| {
        !tt.keys.iter().any(|k| {
            matches!(
                k.kind,
                KeyKind::PrimaryKey | KeyKind::Unique | KeyKind::UniqueIndex
            ) && k.predicate.is_none()
                && k.includes(tc)
                && fk.ref_columns.iter().all(|c| k.includes(c))
        })
    });
    let pre = if needs_key {
        format!(
            "{}\n",
            comment(&format!(
                "after {} has a key on ({}) (see its key-missing-distribution-column fix)",
                fk.ref_table,
                rcols.join(", ")
            ))
        )
    } else {
        String::new()
    };
    format!(
        "{pre}ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {n}, ADD CONSTRAINT {n} FOREIGN KEY ({c}) REFERENCES {r} ({rc}){actions};",
        t = t.name.sql(),
        n = escape_identifier(&fk.name),
        c = cols.join(", "),
        r = fk.ref_table.sql(),
        rc = rcols.join(", "),
    )
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
