//! Changes: what a fix does to the schema, as data. The planner applies them to its model of
//! the schema and plans again until nothing changes ([`super::resolve`]); `generate
//! --with-fixes` writes the difference they make as SQL ([`super::fixsql`]). A change never
//! decides anything by itself: an automatic fix is made only of changes that keep what the
//! schema means, and every other change comes from a decision in `colocate.toml`.

use std::fmt;

use serde::Serialize;

use super::fixes::display_col;
use super::Role;
use crate::schema::{Column, FkAction, ForeignKey, Key, KeyKind, QualifiedName, Schema};

/// One change to one table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "change", rename_all = "kebab-case")]
pub enum Change {
    /// A primary key, unique constraint or unique index rebuilt with `column` first.
    WidenKey {
        table: QualifiedName,
        key: String,
        column: String,
    },
    /// A primary key, unique constraint or unique index dropped.
    DropKey { table: QualifiedName, key: String },
    /// A foreign key re-created (same name) with these columns and actions.
    RecreateForeignKey {
        table: QualifiedName,
        key: String,
        columns: Vec<String>,
        ref_columns: Vec<String>,
        on_delete: FkAction,
        on_update: FkAction,
        on_delete_columns: Vec<String>,
    },
    /// A foreign key dropped.
    DropForeignKey { table: QualifiedName, key: String },
    /// Triggers dropped.
    DropTriggers {
        table: QualifiedName,
        triggers: Vec<String>,
    },
    /// A column converted to another type (`USING column::type`).
    ConvertColumn {
        table: QualifiedName,
        column: String,
        to: String,
    },
    /// A tenant column added and filled from the parent row the foreign key `via` points at,
    /// then made `NOT NULL`.
    AddTenantColumn {
        table: QualifiedName,
        column: String,
        type_name: String,
        via: String,
        parent: QualifiedName,
        parent_column: String,
    },
    /// The table's role decided in configuration (kept local, or made a reference table):
    /// nothing changes in the database.
    SetRole { table: QualifiedName, role: Role },
    /// The table converts with `citus.enable_unsafe_triggers` on, keeping its triggers.
    UnsafeTriggers { table: QualifiedName },
}

/// What the planner's model carries besides the schema: the roles and settings decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Decided {
    pub(crate) roles: std::collections::BTreeMap<QualifiedName, (Role, String)>,
    pub(crate) unsafe_triggers: std::collections::BTreeSet<QualifiedName>,
    /// Tenant columns fixes add: the table is distributed by it, whatever its name.
    pub(crate) columns: std::collections::BTreeMap<QualifiedName, String>,
}

impl Change {
    pub fn table(&self) -> &QualifiedName {
        match self {
            Change::WidenKey { table, .. }
            | Change::DropKey { table, .. }
            | Change::RecreateForeignKey { table, .. }
            | Change::DropForeignKey { table, .. }
            | Change::DropTriggers { table, .. }
            | Change::ConvertColumn { table, .. }
            | Change::AddTenantColumn { table, .. }
            | Change::SetRole { table, .. }
            | Change::UnsafeTriggers { table } => table,
        }
    }

    /// Whether the change is to the database (else to the plan only).
    pub fn is_ddl(&self) -> bool {
        !matches!(self, Change::SetRole { .. } | Change::UnsafeTriggers { .. })
    }

    /// The foreign key a change re-creates with the tenant column on both sides.
    pub(crate) fn aligned_key(
        table: &QualifiedName,
        fk: &ForeignKey,
        sc: &str,
        tc: &str,
    ) -> Change {
        let mut columns = vec![sc.to_string()];
        let mut ref_columns = vec![tc.to_string()];
        for (a, b) in fk.columns.iter().zip(&fk.ref_columns) {
            if a == sc || b == tc {
                continue;
            }
            columns.push(a.clone());
            ref_columns.push(b.clone());
        }
        Change::RecreateForeignKey {
            table: table.clone(),
            key: fk.name.clone(),
            columns,
            ref_columns,
            on_delete: fk.on_delete,
            on_update: fk.on_update,
            on_delete_columns: fk.on_delete_columns.clone(),
        }
    }

    /// For a re-created foreign key: `fk` as the change makes it (its definition too).
    pub(crate) fn recreated(&self, fk: &ForeignKey) -> Option<ForeignKey> {
        let Change::RecreateForeignKey {
            columns,
            ref_columns,
            on_delete,
            on_update,
            on_delete_columns,
            ..
        } = self
        else {
            return None;
        };
        let mut new = ForeignKey {
            columns: columns.clone(),
            ref_columns: ref_columns.clone(),
            on_delete: *on_delete,
            on_update: *on_update,
            on_delete_columns: on_delete_columns.clone(),
            ..fk.clone()
        };
        new.definition = fk_definition(&new);
        Some(new)
    }

