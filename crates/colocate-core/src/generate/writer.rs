//! What every format's writer shares: the schema and selection it writes from, and the SQL file
//! in the making that `sql` renders as a dbmate migration and `knex` as a knex one, so both
//! formats carry the same statements.

use std::collections::BTreeSet;

use super::chain::FixId;
use super::layout::Selection;
use crate::plan::Role;
use crate::schema::{QualifiedName, Schema};

pub(super) struct Writer<'a> {
    /// The schema the set converts: with fixes, as it is once they ran.
    pub(super) schema: &'a Schema,
    /// The schema as it is now, which the fixes change.
    pub(super) before: &'a Schema,
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
}
