//! Declarative migration steps: `YYYYMMDDHHMMSS_name.toml` files in a migration directory that
//! say *what* Citus should hold, not how. Each file declares exactly one step:
//!
//! ```toml
//! [citus]
//! extension = true                # create the citus extension where the server offers it
//! ```
//! ```toml
//! [reference]
//! tables = ["countries", "billing.currencies"]
//! ```
//! ```toml
//! [distribute]
//! column = "tenant"
//! colocate_with = "tenants"       # omit when the file distributes the root itself
//! tables = ["users", "teams"]
//! ```
//!
//! The runner turns a step into the apply engine's work restricted to the listed tables, so it is
//! idempotent (tables already as asked are skipped), and into an automatic down part. This module
//! parses and renders the files and builds the distribution configuration the engine plans with;
//! it does no I/O.

use crate::schema::name_list as names;
use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::distribution::{DistributionConfig, Forced, ForcedRole, TableOverride};
use crate::schema::QualifiedName;

/// One declarative step, as a `.toml` migration file declares it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DeclarativeStep {
    /// `[citus] extension = true`.
    Extension,
    /// `[reference] tables = [...]`.
    Reference { tables: Vec<QualifiedName> },
    /// `[distribute]`: `tables` distributed by `column`, colocated with `colocate_with` (the
    /// root), or, when that is omitted, the single listed table is the root of a new group.
    Distribute {
        column: String,
        colocate_with: Option<QualifiedName>,
        tables: Vec<QualifiedName>,
        /// Shards of the new colocation group (only where the file distributes the root).
        shard_count: Option<u32>,
        /// Tables converted keeping their triggers, with `citus.enable_unsafe_triggers` (a
        /// `triggers = keep-unsafe` decision written down): this step's, and those of the other
        /// steps of the set, whose triggers must not hold this step's tables back.
        unsafe_triggers: Vec<QualifiedName>,
    },
}

/// Why a `.toml` step file cannot be read. `line` is 1-based, when the problem has a place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepError {
    pub line: Option<usize>,
    pub message: String,
}

