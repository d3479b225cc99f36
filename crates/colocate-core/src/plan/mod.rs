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

use crate::decision::{Choice, DecisionKind};
use crate::distribution::DistributionConfig;
use crate::graph::FkGraph;
use crate::schema::{CitusState, QualifiedName, Schema};

mod change;
mod classify;
mod closure;
mod code;
mod drift;
mod fixes;
pub mod fixsql;
mod integrity;
mod live;
mod resolve;
mod rules;
mod steps;
#[cfg(test)]
pub(crate) mod testutil;

pub use crate::step::{Step, StepKind, PARALLEL_MODE};
pub use change::Change;
pub use code::Code;
pub use drift::{Drift, DriftCode};
pub use fixes::display_col;
pub use integrity::{AfterRun, BrokenKey};
pub use resolve::{By, Fix, OpenCase, OpenDecision};

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
    /// For a blocker whose every fix changes what the schema means: the decision it asks for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<Case>,
    /// The changes that fix it without a decision (they keep what the schema means).
    #[serde(skip)]
    pub(crate) automatic: Option<Vec<Change>>,
    /// Who decided the fix that `generate --with-fixes` writes for it, when one does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed_by: Option<By>,
    /// The key or foreign key the finding is about, when it is about one.
    #[serde(skip)]
    pub(crate) subject: Option<String>,
}

/// One case of a decision: the kind, the table (the finding's), the constraint when the case is
/// one, and what each choice would change (or why it cannot be taken here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Case {
    pub kind: DecisionKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub constraint: Option<String>,
    /// The choices that can be taken here, in the kind's order.
    pub choices: Vec<Choice>,
    #[serde(skip)]
    pub(crate) options: Vec<(Choice, Result<Vec<Change>, String>)>,
}

impl Case {
    pub(crate) fn new(
        kind: DecisionKind,
        constraint: Option<&str>,
        options: Vec<(Choice, Result<Vec<Change>, String>)>,
    ) -> Case {
        Case {
            kind,
            constraint: constraint.map(str::to_string),
            choices: options
                .iter()
                .filter(|(_, o)| o.is_ok())
                .map(|(c, _)| *c)
                .collect(),
            options,
        }
    }

    /// What `choice` changes here, or why it cannot be taken.
    pub(crate) fn changes(&self, choice: Choice) -> Result<&[Change], String> {
        match self.options.iter().find(|(c, _)| *c == choice) {
            Some((_, Ok(ch))) => Ok(ch),
            Some((_, Err(why))) => Err(why.clone()),
            None => Err(format!("{} does not offer {choice} here", self.kind)),
        }
    }
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
            decision: None,
            automatic: None,
            fixed_by: None,
            subject: None,
        }
    }

    /// About this key or foreign key.
    pub(crate) fn about(mut self, key: &str) -> Finding {
        self.subject = Some(key.to_string());
        self
    }

    /// Fixed without a decision by `changes`.
    pub(crate) fn fixed_by(mut self, changes: Vec<Change>) -> Finding {
        self.automatic = Some(changes);
        self
    }

    /// A decision the team takes in configuration.
    pub(crate) fn deciding(mut self, case: Case) -> Finding {
        self.decision = Some(case);
        self
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
    /// Blocked now, and converted once the fixes run (`generate --with-fixes`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub fixable: bool,
    /// Converted keeping its triggers, with `citus.enable_unsafe_triggers` (a decision).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unsafe_triggers: bool,
}

/// A group of tables placed together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ColocationGroup {
    /// The table the group is anchored on (the root for the tenant group).
    pub anchor: QualifiedName,
    pub column_type: String,
    pub tables: Vec<QualifiedName>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
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
    /// The blockers' fixes, automatic or decided, in the order the fixed point found them;
    /// only those of tables that convert once they run (and keys dropped so that they can).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fixes: Vec<Fix>,
    /// Decisions still open, most unblocking first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<OpenDecision>,
    /// The plan of the schema as it is once the fixes ran (what `generate --with-fixes`
    /// converts), when there are fixes.
    #[serde(skip)]
    pub fixed: Option<Box<Plan>>,
    /// The model of the schema once the fixes ran (with [`Plan::fixed`]).
    #[serde(skip)]
    pub fixed_schema: Option<Box<Schema>>,
    /// Rounds the fixed point took (1: nothing to fix).
    #[serde(skip)]
    pub fix_rounds: usize,
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

    /// The plan of one table. Tables are in name order (the schema's), so this is a binary
    /// search; a plan put together otherwise is searched through.
    pub fn table(&self, name: &QualifiedName) -> Option<&TablePlan> {
        match self.tables.binary_search_by(|t| t.name.cmp(name)) {
            Ok(i) => Some(&self.tables[i]),
            Err(_) => self.tables.iter().find(|t| &t.name == name),
        }
    }

    /// The work left: steps that convert a table (not settings or the extension).
    pub fn pending_tables(&self) -> usize {
        self.tables
            .iter()
            .filter(|t| t.state == State::Pending)
            .count()
    }
}

