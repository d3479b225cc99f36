//! The `[distribution]` section of `colocate.toml`: which table is the root, which columns mark
//! a tenant table, and the per-table decisions a team made on purpose (each with its reason).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::decision::Decisions;
use crate::schema::{QualifiedName, SchemaFilter};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistributionConfig {
    /// The table every tenant table is colocated with.
    #[serde(default = "default_root")]
    pub root: String,
    /// Candidate distribution columns, in priority order: the first a table has wins.
    #[serde(default = "default_columns")]
    pub columns: Vec<String>,
    /// Shards of the root's colocation group (Citus's `citus.shard_count` when unset).
    #[serde(default)]
    pub shard_count: Option<u32>,
    /// Tables forced to be reference tables.
    #[serde(default)]
    pub reference: Vec<Forced>,
    /// Tables forced to stay local (plain PostgreSQL on the coordinator).
    #[serde(default)]
    pub local: Vec<Forced>,
    /// Per-table settings: `[distribution.tables.email_messages] column = "tenant_id"`.
    #[serde(default)]
    pub tables: BTreeMap<String, TableOverride>,
    /// Schemas to read (default: every non-system schema).
    #[serde(default)]
    pub schemas: Vec<String>,
    /// Schemas never to read.
    #[serde(default)]
    pub exclude_schemas: Vec<String>,
    /// The team's choices where every fix changes meaning (see [`crate::decision`]).
    #[serde(default, skip_serializing_if = "Decisions::is_empty")]
    pub decisions: Decisions,
}

fn default_root() -> String {
    "tenants".into()
}

fn default_columns() -> Vec<String> {
    vec!["tenant".into(), "tenant_id".into()]
}

impl Default for DistributionConfig {
    fn default() -> Self {
        DistributionConfig {
            root: default_root(),
            columns: default_columns(),
            shard_count: None,
            reference: Vec::new(),
            local: Vec::new(),
            tables: BTreeMap::new(),
            schemas: Vec::new(),
            exclude_schemas: Vec::new(),
            decisions: Decisions::default(),
        }
    }
}

/// A table named in a `reference` or `local` list: a bare name, or `{ table, reason }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Forced {
    Name(String),
    WithReason {
        table: String,
        #[serde(default)]
        reason: Option<String>,
    },
}