impl StepError {
    fn new(message: impl Into<String>) -> StepError {
        StepError {
            line: None,
            message: message.into(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    citus: Option<CitusSection>,
    reference: Option<ReferenceSection>,
    distribute: Option<DistributeSection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CitusSection {
    extension: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReferenceSection {
    tables: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DistributeSection {
    column: String,
    colocate_with: Option<String>,
    tables: Vec<String>,
    shard_count: Option<u32>,
    #[serde(default)]
    unsafe_triggers: Vec<String>,
}

impl DeclarativeStep {
    /// Parse the text of a step file. Table names are written as in `colocate.toml`: `name`
    /// (schema `public`) or `schema.name`, a part double-quoted when it holds a dot.
    pub fn parse(text: &str) -> Result<DeclarativeStep, StepError> {
        let file: File = toml::from_str(text).map_err(|e| StepError {
            line: e.span().map(|s| line_at(text, s.start)),
            message: e
                .message()
                .lines()
                .next()
                .unwrap_or("invalid TOML")
                .to_string(),
        })?;
        let declared: Vec<&str> = [
            file.citus.as_ref().map(|_| "[citus]"),
            file.reference.as_ref().map(|_| "[reference]"),
            file.distribute.as_ref().map(|_| "[distribute]"),
        ]
        .into_iter()
        .flatten()
        .collect();
        match declared.as_slice() {
            [] => {
                return Err(StepError::new(
                    "declares no step: expected one of [citus], [reference] or [distribute]",
                ))
            }
            [_] => {}
            more => {
                return Err(StepError::new(format!(
                    "declares {}: one step per file",
                    more.join(" and ")
                )))
            }
        }
        if let Some(c) = file.citus {
            if !c.extension {
                return Err(StepError::new(
                    "[citus] extension = false declares nothing; write extension = true or remove the file",
                ));
            }
            return Ok(DeclarativeStep::Extension);
        }
        if let Some(r) = file.reference {
            let tables = table_list("[reference]", &r.tables)?;
            return Ok(DeclarativeStep::Reference { tables });
        }
        let Some(d) = file.distribute else {
            return Err(StepError::new("declares no step"));
        };
        let tables = table_list("[distribute]", &d.tables)?;
        if d.column.is_empty() {
            return Err(StepError::new("[distribute] column is empty"));
        }
        let colocate_with = match d.colocate_with.as_deref() {
            Some("") => return Err(StepError::new("[distribute] colocate_with is empty")),
            Some(c) => Some(QualifiedName::parse(c, "public")),
            None => None,
        };
        let names_root = match &colocate_with {
            None => {
                if tables.len() > 1 {
                    return Err(StepError::new(format!(
                        "[distribute] lists {} tables without colocate_with: name the table they are colocated with (only a file that distributes the root alone may omit it)",
                        tables.len()
                    )));
                }
                true
            }
            Some(root) => tables.contains(root),
        };
        if d.shard_count.is_some() && !names_root {
            return Err(StepError::new(
                "[distribute] shard_count applies only to a file that distributes the root (colocate_with omitted, or the root listed in tables)",
            ));
        }
        if d.shard_count == Some(0) {
            return Err(StepError::new(
                "[distribute] shard_count must be at least 1",
            ));
        }
        let unsafe_triggers = d
            .unsafe_triggers
            .iter()
            .map(|t| QualifiedName::parse(t, "public"))
            .collect();
        Ok(DeclarativeStep::Distribute {
            column: d.column,
            colocate_with,
            tables,
            shard_count: d.shard_count,
            unsafe_triggers,
        })
    }

    /// The tables the step is about (none for the extension).
    pub fn tables(&self) -> &[QualifiedName] {
        match self {
            DeclarativeStep::Extension => &[],
            DeclarativeStep::Reference { tables } | DeclarativeStep::Distribute { tables, .. } => {
                tables
            }
        }
    }

    /// The root a distribute step colocates with: `colocate_with`, else its single table.
    pub fn root(&self) -> Option<&QualifiedName> {
        match self {
            DeclarativeStep::Distribute {
                colocate_with,
                tables,
                ..
            } => colocate_with.as_ref().or(tables.first()),
            _ => None,
        }
    }

    /// The configuration the apply engine plans a reference or distribute step with: only this
    /// file's say, so the step means the same in every database. `root_column` is the column
    /// the root is distributed by, when the file does not distribute the root itself (the
    /// database knows it). `None` for the extension.
    pub fn config(&self, root_column: Option<&str>) -> Option<DistributionConfig> {
        match self {
            DeclarativeStep::Extension => None,
            DeclarativeStep::Reference { tables } => Some(DistributionConfig {
                reference: tables
                    .iter()
                    .map(|t| Forced::Name(config_name(t)))
                    .collect(),
                ..DistributionConfig::default()
            }),
            DeclarativeStep::Distribute {
                column,
                tables,
                shard_count,
                unsafe_triggers,
                ..
            } => {
                let root = self.root()?;
                let mut overrides: BTreeMap<String, TableOverride> = tables
                    .iter()
                    .map(|t| {
                        (
                            config_name(t),
                            TableOverride {
                                column: Some(column.clone()),
                                role: Some(ForcedRole::Distributed),
                                reason: Some("listed in a declarative distribute step".into()),
                            },
                        )
                    })
                    .collect();
                if let (false, Some(c)) = (tables.contains(root), root_column) {
                    overrides.insert(
                        config_name(root),
                        TableOverride {
                            column: Some(c.to_string()),
                            ..TableOverride::default()
                        },
                    );
                }
                let decisions = crate::decision::Decisions {
                    by_kind: Default::default(),
                    except: unsafe_triggers
                        .iter()
                        .map(|t| crate::decision::Exception {
                            kind: crate::decision::DecisionKind::Triggers,
                            table: config_name(t),
                            constraint: None,
                            choice: crate::decision::Choice::KeepUnsafe,
                            reason: "listed in unsafe_triggers of a declarative distribute step"
                                .into(),
                        })
                        .collect(),
                };
                Some(DistributionConfig {
                    root: config_name(root),
                    columns: vec![column.clone()],
                    shard_count: *shard_count,
                    tables: overrides,
                    decisions,
                    ..DistributionConfig::default()
                })
            }
        }
    }

    /// [`DeclarativeStep::config`], knowing the distribution columns every `[distribute]` step
    /// of the chain names (see [`chain_columns`]): a table outside the step that has one of
    /// them is a tenant table another step distributes, not a tenant-less table that stays
    /// plain. The integrity closure holds a step's table back for a table that stays plain and
    /// references it; without this, a `tenant` step would be held back by every `tenant_id`
    /// table referencing it. The step's own column still comes first.
    pub fn config_in_chain(
        &self,
        root_column: Option<&str>,
        chain: &[String],
    ) -> Option<DistributionConfig> {
        let mut config = self.config(root_column)?;
        if let DeclarativeStep::Distribute { .. } = self {
            for c in chain {
                if !config.columns.contains(c) {
                    config.columns.push(c.clone());
                }
            }
        }
        Some(config)
    }

    /// One line saying what the up part does, for dry runs and listings.
    pub fn describe_up(&self) -> String {
        match self {
            DeclarativeStep::Extension => {
                "create extension citus where the server offers it".to_string()
            }
            DeclarativeStep::Reference { tables } => {
                format!(
                    "make {} {}",
                    crate::words::noun(tables.len(), "reference table"),
                    names(tables)
                )
            }
            DeclarativeStep::Distribute {
                column,
                colocate_with,
                tables,
                ..
            } => match colocate_with {
                Some(root) => format!(
                    "distribute {} by {}, colocated with {root}",
                    names(tables),
                    crate::schema::display_ident(column)
                ),
                None => format!(
                    "distribute {} by {} as the root of a new colocation group",
                    names(tables),
                    crate::schema::display_ident(column)
                ),
            },
        }
    }

    /// One line saying what the automatic down part does.
    pub fn describe_down(&self) -> String {
        match self {
            DeclarativeStep::Extension => {
                "drop extension citus, if no Citus table remains".to_string()
            }
            DeclarativeStep::Reference { tables } | DeclarativeStep::Distribute { tables, .. } => {
                format!(
                    "undistribute {} (with the tables joined to them by foreign keys)",
                    names(tables)
                )
            }
        }
    }

    /// The step as the text of a `.toml` file (without comments), as [`DeclarativeStep::parse`]
    /// reads it back.
    pub fn to_toml(&self) -> String {
        match self {
            DeclarativeStep::Extension => "[citus]\nextension = true\n".to_string(),
            DeclarativeStep::Reference { tables } => {
                format!("[reference]\ntables = {}\n", toml_list(tables))
            }
            DeclarativeStep::Distribute {
                column,
                colocate_with,
                tables,
                shard_count,
                unsafe_triggers,
            } => {
                let mut out = format!("[distribute]\ncolumn = {}\n", toml_string(column));
                if let Some(root) = colocate_with {
                    out.push_str(&format!(
                        "colocate_with = {}\n",
                        toml_string(&config_name(root))
                    ));
                }
                if let Some(n) = shard_count {
                    out.push_str(&format!("shard_count = {n}\n"));
                }
                out.push_str(&format!("tables = {}\n", toml_list(tables)));
                if !unsafe_triggers.is_empty() {
                    out.push_str(&format!(
                        "unsafe_triggers = {}\n",
                        toml_list(unsafe_triggers)
                    ));
                }
                out
            }
        }
    }
}

fn table_list(section: &str, raw: &[String]) -> Result<Vec<QualifiedName>, StepError> {
    if raw.is_empty() {
        return Err(StepError::new(format!("{section} tables is empty")));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(raw.len());
    for t in raw {
        if t.trim().is_empty() {
            return Err(StepError::new(format!(
                "{section} tables has an empty name"
            )));
        }
        let q = QualifiedName::parse(t, "public");
        if q.name.is_empty() || q.schema.is_empty() {
            return Err(StepError::new(format!(
                "{section} tables: '{t}' is not a table name (name or schema.name)"
            )));
        }
        if !seen.insert(q.clone()) {
            return Err(StepError::new(format!("{section} tables lists {q} twice")));
        }
        out.push(q);
    }
    Ok(out)
}

/// The distribution columns the `[distribute]` steps among `steps` name, each once, in the
/// order they first appear: what a migration chain distributes its tables by.
pub fn chain_columns<'a>(steps: impl IntoIterator<Item = &'a DeclarativeStep>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in steps {
        if let DeclarativeStep::Distribute { column, .. } = s {
            if !out.contains(column) {
                out.push(column.clone());
            }
        }
    }
    out
}

fn line_at(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// A table name as `colocate.toml` and step files write it, read back by
/// [`QualifiedName::parse`] with schema `public` as the default: `name` for `public.name`,
/// else `schema.name`; a part holding a dot or a double quote is double-quoted.
pub fn config_name(q: &QualifiedName) -> String {
    fn part(s: &str) -> String {
        if s.contains('.') || s.contains('"') {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    }
    if q.schema == "public" {
        part(&q.name)
    } else {
        format!("{}.{}", part(&q.schema), part(&q.name))
    }
}

/// A TOML basic string with every character escaped as TOML requires.
pub fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn toml_list(tables: &[QualifiedName]) -> String {
    let items: Vec<String> = tables
        .iter()
        .map(|t| toml_string(&config_name(t)))
        .collect();
    if items.len() <= 3 {
        return format!("[{}]", items.join(", "));
    }
    let mut out = String::from("[\n");
    for i in items {
        out.push_str(&format!("  {i},\n"));
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> QualifiedName {
        QualifiedName::parse(s, "public")
    }

    fn err(text: &str) -> String {
        let e = DeclarativeStep::parse(text).unwrap_err();
        match e.line {
            Some(l) => format!("{l}: {}", e.message),
            None => e.message,
        }
    }

    #[test]
    fn the_three_steps() {
        assert_eq!(
            DeclarativeStep::parse("[citus]\nextension = true\n").unwrap(),
            DeclarativeStep::Extension
        );
        assert_eq!(
            DeclarativeStep::parse(
                "# lookups\n[reference]\ntables = [\"countries\", \"billing.currencies\"]\n"
            )
            .unwrap(),
            DeclarativeStep::Reference {
                tables: vec![q("countries"), q("billing.currencies")]
            }
        );
        let d = DeclarativeStep::parse(
            "[distribute]\ncolumn = \"tenant\"\ncolocate_with = \"tenants\"\ntables = [\"users\", \"teams\"]\n",
        )
        .unwrap();
        assert_eq!(
            d,
            DeclarativeStep::Distribute {
                column: "tenant".into(),
                colocate_with: Some(q("tenants")),
                tables: vec![q("users"), q("teams")],
                shard_count: None,
                unsafe_triggers: Vec::new(),
            }
        );
        assert_eq!(d.root(), Some(&q("tenants")));
        let root = DeclarativeStep::parse(
            "[distribute]\ncolumn = \"tenant\"\ntables = [\"tenants\"]\nshard_count = 8\n",
        )
        .unwrap();
        assert_eq!(root.root(), Some(&q("tenants")));
        assert_eq!(root.tables(), &[q("tenants")]);
    }

    #[test]
    fn every_error_is_one_line() {
        let cases = [
            ("", "declares no step: expected one of [citus], [reference] or [distribute]"),
            ("# nothing\n", "declares no step: expected one of [citus], [reference] or [distribute]"),
            (
                "[citus]\nextension = true\n[reference]\ntables = [\"a\"]\n",
                "declares [citus] and [reference]: one step per file",
            ),
            (
                "[citus]\nextension = true\n[reference]\ntables = [\"a\"]\n[distribute]\ncolumn = \"t\"\ntables = [\"a\"]\n",
                "declares [citus] and [reference] and [distribute]: one step per file",
            ),
            (
                "[citus]\nextension = false\n",
                "[citus] extension = false declares nothing; write extension = true or remove the file",
            ),
            ("[reference]\ntables = []\n", "[reference] tables is empty"),
            ("[distribute]\ncolumn = \"t\"\ntables = []\n", "[distribute] tables is empty"),
            ("[reference]\ntables = [\"\"]\n", "[reference] tables has an empty name"),
            ("[reference]\ntables = [\"a\", \"public.a\"]\n", "[reference] tables lists public.a twice"),
            ("[distribute]\ncolumn = \"\"\ntables = [\"a\"]\n", "[distribute] column is empty"),
            (
                "[distribute]\ncolumn = \"t\"\ncolocate_with = \"\"\ntables = [\"a\"]\n",
                "[distribute] colocate_with is empty",
            ),
            (
                "[distribute]\ncolumn = \"t\"\ntables = [\"a\", \"b\"]\n",
                "[distribute] lists 2 tables without colocate_with: name the table they are colocated with (only a file that distributes the root alone may omit it)",
            ),
            (
                "[distribute]\ncolumn = \"t\"\ncolocate_with = \"r\"\nshard_count = 4\ntables = [\"a\"]\n",
                "[distribute] shard_count applies only to a file that distributes the root (colocate_with omitted, or the root listed in tables)",
            ),
            (
                "[distribute]\ncolumn = \"t\"\nshard_count = 0\ntables = [\"a\"]\n",
                "[distribute] shard_count must be at least 1",
            ),
            ("[reference]\ntables = [\"a.\"]\n", "[reference] tables: 'a.' is not a table name (name or schema.name)"),
        ];
        for (text, want) in cases {
            assert_eq!(err(text), want, "{text:?}");
        }
    }

    #[test]
    fn toml_and_shape_errors_carry_the_line() {
        assert_eq!(
            err("[citus]\nextension = true\nversion = 2\n"),
            "3: unknown field `version`, expected `extension`"
        );
        assert_eq!(
            err("[citus]\nextension = true\n[reference]\ntables = [\"a\"]\ncolumn = \"x\"\n"),
            "5: unknown field `column`, expected `tables`"
        );
        assert_eq!(
            err("[tables]\nx = 1\n"),
            "1: unknown field `tables`, expected one of `citus`, `reference`, `distribute`"
        );
        assert_eq!(
            err("[distribute]\ntables = [\"a\"]\n"),
            "1: missing field `column`"
        );
        assert_eq!(err("[citus]\n"), "1: missing field `extension`");
        assert_eq!(
            err("[reference]\ntables = [1]\n"),
            "2: invalid type: integer `1`, expected a string"
        );
        assert_eq!(
            err("[reference]\ntables = \"a\"\n"),
            "2: invalid type: string \"a\", expected a sequence"
        );
        let syntax = err("[citus\nextension = true\n");
        assert!(syntax.starts_with("1: "), "{syntax}");
        assert!(!syntax.contains('\n'), "{syntax}");
    }

    #[test]
    fn config_names_round_trip() {
        for q in [
            QualifiedName::new("public", "users"),
            QualifiedName::new("billing", "Invoice Lines"),
            QualifiedName::new("Billing Ops", "a.b"),
            QualifiedName::new("public", "we\"ird.name"),
            QualifiedName::new("s.x", "t"),
        ] {
            let text = config_name(&q);
            assert_eq!(QualifiedName::parse(&text, "public"), q, "{text}");
        }
        assert_eq!(config_name(&q("users")), "users");
        assert_eq!(config_name(&q("billing.currencies")), "billing.currencies");
    }

    #[test]
    fn rendering_round_trips() {
        let steps = [
            DeclarativeStep::Extension,
            DeclarativeStep::Reference {
                tables: vec![
                    q("countries"),
                    QualifiedName::new("Billing Ops", "cur\"rencies"),
                ],
            },
            DeclarativeStep::Distribute {
                column: "Tenant \"id\"\\x".into(),
                colocate_with: Some(q("tenants")),
                tables: vec![q("a"), q("b"), q("c"), q("s.d")],
                shard_count: None,
                unsafe_triggers: vec![q("s.d")],
            },
            DeclarativeStep::Distribute {
                column: "tenant".into(),
                colocate_with: None,
                tables: vec![q("tenants")],
                shard_count: Some(32),
                unsafe_triggers: Vec::new(),
            },
        ];
        for s in steps {
            let text = s.to_toml();
            assert_eq!(DeclarativeStep::parse(&text).unwrap(), s, "{text}");
        }
    }

    #[test]
    fn the_engine_configuration_says_only_what_the_file_says() {
        let d = DeclarativeStep::parse(
            "[distribute]\ncolumn = \"tenant_id\"\ncolocate_with = \"core.accounts\"\ntables = [\"emails\"]\n",
        )
        .unwrap();
        let c = d.config(Some("account")).unwrap();
        assert_eq!(c.root_name(), q("core.accounts"));
        assert_eq!(c.columns, ["tenant_id"]);
        let decisions = c.decisions();
        let e = &decisions[&q("emails")];
        assert_eq!(e.column.as_deref(), Some("tenant_id"));
        assert_eq!(e.role, Some(ForcedRole::Distributed));
        // The root keeps the column it is distributed by, and its role comes from being root.
        let root = &decisions[&q("core.accounts")];
        assert_eq!(root.column.as_deref(), Some("account"));
        assert_eq!(root.role, None);

        let r = DeclarativeStep::Reference {
            tables: vec![QualifiedName::new("Billing Ops", "a.b")],
        };
        let decisions = r.config(None).unwrap().decisions();
        assert_eq!(
            decisions[&QualifiedName::new("Billing Ops", "a.b")].role,
            Some(ForcedRole::Reference)
        );
        assert!(DeclarativeStep::Extension.config(None).is_none());
    }

    #[test]
    fn a_step_in_a_chain_knows_the_chain_s_other_columns() {
        let steps: Vec<DeclarativeStep> = [
            "[citus]\nextension = true\n",
            "[distribute]\ncolumn = \"tenant\"\ntables = [\"tenants\"]\n",
            "[distribute]\ncolumn = \"tenant_id\"\ncolocate_with = \"tenants\"\ntables = [\"emails\"]\n",
            "[distribute]\ncolumn = \"tenant\"\ncolocate_with = \"tenants\"\ntables = [\"users\"]\n",
            "[reference]\ntables = [\"countries\"]\n",
        ]
        .iter()
        .map(|t| DeclarativeStep::parse(t).unwrap())
        .collect();
        let chain = chain_columns(&steps);
        assert_eq!(chain, ["tenant", "tenant_id"]);
        let c = steps[1].config_in_chain(None, &chain).unwrap();
        assert_eq!(c.columns, ["tenant", "tenant_id"]);
        let c = steps[2].config_in_chain(Some("tenant"), &chain).unwrap();
        assert_eq!(c.columns, ["tenant_id", "tenant"], "its own column first");
        let r = steps[4].config_in_chain(None, &chain).unwrap();
        assert_eq!(r, steps[4].config(None).unwrap());
    }

    #[test]
    fn descriptions() {
        let d = DeclarativeStep::parse(
            "[distribute]\ncolumn = \"tenant\"\ncolocate_with = \"tenants\"\ntables = [\"users\", \"teams\"]\n",
        )
        .unwrap();
        assert_eq!(
            d.describe_up(),
            "distribute public.users, public.teams by tenant, colocated with public.tenants"
        );
        assert_eq!(
            d.describe_down(),
            "undistribute public.users, public.teams (with the tables joined to them by foreign keys)"
        );
        assert_eq!(
            DeclarativeStep::Extension.describe_down(),
            "drop extension citus, if no Citus table remains"
        );
    }
}
