//! The schema model the planner reads: tables, their columns, keys, foreign keys, triggers,
//! policies, partitioning and Citus metadata, as introspection found them. Tables are kept in a
//! `BTreeMap` by qualified name and refer to each other by name, so every listing is sorted and
//! every output deterministic.

use std::collections::BTreeMap;
use std::fmt;

use postgres_protocol::escape::{escape_identifier, escape_literal};
use serde::{Deserialize, Serialize};

/// `schema.name`, unquoted in the model; quoted by the driver's escaping whenever it becomes SQL.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct QualifiedName {
    pub schema: String,
    pub name: String,
}

impl QualifiedName {
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> Self {
        QualifiedName {
            schema: schema.into(),
            name: name.into(),
        }
    }

    /// Parse a name as written in configuration: `name` (schema `default_schema`) or
    /// `schema.name`; either part may be double-quoted to hold dots or capitals literally.
    pub fn parse(text: &str, default_schema: &str) -> QualifiedName {
        let parts = split_dotted(text);
        match parts.as_slice() {
            [name] => QualifiedName::new(default_schema, name.clone()),
            [schema, name] => QualifiedName::new(schema.clone(), name.clone()),
            _ => QualifiedName::new(default_schema, text),
        }
    }

    /// As SQL: `"schema"."name"`.
    pub fn sql(&self) -> String {
        format!(
            "{}.{}",
            escape_identifier(&self.schema),
            escape_identifier(&self.name)
        )
    }

    /// As a SQL string literal naming the table, for functions taking `regclass`.
    pub fn regclass_literal(&self) -> String {
        escape_literal(&self.sql())
    }
}

/// Split a table name as written in configuration (`name` or `schema.name`, parts optionally
/// double-quoted) into its optional schema and its name, refusing what names no table: an empty
/// part, more than two parts, an unclosed quote.
pub fn split_table_name(text: &str) -> Result<(Option<String>, String), String> {
    if text.chars().filter(|c| *c == '"').count() % 2 == 1 {
        return Err(format!("'{text}' has an unclosed double quote"));
    }
    let parts = split_dotted(text);
    if parts.iter().any(|p| p.is_empty()) {
        return Err(if text.is_empty() {
            "the name is empty".to_string()
        } else {
            format!("'{text}' has an empty part")
        });
    }
    match <[String; 1]>::try_from(parts.clone()) {
        Ok([name]) => Ok((None, name)),
        Err(_) => match <[String; 2]>::try_from(parts) {
            Ok([schema, name]) => Ok((Some(schema), name)),
            Err(_) => Err(format!(
                "'{text}' has more than two parts (write `table` or `schema.table`; quote a part \
                 that holds a dot)"
            )),
        },
    }
}

/// Split `a.b` on dots outside double quotes, unquoting each part.
fn split_dotted(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            '.' if !quoted => parts.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    parts.push(cur);
    parts
}

/// Readable form: quotes only where PostgreSQL would need them.
impl fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}",
            display_ident(&self.schema),
            display_ident(&self.name)
        )
    }
}

