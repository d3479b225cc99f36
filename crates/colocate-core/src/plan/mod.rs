//! The distribution planner: schema in, plan out, no I/O.
//!
//! 1. Classify every table ([`classify`]): the root, distributed (by the first candidate column
//!    it has), reference (tenant-less and referenced, directly or through other tenant-less
//!    tables, by a distributed or reference table), or local; configuration overrides win.
//! 2. Check the rules Citus enforces ([`rules`], one file per rule) and report each violation
//!    as a finding with a stable code, a one-line message and, where one exists, the SQL that
//!    fixes it ([`fixes`]).
//! 3. Close over foreign keys ([`closure`]): a table waits for a blocked table it references,
//!    and a table the plan distributes waits for every blocked table that references it, so no
//!    plan leaves a key from a plain table into a distributed one.
//! 4. Compare with the live Citus metadata ([`live`]): tables already as planned need nothing;
//!    tables placed differently are conflicts.
//! 5. Order the remaining work ([`steps`]): extension, reference tables, the root, then
//!    distributed tables so that every foreign key's target is converted before its source;
//!    foreign-key cycles are broken by dropping one edge and restoring it afterwards.
//!
//! What `check` reports is derived from the plan in [`drift`].

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::distribution::DistributionConfig;
use crate::graph::FkGraph;
use crate::schema::{CitusState, QualifiedName, Schema};

mod classify;
mod closure;
mod code;
mod drift;
mod fixes;
mod integrity;
mod live;
mod rules;
mod steps;
#[cfg(test)]
pub(crate) mod testutil;

pub use crate::step::{Step, StepKind, PARALLEL_MODE};
pub use code::Code;
pub use drift::{Drift, DriftCode};
pub use fixes::display_col;
pub use integrity::{AfterRun, BrokenKey};

/// The JSON plan format's version.
pub const PLAN_VERSION: u32 = 1;

/// The setting step before the conversions (see [`crate::step::SEQUENTIAL`]), as SQL.
pub const SEQUENTIAL_SESSION: &str = "SET citus.multi_shard_modify_mode TO 'sequential';";

/// From this heap size on, a table is copied into its shards over parallel connections.
pub const PARALLEL_COPY_BYTES: i64 = 16 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Root,
    Distributed,
    Reference,
    Local,
}

impl Role {
    pub fn label(&self) -> &'static str {
        match self {
            Role::Root => "root",
            Role::Distributed => "distributed",
            Role::Reference => "reference",
            Role::Local => "local",
        }
    }

    fn is_distributed(&self) -> bool {
        matches!(self, Role::Root | Role::Distributed)
    }

    fn is_citus(&self) -> bool {
        !matches!(self, Role::Local)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Citus would refuse: the table cannot be converted until it is fixed.
    Blocker,
    /// The live topology disagrees with the plan.
    Conflict,
    /// Converts, but something needs attention.
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub code: Code,
    pub severity: Severity,
    pub table: QualifiedName,
    pub message: String,
    /// SQL that fixes it. When `manual`, it needs a human decision and is only a suggestion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    pub manual: bool,
    /// For a table that only waits for another one (a code for which
    /// [`Code::waits_for_another_table`] holds): the blocked table whose own blockers hold it
    /// back, directly or through other tables. Fixing that table's blockers clears it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waits_for: Option<QualifiedName>,
}

impl Finding {
    pub(crate) fn new(
        code: Code,
        severity: Severity,
        table: &QualifiedName,
        message: String,
        fix: Option<String>,
        manual: bool,
    ) -> Finding {
        Finding {
            code,
            severity,
            table: table.clone(),
            message,
            fix,
            manual,
            waits_for: None,
        }
    }

    /// A blocker saying the table waits for `origin`, whose own blockers hold it back.
    pub(crate) fn waiting(
        code: Code,
        table: &QualifiedName,
        message: String,
        origin: &QualifiedName,
    ) -> Finding {
        Finding {
            waits_for: Some(origin.clone()),
            ..Finding::new(
                code,
                Severity::Blocker,
                table,
                message,
                Some(crate::sqltext::comment(&format!(
                    "fix the blockers of {origin} first"
                ))),
                true,
            )
        }
    }

    /// A blocker with no fix to offer: the user must change the table (the common case of a
    /// Citus limit).
    pub(crate) fn blocker(code: Code, table: &QualifiedName, message: String) -> Finding {
        Finding::new(code, Severity::Blocker, table, message, None, true)
    }
}

