//! What every format's writer shares: the schema and selection it writes from, and the SQL file
//! in the making that `sql` renders as a dbmate migration and `knex` as a knex one, so both
//! formats carry the same statements.

use std::collections::BTreeSet;

use super::chain::FixId;
use super::layout::Selection;
use crate::plan::{Code, Role};
use crate::schema::{QualifiedName, Schema};

pub(super) struct Writer<'a> {
    pub(super) schema: &'a Schema,
    pub(super) sel: &'a Selection<'a>,
    pub(super) shard_count: Option<u32>,
    /// Fixes the chain applies already: the fixes file leaves them out.
    pub(super) chain_fixes: &'a BTreeSet<FixId>,
}

/// A SQL migration in the making: header comment lines, then up and down items.
pub(super) struct SqlFile {
    pub(super) header: Vec<String>,
    pub(super) transaction: bool,
    pub(super) up: Vec<Item>,
    pub(super) down: Vec<Item>,
}

pub(super) enum Item {
    Statement(String),
    Comment(Vec<String>),
}

/// The tables of the files before the one being written.
pub(super) struct Around<'a> {
    pub(super) earlier: &'a [QualifiedName],
}

impl Writer<'_> {
    pub(super) fn role(&self, t: &QualifiedName) -> Role {
        self.sel.role(t).unwrap_or(Role::Local)
    }

    /// Whether the chain applies every fix of `code` for `t` already (and there is one).
    pub(super) fn chain_fixed(&self, t: &QualifiedName, code: Code) -> bool {
        let of: Vec<FixId> = self
            .sel
            .applied_fixes()
            .into_iter()
            .filter(|(_, f)| f.table == *t && f.code == code)
            .map(|(id, _)| id)
            .collect();
        !of.is_empty() && of.iter().all(|id| self.chain_fixes.contains(id))
    }
}