/// Names as a person reads a list of them: `a.x, b.y`.
pub fn name_list<'a>(names: impl IntoIterator<Item = &'a QualifiedName>) -> String {
    names
        .into_iter()
        .map(|t| t.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// An identifier as a person reads it: bare when lower-case and simple, quoted otherwise.
pub fn display_ident(s: &str) -> String {
    let simple = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit());
    if simple {
        s.to_string()
    } else {
        escape_identifier(s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TableKind {
    Ordinary,
    Partitioned,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    /// `format_type` of the column's type, e.g. `uuid`, `character varying(64)`.
    pub type_name: String,
    pub not_null: bool,
    /// `a` (ALWAYS) or `d` (BY DEFAULT) for identity columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<char>,
    /// A stored generated column.
    #[serde(default)]
    pub generated: bool,
    /// The type has a default hash operator class (needed for a distribution column).
    #[serde(default = "yes")]
    pub hashable: bool,
    /// The column's collation is deterministic (non-deterministic ones cannot distribute).
    #[serde(default = "yes")]
    pub deterministic_collation: bool,
    /// Its default expression as the server prints it (`nextval('t_id_seq'::regclass)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

fn yes() -> bool {
    true
}

impl Column {
    pub fn new(name: &str, type_name: &str, not_null: bool) -> Column {
        Column {
            name: name.into(),
            type_name: type_name.into(),
            not_null,
            identity: None,
            generated: false,
            hashable: true,
            deterministic_collation: true,
            default: None,
        }
    }

    /// Whether the database itself hands out this column's values, each different from every
    /// other: an identity column, a sequence (`serial`, `nextval`), or a random UUID default. A
    /// key on such a surrogate is unique across tenants by construction, so adding the tenant
    /// column to it changes nothing the application can observe.
    pub fn is_surrogate(&self) -> bool {
        if self.identity.is_some() {
            return true;
        }
        let Some(d) = self.default.as_deref() else {
            return false;
        };
        let d = d.trim().to_ascii_lowercase();
        d.starts_with("nextval(")
            || [
                "gen_random_uuid()",
                "uuid_generate_v4()",
                "public.uuid_generate_v4()",
                "uuid_generate_v1mc()",
                "uuid_generate_v1()",
            ]
            .iter()
            .any(|f| d == *f)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    PrimaryKey,
    Unique,
    /// A unique index that backs no constraint.
    UniqueIndex,
    Exclusion,
}

/// A primary key, unique constraint, unique index or exclusion constraint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Key {
    pub name: String,
    pub kind: KeyKind,
    /// Column names in key order; `None` entries are expressions.
    pub columns: Vec<Option<String>>,
    /// `WHERE` predicate of a partial unique index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicate: Option<String>,
    /// `pg_get_constraintdef` / `pg_get_indexdef`.
    pub definition: String,
}

impl Key {
    pub fn includes(&self, column: &str) -> bool {
        self.columns.iter().any(|c| c.as_deref() == Some(column))
    }

    pub fn column_names(&self) -> Vec<&str> {
        self.columns.iter().flatten().map(String::as_str).collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FkAction {
    NoAction,
    Restrict,
    Cascade,
    SetNull,
    SetDefault,
}

impl FkAction {
    /// From `pg_constraint.confdeltype` / `confupdtype`.
    pub fn from_code(c: char) -> FkAction {
        match c {
            'r' => FkAction::Restrict,
            'c' => FkAction::Cascade,
            'n' => FkAction::SetNull,
            'd' => FkAction::SetDefault,
            _ => FkAction::NoAction,
        }
    }

    pub fn sql(&self) -> &'static str {
        match self {
            FkAction::NoAction => "NO ACTION",
            FkAction::Restrict => "RESTRICT",
            FkAction::Cascade => "CASCADE",
            FkAction::SetNull => "SET NULL",
            FkAction::SetDefault => "SET DEFAULT",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForeignKey {
    pub name: String,
    pub columns: Vec<String>,
    pub ref_table: QualifiedName,
    pub ref_columns: Vec<String>,
    pub on_delete: FkAction,
    pub on_update: FkAction,
    /// `ON DELETE SET NULL (cols)` / `SET DEFAULT (cols)` column list (PostgreSQL 15+).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_delete_columns: Vec<String>,
    pub validated: bool,
    /// `pg_get_constraintdef`, used verbatim to restore a dropped key.
    pub definition: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    pub name: String,
    pub definition: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub using: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with_check: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CitusKind {
    Distributed,
    Reference,
    /// A local table in Citus metadata (often left by a foreign key to a reference table, or by
    /// a concurrent distribution that failed part way).
    CitusLocal,
}

/// What Citus metadata says about a table now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CitusTable {
    pub kind: CitusKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    pub colocation_id: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_count: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub name: QualifiedName,
    pub kind: TableKind,
    /// Partitions folded into this table (they are distributed with it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partitions: Vec<QualifiedName>,
    /// This table is itself a partition of another partition's parent chain (multi-level), or
    /// a partitioned table that is a partition: Citus refuses these.
    #[serde(default)]
    pub multi_level_partition: bool,
    /// Parents through plain `INHERITS` (not partitioning).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inherits: Vec<QualifiedName>,
    /// Has children through plain `INHERITS`.
    #[serde(default)]
    pub has_inheritors: bool,
    pub columns: Vec<Column>,
    #[serde(default)]
    pub keys: Vec<Key>,
    #[serde(default)]
    pub foreign_keys: Vec<ForeignKey>,
    #[serde(default)]
    pub triggers: Vec<Trigger>,
    #[serde(default)]
    pub rls_enabled: bool,
    #[serde(default)]
    pub policies: Vec<Policy>,
    /// `pg_class.reltuples` (of the parent plus partitions); -1 when never analysed.
    #[serde(default)]
    pub row_estimate: i64,
    /// Bytes in the table's own heap on this node (plus its partitions'). For a Citus table this
    /// is data left on the coordinator after its rows were copied into shards.
    #[serde(default)]
    pub local_bytes: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub citus: Option<CitusTable>,
}

impl Table {
    pub fn new(schema: &str, name: &str) -> Table {
        Table {
            name: QualifiedName::new(schema, name),
            kind: TableKind::Ordinary,
            partitions: Vec::new(),
            multi_level_partition: false,
            inherits: Vec::new(),
            has_inheritors: false,
            columns: Vec::new(),
            keys: Vec::new(),
            foreign_keys: Vec::new(),
            triggers: Vec::new(),
            rls_enabled: false,
            policies: Vec::new(),
            row_estimate: 0,
            local_bytes: 0,
            citus: None,
        }
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn primary_key(&self) -> Option<&Key> {
        self.keys.iter().find(|k| k.kind == KeyKind::PrimaryKey)
    }
}

/// A view and the tables it reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    pub name: QualifiedName,
    pub materialized: bool,
    pub depends_on: Vec<QualifiedName>,
}

/// Whether `CREATE EXTENSION citus` can succeed on this server, as an SQL expression: the
/// package is installed (`pg_available_extensions`) *and* its library is preloaded. Citus
/// refuses to be created otherwise (`Citus can only be loaded via shared_preload_libraries`).
/// Preloading is seen in `pg_settings`, which lists Citus's settings only once its library is
/// loaded (a placeholder a config sets is not listed) and needs no privilege, unlike reading
/// `shared_preload_libraries`.
pub const CITUS_LOADABLE_SQL: &str = "(EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'citus') AND EXISTS (SELECT 1 FROM pg_settings WHERE name = 'citus.shard_count'))";

/// The package is installed, but not preloaded: an SQL expression.
pub const CITUS_NOT_PRELOADED_SQL: &str = "(EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'citus') AND NOT EXISTS (SELECT 1 FROM pg_settings WHERE name = 'citus.shard_count'))";

/// What to say where the package is installed but not preloaded.
pub const CITUS_NOT_PRELOADED: &str = "the citus package is installed on this server but not preloaded, so this database is plain PostgreSQL here: to use Citus, add citus to shared_preload_libraries in postgresql.conf and restart the server";

/// The Citus extension as the database has it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CitusState {
    /// Citus can be created here: the package is installed and preloaded
    /// ([`CITUS_LOADABLE_SQL`]).
    pub available: bool,
    /// The package is installed but not in `shared_preload_libraries`: Citus cannot be created
    /// until the server is reconfigured, and every Citus step is a no-op that says so.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub not_preloaded: bool,
    /// Installed version (`CREATE EXTENSION` done), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed: Option<String>,
    /// Worker nodes registered (`pg_dist_node`, excluding the coordinator).
    #[serde(default)]
    pub workers: usize,
}

/// Which schemas introspection reads. Empty `include` means every non-system schema
/// (`pg_catalog`, `information_schema`, `pg_toast*`, `pg_temp*` and Citus's own schemas are
/// never read).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SchemaFilter {
    #[serde(default)]
    pub include: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Schema {
    pub tables: BTreeMap<QualifiedName, Table>,
    #[serde(default)]
    pub views: Vec<View>,
    #[serde(default)]
    pub citus: CitusState,
    /// Foreign keys colocate dropped on purpose and has not yet brought back valid: the open
    /// rows of its journal.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub journal: Vec<JournaledKey>,
}

/// A journal row still open: the key, the table that declares it (as the journal writes it,
/// quoted SQL) and how far it got (`dropped`, or `restored` but not yet validated).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct JournaledKey {
    pub table: String,
    pub key: String,
    pub state: String,
}

impl Schema {
    pub fn add(&mut self, t: Table) {
        self.tables.insert(t.name.clone(), t);
    }

    pub fn table(&self, name: &QualifiedName) -> Option<&Table> {
        self.tables.get(name)
    }

    /// The foreign keys between a table `inside` accepts and a table `outside` accepts, either
    /// way, each with the table that declares it (in name order). The two sides are meant to
    /// be disjoint; a key within one side is not listed.
    pub fn keys_between(
        &self,
        inside: impl Fn(&QualifiedName) -> bool,
        outside: impl Fn(&QualifiedName) -> bool,
    ) -> Vec<(QualifiedName, &ForeignKey)> {
        let mut out = Vec::new();
        for t in self.tables.values() {
            let (is_in, is_out) = (inside(&t.name), outside(&t.name));
            for fk in &t.foreign_keys {
                if (is_in && outside(&fk.ref_table)) || (is_out && inside(&fk.ref_table)) {
                    out.push((t.name.clone(), fk));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_quote() {
        let q = QualifiedName::parse("tickets", "public");
        assert_eq!(q, QualifiedName::new("public", "tickets"));
        assert_eq!(q.sql(), "\"public\".\"tickets\"");
        let q = QualifiedName::parse("\"Billing.Ops\".\"Invoice \"\"Lines\"\"\"", "public");
        assert_eq!(q, QualifiedName::new("Billing.Ops", "Invoice \"Lines\""));
        assert_eq!(q.to_string(), "\"Billing.Ops\".\"Invoice \"\"Lines\"\"\"");
        assert_eq!(
            q.regclass_literal(),
            "'\"Billing.Ops\".\"Invoice \"\"Lines\"\"\"'"
        );
        assert_eq!(QualifiedName::new("app", "users").to_string(), "app.users");
    }

    #[test]
    fn table_names_are_split_strictly() {
        assert_eq!(split_table_name("t"), Ok((None, "t".into())));
        assert_eq!(
            split_table_name("ops.hist"),
            Ok((Some("ops".into()), "hist".into()))
        );
        assert_eq!(
            split_table_name("\"we\"\"ird\""),
            Ok((None, "we\"ird".into()))
        );
        assert_eq!(
            split_table_name("\"a.b\".c"),
            Ok((Some("a.b".into()), "c".into()))
        );
        for bad in ["", "a.b.c", ".t", "t.", "\"\"", "\"open", "a..b"] {
            assert!(split_table_name(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
