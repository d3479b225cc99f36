//! What of the plan the chain already covers, and where the chain and the plan disagree.
//!
//! A table is covered when a file of the chain converts it exactly as the plan does: the same
//! role, and for a distributed table the same column and the same colocation group (the same
//! root). A file that converts a table of the plan otherwise (another column, another root,
//! reference instead of distributed, or at all where the plan keeps it local) is a conflict:
//! writing the plan's step after it would convert the table twice, differently. Tables the plan
//! does not know (dropped since, or outside its schemas) are not compared. A fix is covered when
//! the chain applies the same fix (table, code and SQL). The extension is covered by an extension
//! step, or by a chain that already converts tables (its extension comes from elsewhere, and a
//! step written after those tables would come too late for them).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

use super::chain::{Chain, Conversion, Covered, FixId};
use super::layout::Selection;
use crate::plan::{Plan, Role, TablePlan};
use crate::schema::QualifiedName;

/// A table a file of the chain converts otherwise than the plan does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub file: PathBuf,
    pub table: QualifiedName,
    /// What the file does with the table.
    pub chain: Conversion,
    /// What the plan does with it; `None`: it stays local.
    pub plan: Option<Conversion>,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plan = match &self.plan {
            Some(c) => c.describe(&self.table),
            None => "keeps it local".into(),
        };
        write!(
            f,
            "{} {}, where the plan {plan}",
            self.file.display(),
            self.chain.describe(&self.table)
        )
    }
}

#[derive(Debug, Default)]
pub(super) struct Coverage {
    /// Tables the set would convert that the chain already converts as planned.
    pub(super) tables: BTreeSet<QualifiedName>,
    /// Whether the set needs no extension step.
    pub(super) extension: bool,
    /// Every fix the chain applies.
    pub(super) fixes: BTreeSet<FixId>,
    /// Files of the chain that cover something the plan asks for (by index).
    pub(super) files: BTreeSet<usize>,
}

/// What the plan does with `t`.
pub(super) fn planned(plan: &Plan, t: &TablePlan) -> Option<Conversion> {
    let column = || t.column.clone().unwrap_or_default();
    match t.role {
        Role::Local => None,
        Role::Reference => Some(Conversion::Reference),
        Role::Root => Some(Conversion::Distributed {
            column: column(),
            with: t.name.clone(),
        }),
        Role::Distributed => Some(Conversion::Distributed {
            column: column(),
            with: t
                .colocate_with
                .clone()
                .or_else(|| plan.root.clone())
                .unwrap_or_else(|| t.name.clone()),
        }),
    }
}

impl Coverage {
    /// Compare the chain with the plan (as the selection takes it). Every conflict is returned,
    /// in the chain's order.
    pub(super) fn new(
        plan: &Plan,
        sel: &Selection,
        chain: &Chain,
    ) -> Result<Coverage, Vec<Conflict>> {
        let tables: BTreeMap<&QualifiedName, &TablePlan> =
            plan.tables.iter().map(|t| (&t.name, t)).collect();
        let needed_fixes: BTreeSet<FixId> =
            sel.applied_fixes().into_iter().map(|(id, _)| id).collect();
        let mut cov = Coverage::default();
        let mut conflicts = Vec::new();
        let mut reported: BTreeSet<(usize, &QualifiedName)> = BTreeSet::new();
        for (i, file) in chain.files.iter().enumerate() {
            for c in &file.covers {
                match c {
                    Covered::Extension => {
                        cov.extension = true;
                        cov.files.insert(i);
                    }
                    Covered::Fix(id) => {
                        if needed_fixes.contains(id) {
                            cov.files.insert(i);
                        }
                        cov.fixes.insert(id.clone());
                    }
                    Covered::Table { table, conversion } => {
                        cov.extension = true;
                        let Some(t) = tables.get(table) else {
                            continue;
                        };
                        let want = planned(plan, t);
                        if want.as_ref() == Some(conversion) {
                            if sel.included.contains(table) {
                                cov.tables.insert(table.clone());
                                cov.files.insert(i);
                            }
                        } else if reported.insert((i, table)) {
                            conflicts.push(Conflict {
                                file: file.path.clone(),
                                table: table.clone(),
                                chain: conversion.clone(),
                                plan: want,
                            });
                        }
                    }
                }
            }
        }
        if conflicts.is_empty() {
            Ok(cov)
        } else {
            Err(conflicts)
        }
    }

    /// Whether the fixes file is needed: some fix to apply that the chain does not apply yet
    /// (or, with nothing to apply, as before any chain: only over an empty one).
    pub(super) fn needs_fixes(&self, sel: &Selection) -> bool {
        let applied = sel.applied_fixes();
        if applied.is_empty() {
            return self.files.is_empty();
        }
        applied.iter().any(|(id, _)| !self.fixes.contains(id))
    }
}
