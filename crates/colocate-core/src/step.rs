//! A plan's steps as data: what each step does (an [`Action`] with a typed payload), why (a
//! [`Reason`]), and its SQL, rendered from the payload here and nowhere else. `plan` prints
//! these steps, `apply` executes exactly these steps (after [`crate::plan::Plan::scoped`]
//! chose the ones in scope), and `--dry-run` shows them; nothing reads facts back out of SQL.

use std::fmt;

use postgres_protocol::escape::escape_literal;
use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use crate::journal::{drop_key_sql, journaled_drop_line, restore_key_sql, validate_key_sql};
use crate::schema::{display_ident, ForeignKey, QualifiedName};

/// The kinds of step, with a stable snake_case form for JSON (`create_distributed_table`)
/// and a human name for progress and reports ([`StepKind::label`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    CreateExtension,
    SessionSetting,
    DropForeignKey,
    CreateReferenceTable,
    CreateDistributedTable,
    RestoreForeignKey,
    ValidateForeignKey,
    TruncateLocalData,
}

impl StepKind {
    /// How output names the kind (never the Rust name).
    pub fn label(&self) -> &'static str {
        match self {
            StepKind::CreateExtension => "create extension citus",
            StepKind::SessionSetting => "session setting",
            StepKind::DropForeignKey => "drop foreign key (journaled) on",
            StepKind::CreateReferenceTable => "create_reference_table",
            StepKind::CreateDistributedTable => "create_distributed_table",
            StepKind::RestoreForeignKey => "restore foreign key on",
            StepKind::ValidateForeignKey => "validate foreign key on",
            StepKind::TruncateLocalData => "truncate_local_data_after_distributing_table",
        }
    }

    /// Whether the step converts a table into a Citus table.
    pub fn converts(&self) -> bool {
        matches!(
            self,
            StepKind::CreateDistributedTable | StepKind::CreateReferenceTable
        )
    }

    /// Whether the step runs inside a Citus function (its time counts as Citus time).
    pub fn in_citus(&self) -> bool {
        self.converts() || *self == StepKind::TruncateLocalData
    }
}

impl fmt::Display for StepKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A session setting a step makes (`SET name TO 'value'`), for the rest of the run's session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// A plain `a.b` setting name, from the planner's own constants.
    pub name: &'static str,
    /// The value as SQL writes it (`'sequential'`, `off`).
    pub value: &'static str,
}

impl Setting {
    pub fn sql(&self) -> String {
        format!("SET {} TO {};", self.name, self.value)
    }

    /// The setting for the current transaction only (`SET LOCAL`), as a generated migration's
    /// statement makes it: such a set has no session of its own to keep settings in.
    pub fn local_sql(&self) -> String {
        format!("SET LOCAL {} TO {};", self.name, self.value)
    }

    /// The statement that puts the server's default back.
    pub fn reset_sql(&self) -> String {
        format!("RESET {}", self.name)
    }
}

/// Citus's sequential mode for the session: one connection per node. In its default parallel
/// mode Citus opens a connection for every shard of a table that holds rows (up to 16 per
/// worker) and closes them again after the statement, and commits each with two-phase commit:
/// for a small table that costs several times the copy.
pub const SEQUENTIAL: Setting = Setting {
    name: "citus.multi_shard_modify_mode",
    value: "'sequential'",
};

/// Keeps local tables that reference new reference tables out of Citus metadata until they
/// are converted themselves.
pub const NO_LOCAL_REFERENCE_KEYS: Setting = Setting {
    name: "citus.enable_local_reference_table_foreign_keys",
    value: "off",
};

/// The settings `apply`'s session converts tables with, which every generated conversion and
/// cleanup statement makes for itself (`SET LOCAL`). Sequential mode also avoids a deadlock of
/// Citus 13.2 with itself in parallel mode on a table whose name is 63 characters long.
pub const CONVERSION_SETTINGS: [Setting; 2] = [SEQUENTIAL, NO_LOCAL_REFERENCE_KEYS];