/// Written by hand so that a wrong entry says what an entry is, instead of serde's "did not
/// match any variant of untagged enum" (which also loses the line).
impl<'de> Deserialize<'de> for Forced {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Entry {
            table: Option<String>,
            #[serde(default)]
            reason: Option<String>,
        }
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Forced;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a table name or { table = \"…\", reason = \"…\" }")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Forced, E> {
                Ok(Forced::Name(v.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Forced, A::Error> {
                let e = Entry::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                match e.table {
                    Some(table) => Ok(Forced::WithReason {
                        table,
                        reason: e.reason,
                    }),
                    None => Err(serde::de::Error::custom(
                        "an entry needs `table`: write { table = \"name\", reason = \"why\" }",
                    )),
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl Forced {
    pub fn table(&self) -> &str {
        match self {
            Forced::Name(t) | Forced::WithReason { table: t, .. } => t,
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            Forced::Name(_) => None,
            Forced::WithReason { reason, .. } => reason.as_deref(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForcedRole {
    Distributed,
    Reference,
    Local,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableOverride {
    /// Distribute by this column instead of the first candidate.
    #[serde(default)]
    pub column: Option<String>,
    #[serde(default)]
    pub role: Option<ForcedRole>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// One decision the configuration forces on a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub role: Option<ForcedRole>,
    pub column: Option<String>,
    pub reason: Option<String>,
    /// Where it was said, for messages: `distribution.local`, `distribution.tables."x"`.
    pub source: String,
}

impl DistributionConfig {
    pub fn root_name(&self) -> QualifiedName {
        QualifiedName::parse(&self.root, "public")
    }

    pub fn schema_filter(&self) -> SchemaFilter {
        SchemaFilter {
            include: self.schemas.clone(),
            exclude: self.exclude_schemas.clone(),
        }
    }

    /// Every table the configuration names, with what it says about it. Bare names mean schema
    /// `public`. The later of two statements about one table wins: `tables.*` over the lists.
    pub fn decisions(&self) -> BTreeMap<QualifiedName, Decision> {
        let mut out = BTreeMap::new();
        for (list, role) in [
            (&self.reference, ForcedRole::Reference),
            (&self.local, ForcedRole::Local),
        ] {
            let source = match role {
                ForcedRole::Reference => "distribution.reference",
                _ => "distribution.local",
            };
            for f in list {
                out.insert(
                    QualifiedName::parse(f.table(), "public"),
                    Decision {
                        role: Some(role),
                        column: None,
                        reason: f.reason().map(str::to_string),
                        source: source.into(),
                    },
                );
            }
        }
        for (name, o) in &self.tables {
            let q = QualifiedName::parse(name, "public");
            let prev = out.remove(&q);
            out.insert(
                q,
                Decision {
                    role: o.role.or(prev.as_ref().and_then(|p| p.role)),
                    column: o.column.clone(),
                    reason: o
                        .reason
                        .clone()
                        .or_else(|| prev.as_ref().and_then(|p| p.reason.clone())),
                    source: format!("distribution.tables.\"{name}\""),
                },
            );
        }
        out
    }
}

/// Citus's own bounds for `shard_count` (`create_distributed_table` refuses others).
pub const MAX_SHARD_COUNT: u32 = 64_000;

/// One part of a setting's path inside `colocate.toml`, so a message can name the setting and
/// the binary can find its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Name(String),
    Index(usize),
}

/// A configuration that cannot mean what it says, found before anything connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// From the top of the file: `distribution`, `local`, `2`.
    pub path: Vec<Key>,
    pub message: String,
    pub hint: Option<String>,
}

impl ConfigProblem {
    /// The setting as a person writes it: `distribution.local[2]`.
    pub fn setting(&self) -> String {
        let mut out = String::new();
        for k in &self.path {
            match k {
                Key::Name(n) if out.is_empty() => out.push_str(n),
                // TOML's bare keys: letters, digits, `_` and `-`.
                Key::Name(n)
                    if !n.is_empty()
                        && n.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') =>
                {
                    out.push('.');
                    out.push_str(n);
                }
                Key::Name(n) => out.push_str(&format!(".\"{}\"", n.replace('"', "\\\""))),
                Key::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }
}

fn key(parts: &[&str]) -> Vec<Key> {
    parts.iter().map(|p| Key::Name(p.to_string())).collect()
}

impl DistributionConfig {
    /// Everything the configuration says that cannot hold, in file order: names that name no
    /// table, a shard count Citus refuses, one table given two roles, the root kept out of the
    /// distribution. Whether named tables exist is the planner's business (it needs the schema).
    pub fn validate(&self) -> Vec<ConfigProblem> {
        let mut out = Vec::new();
        let mut problem = |path: Vec<Key>, message: String, hint: Option<&str>| {
            out.push(ConfigProblem {
                path,
                message,
                hint: hint.map(str::to_string),
            })
        };
        let root = match crate::schema::split_table_name(&self.root) {
            Ok(_) => Some(self.root_name()),
            Err(e) => {
                problem(
                    key(&["distribution", "root"]),
                    format!("the root table name is not valid: {e}"),
                    Some("write `root = \"tenants\"` or `root = \"schema.tenants\"`"),
                );
                None
            }
        };
        if self.columns.is_empty() {
            problem(
                key(&["distribution", "columns"]),
                "no candidate distribution column is listed".into(),
                Some("list the tenant columns, e.g. columns = [\"tenant\", \"tenant_id\"]"),
            );
        }
        for (i, c) in self.columns.iter().enumerate() {
            let mut path = key(&["distribution", "columns"]);
            path.push(Key::Index(i));
            if c.is_empty() {
                problem(path, "a candidate column name is empty".into(), None);
            } else if self.columns[..i].contains(c) {
                problem(path, format!("column {c} is listed twice"), None);
            }
        }
        if let Some(n) = self.shard_count {
            if n == 0 || n > MAX_SHARD_COUNT {
                problem(
                    key(&["distribution", "shard_count"]),
                    format!(
                        "shard_count = {n} is outside what Citus accepts (1 to {MAX_SHARD_COUNT})"
                    ),
                    Some("leave it out to use citus.shard_count (32 by default)"),
                );
            }
        }
        // Which role each table was given, and where, to find contradictions.
        let mut given: BTreeMap<QualifiedName, (ForcedRole, String)> = BTreeMap::new();
        for (list, role, entries) in [
            ("reference", ForcedRole::Reference, &self.reference),
            ("local", ForcedRole::Local, &self.local),
        ] {
            for (i, f) in entries.iter().enumerate() {
                let mut path = key(&["distribution", list]);
                path.push(Key::Index(i));
                let here = format!("distribution.{list}[{i}]");
                if let Err(e) = crate::schema::split_table_name(f.table()) {
                    problem(path, format!("not a table name: {e}"), None);
                    continue;
                }
                let q = QualifiedName::parse(f.table(), "public");
                if Some(&q) == root.as_ref() {
                    problem(
                        path,
                        format!(
                            "{q} is the root table, which is always distributed; it cannot be {}",
                            role_word(role)
                        ),
                        Some(
                            "remove it from the list, or name another root with distribution.root",
                        ),
                    );
                    continue;
                }
                match given.get(&q) {
                    Some((r, at)) if *r == role => {
                        problem(path, format!("{q} is listed twice (also at {at})"), None)
                    }
                    Some((r, at)) => problem(
                        path,
                        format!(
                            "{q} is made {} here but {} at {at}",
                            role_word(role),
                            role_word(*r)
                        ),
                        Some("a table has one role: keep one of the two entries"),
                    ),
                    None => {
                        given.insert(q, (role, here));
                    }
                }
            }
        }
        for (name, o) in &self.tables {
            let path = key(&["distribution", "tables", name]);
            if let Err(e) = crate::schema::split_table_name(name) {
                problem(path, format!("not a table name: {e}"), None);
                continue;
            }
            let q = QualifiedName::parse(name, "public");
            if let Some(c) = &o.column {
                let mut p = path.clone();
                p.push(Key::Name("column".into()));
                if c.is_empty() {
                    problem(p, format!("the distribution column of {q} is empty"), None);
                } else if matches!(o.role, Some(ForcedRole::Reference | ForcedRole::Local)) {
                    problem(
                        p,
                        format!("{q} has a distribution column but is made {}", role_word(o.role.unwrap_or(ForcedRole::Local))),
                        Some("only distributed tables have a distribution column: drop `column` or `role`"),
                    );
                }
            }
            let Some(role) = o.role else { continue };
            let mut p = path.clone();
            p.push(Key::Name("role".into()));
            if Some(&q) == root.as_ref() && role != ForcedRole::Distributed {
                problem(
                    p,
                    format!(
                        "{q} is the root table, which is always distributed; it cannot be {}",
                        role_word(role)
                    ),
                    Some("name another root with distribution.root, or drop this role"),
                );
            } else if let Some((r, at)) = given.get(&q).filter(|(r, _)| *r != role) {
                problem(
                    p,
                    format!(
                        "{q} is made {} here but {} at {at}",
                        role_word(role),
                        role_word(*r)
                    ),
                    Some("a table has one role: keep one of the two"),
                );
            }
        }
        for (list, names) in [
            ("schemas", &self.schemas),
            ("exclude_schemas", &self.exclude_schemas),
        ] {
            for (i, n) in names.iter().enumerate() {
                let mut path = key(&["distribution", list]);
                path.push(Key::Index(i));
                if n.is_empty() {
                    problem(path, "a schema name is empty".into(), None);
                } else if list == "exclude_schemas" && self.schemas.contains(n) {
                    problem(
                        path,
                        format!("schema {n} is both read (distribution.schemas) and excluded"),
                        Some("keep it in one of the two lists"),
                    );
                }
            }
        }
        out.extend(self.decisions.validate());
        out
    }
}

fn role_word(r: ForcedRole) -> &'static str {
    match r {
        ForcedRole::Distributed => "distributed",
        ForcedRole::Reference => "a reference table",
        ForcedRole::Local => "local",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_merge_lists_and_tables() {
        let c = DistributionConfig {
            reference: vec![Forced::Name("countries".into())],
            local: vec![Forced::WithReason {
                table: "ops.jobs".into(),
                reason: Some("control plane".into()),
            }],
            tables: [(
                "email_messages".to_string(),
                TableOverride {
                    column: Some("tenant_id".into()),
                    ..Default::default()
                },
            )]
            .into(),
            ..Default::default()
        };
        let d = c.decisions();
        assert_eq!(
            d[&QualifiedName::new("public", "countries")].role,
            Some(ForcedRole::Reference)
        );
        let jobs = &d[&QualifiedName::new("ops", "jobs")];
        assert_eq!(jobs.reason.as_deref(), Some("control plane"));
        assert_eq!(
            d[&QualifiedName::new("public", "email_messages")]
                .column
                .as_deref(),
            Some("tenant_id")
        );
    }

    fn problems(toml_text: &str) -> Vec<(String, String)> {
        #[derive(Deserialize)]
        struct File {
            distribution: DistributionConfig,
        }
        let f: File = toml::from_str(toml_text).expect("valid TOML");
        f.distribution
            .validate()
            .into_iter()
            .map(|p| (p.setting(), p.message))
            .collect()
    }

    #[test]
    fn a_sound_configuration_has_no_problems() {
        assert!(DistributionConfig::default().validate().is_empty());
        let p = problems(
            "[distribution]\nroot = \"app.tenants\"\nshard_count = 64000\nreference = [\"countries\"]\n\
             local = [{ table = \"jobs\", reason = \"control plane\" }]\n\
             [distribution.tables.\"Mixed.Case\"]\ncolumn = \"teamId\"\n",
        );
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn each_contradiction_names_its_setting() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "shard_count = 0",
                "distribution.shard_count",
                "outside what Citus accepts",
            ),
            (
                "shard_count = 64001",
                "distribution.shard_count",
                "1 to 64000",
            ),
            ("root = \"\"", "distribution.root", "empty"),
            (
                "root = \"a.b.c\"",
                "distribution.root",
                "more than two parts",
            ),
            ("columns = []", "distribution.columns", "no candidate"),
            (
                "columns = [\"tenant\", \"\"]",
                "distribution.columns[1]",
                "empty",
            ),
            (
                "columns = [\"t\", \"t\"]",
                "distribution.columns[1]",
                "twice",
            ),
            (
                "reference = [\"x\"]\nlocal = [\"public.x\"]",
                "distribution.local[0]",
                "but a reference table at distribution.reference[0]",
            ),
            (
                "local = [\"x\", \"x\"]",
                "distribution.local[1]",
                "listed twice",
            ),
            (
                "local = [\"tenants\"]",
                "distribution.local[0]",
                "root table",
            ),
            (
                "reference = [{ table = \"public.tenants\" }]",
                "distribution.reference[0]",
                "root table",
            ),
            (
                "local = [\"\\\"open\"]",
                "distribution.local[0]",
                "unclosed",
            ),
            (
                "schemas = [\"a\"]\nexclude_schemas = [\"a\"]",
                "distribution.exclude_schemas[0]",
                "both read",
            ),
            (
                "[distribution.tables.tenants]\nrole = \"local\"",
                "distribution.tables.tenants.role",
                "root table",
            ),
            (
                "local = [\"y\"]\n[distribution.tables.y]\nrole = \"reference\"",
                "distribution.tables.y.role",
                "but local at distribution.local[0]",
            ),
            (
                "[distribution.tables.y]\nrole = \"reference\"\ncolumn = \"tenant\"",
                "distribution.tables.y.column",
                "has a distribution column",
            ),
            (
                "[distribution.tables.\"a.b.c\"]\ncolumn = \"t\"",
                "distribution.tables.\"a.b.c\"",
                "more than two parts",
            ),
        ];
        for (body, setting, words) in cases {
            let text = if body.starts_with('[') {
                body.to_string()
            } else {
                format!("[distribution]\n{body}")
            };
            let p = problems(&text);
            assert_eq!(p.len(), 1, "{body}: {p:?}");
            assert_eq!(p[0].0, *setting, "{body}");
            assert!(p[0].1.contains(words), "{body}: {}", p[0].1);
        }
    }

    #[test]
    fn a_list_entry_without_a_table_says_what_an_entry_is() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct File {
            distribution: DistributionConfig,
        }
        let e =
            toml::from_str::<File>("[distribution]\nlocal = [{ reason = \"x\" }]\n").unwrap_err();
        assert!(e.message().contains("needs `table`"), "{}", e.message());
        assert!(e.span().is_some());
        let e = toml::from_str::<File>("[distribution]\nlocal = [3]\n").unwrap_err();
        assert!(e.message().contains("a table name or"), "{}", e.message());
    }
}
