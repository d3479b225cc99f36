//! The rules Citus enforces, one file per rule, each named after the code it reports.
//!
//! A rule looks at one table at a time through a [`Context`] and pushes its findings. Adding a
//! rule: a code in [`super::Code`], a file here with its check and tests, and its line in
//! [`RULES`].

use super::change::{Change, Decided};
use super::classify::Classification;
use super::fixes::display_col;
use super::{Code, Finding, Role};
use crate::graph::FkGraph;
use crate::schema::{Column, ForeignKey, Key, KeyKind, QualifiedName, Schema, Table};

mod distribution_column_collation;
mod distribution_column_generated;
mod distribution_column_not_hashable;
mod distribution_column_type_mismatch;
mod foreign_key_action_on_distribution_column;
mod foreign_key_missing_distribution_column;
mod has_triggers;
mod identity_column;
mod key_missing_distribution_column;
mod local_references_distributed;
mod local_references_reference;
mod multi_level_partitioning;
mod nullable_distribution_column;
mod references_local_table;
mod rls_policy_subquery;
mod table_inheritance;

/// A rule: the code it reports and its check of one table.
pub(super) struct Rule {
    pub(super) code: Code,
    pub(super) check: fn(&Context, &Table, &mut Vec<Finding>),
}

/// The rules run on every table, in this order.
pub(super) const RULES: &[Rule] = &[
    // Every table that becomes a Citus table.
    has_triggers::RULE,
    table_inheritance::RULE,
    multi_level_partitioning::RULE,
    // Every distributed table, on its distribution column.
    distribution_column_type_mismatch::RULE,
    distribution_column_not_hashable::RULE,
    distribution_column_collation::RULE,
    distribution_column_generated::RULE,
    nullable_distribution_column::RULE,
    key_missing_distribution_column::RULE,
    rls_policy_subquery::RULE,
    identity_column::RULE,
    // Every foreign key, by the roles of its two tables.
    local_references_distributed::RULE,
    references_local_table::RULE,
    local_references_reference::RULE,
    foreign_key_missing_distribution_column::RULE,
    foreign_key_action_on_distribution_column::RULE,
];

/// Run every rule on every table, then block the tables that wait for a blocked one (see
/// [`super::closure`]).
pub(super) fn check(ctx: &Context, findings: &mut Vec<Finding>) {
    for t in ctx.schema.tables.values() {
        for rule in RULES {
            let before = findings.len();
            (rule.check)(ctx, t, findings);
            debug_assert!(findings[before..].iter().all(|f| f.code == rule.code));
        }
    }
    super::closure::close(ctx, findings);
}

/// What a rule may look at: the schema, its foreign keys, and every table's role and column.
pub(super) struct Context<'p> {
    pub(super) schema: &'p Schema,
    pub(super) graph: &'p FkGraph<'p>,
    classes: &'p Classification,
    /// What decisions settled beyond the schema (tables converted keeping their triggers).
    pub(super) decided: &'p Decided,
    /// The type of the root's distribution column, which every distributed table must share.
    pub(super) root_type: Option<&'p str>,
}