/// What precedes `create_distributed_table` for a table whose copy gains from parallel
/// connections: sent with it as one query, so `SET LOCAL` holds for exactly that statement's
/// implicit transaction.
pub const PARALLEL_MODE: &str = "SET LOCAL citus.multi_shard_modify_mode TO 'parallel'; ";

/// What precedes `create_distributed_table` for a table that keeps its triggers by decision
/// (`triggers = keep-unsafe`): sent with it as one query, like [`PARALLEL_MODE`].
pub const UNSAFE_TRIGGERS: &str = "SET LOCAL citus.enable_unsafe_triggers TO on; ";

/// Which colocation group a distributed table joins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Colocation {
    /// A group of its own (the root).
    None,
    /// Citus's default group for the column type.
    Default,
    With(QualifiedName),
}

/// `create_distributed_table` for one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Distribute {
    pub table: QualifiedName,
    pub column: String,
    pub colocate_with: Colocation,
    pub shard_count: Option<u32>,
    /// Copied into its shards over parallel connections (a large table).
    pub parallel: bool,
    /// With `create_distributed_table_concurrently` (`apply --online`), writes flowing during
    /// the copy.
    pub concurrently: Option<Concurrently>,
    /// Converted keeping its triggers, with `citus.enable_unsafe_triggers` (a decision).
    pub unsafe_triggers: bool,
}

/// What a concurrent conversion needs around it: Citus first turns the table into a Citus
/// local table, which it refuses for a table with any foreign key to or from another table, so
/// those keys are dropped into the journal for the copy and restored once Citus accepts them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Concurrently {
    pub detach: Vec<(QualifiedName, ForeignKey)>,
}

impl Distribute {
    /// The Citus call alone (no session prefix).
    pub fn call(&self) -> String {
        let function = if self.concurrently.is_some() {
            "create_distributed_table_concurrently"
        } else {
            "create_distributed_table"
        };
        let colocate = match &self.colocate_with {
            Colocation::None => "'none'".to_string(),
            Colocation::Default => "'default'".to_string(),
            Colocation::With(t) => t.regclass_literal(),
        };
        let shards = self
            .shard_count
            .map(|n| format!(", shard_count => {n}"))
            .unwrap_or_default();
        format!(
            "SELECT {function}({}, {}, colocate_with => {colocate}{shards});",
            self.table.regclass_literal(),
            escape_literal(&self.column)
        )
    }
}

/// What a step does, with everything needed to do it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    CreateExtension,
    SessionSetting(Setting),
    /// Drop a key into the journal (to break a foreign-key cycle for the conversion).
    DropForeignKey {
        table: QualifiedName,
        key: ForeignKey,
    },
    CreateReferenceTable {
        table: QualifiedName,
    },
    CreateDistributedTable(Distribute),
    /// Add a journaled key back, `NOT VALID` (no long lock).
    RestoreForeignKey {
        table: QualifiedName,
        key: ForeignKey,
    },
    /// Check a restored key's rows.
    ValidateForeignKey {
        table: QualifiedName,
        key: String,
    },
    /// Remove the coordinator's rows of a table copied into shards.
    TruncateLocalData {
        table: QualifiedName,
    },
}

impl Action {
    pub fn kind(&self) -> StepKind {
        match self {
            Action::CreateExtension => StepKind::CreateExtension,
            Action::SessionSetting(_) => StepKind::SessionSetting,
            Action::DropForeignKey { .. } => StepKind::DropForeignKey,
            Action::CreateReferenceTable { .. } => StepKind::CreateReferenceTable,
            Action::CreateDistributedTable(_) => StepKind::CreateDistributedTable,
            Action::RestoreForeignKey { .. } => StepKind::RestoreForeignKey,
            Action::ValidateForeignKey { .. } => StepKind::ValidateForeignKey,
            Action::TruncateLocalData { .. } => StepKind::TruncateLocalData,
        }
    }