/// What Citus says about a table now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Live {
    /// Not in Citus metadata (or Citus absent).
    None,
    Distributed {
        column: String,
        colocation_id: i32,
    },
    Reference,
    CitusLocal,
}

/// Where a table stands against the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Already as planned: no step.
    Done,
    /// Steps will convert it.
    Pending,
    /// Blockers keep it from being converted.
    Blocked,
    /// Live topology differs from the plan.
    Conflict,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TablePlan {
    pub name: QualifiedName,
    /// The role the table has in the plan (the one it would have once blockers are fixed).
    pub role: Role,
    pub blocked: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub colocate_with: Option<QualifiedName>,
    pub reason: String,
    pub live: Live,
    pub state: State,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub partitions: Vec<QualifiedName>,
}

/// A group of tables placed together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ColocationGroup {
    /// The table the group is anchored on (the root for the tenant group).
    pub anchor: QualifiedName,
    pub column_type: String,
    pub tables: Vec<QualifiedName>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root: Option<QualifiedName>,
    pub citus: CitusState,
    pub tables: Vec<TablePlan>,
    pub findings: Vec<Finding>,
    pub steps: Vec<Step>,
    pub groups: Vec<ColocationGroup>,
    /// Foreign keys between tables in the plan, for graphs: (from, to, name).
    pub edges: Vec<(QualifiedName, QualifiedName, String)>,
    /// Foreign keys that do not hold for every row now; `check` fails on each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unenforced: Vec<UnenforcedKey>,
}

/// A foreign key that does not hold for every row: integrity no one may lose silently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnenforcedKey {
    pub table: QualifiedName,
    pub key: String,
    pub state: Unenforced,
}

/// Why a key does not hold for every row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unenforced {
    /// Declared `NOT VALID`: existing rows were never checked against it.
    NotValid,
    /// Taken down by colocate (its open journal row: dropped, or restored but not validated).
    Journaled(crate::journal::State),
    /// From a table that is not distributed into one that is: it checks the coordinator's
    /// shell (whose rows went to the shards), so deletes on the distributed side pass it by and
    /// new rows on it cannot be referenced.
    IntoDistributed,
}

impl Unenforced {
    /// The stable name JSON and tables print: `not-valid`, `dropped`, `restored`,
    /// `into-distributed`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Unenforced::NotValid => "not-valid",
            Unenforced::Journaled(s) => s.as_str(),
            Unenforced::IntoDistributed => "into-distributed",
        }
    }
}

impl Serialize for Unenforced {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The keys of `schema` that do not hold for every row, each once, by table and key: an open
/// journal row wins (a key back `NOT VALID` is reported by its journal row only), then a
/// `NOT VALID` declaration, then a key into a distributed table.
fn unenforced(schema: &Schema) -> Vec<UnenforcedKey> {
    let mut found: BTreeMap<(QualifiedName, String), Unenforced> = BTreeMap::new();
    for j in &schema.journal {
        // colocate-pg refuses a journal row in a state it does not know.
        let state = j.state.parse().unwrap_or(crate::journal::State::Dropped);
        found.insert(
            (QualifiedName::parse(&j.table, "public"), j.key.clone()),
            Unenforced::Journaled(state),
        );
    }
    let distributed = |q: &QualifiedName| {
        schema
            .table(q)
            .and_then(|t| t.citus.as_ref())
            .is_some_and(|c| c.kind == crate::schema::CitusKind::Distributed)
    };
    for t in schema.tables.values() {
        let plain = !distributed(&t.name);
        for fk in &t.foreign_keys {
            let why = if !fk.validated {
                Unenforced::NotValid
            } else if plain && distributed(&fk.ref_table) {
                Unenforced::IntoDistributed
            } else {
                continue;
            };
            found
                .entry((t.name.clone(), fk.name.clone()))
                .or_insert(why);
        }
    }
    found
        .into_iter()
        .map(|((table, key), state)| UnenforcedKey { table, key, state })
        .collect()
}

impl Plan {
    pub fn blockers(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Blocker)
    }

