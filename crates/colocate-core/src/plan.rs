//! The distribution planner: schema in, plan out, no I/O.
//!
//! 1. Classify every table: the root, distributed (by the first candidate column it has),
//!    reference (tenant-less and referenced, directly or through other tenant-less tables, by
//!    a distributed or reference table), or local; configuration overrides win.
//! 2. Validate against the rules Citus enforces and report each violation as a finding with a
//!    stable code, a one-line message and, where one exists, the SQL that fixes it.
//! 3. Compare with the live Citus metadata: tables already as planned need nothing; tables
//!    placed differently are conflicts.
//! 4. Order the remaining work: extension, reference tables, the root, then distributed tables
//!    so that every foreign key's target is converted before its source; foreign-key cycles
//!    are broken by dropping one edge and restoring it afterwards.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use postgres_protocol::escape::{escape_identifier, escape_literal};
use serde::Serialize;

use crate::distribution::{Decision, DistributionConfig, ForcedRole};
use crate::schema::{
    CitusKind, CitusState, FkAction, ForeignKey, Key, KeyKind, QualifiedName, Schema, Table,
};
use crate::sqltext::comment;

/// The JSON plan format's version.
pub const PLAN_VERSION: u32 = 1;

/// The setting step before the conversions (see [`crate::step::SEQUENTIAL`]), as SQL.
pub const SEQUENTIAL_SESSION: &str = "SET citus.multi_shard_modify_mode TO 'sequential';";

use crate::step::{Action, Colocation, Distribute, Reason};
pub use crate::step::{Step, StepKind, PARALLEL_MODE};

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

/// Stable finding codes: documented in docs/cli.md; never renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    RootMissing,
    RootWithoutColumn,
    ConfigUnknownTable,
    ConfigUnknownColumn,
    KeyMissingDistributionColumn,
    DistributionColumnTypeMismatch,
    DistributionColumnNotHashable,
    DistributionColumnCollation,
    DistributionColumnGenerated,
    NullableDistributionColumn,
    HasTriggers,
    ForeignKeyMissingDistributionColumn,
    ForeignKeyActionOnDistributionColumn,
    LocalReferencesDistributed,
    ReferencesLocalTable,
    ReferencesBlockedTable,
    LocalReferencesReference,
    TableInheritance,
    MultiLevelPartitioning,
    RlsPolicySubquery,
    IdentityColumn,
    DistributedByWrongColumn,
    WrongColocationGroup,
    WrongCitusTableType,
}

impl Code {
    pub fn as_str(&self) -> String {
        serde_json_like(self)
    }
}

fn serde_json_like(code: &Code) -> String {
    // The serde name, without pulling serde_json into the core.
    let dbg = format!("{code:?}");
    let mut out = String::new();
    for (i, c) in dbg.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str())
    }
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
    Planner::new(schema, config).run()
}

struct Planner<'a> {
    schema: &'a Schema,
    /// Foreign keys by the table they reference, built once.
    referencing: BTreeMap<&'a QualifiedName, Vec<(&'a Table, &'a ForeignKey)>>,
    config: &'a DistributionConfig,
    decisions: BTreeMap<QualifiedName, Decision>,
    root: Option<QualifiedName>,
    roles: BTreeMap<QualifiedName, Role>,
    columns: BTreeMap<QualifiedName, String>,
    reasons: BTreeMap<QualifiedName, String>,
    findings: Vec<Finding>,
}

impl<'a> Planner<'a> {
    fn new(schema: &'a Schema, config: &'a DistributionConfig) -> Self {
        let mut referencing: BTreeMap<&QualifiedName, Vec<(&Table, &ForeignKey)>> = BTreeMap::new();
        for t in schema.tables.values() {
            for fk in &t.foreign_keys {
                referencing.entry(&fk.ref_table).or_default().push((t, fk));
            }
        }
        Planner {
            schema,
            referencing,
            config,
            decisions: config.decisions(),
            root: None,
            roles: BTreeMap::new(),
            columns: BTreeMap::new(),
            reasons: BTreeMap::new(),
            findings: Vec::new(),
        }
    }