    pub fn table(&self) -> Option<&QualifiedName> {
        match self {
            Action::CreateExtension | Action::SessionSetting(_) => None,
            Action::CreateDistributedTable(d) => Some(&d.table),
            Action::DropForeignKey { table, .. }
            | Action::CreateReferenceTable { table }
            | Action::RestoreForeignKey { table, .. }
            | Action::ValidateForeignKey { table, .. }
            | Action::TruncateLocalData { table } => Some(table),
        }
    }

    /// Whether the step may run inside a transaction block (Citus functions may not).
    pub fn transaction(&self) -> bool {
        !self.kind().in_citus()
    }

    /// The SQL the step runs: the one place a step's statement is written.
    pub fn sql(&self) -> String {
        match self {
            Action::CreateExtension => "CREATE EXTENSION IF NOT EXISTS citus;".into(),
            Action::SessionSetting(s) => s.sql(),
            Action::DropForeignKey { table, key } => drop_key_sql(table, &key.name),
            Action::CreateReferenceTable { table } => {
                format!(
                    "SELECT create_reference_table({});",
                    table.regclass_literal()
                )
            }
            Action::CreateDistributedTable(d) => match &d.concurrently {
                Some(c) => {
                    let mut out: String = c
                        .detach
                        .iter()
                        .map(|(t, fk)| journaled_drop_line(t, fk))
                        .collect();
                    out.push_str(&d.call());
                    if !c.detach.is_empty() {
                        out.push_str(
                            "\n-- then each key is added again NOT VALID and validated, as soon as Citus accepts it between its tables",
                        );
                    }
                    out
                }
                None => format!(
                    "{}{}{}",
                    if d.unsafe_triggers {
                        UNSAFE_TRIGGERS
                    } else {
                        ""
                    },
                    if d.parallel { PARALLEL_MODE } else { "" },
                    d.call()
                ),
            },
            Action::RestoreForeignKey { table, key } => {
                restore_key_sql(&table.sql(), &key.name, &key.definition)
            }
            Action::ValidateForeignKey { table, key } => validate_key_sql(&table.sql(), key),
            Action::TruncateLocalData { table } => format!(
                "SELECT truncate_local_data_after_distributing_table({});",
                table.regclass_literal()
            ),
        }
    }
}

/// Why a step is in the plan, as data; [`fmt::Display`] gives the sentence output shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    ExtensionMissing,
    /// [`SEQUENTIAL`], with the heap size from which a table switches back to parallel.
    SequentialMode {
        parallel_from_bytes: i64,
    },
    LocalReferenceKeysOff,
    BreaksCycle {
        table: QualifiedName,
        references: QualifiedName,
    },
    /// A reference table, for the reason it was classified so.
    Reference {
        why: String,
    },
    Root,
    Distributed {
        column: String,
        colocate_with: Option<QualifiedName>,
    },
    RestoresCycleKey,
    ChecksRestoredKey,
    LeftoverRows,
    /// Rows an earlier conversion left on the coordinator.
    EarlierLeftoverRows,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::ExtensionMissing => {
                f.write_str("Citus is available but not created in this database")
            }
            Reason::SequentialMode { parallel_from_bytes } => write!(
                f,
                "convert over one connection per node: in parallel mode Citus opens a connection per shard of each table with rows, which costs more than copying a small table (tables of {} MiB or more switch back for their own statement)",
                parallel_from_bytes >> 20
            ),
            Reason::LocalReferenceKeysOff => f.write_str(
                "keep local tables that reference new reference tables out of Citus metadata until they are converted themselves",
            ),
            Reason::BreaksCycle { table, references } => write!(
                f,
                "breaks the foreign-key cycle through {table} -> {references}; restored after conversion"
            ),
            Reason::Reference { why } => write!(f, "reference table: {why}"),
            Reason::Root => f.write_str("the root: anchors the tenant colocation group"),
            Reason::Distributed {
                column,
                colocate_with,
            } => write!(
                f,
                "distributed by {}, colocated with {}",
                display_ident(column),
                colocate_with
                    .as_ref()
                    .map(|r| r.to_string())
                    .unwrap_or_default()
            ),
            Reason::RestoresCycleKey => {
                f.write_str("restores the key dropped to break the cycle, without a long lock")
            }
            Reason::ChecksRestoredKey => f.write_str("checks the restored key's rows"),
            Reason::LeftoverRows => {
                f.write_str("removes the coordinator's leftover local rows after the copy into shards")
            }
            Reason::EarlierLeftoverRows => f.write_str(
                "the coordinator still holds rows copied into shards by an earlier conversion",
            ),
        }
    }
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub action: Action,
    pub reason: Reason,
    /// Dependency layer: every step's prerequisites are in lower layers.
    pub layer: usize,
}

