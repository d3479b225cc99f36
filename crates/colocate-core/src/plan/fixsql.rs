//! The fixes as SQL: each change as one statement for `plan` to show, and a whole set of fixes
//! as one script in phases for `generate --with-fixes`: foreign keys off, triggers dropped,
//! columns converted and added (filled in batches), keys rebuilt, foreign keys back as the
//! model has them. Every statement can run again (`IF EXISTS`, `IF NOT EXISTS`, a fill that
//! only touches empty rows), so a run stopped part-way resumes. Its undo puts back what was.
//! Every name goes through the driver's escaping, and every text in a comment through
//! [`crate::sqltext::comment`].

use std::collections::{BTreeMap, BTreeSet};

use postgres_protocol::escape::escape_identifier;

use super::change::Change;
use super::fixes::idents;
use super::resolve::Fix;
use crate::schema::{FkAction, ForeignKey, Key, KeyKind, QualifiedName, Schema};

/// Rows a backfill updates per transaction.
pub const FILL_BATCH: u32 = 10_000;

/// A fixes script: statements, each with the comment lines before it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Script {
    pub up: Vec<(Vec<String>, String)>,
    pub down: Vec<(Vec<String>, String)>,
    /// It fills added columns in batches, committing each: it runs outside a transaction.
    pub batched: bool,
    /// Where in `up` the statements start that must hold together: a key is never left off
    /// when one of them fails. Run as one block when the script is batched (in a transaction
    /// otherwise, the whole script is one).
    pub atomic_from: usize,
}

fn fk_sql(t: &QualifiedName, fk: &ForeignKey) -> String {
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
    format!(
        "ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({}){actions}",
        t.sql(),
        escape_identifier(&fk.name),
        idents(&fk.columns),
        fk.ref_table.sql(),
        idents(&fk.ref_columns),
    )
}

fn drop_fk(t: &QualifiedName, name: &str) -> String {
    format!(
        "ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}",
        t.sql(),
        escape_identifier(name)
    )
}

fn key_cols(k: &Key) -> Vec<String> {
    k.columns.iter().flatten().cloned().collect()
}

/// A unique index on expressions, as the server prints it (`CREATE UNIQUE INDEX x ON s.t USING
/// btree (lower(email))`), with `column` first among what it indexes; `None` when the text is
/// not of that shape.
pub fn widened_index(definition: &str, column: &str) -> Option<String> {
    let using = definition.find(" USING ")?;
    let open = using + definition[using..].find('(')?;
    Some(format!(
        "{}{}, {}",
        &definition[..=open],
        escape_identifier(column),
        &definition[open + 1..]
    ))
}

/// Statements that make key `k` of `t` be as `k` says (dropping what is there by its name); an
/// index on expressions from its own definition, with the column the model put first.
fn key_sql(t: &QualifiedName, k: &Key) -> Vec<String> {
    let name = escape_identifier(&k.name);
    let cols = idents(&key_cols(k));
    if k.kind == KeyKind::UniqueIndex && k.columns.iter().any(Option::is_none) {
        // An index on expressions: its own definition, with the tenant column first. The model
        // keeps the column at the front of the key's columns.
        if let Some(Some(col)) = k.columns.first() {
            let before = Key {
                columns: k.columns[1..].to_vec(),
                ..k.clone()
            };
            if let Some(def) = widened_index(&before.definition, col) {
                return vec![drop_key(t, k), def];
            }
        }
    }
    match k.kind {
        KeyKind::UniqueIndex => vec![
            format!(
                "DROP INDEX IF EXISTS {}",
                QualifiedName::new(t.schema.clone(), k.name.clone()).sql()
            ),
            format!(
                "CREATE UNIQUE INDEX {name} ON {} ({cols}){}",
                t.sql(),
                k.predicate
                    .as_ref()
                    .map(|p| format!(" WHERE {p}"))
                    .unwrap_or_default()
            ),
        ],
        _ => vec![format!(
            "ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {name}, ADD CONSTRAINT {name} {} ({cols})",
            if k.kind == KeyKind::PrimaryKey {
                "PRIMARY KEY"
            } else {
                "UNIQUE"
            },
            t = t.sql(),
        )],
    }
}

/// The statement that drops key `k` of `t`.
fn drop_key(t: &QualifiedName, k: &Key) -> String {
    match k.kind {
        KeyKind::UniqueIndex => format!(
            "DROP INDEX IF EXISTS {}",
            QualifiedName::new(t.schema.clone(), k.name.clone()).sql()
        ),
        _ => format!(
            "ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}",
            t.sql(),
            escape_identifier(&k.name)
        ),
    }
}