    fn run(mut self) -> Plan {
        self.resolve_root();
        self.check_config();
        self.classify();
        self.validate();
        self.propagate_blocks();
        let blocked: BTreeSet<QualifiedName> = self
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Blocker)
            .map(|f| f.table.clone())
            .collect();
        let mut tables = self.table_plans(&blocked);
        self.diff(&mut tables);
        self.findings.sort_by(|a, b| {
            (&a.table, a.severity, a.code, &a.message)
                .cmp(&(&b.table, b.severity, b.code, &b.message))
        });
        let steps = self.steps(&tables);
        let groups = self.groups(&tables);
        let edges = self.edges();
        Plan {
            version: PLAN_VERSION,
            root: self.root.clone(),
            citus: self.schema.citus.clone(),
            tables,
            findings: self.findings,
            steps,
            groups,
            edges,
        }
    }

    fn finding(
        &mut self,
        code: Code,
        severity: Severity,
        table: &QualifiedName,
        message: String,
        fix: Option<String>,
        manual: bool,
    ) {
        self.findings.push(Finding {
            code,
            severity,
            table: table.clone(),
            message,
            fix,
            manual,
        });
    }

    /// The root as configured; a bare name not in `public` is looked up in every schema.
    fn resolve_root(&mut self) {
        let wanted = self.config.root_name();
        if self.schema.tables.contains_key(&wanted) {
            self.root = Some(wanted);
            return;
        }
        if !self.config.root.contains('.') {
            let matches: Vec<&QualifiedName> = self
                .schema
                .tables
                .keys()
                .filter(|q| q.name == wanted.name)
                .collect();
            if let [only] = matches.as_slice() {
                self.root = Some((*only).clone());
                return;
            }
        }
        self.finding(
            Code::RootMissing,
            Severity::Blocker,
            &wanted,
            format!(
                "root table {wanted} (distribution.root) does not exist; no tenant table can be colocated"
            ),
            None,
            true,
        );
    }

    fn check_config(&mut self) {
        let unknown: Vec<(QualifiedName, String)> = self
            .decisions
            .iter()
            .filter(|(q, _)| !self.schema.tables.contains_key(*q))
            .map(|(q, d)| (q.clone(), d.source.clone()))
            .collect();
        for (q, source) in unknown {
            self.finding(
                Code::ConfigUnknownTable,
                Severity::Warning,
                &q,
                format!("{source} names {q}, which does not exist (a typo, or a dropped table?)"),
                None,
                true,
            );
        }
    }

    /// The distribution column a table would use: the configured one, else the first candidate.
    fn candidate(&self, t: &Table) -> Option<String> {
        if let Some(c) = self.decisions.get(&t.name).and_then(|d| d.column.clone()) {
            return Some(c);
        }
        self.config
            .columns
            .iter()
            .find(|c| t.column(c).is_some())
            .cloned()
    }

    fn classify(&mut self) {
        let schema = self.schema;
        let mut bad_columns = Vec::new();
        for t in schema.tables.values() {
            let decision = self.decisions.get(&t.name).cloned();
            let because = |d: &Decision| match &d.reason {
                Some(r) => format!("{} ({r})", d.source),
                None => d.source.clone(),
            };
            let column = self.candidate(t);
            if let Some(c) = &column {
                if t.column(c).is_none() {
                    bad_columns.push((t.name.clone(), c.clone()));
                }
            }
            let (role, reason) = if Some(&t.name) == self.root.as_ref() {
                (
                    Role::Root,
                    "the root table: every tenant table is colocated with it".to_string(),
                )
            } else {
                match decision.as_ref().and_then(|d| d.role.map(|r| (r, d))) {
                    Some((ForcedRole::Reference, d)) => {
                        (Role::Reference, format!("forced by {}", because(d)))
                    }
                    Some((ForcedRole::Local, d)) => {
                        (Role::Local, format!("forced by {}", because(d)))
                    }
                    Some((ForcedRole::Distributed, d)) => {
                        (Role::Distributed, format!("forced by {}", because(d)))
                    }
                    None => match &column {
                        Some(c) => (
                            Role::Distributed,
                            format!("has tenant column {}", display_col(c)),
                        ),
                        None => {
                            continue;
                        }
                    },
                }
            };
            if role.is_distributed() {
                if let Some(c) = column {
                    self.columns.insert(t.name.clone(), c);
                }
            }
            self.roles.insert(t.name.clone(), role);
            self.reasons.insert(t.name.clone(), reason);
        }
        for (table, column) in bad_columns {
            self.finding(
                Code::ConfigUnknownColumn,
                Severity::Blocker,
                &table,
                format!(
                    "{table} has no column {} to distribute by (set in distribution.tables)",
                    display_col(&column)
                ),
                None,
                true,
            );
        }
        // Tenant-less tables referenced by Citus tables become reference tables, transitively.
        let mut work: Vec<QualifiedName> = self
            .roles
            .iter()
            .filter(|(_, r)| r.is_citus())
            .map(|(q, _)| q.clone())
            .collect();
        while let Some(q) = work.pop() {
            let Some(t) = schema.table(&q) else { continue };
            for fk in &t.foreign_keys {
                if self.roles.contains_key(&fk.ref_table)
                    || !schema.tables.contains_key(&fk.ref_table)
                {
                    continue;
                }
                self.roles.insert(fk.ref_table.clone(), Role::Reference);
                self.reasons.insert(
                    fk.ref_table.clone(),
                    format!("no tenant column; referenced by {q} ({})", fk.name),
                );
                work.push(fk.ref_table.clone());
            }
        }
        // A root without a tenant column cannot anchor anything.
        if let Some(root) = self.root.clone() {
            if !self.columns.contains_key(&root) {
                let cols = self.config.columns.join(", ");
                self.finding(
                    Code::RootWithoutColumn,
                    Severity::Blocker,
                    &root,
                    format!("root table {root} has none of the candidate columns ({cols})"),
                    None,
                    true,
                );
            }
        }
        for t in schema.tables.values() {
            let live_reference = t
                .citus
                .as_ref()
                .is_some_and(|c| c.kind == CitusKind::Reference);
            if !self.roles.contains_key(&t.name) && live_reference {
                // A team's earlier decision, e.g. a lookup table joined without a foreign key.
                self.roles.insert(t.name.clone(), Role::Reference);
                self.reasons.insert(
                    t.name.clone(),
                    "no tenant column; already a reference table in Citus".into(),
                );
            }
            if !self.roles.contains_key(&t.name) {
                self.roles.insert(t.name.clone(), Role::Local);
                self.reasons.insert(
                    t.name.clone(),
                    "no tenant column and no Citus table references it".into(),
                );
            }
        }
    }

    fn role(&self, q: &QualifiedName) -> Option<Role> {
        self.roles.get(q).copied()
    }

    fn validate(&mut self) {
        let schema = self.schema;
        let root_type = self
            .root
            .as_ref()
            .and_then(|r| Some((schema.table(r)?, self.columns.get(r)?)))
            .and_then(|(t, c)| t.column(c))
            .map(|c| c.type_name.clone());
        for t in schema.tables.values() {
            let role = self.roles[&t.name];
            if role.is_citus() {
                self.validate_citus_table(t);
            }
            if role.is_distributed() {
                if let Some(col) = self.columns.get(&t.name).cloned() {
                    self.validate_distributed(t, &col, root_type.as_deref());
                }
            }
            self.validate_foreign_keys(t, role);
        }
    }

    /// Rules for every table that becomes a Citus table.
    fn validate_citus_table(&mut self, t: &Table) {
        if !t.triggers.is_empty() {
            let names: Vec<&str> = t.triggers.iter().map(|x| x.name.as_str()).collect();
            let fix = t
                .triggers
                .iter()
                .map(|x| {
                    format!(
                        "DROP TRIGGER {} ON {};",
                        escape_identifier(&x.name),
                        t.name.sql()
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            self.finding(
                Code::HasTriggers,
                Severity::Blocker,
                &t.name,
                format!(
                    "{} has trigger(s) {}: Citus refuses to convert tables with triggers",
                    t.name,
                    names.join(", ")
                ),
                Some(format!(
                    "-- decide first: move the logic into the application, or accept citus.enable_unsafe_triggers\n{fix}"
                )),
                true,
            );
        }
        if !t.inherits.is_empty() || t.has_inheritors {
            self.finding(
                Code::TableInheritance,
                Severity::Blocker,
                &t.name,
                format!(
                    "{} uses table inheritance (INHERITS), which Citus refuses",
                    t.name
                ),
                None,
                true,
            );
        }
        if t.multi_level_partition {
            self.finding(
                Code::MultiLevelPartitioning,
                Severity::Blocker,
                &t.name,
                format!(
                    "{} has multi-level partitioning, which Citus refuses",
                    t.name
                ),
                None,
                true,
            );
        }
    }

    fn validate_distributed(&mut self, t: &Table, col: &str, root_type: Option<&str>) {
        let Some(c) = t.column(col) else { return };
        let dcol = display_col(col);
        if let Some(rt) = root_type {
            if c.type_name != rt && self.roles[&t.name] != Role::Root {
                self.finding(
                    Code::DistributionColumnTypeMismatch,
                    Severity::Blocker,
                    &t.name,
                    format!(
                        "{}.{dcol} is {} but the root's column is {rt}: tables can only be colocated when the types match",
                        t.name, c.type_name
                    ),
                    Some(format!(
                        "ALTER TABLE {} ALTER COLUMN {} TYPE {rt} USING {}::{rt};",
                        t.name.sql(),
                        escape_identifier(col),
                        escape_identifier(col)
                    )),
                    true,
                );
            }
        }
        if !c.hashable {
            self.finding(
                Code::DistributionColumnNotHashable,
                Severity::Blocker,
                &t.name,
                format!(
                    "{}.{dcol} has type {} which has no hash function",
                    t.name, c.type_name
                ),
                None,
                true,
            );
        }
        if !c.deterministic_collation {
            self.finding(
                Code::DistributionColumnCollation,
                Severity::Blocker,
                &t.name,
                format!("{}.{dcol} has a non-deterministic collation", t.name),
                None,
                true,
            );
        }
        if c.generated {
            self.finding(
                Code::DistributionColumnGenerated,
                Severity::Blocker,
                &t.name,
                format!("{}.{dcol} is a stored generated column", t.name),
                None,
                true,
            );
        }
        if !c.not_null {
            self.finding(
                Code::NullableDistributionColumn,
                Severity::Warning,
                &t.name,
                format!(
                    "{}.{dcol} allows NULL: a row with NULL there fails the copy into shards",
                    t.name
                ),
                Some(format!(
                    "ALTER TABLE {} ALTER COLUMN {} SET NOT NULL;",
                    t.name.sql(),
                    escape_identifier(col)
                )),
                false,
            );
        }
        for k in &t.keys {
            if !k.includes(col) {
                let (fix, manual) = key_fix(&self.referencing, t, k, col);
                self.finding(
                    Code::KeyMissingDistributionColumn,
                    Severity::Blocker,
                    &t.name,
                    format!(
                        "{} {} ({}) does not include distribution column {dcol}",
                        key_label(k),
                        display_col(&k.name),
                        key_columns(k)
                    ),
                    Some(fix),
                    manual,
                );
            }
        }
        for p in &t.policies {
            let text = format!(
                "{} {}",
                p.using.as_deref().unwrap_or(""),
                p.with_check.as_deref().unwrap_or("")
            )
            .to_ascii_lowercase();
            if text
                .split(|ch: char| !ch.is_ascii_alphanumeric() && ch != '_')
                .any(|w| w == "select")
            {
                self.finding(
                    Code::RlsPolicySubquery,
                    Severity::Blocker,
                    &t.name,
                    format!(
                        "row level security policy {} on {} uses a subquery, which Citus refuses",
                        display_col(&p.name),
                        t.name
                    ),
                    None,
                    true,
                );
            }
        }
        let identity: Vec<&str> = t
            .columns
            .iter()
            .filter(|c| c.identity.is_some())
            .map(|c| c.name.as_str())
            .collect();
        if !identity.is_empty() {
            self.finding(
                Code::IdentityColumn,
                Severity::Warning,
                &t.name,
                format!(
                    "{} has identity column(s) {}: undistribute_table and alter_distributed_table refuse such tables",
                    t.name,
                    identity.join(", ")
                ),
                None,
                false,
            );
        }
    }

    fn validate_foreign_keys(&mut self, t: &Table, role: Role) {
        let src_col = self.columns.get(&t.name).cloned();
        for fk in &t.foreign_keys {
            let Some(target_role) = self.role(&fk.ref_table) else {
                continue;
            };
            if fk.ref_table == t.name && !role.is_distributed() {
                continue;
            }
            match (role, target_role) {
                (Role::Local | Role::Reference, Role::Root | Role::Distributed) => {
                    self.finding(
                        Code::LocalReferencesDistributed,
                        Severity::Blocker,
                        &t.name,
                        format!(
                            "{} has no tenant column but its foreign key {} references distributed table {}: foreign keys from {} tables to distributed tables are not supported",
                            t.name,
                            display_col(&fk.name),
                            fk.ref_table,
                            role.label()
                        ),
                        Some(format!(
                            "{}\nALTER TABLE {} DROP CONSTRAINT {};",
                            comment(&format!(
                                "add a tenant column to {} and include it in the key, or drop the key:",
                                t.name
                            )),
                            t.name.sql(),
                            escape_identifier(&fk.name)
                        )),
                        true,
                    );
                }
                (Role::Root | Role::Distributed | Role::Reference, Role::Local) => {
                    self.finding(
                        Code::ReferencesLocalTable,
                        Severity::Blocker,
                        &t.name,
                        format!(
                            "foreign key {} of {} references {}, which stays local: Citus tables cannot reference local tables",
                            display_col(&fk.name),
                            t.name,
                            fk.ref_table
                        ),
                        Some(format!(
                            "{}\nALTER TABLE {} DROP CONSTRAINT {};",
                            comment(&format!(
                                "or make {} a reference table (distribution.reference)",
                                fk.ref_table
                            )),
                            t.name.sql(),
                            escape_identifier(&fk.name)
                        )),
                        true,
                    );
                }
                (Role::Local, Role::Reference) => {
                    self.finding(
                        Code::LocalReferencesReference,
                        Severity::Warning,
                        &t.name,
                        format!(
                            "local table {} references reference table {} ({}): Citus adds it to its metadata as a Citus local table",
                            t.name,
                            fk.ref_table,
                            display_col(&fk.name)
                        ),
                        None,
                        false,
                    );
                }
                (Role::Root | Role::Distributed, Role::Root | Role::Distributed) => {
                    let Some(sc) = src_col.as_deref() else {
                        continue;
                    };
                    let Some(tc) = self.columns.get(&fk.ref_table).cloned() else {
                        continue;
                    };
                    self.validate_distributed_fk(t, fk, sc, &tc);
                }
                _ => {}
            }
        }
    }

    fn validate_distributed_fk(&mut self, t: &Table, fk: &ForeignKey, sc: &str, tc: &str) {
        let aligned = fk
            .columns
            .iter()
            .zip(&fk.ref_columns)
            .any(|(a, b)| a == sc && b == tc);
        if !aligned {
            let target_table = self.schema.table(&fk.ref_table);
            self.finding(
                Code::ForeignKeyMissingDistributionColumn,
                Severity::Blocker,
                &t.name,
                format!(
                    "foreign key {} ({}) -> {} ({}) does not pair distribution columns {} and {}",
                    display_col(&fk.name),
                    fk.columns
                        .iter()
                        .map(|c| display_col(c))
                        .collect::<Vec<_>>()
                        .join(", "),
                    fk.ref_table,
                    fk.ref_columns
                        .iter()
                        .map(|c| display_col(c))
                        .collect::<Vec<_>>()
                        .join(", "),
                    display_col(sc),
                    display_col(tc)
                ),
                Some(fk_fix(t, fk, sc, tc, target_table)),
                false,
            );
        }
        // Citus 13.2 refuses SET NULL / SET DEFAULT on delete for any key that includes the
        // distribution column, even PostgreSQL 15's column list that leaves it out
        // (EnsureSupportedFKeyOnDistKey), and SET NULL / SET DEFAULT / CASCADE on update.
        let includes_dist = fk.columns.iter().any(|c| c == sc);
        let bad_delete =
            matches!(fk.on_delete, FkAction::SetNull | FkAction::SetDefault) && includes_dist;
        let bad_update = matches!(
            fk.on_update,
            FkAction::SetNull | FkAction::SetDefault | FkAction::Cascade
        ) && includes_dist;
        if bad_delete || bad_update {
            let mut which = Vec::new();
            if bad_delete {
                which.push(format!("ON DELETE {}", fk.on_delete.sql()));
            }
            if bad_update {
                which.push(format!("ON UPDATE {}", fk.on_update.sql()));
            }
            let delete = if !bad_delete && fk.on_delete != FkAction::NoAction {
                format!(" ON DELETE {}", fk.on_delete.sql())
            } else {
                String::new()
            };
            let update = if !bad_update && fk.on_update != FkAction::NoAction {
                format!(" ON UPDATE {}", fk.on_update.sql())
            } else {
                String::new()
            };
            self.finding(
                Code::ForeignKeyActionOnDistributionColumn,
                Severity::Blocker,
                &t.name,
                format!(
                    "foreign key {} of {} has {}, which Citus refuses on a key that includes distribution column {}",
                    display_col(&fk.name),
                    t.name,
                    which.join(" and "),
                    display_col(sc)
                ),
                Some(format!(
                    "-- decide first: the application must then do what the action did (e.g. clear the column)\n\
                     ALTER TABLE {t} DROP CONSTRAINT {n}, ADD CONSTRAINT {n} FOREIGN KEY ({cols}) REFERENCES {r} ({rcols}){delete}{update};",
                    t = t.name.sql(),
                    n = escape_identifier(&fk.name),
                    cols = idents(&fk.columns),
                    r = fk.ref_table.sql(),
                    rcols = idents(&fk.ref_columns),
                )),
                true,
            );
        }
    }

    /// A table whose foreign key target cannot be converted cannot be converted either.
    fn propagate_blocks(&mut self) {
        // Walk foreign keys backwards from every blocked Citus table: each table reached is
        // blocked too. Linear in tables plus keys.
        let mut referrers: BTreeMap<&QualifiedName, Vec<&QualifiedName>> = BTreeMap::new();
        for t in self.schema.tables.values() {
            for fk in &t.foreign_keys {
                if fk.ref_table != t.name {
                    referrers.entry(&fk.ref_table).or_default().push(&t.name);
                }
            }
        }
        let mut blocked: BTreeSet<QualifiedName> = self
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Blocker)
            .map(|f| f.table.clone())
            .collect();
        let is_citus = |q: &QualifiedName| self.roles.get(q).is_some_and(|r| r.is_citus());
        let mut work: Vec<QualifiedName> =
            blocked.iter().filter(|q| is_citus(q)).cloned().collect();
        let mut newly: Vec<QualifiedName> = Vec::new();
        while let Some(q) = work.pop() {
            for src in referrers.get(&q).into_iter().flatten() {
                if !blocked.contains(*src) && is_citus(src) {
                    blocked.insert((*src).clone());
                    newly.push((*src).clone());
                    work.push((*src).clone());
                }
            }
        }
        newly.sort();
        let citus_blocked: BTreeSet<QualifiedName> =
            blocked.iter().filter(|q| is_citus(q)).cloned().collect();
        let schema = self.schema;
        for name in newly {
            let t = &schema.tables[&name];
            let Some(fk) = t
                .foreign_keys
                .iter()
                .find(|fk| fk.ref_table != t.name && citus_blocked.contains(&fk.ref_table))
            else {
                continue;
            };
            let msg = format!(
                "{} references {} ({}), which is blocked: it converts once {} does",
                t.name,
                fk.ref_table,
                display_col(&fk.name),
                fk.ref_table
            );
            let target = fk.ref_table.clone();
            self.finding(
                Code::ReferencesBlockedTable,
                Severity::Blocker,
                &name,
                msg,
                Some(comment(&format!("fix the blockers of {target} first"))),
                true,
            );
        }
    }

    fn table_plans(&self, blocked: &BTreeSet<QualifiedName>) -> Vec<TablePlan> {
        self.schema
            .tables
            .values()
            .map(|t| {
                let role = self.roles[&t.name];
                let live = match &t.citus {
                    None => Live::None,
                    Some(c) => match c.kind {
                        CitusKind::Distributed => Live::Distributed {
                            column: c.column.clone().unwrap_or_default(),
                            colocation_id: c.colocation_id,
                        },
                        CitusKind::Reference => Live::Reference,
                        CitusKind::CitusLocal => Live::CitusLocal,
                    },
                };
                let is_blocked = blocked.contains(&t.name);
                TablePlan {
                    name: t.name.clone(),
                    role,
                    blocked: is_blocked,
                    column: self
                        .columns
                        .get(&t.name)
                        .cloned()
                        .filter(|_| role.is_distributed()),
                    colocate_with: match role {
                        Role::Distributed => self.root.clone(),
                        _ => None,
                    },
                    reason: self.reasons.get(&t.name).cloned().unwrap_or_default(),
                    live,
                    state: if is_blocked {
                        State::Blocked
                    } else {
                        State::Pending
                    },
                    partitions: t.partitions.clone(),
                }
            })
            .collect()
    }

    /// Compare with what Citus says now.
    fn diff(&mut self, tables: &mut [TablePlan]) {
        let root_group = self
            .root
            .as_ref()
            .and_then(|r| tables.iter().find(|t| &t.name == r))
            .and_then(|t| match &t.live {
                Live::Distributed { colocation_id, .. } => Some(*colocation_id),
                _ => None,
            });
        let root_name = self.root.clone();
        for t in tables.iter_mut() {
            let conflict: Option<(Code, String, Option<String>)> = match (&t.live, t.role) {
                (Live::None | Live::CitusLocal, Role::Local) => {
                    t.state = State::Done;
                    None
                }
                (Live::None | Live::CitusLocal, _) => None,
                (Live::Reference, Role::Reference) => {
                    t.state = State::Done;
                    None
                }
                (
                    Live::Distributed {
                        column,
                        colocation_id,
                    },
                    Role::Root | Role::Distributed,
                ) => {
                    let want = t.column.clone().unwrap_or_default();
                    if *column != want {
                        Some((
                            Code::DistributedByWrongColumn,
                            format!(
                                "{} is distributed by {} but the plan distributes it by {}",
                                t.name,
                                display_col(column),
                                display_col(&want)
                            ),
                            Some(alter_distributed(&t.name, &want, t.colocate_with.as_ref())),
                        ))
                    } else if t.role == Role::Distributed
                        && root_group.is_some_and(|g| g != *colocation_id)
                    {
                        Some((
                            Code::WrongColocationGroup,
                            format!(
                                "{} is in colocation group {colocation_id}, not in the root's group {}",
                                t.name,
                                root_group.unwrap_or_default()
                            ),
                            Some(alter_distributed(&t.name, &want, root_name.as_ref())),
                        ))
                    } else {
                        t.state = State::Done;
                        None
                    }
                }
                (live, role) => Some((
                    Code::WrongCitusTableType,
                    format!(
                        "{} is {} in Citus but the plan makes it {}",
                        t.name,
                        match live {
                            Live::Distributed { .. } => "a distributed table",
                            Live::Reference => "a reference table",
                            _ => "a Citus local table",
                        },
                        match role {
                            Role::Local => "local".to_string(),
                            r => format!("a {} table", r.label()),
                        }
                    ),
                    Some(format!(
                        "SELECT undistribute_table({}, cascade_via_foreign_keys => true);",
                        t.name.regclass_literal()
                    )),
                )),
            };
            if let Some((code, msg, fix)) = conflict {
                t.state = State::Conflict;
                self.findings.push(Finding {
                    code,
                    severity: Severity::Conflict,
                    table: t.name.clone(),
                    message: msg,
                    fix,
                    manual: false,
                });
            }
        }
    }

    fn steps(&self, tables: &[TablePlan]) -> Vec<Step> {
        let citus = &self.schema.citus;
        if !citus.available && citus.installed.is_none() {
            return Vec::new();
        }
        let pending: BTreeMap<&QualifiedName, &TablePlan> = tables
            .iter()
            .filter(|t| t.state == State::Pending && t.role.is_citus())
            .map(|t| (&t.name, t))
            .collect();
        let step = |action: Action, reason: Reason, layer: usize| Step {
            action,
            reason,
            layer,
        };
        let mut steps = Vec::new();
        if citus.installed.is_none() {
            steps.push(step(Action::CreateExtension, Reason::ExtensionMissing, 0));
        }
        if pending.is_empty() {
            steps.extend(self.cleanup_steps(tables, 1));
            return steps;
        }
        let references: Vec<&QualifiedName> = pending
            .iter()
            .filter(|(_, t)| t.role == Role::Reference)
            .map(|(q, _)| *q)
            .collect();
        steps.push(step(
            Action::SessionSetting(crate::step::SEQUENTIAL),
            Reason::SequentialMode {
                parallel_from_bytes: PARALLEL_COPY_BYTES,
            },
            0,
        ));
        if !references.is_empty() {
            steps.push(step(
                Action::SessionSetting(crate::step::NO_LOCAL_REFERENCE_KEYS),
                Reason::LocalReferenceKeysOff,
                0,
            ));
        }
        let distributed: Vec<&QualifiedName> = pending
            .iter()
            .filter(|(_, t)| t.role.is_distributed())
            .map(|(q, _)| *q)
            .collect();
        let (ref_order, ref_dropped) = self.order(&references);
        let (dist_order, dist_dropped) = self.order(&distributed);
        let dropped: Vec<(QualifiedName, ForeignKey)> =
            ref_dropped.into_iter().chain(dist_dropped).collect();
        let mut layer_of: BTreeMap<QualifiedName, usize> = BTreeMap::new();
        for (t, fk) in &dropped {
            steps.push(step(
                Action::DropForeignKey {
                    table: t.clone(),
                    key: fk.clone(),
                },
                Reason::BreaksCycle {
                    table: t.clone(),
                    references: fk.ref_table.clone(),
                },
                0,
            ));
        }
        let dropped_names: BTreeSet<(&QualifiedName, &str)> = dropped
            .iter()
            .map(|(t, fk)| (t, fk.name.as_str()))
            .collect();
        for q in ref_order.iter().chain(dist_order.iter()) {
            let t = pending[q];
            let table = &self.schema.tables[q];
            let layer = 1 + table
                .foreign_keys
                .iter()
                .filter(|fk| !dropped_names.contains(&(q, fk.name.as_str())) && &fk.ref_table != q)
                .filter_map(|fk| layer_of.get(&fk.ref_table))
                .max()
                .copied()
                .unwrap_or(0);
            layer_of.insert(q.clone(), layer);
            let column = t.column.clone().unwrap_or_default();
            // A table reaching a reference table through another one stays sequential: Citus
            // refuses parallel DDL on it after touching the reference table.
            let parallel =
                table.local_bytes >= PARALLEL_COPY_BYTES && !self.reaches_reference_indirectly(q);
            let (action, reason) = match t.role {
                Role::Reference => (
                    Action::CreateReferenceTable { table: q.clone() },
                    Reason::Reference {
                        why: t.reason.clone(),
                    },
                ),
                Role::Root => (
                    Action::CreateDistributedTable(Distribute {
                        table: q.clone(),
                        column,
                        colocate_with: Colocation::None,
                        shard_count: self.config.shard_count,
                        parallel,
                        concurrently: None,
                    }),
                    Reason::Root,
                ),
                _ => (
                    Action::CreateDistributedTable(Distribute {
                        table: q.clone(),
                        column: column.clone(),
                        colocate_with: match &t.colocate_with {
                            Some(r) => Colocation::With(r.clone()),
                            None => Colocation::Default,
                        },
                        shard_count: None,
                        parallel,
                        concurrently: None,
                    }),
                    Reason::Distributed {
                        column,
                        colocate_with: t.colocate_with.clone(),
                    },
                ),
            };
            steps.push(step(action, reason, layer));
        }
        let top = layer_of.values().max().copied().unwrap_or(0) + 1;
        for (t, fk) in &dropped {
            steps.push(step(
                Action::RestoreForeignKey {
                    table: t.clone(),
                    key: fk.clone(),
                },
                Reason::RestoresCycleKey,
                top,
            ));
            if fk.validated {
                steps.push(step(
                    Action::ValidateForeignKey {
                        table: t.clone(),
                        key: fk.name.clone(),
                    },
                    Reason::ChecksRestoredKey,
                    top,
                ));
            }
        }
        // The coordinator keeps the rows it copied into shards until told to drop them; do it
        // sources first, once every referencing table is converted.
        // A table a table that stays local still reaches through foreign keys cannot be
        // truncated (Citus refuses a direct one, the cascade would empty an indirect one, and
        // the local key still checks the coordinator's rows): those wait.
        let referenced_locally = self.held_by_local(tables);
        for q in ref_order.iter().chain(dist_order.iter()).rev() {
            if self.schema.tables[q].row_estimate != 0 && !referenced_locally.contains(q) {
                steps.push(step(
                    Action::TruncateLocalData {
                        table: (*q).clone(),
                    },
                    Reason::LeftoverRows,
                    top + 1,
                ));
            }
        }
        steps.extend(self.cleanup_steps(tables, top + 1));
        steps
    }

    /// Whether a table `q` references reaches a reference table through its own foreign keys.
    /// Citus distributes a table with a key to a reference table in sequential mode by itself,
    /// but not one that reaches it only through another table, and then refuses ("cannot
    /// execute parallel DDL on table ... after DDL command on reference table").
    fn reaches_reference_indirectly(&self, q: &QualifiedName) -> bool {
        let mut seen: BTreeSet<&QualifiedName> = BTreeSet::new();
        let mut work: Vec<(&QualifiedName, usize)> = vec![(q, 0)];
        while let Some((t, depth)) = work.pop() {
            if depth >= 2 && self.role(t) == Some(Role::Reference) {
                return true;
            }
            if !seen.insert(t) {
                continue;
            }
            if let Some(table) = self.schema.table(t) {
                work.extend(
                    table
                        .foreign_keys
                        .iter()
                        .filter(|fk| fk.ref_table != *t)
                        .map(|fk| (&fk.ref_table, depth + 1)),
                );
            }
        }
        false
    }

    /// Tables that a table staying local (local role or blocked) reaches through foreign keys:
    /// their coordinator rows must stay (Citus refuses a direct truncate, the cascade would
    /// empty an indirect one, and the local key still checks them).
    fn held_by_local(&self, tables: &'a [TablePlan]) -> BTreeSet<&'a QualifiedName> {
        let stays_local: BTreeSet<&QualifiedName> = tables
            .iter()
            .filter(|t| t.role == Role::Local || t.blocked)
            .map(|t| &t.name)
            .collect();
        reached_from_plain(self.schema, &stays_local)
    }

    /// Tables already in Citus whose coordinator heap still holds rows: an earlier conversion
    /// stopped (or was done by hand) before the local data was removed.
    fn cleanup_steps(&self, tables: &[TablePlan], layer: usize) -> Vec<Step> {
        let referenced_locally = self.held_by_local(tables);
        tables
            .iter()
            .filter(|t| t.state == State::Done && t.role.is_citus())
            .filter(|t| matches!(t.live, Live::Distributed { .. } | Live::Reference))
            .filter(|t| self.schema.tables[&t.name].local_bytes > 0)
            .filter(|t| !referenced_locally.contains(&t.name))
            .map(|t| Step {
                action: Action::TruncateLocalData {
                    table: t.name.clone(),
                },
                reason: Reason::EarlierLeftoverRows,
                layer,
            })
            .collect()
    }

    /// Order tables so that foreign-key targets come first. Cycles are broken by dropping, in
    /// each strongly connected component (taken in name order), every edge that points forward.
    fn order(
        &self,
        set: &[&QualifiedName],
    ) -> (Vec<QualifiedName>, Vec<(QualifiedName, ForeignKey)>) {
        let mut g: DiGraph<QualifiedName, ()> = DiGraph::new();
        let idx: BTreeMap<&QualifiedName, NodeIndex> =
            set.iter().map(|q| (*q, g.add_node((*q).clone()))).collect();
        let mut fks: Vec<(QualifiedName, ForeignKey)> = Vec::new();
        for q in set {
            for fk in &self.schema.tables[*q].foreign_keys {
                if &fk.ref_table == *q {
                    continue;
                }
                if let Some(&to) = idx.get(&fk.ref_table) {
                    // Edge target -> source: the target converts first.
                    g.add_edge(to, idx[q], ());
                    fks.push(((*q).clone(), fk.clone()));
                }
            }
        }
        let mut dropped = Vec::new();
        let mut rank: BTreeMap<QualifiedName, usize> = BTreeMap::new();
        for scc in tarjan_scc(&g) {
            if scc.len() < 2 {
                continue;
            }
            let mut names: Vec<QualifiedName> = scc.iter().map(|n| g[*n].clone()).collect();
            names.sort();
            for (i, n) in names.iter().enumerate() {
                rank.insert(n.clone(), i);
            }
            let members: BTreeSet<&QualifiedName> = names.iter().collect();
            for (src, fk) in &fks {
                if members.contains(src)
                    && members.contains(&fk.ref_table)
                    && rank[&fk.ref_table] > rank[src]
                {
                    dropped.push((src.clone(), fk.clone()));
                }
            }
        }
        dropped.sort_by(|a, b| (&a.0, &a.1.name).cmp(&(&b.0, &b.1.name)));
        let dropped_keys: BTreeSet<(&QualifiedName, &str)> = dropped
            .iter()
            .map(|(t, fk)| (t, fk.name.as_str()))
            .collect();
        // Kahn's algorithm over the remaining edges, smallest name first.
        let mut deps: BTreeMap<&QualifiedName, BTreeSet<&QualifiedName>> =
            set.iter().map(|q| (*q, BTreeSet::new())).collect();
        for (src, fk) in &fks {
            if dropped_keys.contains(&(src, fk.name.as_str())) {
                continue;
            }
            if let Some(d) = deps.get_mut(src) {
                d.insert(&fk.ref_table);
            }
        }
        // Layer by layer: every table whose targets are all converted, in name order. Linear in
        // tables plus keys (each key is counted down once).
        let mut indegree: BTreeMap<&QualifiedName, usize> =
            deps.iter().map(|(q, d)| (*q, d.len())).collect();
        let mut dependents: BTreeMap<&QualifiedName, Vec<&QualifiedName>> = BTreeMap::new();
        for (src, targets) in &deps {
            for t in targets {
                dependents.entry(*t).or_default().push(*src);
            }
        }
        let mut order = Vec::with_capacity(set.len());
        let mut layer: Vec<&QualifiedName> = indegree
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|(q, _)| *q)
            .collect();
        while !layer.is_empty() {
            let mut next = Vec::new();
            for q in &layer {
                order.push((*q).clone());
                for src in dependents.get(q).into_iter().flatten() {
                    if let Some(n) = indegree.get_mut(src) {
                        *n -= 1;
                        if *n == 0 {
                            next.push(*src);
                        }
                    }
                }
            }
            next.sort();
            layer = next;
        }
        if order.len() < set.len() {
            // Unreachable after cycle breaking; never loop forever, never lose a table.
            let placed: BTreeSet<QualifiedName> = order.iter().cloned().collect();
            order.extend(
                deps.keys()
                    .filter(|q| !placed.contains(*q))
                    .map(|q| (*q).clone()),
            );
        }
        // Within one pass ordering is by name; the root leads when nothing must precede it.
        if let Some(root) = &self.root {
            let free = deps.get(root).is_some_and(|d| d.is_empty());
            if let Some(pos) = order.iter().position(|q| q == root).filter(|_| free) {
                let r = order.remove(pos);
                order.insert(0, r);
            }
        }
        (order, dropped)
    }

    fn groups(&self, tables: &[TablePlan]) -> Vec<ColocationGroup> {
        let mut groups = Vec::new();
        if let Some(root) = &self.root {
            let column_type = self
                .columns
                .get(root)
                .and_then(|c| self.schema.tables[root].column(c))
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

    fn edges(&self) -> Vec<(QualifiedName, QualifiedName, String)> {
        let mut out = Vec::new();
        for t in self.schema.tables.values() {
            for fk in &t.foreign_keys {
                if self.schema.tables.contains_key(&fk.ref_table) {
                    out.push((t.name.clone(), fk.ref_table.clone(), fk.name.clone()));
                }
            }
        }
        out
    }
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
    let mut out: BTreeSet<&QualifiedName> = BTreeSet::new();
    let mut work: Vec<&QualifiedName> = schema
        .tables
        .values()
        .filter(|t| plain.contains(&t.name))
        .flat_map(|t| t.foreign_keys.iter().map(|fk| &fk.ref_table))
        .collect();
    while let Some(q) = work.pop() {
        if !out.insert(q) {
            continue;
        }
        if let Some(t) = schema.table(q) {
            work.extend(t.foreign_keys.iter().map(|fk| &fk.ref_table));
        }
    }
    out
}

/// A column name as a person reads it.
pub fn display_col(c: &str) -> String {
    crate::schema::display_ident(c)
}

fn idents(cols: &[String]) -> String {
    cols.iter()
        .map(|c| escape_identifier(c))
        .collect::<Vec<_>>()
        .join(", ")
}

fn key_label(k: &Key) -> &'static str {
    match k.kind {
        KeyKind::PrimaryKey => "primary key",
        KeyKind::Unique => "unique constraint",
        KeyKind::UniqueIndex => "unique index",
        KeyKind::Exclusion => "exclusion constraint",
    }
}

fn key_columns(k: &Key) -> String {
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
fn key_fix(
    referencing: &BTreeMap<&QualifiedName, Vec<(&Table, &ForeignKey)>>,
    t: &Table,
    k: &Key,
    col: &str,
) -> (String, bool) {
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
    let mut key_cols = k.column_names();
    key_cols.sort();
    let dependents: Vec<(&Table, &ForeignKey)> = referencing
        .get(&t.name)
        .into_iter()
        .flatten()
        .filter(|(_, fk)| {
            let mut a: Vec<&str> = fk.ref_columns.iter().map(String::as_str).collect();
            a.sort();
            a == key_cols
        })
        .copied()
        .collect();
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
fn fk_fix(t: &Table, fk: &ForeignKey, sc: &str, tc: &str, target: Option<&Table>) -> String {
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

fn alter_distributed(
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
#[path = "plan_tests.rs"]
mod tests;

/// One way the live database differs from the plan, as `check` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drift {
    pub code: String,
    pub table: QualifiedName,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Plan {
    /// Everything `check` fails on: tables not yet converted, conflicts and blockers. Warnings
    /// do not count.
    pub fn drift(&self) -> Vec<Drift> {
        let mut out = Vec::new();
        for t in &self.tables {
            if t.state != State::Pending {
                continue;
            }
            let (code, what) = match t.role {
                Role::Root => (
                    "root-not-distributed",
                    "the root table is not distributed".to_string(),
                ),
                Role::Distributed => (
                    "not-distributed",
                    format!(
                        "tenant table is not distributed (plan: by {}, colocated with {})",
                        display_col(t.column.as_deref().unwrap_or_default()),
                        t.colocate_with
                            .as_ref()
                            .map(|r| r.to_string())
                            .unwrap_or_default()
                    ),
                ),
                Role::Reference => (
                    "not-reference",
                    "lookup table is not a reference table".to_string(),
                ),
                Role::Local => continue,
            };
            let fix = self
                .steps
                .iter()
                .find(|s| s.table() == Some(&t.name) && s.kind() != StepKind::TruncateLocalData)
                .map(Step::sql);
            out.push(Drift {
                code: code.into(),
                table: t.name.clone(),
                message: format!("{}: {what}", t.name),
                fix,
            });
        }
        // Rows an earlier conversion copied into shards and left in the coordinator's heap:
        // invisible to queries, but core DDL that scans the heap trips over them later.
        for s in &self.steps {
            let Some(name) = s.table() else { continue };
            if s.kind() != StepKind::TruncateLocalData
                || self.table(name).is_none_or(|t| t.state != State::Done)
            {
                continue;
            }
            out.push(Drift {
                code: "coordinator-leftover".into(),
                table: name.clone(),
                message: format!(
                    "{name}: the coordinator still holds rows already copied into its shards"
                ),
                fix: Some(s.sql()),
            });
        }
        for f in &self.findings {
            if f.severity == Severity::Warning {
                continue;
            }
            out.push(Drift {
                code: f.code.as_str(),
                table: f.table.clone(),
                message: f.message.clone(),
                fix: f.fix.clone(),
            });
        }
        out.sort_by(|a, b| (&a.table, &a.code).cmp(&(&b.table, &b.code)));
        out
    }
}