impl Step {
    pub fn kind(&self) -> StepKind {
        self.action.kind()
    }

    pub fn table(&self) -> Option<&QualifiedName> {
        self.action.table()
    }

    pub fn sql(&self) -> String {
        self.action.sql()
    }

    pub fn transaction(&self) -> bool {
        self.action.transaction()
    }

    /// The distribution, for a `create_distributed_table` step.
    pub fn distribute(&self) -> Option<&Distribute> {
        match &self.action {
            Action::CreateDistributedTable(d) => Some(d),
            _ => None,
        }
    }

    /// Whether the step converts its table with `create_distributed_table_concurrently`.
    pub fn concurrently(&self) -> bool {
        self.distribute().is_some_and(|d| d.concurrently.is_some())
    }
}

/// The JSON shape of a step: its kind, table, SQL, reason (the sentence), whether it may run
/// in a transaction, and its layer.
impl Serialize for Step {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let table = self.table();
        let mut st = s.serialize_struct("Step", 5 + usize::from(table.is_some()))?;
        st.serialize_field("kind", &self.kind())?;
        if let Some(t) = table {
            st.serialize_field("table", t)?;
        }
        st.serialize_field("sql", &self.sql())?;
        st.serialize_field("reason", &self.reason.to_string())?;
        st.serialize_field("transaction", &self.transaction())?;
        st.serialize_field("layer", &self.layer)?;
        st.end()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn q(s: &str) -> QualifiedName {
        QualifiedName::parse(s, "public")
    }

    pub(crate) fn fk(name: &str) -> ForeignKey {
        ForeignKey {
            name: name.into(),
            columns: vec!["tenant".into(), "b_id".into()],
            ref_table: q("b"),
            ref_columns: vec!["tenant".into(), "id".into()],
            on_delete: crate::schema::FkAction::NoAction,
            on_update: crate::schema::FkAction::NoAction,
            on_delete_columns: Vec::new(),
            validated: true,
            definition: "FOREIGN KEY (tenant, b_id) REFERENCES b(tenant, id)".into(),
        }
    }

    fn distribute(t: &str) -> Distribute {
        Distribute {
            table: q(t),
            column: "Tenant Id".into(),
            colocate_with: Colocation::With(q("tenants")),
            shard_count: None,
            parallel: false,
            concurrently: None,
            unsafe_triggers: false,
        }
    }

