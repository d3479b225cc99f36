//! The `[distribution]` section of `colocate.toml`: which table is the root, which columns mark
//! a tenant table, and the per-table decisions a team made on purpose (each with its reason).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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
        }
    }
}

/// A table named in a `reference` or `local` list: a bare name, or `{ table, reason }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Forced {
    Name(String),
    WithReason {
        table: String,
        #[serde(default)]
        reason: Option<String>,
    },
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
}