/// Statements that put key `k` back as `before` had it.
fn restore_key(t: &QualifiedName, k: &Key) -> Vec<String> {
    match k.kind {
        KeyKind::UniqueIndex => vec![drop_key(t, k), k.definition.clone()],
        _ => vec![
            drop_key(t, k),
            format!(
                "ALTER TABLE {} ADD CONSTRAINT {} {}",
                t.sql(),
                escape_identifier(&k.name),
                k.definition
            ),
        ],
    }
}

/// The batched fill of an added tenant column from the parent row: each batch commits, and a
/// run stopped part-way goes on with the rows still empty. Rows without a parent row cannot
/// get a tenant: the fill says how many and stops before `NOT NULL` would.
fn fill_sql(
    before: &Schema,
    table: &QualifiedName,
    column: &str,
    via: &str,
    parent: &QualifiedName,
    parent_column: &str,
) -> String {
    let pairs: Vec<(String, String)> = before
        .table(table)
        .and_then(|t| t.foreign_keys.iter().find(|f| f.name == via))
        .map(|fk| {
            fk.columns
                .iter()
                .cloned()
                .zip(fk.ref_columns.iter().cloned())
                .collect()
        })
        .unwrap_or_default();
    let join = |c: &str, p: &str| {
        pairs
            .iter()
            .map(|(a, b)| {
                format!(
                    "{p}.{} = {c}.{}",
                    escape_identifier(b),
                    escape_identifier(a)
                )
            })
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    let col = escape_identifier(column);
    let t = table.sql();
    let lit = postgres_protocol::escape::escape_literal(&table.to_string());
    format!(
        "DO $colocate_fill$
DECLARE
  n bigint;
BEGIN
  LOOP
    UPDATE {t} c SET {col} = p.{pcol}
    FROM {p} p
    WHERE {on_c}
      AND c.ctid = ANY (ARRAY(
        SELECT x.ctid FROM {t} x JOIN {p} q ON {on_x}
        WHERE x.{col} IS NULL LIMIT {FILL_BATCH}))
      AND c.{col} IS NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    EXIT WHEN n = 0;
    COMMIT;
  END LOOP;
  SELECT count(*) INTO n FROM {t} WHERE {col} IS NULL;
  IF n > 0 THEN
    RAISE EXCEPTION '% rows of % have no parent row to take the tenant from', n, {lit}
      USING HINT = 'delete them or give them a parent row, then run the migration again';
  END IF;
END
$colocate_fill$",
        pcol = escape_identifier(parent_column),
        p = parent.sql(),
        on_c = join("c", "p"),
        on_x = join("x", "q"),
    )
}

/// One change as statements (a re-created foreign key: its drop, then its add). Several
/// changes in an order that runs: [`changes_sql`]; the whole set: [`script`].
pub fn change_sql(before: &Schema, c: &Change) -> Vec<String> {
    match c {
        Change::WidenKey { table, key, column } => {
            let Some(k) = before
                .table(table)
                .and_then(|t| t.keys.iter().find(|k| &k.name == key))
            else {
                return Vec::new();
            };
            let mut widened = k.clone();
            widened.columns.insert(0, Some(column.clone()));
            key_sql(table, &widened)
        }
        Change::DropKey { table, key } => before
            .table(table)
            .and_then(|t| t.keys.iter().find(|k| &k.name == key))
            .map(|k| vec![drop_key(table, k)])
            .unwrap_or_default(),
        Change::RecreateForeignKey { table, key, .. } => before
            .table(table)
            .and_then(|t| t.foreign_keys.iter().find(|f| &f.name == key))
            .and_then(|fk| c.recreated(fk))
            .map(|fk| vec![drop_fk(table, key), fk_sql(table, &fk)])
            .unwrap_or_default(),
        Change::DropForeignKey { table, key } => vec![drop_fk(table, key)],
        Change::DropTriggers { table, triggers } => triggers
            .iter()
            .map(|x| {
                format!(
                    "DROP TRIGGER IF EXISTS {} ON {}",
                    escape_identifier(x),
                    table.sql()
                )
            })
            .collect(),
        Change::ConvertColumn { table, column, to } => vec![format!(
            "ALTER TABLE {} ALTER COLUMN {c} TYPE {to} USING {c}::{to}",
            table.sql(),
            c = escape_identifier(column),
        )],
        Change::AddTenantColumn {
            table,
            column,
            type_name,
            via,
            parent,
            parent_column,
        } => vec![
            format!(
                "ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {type_name}",
                table.sql(),
                escape_identifier(column)
            ),
            fill_sql(before, table, column, via, parent, parent_column),
            format!(
                "ALTER TABLE {} ALTER COLUMN {} SET NOT NULL",
                table.sql(),
                escape_identifier(column)
            ),
        ],
        Change::SetRole { .. } | Change::UnsafeTriggers { .. } => Vec::new(),
    }
}

/// One fix's changes as statements, in an order that runs: the foreign keys they re-create or
/// drop come off first and the re-created ones go back last, so a key they use can be rebuilt
/// in between. For `plan` to show next to a blocker (the whole set is written by [`script`]).
pub fn changes_sql(before: &Schema, changes: &[Change]) -> Vec<String> {
    let (mut off, mut body, mut on) = (Vec::new(), Vec::new(), Vec::new());
    for c in changes {
        let sql = change_sql(before, c);
        match c {
            Change::RecreateForeignKey { .. } => {
                let mut it = sql.into_iter();
                off.extend(it.next());
                on.extend(it);
            }
            Change::DropForeignKey { .. } => off.extend(sql),
            _ => body.extend(sql),
        }
    }
    off.into_iter().chain(body).chain(on).collect()
}

/// The fixes as one script in phases, and its undo. `before` is the schema as it is, `after`
/// the model once every fix ran: keys and foreign keys are written as the model has them, so a
/// key two fixes touch (re-created with the tenant column, then without a refused action) is
/// written once, as it ends up.
pub fn script(before: &Schema, after: &Schema, fixes: &[Fix]) -> Script {
    let mut s = Script::default();
    let changes: Vec<(usize, &Change)> = fixes
        .iter()
        .enumerate()
        .flat_map(|(i, f)| f.changes.iter().map(move |c| (i, c)))
        .collect();
    let why = |f: &Fix| {
        vec![
            format!("{} [{}]: {}", f.table, f.code, f.message),
            format!("  {}", f.by.label()),
        ]
    };
    // Foreign keys the fixes touch: dropped first, added back last as the model has them.
    let mut fks: BTreeMap<(QualifiedName, String), usize> = BTreeMap::new();
    let mut keys: BTreeMap<(QualifiedName, String), usize> = BTreeMap::new();
    let mut noted: BTreeSet<usize> = BTreeSet::new();
    let mut note = |f: usize, s: &mut Vec<(Vec<String>, String)>, sql: String| {
        let comment = if noted.insert(f) {
            why(&fixes[f])
        } else {
            Vec::new()
        };
        s.push((comment, sql));
    };
    for (f, c) in &changes {
        match c {
            Change::RecreateForeignKey { table, key, .. }
            | Change::DropForeignKey { table, key } => {
                fks.entry((table.clone(), key.clone())).or_insert(*f);
            }
            Change::WidenKey { table, key, .. } | Change::DropKey { table, key } => {
                keys.entry((table.clone(), key.clone())).or_insert(*f);
            }
            _ => {}
        }
    }
    // Triggers and types first, then the added columns filled: none of it needs a key off.
    for (f, c) in &changes {
        if let Change::DropTriggers { .. } | Change::ConvertColumn { .. } = c {
            for sql in change_sql(before, c) {
                note(*f, &mut s.up, sql);
            }
        }
    }
    let mut keyed = Vec::new();
    for (f, c) in &changes {
        if let Change::AddTenantColumn { .. } = c {
            s.batched = true;
            let mut sql = change_sql(before, c);
            keyed.push((Vec::new(), sql.pop().unwrap_or_default()));
            for st in sql {
                note(*f, &mut s.up, st);
            }
        }
    }
    // Then what must hold together (one block where the script commits batch by batch): the
    // columns NOT NULL, the foreign keys off, the keys rebuilt, the foreign keys back.
    s.atomic_from = s.up.len();
    for ((t, k), f) in &fks {
        note(*f, &mut keyed, drop_fk(t, k));
    }
    for ((t, k), f) in &keys {
        let model = after
            .table(t)
            .and_then(|x| x.keys.iter().find(|y| &y.name == k));
        match model {
            Some(m) => {
                for sql in key_sql(t, m) {
                    note(*f, &mut keyed, sql);
                }
            }
            None => {
                if let Some(b) = before
                    .table(t)
                    .and_then(|x| x.keys.iter().find(|y| &y.name == k))
                {
                    note(*f, &mut keyed, drop_key(t, b));
                }
            }
        }
    }
    for ((t, k), f) in &fks {
        if let Some(fk) = after
            .table(t)
            .and_then(|x| x.foreign_keys.iter().find(|y| &y.name == k))
        {
            note(*f, &mut keyed, fk_sql(t, fk));
        }
    }
    s.up.extend(keyed);
    for (f, c) in &changes {
        if !c.is_ddl() {
            s.up.push((
                vec![format!("{c}"), format!("  {}", fixes[*f].by.label())],
                String::new(),
            ));
        }
    }
    s.up.retain(|(c, sql)| !sql.is_empty() || !c.is_empty());

    // The undo: foreign keys off, keys back, added columns dropped, types back, triggers
    // back, foreign keys back as they were.
    let head = vec!["Puts back everything the fixes changed, as it was.".to_string()];
    let mut down: Vec<(Vec<String>, String)> = Vec::new();
    for (t, k) in fks.keys() {
        down.push((Vec::new(), drop_fk(t, k)));
    }
    for (t, k) in keys.keys() {
        if let Some(b) = before
            .table(t)
            .and_then(|x| x.keys.iter().find(|y| &y.name == k))
        {
            for sql in restore_key(t, b) {
                down.push((Vec::new(), sql));
            }
            // A primary key makes its columns NOT NULL: those that were nullable are again.
            if let Some(bt) = before.table(t) {
                for col in after
                    .table(t)
                    .and_then(|x| x.keys.iter().find(|y| &y.name == k))
                    .map(key_cols)
                    .unwrap_or_default()
                {
                    if bt.column(&col).is_some_and(|c| !c.not_null) && b.kind == KeyKind::PrimaryKey
                    {
                        down.push((
                            Vec::new(),
                            format!(
                                "ALTER TABLE {} ALTER COLUMN {} DROP NOT NULL",
                                t.sql(),
                                escape_identifier(&col)
                            ),
                        ));
                    }
                }
            }
        }
    }
    for (_, c) in changes.iter().rev() {
        match c {
            Change::AddTenantColumn { table, column, .. } => down.push((
                Vec::new(),
                format!(
                    "ALTER TABLE {} DROP COLUMN IF EXISTS {}",
                    table.sql(),
                    escape_identifier(column)
                ),
            )),
            Change::ConvertColumn { table, column, .. } => {
                if let Some(col) = before.table(table).and_then(|t| t.column(column)) {
                    down.push((
                        Vec::new(),
                        format!(
                            "ALTER TABLE {} ALTER COLUMN {c} TYPE {ty} USING {c}::{ty}",
                            table.sql(),
                            c = escape_identifier(column),
                            ty = col.type_name
                        ),
                    ));
                }
            }
            Change::DropTriggers { table, triggers } => {
                for x in before
                    .table(table)
                    .map(|t| t.triggers.iter().filter(|x| triggers.contains(&x.name)))
                    .into_iter()
                    .flatten()
                {
                    down.push((
                        Vec::new(),
                        format!(
                            "DROP TRIGGER IF EXISTS {} ON {}",
                            escape_identifier(&x.name),
                            table.sql()
                        ),
                    ));
                    down.push((Vec::new(), x.definition.clone()));
                }
            }
            _ => {}
        }
    }
    for (t, k) in fks.keys() {
        if let Some(fk) = before
            .table(t)
            .and_then(|x| x.foreign_keys.iter().find(|y| &y.name == k))
        {
            down.push((
                Vec::new(),
                format!(
                    "ALTER TABLE {} ADD CONSTRAINT {} {}",
                    t.sql(),
                    escape_identifier(k),
                    fk.definition
                ),
            ));
        }
    }
    if let Some(first) = down.first_mut() {
        first.0 = head;
    }
    s.down = down;
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_on_expressions_is_widened_from_its_own_definition() {
        assert_eq!(
            widened_index(
                "CREATE UNIQUE INDEX t_email_key ON public.t USING btree (lower(email)) WHERE (deleted_at IS NULL)",
                "Tenant Id"
            )
            .as_deref(),
            Some("CREATE UNIQUE INDEX t_email_key ON public.t USING btree (\"Tenant Id\", lower(email)) WHERE (deleted_at IS NULL)")
        );
        assert_eq!(widened_index("UNIQUE (x)", "tenant"), None);
    }
}