    #[test]
    fn sql_is_rendered_from_the_payload_with_names_quoted() {
        let d = Distribute {
            table: QualifiedName::new("public", "We\"ird"),
            ..distribute("x")
        };
        assert_eq!(
            Action::CreateDistributedTable(d.clone()).sql(),
            "SELECT create_distributed_table('\"public\".\"We\"\"ird\"', 'Tenant Id', colocate_with => '\"public\".\"tenants\"');"
        );
        let parallel = Distribute {
            parallel: true,
            ..d.clone()
        };
        assert!(Action::CreateDistributedTable(parallel)
            .sql()
            .starts_with(PARALLEL_MODE));
        let root = Distribute {
            colocate_with: Colocation::None,
            shard_count: Some(8),
            ..d.clone()
        };
        assert!(Action::CreateDistributedTable(root)
            .sql()
            .ends_with("colocate_with => 'none', shard_count => 8);"));
        let online = Distribute {
            concurrently: Some(Concurrently {
                detach: vec![(q("a"), fk("a b"))],
            }),
            parallel: true,
            ..d
        };
        let sql = Action::CreateDistributedTable(online).sql();
        assert!(
            sql.starts_with("ALTER TABLE \"public\".\"a\" DROP CONSTRAINT \"a b\";  -- journaled\nSELECT create_distributed_table_concurrently("),
            "{sql}"
        );
        assert!(!sql.contains("SET LOCAL"), "{sql}");
        assert_eq!(
            Action::SessionSetting(SEQUENTIAL).sql(),
            "SET citus.multi_shard_modify_mode TO 'sequential';"
        );
        assert_eq!(
            SEQUENTIAL.local_sql(),
            "SET LOCAL citus.multi_shard_modify_mode TO 'sequential';"
        );
        assert_eq!(
            Action::RestoreForeignKey {
                table: q("a"),
                key: fk("a b")
            }
            .sql(),
            "ALTER TABLE \"public\".\"a\" ADD CONSTRAINT \"a b\" FOREIGN KEY (tenant, b_id) REFERENCES b(tenant, id) NOT VALID;"
        );
        assert_eq!(
            Action::ValidateForeignKey {
                table: q("a"),
                key: "a b".into()
            }
            .sql(),
            "ALTER TABLE \"public\".\"a\" VALIDATE CONSTRAINT \"a b\";"
        );
    }

    #[test]
    fn kinds_have_human_names_and_transactions_follow_the_kind() {
        let steps = [
            Action::CreateExtension,
            Action::SessionSetting(SEQUENTIAL),
            Action::DropForeignKey {
                table: q("a"),
                key: fk("k"),
            },
            Action::CreateReferenceTable { table: q("r") },
            Action::CreateDistributedTable(distribute("d")),
            Action::RestoreForeignKey {
                table: q("a"),
                key: fk("k"),
            },
            Action::ValidateForeignKey {
                table: q("a"),
                key: "k".into(),
            },
            Action::TruncateLocalData { table: q("d") },
        ];
        for a in &steps {
            let label = a.kind().label();
            assert!(!label.chars().any(|c| c.is_ascii_uppercase()), "{label}");
            assert_eq!(a.transaction(), !a.kind().in_citus());
        }
        assert!(!steps[3].transaction() && !steps[4].transaction() && !steps[7].transaction());
        assert!(steps[2].transaction() && steps[5].transaction());
    }

    #[test]
    fn json_keeps_the_plan_format() {
        let step = Step {
            action: Action::TruncateLocalData { table: q("t") },
            reason: Reason::LeftoverRows,
            layer: 3,
        };
        let v = serde_json::to_value(&step).unwrap();
        assert_eq!(v["kind"], "truncate_local_data");
        assert_eq!(v["table"]["name"], "t");
        assert_eq!(v["transaction"], false);
        assert_eq!(v["layer"], 3);
        assert_eq!(
            v["reason"],
            "removes the coordinator's leftover local rows after the copy into shards"
        );
        let setting = Step {
            action: Action::SessionSetting(NO_LOCAL_REFERENCE_KEYS),
            reason: Reason::LocalReferenceKeysOff,
            layer: 0,
        };
        let v = serde_json::to_value(&setting).unwrap();
        assert!(v.get("table").is_none());
        assert_eq!(
            v["sql"],
            "SET citus.enable_local_reference_table_foreign_keys TO off;"
        );
    }
}