impl<'p> Context<'p> {
    pub(super) fn new(
        schema: &'p Schema,
        graph: &'p FkGraph<'p>,
        classes: &'p Classification,
        decided: &'p Decided,
    ) -> Context<'p> {
        let root_type = classes
            .root
            .as_ref()
            .and_then(|r| Some((schema.table(r)?, classes.column(r)?)))
            .and_then(|(t, c)| t.column(c))
            .map(|c| c.type_name.as_str());
        Context {
            schema,
            graph,
            classes,
            decided,
            root_type,
        }
    }

    /// The changes that keep `t` a local table: its role, and its foreign keys to tables the
    /// plan distributes dropped (Citus refuses them, and left in place they would check the
    /// coordinator's empty shell).
    pub(super) fn keep_local(&self, t: &Table) -> Result<Vec<Change>, String> {
        let mut out = vec![Change::SetRole {
            table: t.name.clone(),
            role: Role::Local,
        }];
        for fk in &t.foreign_keys {
            if fk.ref_table != t.name
                && self.role(&fk.ref_table).is_some_and(|r| r.is_distributed())
            {
                out.push(Change::DropForeignKey {
                    table: t.name.clone(),
                    key: fk.name.clone(),
                });
            }
        }
        Ok(out)
    }

    /// The changes that rebuild key `k` of `t` with distribution column `col` first: the key,
    /// and every foreign key that uses it re-created with the tenant column on both sides.
    /// Refused where a referencing table has no tenant column to pair (its own decision comes
    /// first), or where the key is an expression index or an exclusion constraint.
    pub(super) fn widen(&self, t: &Table, k: &Key, col: &str) -> Result<Vec<Change>, String> {
        if k.kind == KeyKind::Exclusion {
            return Err(
                "an exclusion constraint is rebuilt by hand (`tenant WITH =`, with btree_gist)"
                    .into(),
            );
        }
        if k.columns.iter().any(Option::is_none)
            && crate::plan::fixsql::widened_index(&k.definition, col).is_none()
        {
            return Err(
                "an index on expressions is re-created by hand, with the tenant column first"
                    .into(),
            );
        }
        let mut out = vec![Change::WidenKey {
            table: t.name.clone(),
            key: k.name.clone(),
            column: col.to_string(),
        }];
        for (src, fk) in self.graph.key_dependents(&t.name, k) {
            let paired = self
                .role(&src.name)
                .filter(|r| r.is_distributed())
                .and_then(|_| self.classes.column(&src.name));
            match paired {
                Some(sc) => out.push(Change::aligned_key(&src.name, fk, sc, col)),
                None => {
                    return Err(format!(
                        "foreign key {} of {} uses it and has no tenant column to pair with it (decide {} first)",
                        display_col(&fk.name),
                        src.name,
                        src.name
                    ))
                }
            }
        }
        Ok(out)
    }

    /// The changes that give tenant-less `t` the tenant column of the parent one of its
    /// foreign keys points at, filled from the parent row (see below for which key).
    pub(super) fn add_tenant_column(&self, t: &Table) -> Result<Vec<Change>, String> {
        // A key whose columns are all NOT NULL first: every row then has a parent to take the
        // tenant from. Then by name, so every finding of the table proposes the same key.
        let nullable = |fk: &ForeignKey| {
            fk.columns
                .iter()
                .any(|c| t.column(c).is_none_or(|c| !c.not_null))
        };
        let mut keys: Vec<&ForeignKey> = t.foreign_keys.iter().collect();
        keys.sort_by(|a, b| (nullable(a), &a.name).cmp(&(nullable(b), &b.name)));
        for fk in keys {
            if fk.ref_table == t.name
                || !self.role(&fk.ref_table).is_some_and(|r| r.is_distributed())
            {
                continue;
            }
            let Some(parent) = self.schema.table(&fk.ref_table) else {
                continue;
            };
            let Some(pc) = self.classes.column(&fk.ref_table) else {
                continue;
            };
            let Some(column) = parent.column(pc) else {
                continue;
            };
            if t.column(pc).is_some() {
                return Err(format!(
                    "{} has a column {} already",
                    t.name,
                    display_col(pc)
                ));
            }
            return Ok(vec![Change::AddTenantColumn {
                table: t.name.clone(),
                column: pc.to_string(),
                type_name: column.type_name.clone(),
                via: fk.name.clone(),
                parent: fk.ref_table.clone(),
                parent_column: pc.to_string(),
            }]);
        }
        Err("no foreign key to a distributed table with a tenant column to fill it from".into())
    }

    /// Whether a table converts keeping its triggers (`triggers = keep-unsafe`).
    pub(super) fn unsafe_triggers(&self, q: &QualifiedName) -> bool {
        self.decided.unsafe_triggers.contains(q)
    }

    pub(super) fn role(&self, q: &QualifiedName) -> Option<Role> {
        self.classes.role(q)
    }

    /// The root every distributed table is colocated with.
    pub(super) fn root(&self) -> Option<&'p QualifiedName> {
        self.classes.root.as_ref()
    }

    /// The tenant column a table has, whatever role the plan gives it.
    pub(super) fn tenant_column(&self, q: &QualifiedName) -> Option<&'p str> {
        self.classes.tenant_columns.get(q).map(String::as_str)
    }

    /// Why the table has its role, as classification says it (`forced by distribution.reference`).
    pub(super) fn reason(&self, q: &QualifiedName) -> Option<&'p str> {
        self.classes.reasons.get(q).map(String::as_str)
    }

    /// The distribution column of a table the plan distributes, when the table has it.
    pub(super) fn distribution_column<'t>(&self, t: &'t Table) -> Option<(&'p str, &'t Column)> {
        if !self.role(&t.name).is_some_and(|r| r.is_distributed()) {
            return None;
        }
        let name = self.classes.column(&t.name)?;
        Some((name, t.column(name)?))
    }

    /// The foreign keys of `t` whose target is in the plan, with the roles of `t` and of the
    /// target; a self-reference only when `t` is distributed.
    pub(super) fn foreign_keys<'t>(&self, t: &'t Table) -> Vec<(&'t ForeignKey, Role, Role)> {
        let role = self.classes.roles[&t.name];
        t.foreign_keys
            .iter()
            .filter_map(|fk| {
                let target = self.role(&fk.ref_table)?;
                if fk.ref_table == t.name && !role.is_distributed() {
                    return None;
                }
                Some((fk, role, target))
            })
            .collect()
    }

    /// For a foreign key between two distributed tables: their distribution columns (source,
    /// target).
    pub(super) fn distributed_pair(
        &self,
        t: &Table,
        fk: &ForeignKey,
    ) -> Option<(&'p str, &'p str)> {
        let both = [&t.name, &fk.ref_table]
            .iter()
            .all(|q| self.role(q).is_some_and(|r| r.is_distributed()));
        if !both {
            return None;
        }
        Some((
            self.classes.column(&t.name)?,
            self.classes.column(&fk.ref_table)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn one_rule_per_code() {
        let codes: BTreeSet<Code> = RULES.iter().map(|r| r.code).collect();
        assert_eq!(codes.len(), RULES.len());
    }
}