    /// Make the change in the model. A change whose object is gone already does nothing.
    pub(crate) fn apply(&self, schema: &mut Schema, decided: &mut Decided) {
        let Some(t) = schema.tables.get_mut(self.table()) else {
            return;
        };
        match self {
            Change::WidenKey { key, column, .. } => {
                if let Some(k) = t.keys.iter_mut().find(|k| &k.name == key) {
                    if !k.includes(column) {
                        k.columns.insert(0, Some(column.clone()));
                        // An index on expressions keeps the server's definition, from which
                        // its rebuild is written.
                        if k.columns.iter().all(Option::is_some) {
                            k.definition = key_definition(k);
                        }
                    }
                }
            }
            Change::DropKey { key, .. } => t.keys.retain(|k| &k.name != key),
            Change::RecreateForeignKey { key, .. } => {
                if let Some(fk) = t.foreign_keys.iter_mut().find(|f| &f.name == key) {
                    if let Some(new) = self.recreated(fk) {
                        *fk = new;
                    }
                }
            }
            Change::DropForeignKey { key, .. } => t.foreign_keys.retain(|f| &f.name != key),
            Change::DropTriggers { triggers, .. } => {
                t.triggers.retain(|x| !triggers.contains(&x.name))
            }
            Change::ConvertColumn { column, to, .. } => {
                if let Some(c) = t.columns.iter_mut().find(|c| &c.name == column) {
                    c.type_name = to.clone();
                }
            }
            Change::AddTenantColumn {
                table,
                column,
                type_name,
                ..
            } => {
                if t.column(column).is_none() {
                    t.columns.push(Column::new(column, type_name, true));
                }
                decided.columns.insert(table.clone(), column.clone());
            }
            Change::SetRole { table, role } => {
                decided
                    .roles
                    .entry(table.clone())
                    .or_insert((*role, String::new()));
            }
            Change::UnsafeTriggers { table } => {
                decided.unsafe_triggers.insert(table.clone());
            }
        }
    }
}

impl fmt::Display for Change {
    /// What the change does, as a person reads it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::WidenKey { table, key, column } => write!(
                f,
                "rebuild {} of {table} with {} first",
                display_col(key),
                display_col(column)
            ),
            Change::DropKey { table, key } => write!(f, "drop {} of {table}", display_col(key)),
            Change::RecreateForeignKey {
                table,
                key,
                columns,
                ref_columns,
                on_delete,
                ..
            } => {
                let list = |c: &[String]| {
                    c.iter()
                        .map(|c| display_col(c))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                write!(
                    f,
                    "re-create foreign key {} of {table} on ({}) -> ({}){}",
                    display_col(key),
                    list(columns),
                    list(ref_columns),
                    if *on_delete == FkAction::NoAction {
                        String::new()
                    } else {
                        format!(" ON DELETE {}", on_delete.sql())
                    }
                )
            }
            Change::DropForeignKey { table, key } => {
                write!(f, "drop foreign key {} of {table}", display_col(key))
            }
            Change::DropTriggers { table, triggers } => write!(
                f,
                "drop {} {} of {table}",
                crate::words::noun(triggers.len(), "trigger"),
                triggers
                    .iter()
                    .map(|t| display_col(t))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Change::ConvertColumn { table, column, to } => {
                write!(f, "convert {table}.{} to {to}", display_col(column))
            }
            Change::AddTenantColumn {
                table,
                column,
                parent,
                via,
                ..
            } => write!(
                f,
                "add {} to {table}, filled from {parent} through {}",
                display_col(column),
                display_col(via)
            ),
            Change::SetRole { table, role } => write!(f, "make {table} a {} table", role.label()),
            Change::UnsafeTriggers { table } => write!(
                f,
                "convert {table} with citus.enable_unsafe_triggers, keeping its triggers"
            ),
        }
    }
}

/// A key's definition as the model keeps it (for messages; the SQL is written from columns).
fn key_definition(k: &Key) -> String {
    let cols: Vec<&str> = k
        .columns
        .iter()
        .map(|c| c.as_deref().unwrap_or("(expression)"))
        .collect();
    let kind = match k.kind {
        KeyKind::PrimaryKey => "PRIMARY KEY",
        KeyKind::Unique => "UNIQUE",
        KeyKind::UniqueIndex => "UNIQUE INDEX",
        KeyKind::Exclusion => "EXCLUDE",
    };
    format!("{kind} ({})", cols.join(", "))
}

fn fk_definition(fk: &ForeignKey) -> String {
    format!(
        "FOREIGN KEY ({}) REFERENCES {} ({})",
        fk.columns.join(", "),
        fk.ref_table,
        fk.ref_columns.join(", ")
    )
}