/// Plan the distribution of `schema` under `config`: the fixes to a fixed point first
/// ([`resolve`]), then the plan of the schema as it is (what `apply` converts now) and of the
/// schema as it will be once the fixes ran (what `generate --with-fixes` converts).
pub fn plan(schema: &Schema, config: &DistributionConfig) -> Plan {
    let resolution = resolve::resolve(schema, config);
    // The schema as it is knows the roles decisions set, not the columns fixes add.
    let now = change::Decided {
        columns: BTreeMap::new(),
        ..resolution.decided.clone()
    };
    let mut current = plan_of(schema, config, &now);
    current.fix_rounds = resolution.rounds;
    current.findings.extend(resolution.warnings.iter().cloned());
    sort_findings(&mut current.findings);
    if resolution.fixes.is_empty() {
        current.decisions = resolve::open_decisions(schema, config, &resolution, &current.findings);
        return current;
    }
    let fixed = plan_of(&resolution.model, config, &resolution.decided);
    let converts = |q: &QualifiedName| {
        fixed
            .table(q)
            .is_some_and(|t| !t.blocked && t.state != State::Conflict)
    };
    // Only what lets a table convert is written: the changes of tables that convert, and the
    // keys a table staying plain drops so that the tables it referenced can.
    current.fixes = resolution
        .fixes
        .iter()
        .filter_map(|fix| {
            let changes: Vec<Change> = fix
                .changes
                .iter()
                .filter(|c| {
                    converts(c.table())
                        || matches!(c, Change::DropForeignKey { .. } | Change::SetRole { .. })
                            && fixed.table(c.table()).is_some_and(|t| !t.blocked)
                })
                .cloned()
                .collect();
            // A decision that only places a table (kept local, converted keeping its
            // triggers) changes nothing in the database: the table's reason says it.
            changes.iter().any(Change::is_ddl).then(|| Fix {
                changes,
                ..fix.clone()
            })
        })
        .collect();
    for t in &mut current.tables {
        t.fixable = t.blocked && converts(&t.name);
    }
    annotate_fixed(schema, &mut current.findings, &current.fixes);
    current.decisions = resolve::open_decisions(schema, config, &resolution, &fixed.findings);
    current.fixed = Some(Box::new(fixed));
    current.fixed_schema = Some(Box::new(resolution.model));
    current
}

/// Each blocker of the schema as it is that a written fix answers says which, with its SQL: the
/// fix of the same table and code, or one that changes the key the blocker names.
fn annotate_fixed(schema: &Schema, findings: &mut [Finding], fixes: &[Fix]) {
    for f in findings.iter_mut() {
        if f.severity != Severity::Blocker || f.code.waits_for_another_table() {
            continue;
        }
        let named = f
            .subject
            .as_deref()
            .or(f.decision.as_ref().and_then(|c| c.constraint.as_deref()));
        let touches = |c: &Change| match (c, named) {
            (
                Change::WidenKey { table, key, .. }
                | Change::DropKey { table, key }
                | Change::RecreateForeignKey { table, key, .. }
                | Change::DropForeignKey { table, key },
                Some(n),
            ) => *table == f.table && key == n,
            _ => false,
        };
        let found = fixes
            .iter()
            .find(|x| x.table == f.table && x.code == f.code)
            .or_else(|| fixes.iter().find(|x| x.changes.iter().any(touches)));
        let Some(fix) = found else { continue };
        let mut lines = vec![crate::sqltext::comment(&fix.by.label())];
        lines.extend(
            fixsql::changes_sql(schema, &fix.changes)
                .into_iter()
                .map(|s| format!("{s};")),
        );
        f.fix = Some(lines.join("\n"));
        f.manual = false;
        f.fixed_by = Some(fix.by.clone());
    }
}

fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        (&a.table, a.severity, a.code, &a.message).cmp(&(&b.table, b.severity, b.code, &b.message))
    });
}

/// One plan of one state of the schema, with the roles and settings decided.
fn plan_of(schema: &Schema, config: &DistributionConfig, decided: &change::Decided) -> Plan {
    let graph = FkGraph::new(schema);
    let (classes, mut findings) = resolve::analyse(schema, config, decided);
    let blocked: BTreeSet<QualifiedName> = findings
        .iter()
        .filter(|f| f.severity == Severity::Blocker)
        .map(|f| f.table.clone())
        .collect();
    describe_fixes(schema, &mut findings);
    let mut tables = live::table_plans(schema, &classes, &blocked);
    for t in &mut tables {
        t.unsafe_triggers = decided.unsafe_triggers.contains(&t.name);
    }
    live::diff(classes.root.as_ref(), &mut tables, &mut findings);
    sort_findings(&mut findings);
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
        fixes: Vec::new(),
        decisions: Vec::new(),
        fixed: None,
        fixed_schema: None,
        fix_rounds: 0,
    }
}

/// Each blocker's fix as a person reads it: the SQL of its changes when they are automatic;
/// for a decision, the line of `colocate.toml` that takes it and what each choice does.
fn describe_fixes(schema: &Schema, findings: &mut [Finding]) {
    for f in findings {
        if let Some(changes) = &f.automatic {
            let sql: Vec<String> = fixsql::changes_sql(schema, changes)
                .into_iter()
                .map(|s| format!("{s};"))
                .collect();
            f.fix = Some(sql.join("\n"));
            f.manual = false;
        } else if let Some(case) = &f.decision {
            let mut lines = vec![format!(
                "a decision ({}): write it in colocate.toml, e.g. [distribution.decisions] {} = {{ choice = \"{}\", reason = \"...\" }}",
                case.kind,
                case.kind,
                case.choices.first().map(|c| c.as_str()).unwrap_or("...")
            )];
            for (choice, what) in case.kind.choices() {
                match case.changes(*choice) {
                    Ok(_) => lines.push(format!("  {choice}: {what}")),
                    Err(why) => lines.push(format!("  {choice}: not here ({why})")),
                }
            }
            f.fix = Some(
                lines
                    .iter()
                    .map(|l| crate::sqltext::comment(l))
                    .collect::<Vec<_>>()
                    .join("\n"),
            );
            f.manual = true;
        }
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