    pub fn conflicts(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Conflict)
    }

    /// Blockers or conflicts: `plan` exits 1.
    pub fn has_problems(&self) -> bool {
        self.findings
            .iter()
            .any(|f| f.severity != Severity::Warning)
    }

    pub fn table(&self, name: &QualifiedName) -> Option<&TablePlan> {
        self.tables.iter().find(|t| &t.name == name)
    }

    /// The work left: steps that convert a table (not settings or the extension).
    pub fn pending_tables(&self) -> usize {
        self.tables
            .iter()
            .filter(|t| t.state == State::Pending)
            .count()
    }
}

/// Plan the distribution of `schema` under `config`.
pub fn plan(schema: &Schema, config: &DistributionConfig) -> Plan {
    let graph = FkGraph::new(schema);
    let mut findings = Vec::new();
    let classes = classify::classify(schema, config, &mut findings);
    rules::check(
        &rules::Context::new(schema, &graph, &classes),
        &mut findings,
    );
    let blocked: BTreeSet<QualifiedName> = findings
        .iter()
        .filter(|f| f.severity == Severity::Blocker)
        .map(|f| f.table.clone())
        .collect();
    let mut tables = live::table_plans(schema, &classes, &blocked);
    live::diff(classes.root.as_ref(), &mut tables, &mut findings);
    findings.sort_by(|a, b| {
        (&a.table, a.severity, a.code, &a.message).cmp(&(&b.table, b.severity, b.code, &b.message))
    });
    let steps = steps::steps(schema, config, &graph, &classes, &tables);
    let groups = groups(schema, &classes, &tables);
    Plan {
        version: PLAN_VERSION,
        root: classes.root.clone(),
        citus: schema.citus.clone(),
        tables,
        findings,
        steps,
        groups,
        edges: graph.edges(),
        unenforced: unenforced(schema),
    }
}

fn groups(
    schema: &Schema,
    classes: &classify::Classification,
    tables: &[TablePlan],
) -> Vec<ColocationGroup> {
    let mut groups = Vec::new();
    if let Some(root) = &classes.root {
        let column_type = classes
            .columns
            .get(root)
            .and_then(|c| schema.tables[root].column(c))
            .map(|c| c.type_name.clone())
            .unwrap_or_default();
        let members: Vec<QualifiedName> = tables
            .iter()
            .filter(|t| t.role.is_distributed())
            .map(|t| t.name.clone())
            .collect();
        groups.push(ColocationGroup {
            anchor: root.clone(),
            column_type,
            tables: members,
        });
    }
    groups
}

/// Every table the `plain` tables reach by following foreign keys, directly or through other
/// tables. `truncate_local_data_after_distributing_table` truncates with CASCADE through every
/// table that references the one named, and those that reference them, Citus tables included:
/// so a table's coordinator rows may only be removed when no plain table is reached from it
/// that way, else the cascade empties the plain table (Citus itself only refuses a direct one).
pub fn reached_from_plain<'s>(
    schema: &'s Schema,
    plain: &BTreeSet<&QualifiedName>,
) -> BTreeSet<&'s QualifiedName> {
    FkGraph::new(schema).reached_from(plain)
}

#[cfg(test)]
mod tests {
    use crate::plan::testutil::*;

    #[test]
    fn partitioned_tables_are_planned_as_one() {
        let mut t = child("events").0;
        t.kind = TableKind::Partitioned;
        t.partitions = vec![q("events_2024"), q("events_2025")];
        let s = schema(vec![tenants(), T(t)]);
        let p = run(&s);
        let e = p.table(&q("events")).unwrap();
        assert_eq!(e.partitions.len(), 2);
        assert_eq!(p.tables.len(), 2, "partitions are not tables of their own");
        assert!(step_tables(&p, StepKind::CreateDistributedTable).contains(&"events".to_string()));
    }

    #[test]
    fn output_is_deterministic() {
        let build = || {
            schema(vec![
                tenants(),
                child("b").col("x", "int").fk("b_x", &["x"], "l2", &["x"]),
                child("a").col("x", "int").fk("a_x", &["x"], "l1", &["x"]),
                tbl("l1").col("x", "int").pk(&["x"]),
                tbl("l2").col("x", "int").pk(&["x"]),
            ])
        };
        assert_eq!(run(&build()), run(&build()));
        let codes: Vec<&str> = [Code::KeyMissingDistributionColumn, Code::RootMissing]
            .iter()
            .map(|c| c.as_str())
            .collect();
        assert_eq!(codes, ["key-missing-distribution-column", "root-missing"]);
    }
}
