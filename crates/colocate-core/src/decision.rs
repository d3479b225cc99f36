//! Decisions: what a team chooses where Citus refuses a schema as it is and every way out changes
//! what the schema means. Each *kind* of blocker has named choices; a choice is taken for the
//! whole kind in one line, and overridden for a table or one constraint, always with a reason:
//!
//! ```toml
//! [distribution.decisions]
//! unique-without-tenant = { choice = "widen", reason = "ids are unique per tenant only" }
//! key-action-on-tenant = { choice = "no-action", reason = "the application clears the column" }
//!
//! [[distribution.decisions.except]]
//! kind = "unique-without-tenant"
//! table = "api_keys"
//! constraint = "api_keys_key_key"      # optional: one constraint, else the whole table
//! choice = "keep-local"
//! reason = "looked up by a bare token, with no tenant in hand"
//! ```
//!
//! This module is the vocabulary and its validation; the planner applies the choices.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::distribution::{ConfigProblem, Key};
use crate::schema::QualifiedName;

/// A kind of blocker whose every fix changes what the schema means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DecisionKind {
    /// A primary key, unique constraint or unique index without the tenant column, on a value
    /// that is not a surrogate id (a token, an external id, a natural key).
    UniqueWithoutTenant,
    /// A foreign key whose `ON DELETE/UPDATE SET NULL/SET DEFAULT/CASCADE` touches the tenant
    /// column, which Citus refuses.
    KeyActionOnTenant,
    /// A table with triggers, which Citus refuses to distribute.
    Triggers,
    /// A tenant column of another type than the root's.
    TenantColumnType,
    /// A table without a tenant column that hangs off a tenant table by a foreign key.
    TenantLessChild,
    /// A table kept local (or reference) with foreign keys to distributed tables.
    LocalReferencesDistributed,
}

/// Every kind, in the order docs and messages list them.
pub const KINDS: &[DecisionKind] = &[
    DecisionKind::UniqueWithoutTenant,
    DecisionKind::KeyActionOnTenant,
    DecisionKind::Triggers,
    DecisionKind::TenantColumnType,
    DecisionKind::TenantLessChild,
    DecisionKind::LocalReferencesDistributed,
];

impl DecisionKind {
    /// The name in `colocate.toml`, JSON and messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            DecisionKind::UniqueWithoutTenant => "unique-without-tenant",
            DecisionKind::KeyActionOnTenant => "key-action-on-tenant",
            DecisionKind::Triggers => "triggers",
            DecisionKind::TenantColumnType => "tenant-column-type",
            DecisionKind::TenantLessChild => "tenant-less-child",
            DecisionKind::LocalReferencesDistributed => "local-references-distributed",
        }
    }

    /// The choices this kind offers, each with what it does.
    pub const fn choices(self) -> &'static [(Choice, &'static str)] {
        use Choice::*;
        match self {
            DecisionKind::UniqueWithoutTenant => &[
                (Widen, "add the tenant column to the key: unique per tenant, no longer across tenants"),
                (KeepLocal, "keep the table a local table on the coordinator (its keys to distributed tables are dropped)"),
                (DropConstraint, "drop the constraint: nothing checks the value's uniqueness any more"),
            ],
            DecisionKind::KeyActionOnTenant => &[
                (NoAction, "re-create the key with NO ACTION: the application clears or moves the rows itself"),
                (DropKey, "drop the key: nothing checks the reference any more"),
            ],
            DecisionKind::Triggers => &[
                (Drop, "drop the triggers: what they did no longer happens"),
                (KeepUnsafe, "keep them, converting with citus.enable_unsafe_triggers: they run on the shards and must only touch the same tenant's rows"),
                (KeepLocal, "keep the table a local table on the coordinator (its keys to distributed tables are dropped)"),
            ],
            DecisionKind::TenantColumnType => &[
                (Convert, "convert the column to the root's type"),
                (KeepLocal, "keep the table a local table on the coordinator (its keys to distributed tables are dropped)"),
            ],
            DecisionKind::TenantLessChild => &[
                (AddTenantColumn, "add the tenant column, fill it from the parent row (in batches), make it NOT NULL and re-create the keys with it"),
                (ReferenceDropKey, "make it a reference table and drop its key to the tenant table"),
                (LocalDropKey, "keep it local and drop its key to the tenant table"),
            ],
            DecisionKind::LocalReferencesDistributed => &[(
                DropKeys,
                "drop its foreign keys to distributed tables (journaled, restored by undistribute): nothing checks those references any more",
            )],
        }
    }

    pub fn offers(self, c: Choice) -> bool {
        self.choices().iter().any(|(x, _)| *x == c)
    }
}

impl fmt::Display for DecisionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A named way out of a blocker (see [`DecisionKind::choices`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Choice {
    Widen,
    KeepLocal,
    DropConstraint,
    NoAction,
    DropKey,
    Drop,
    KeepUnsafe,
    Convert,
    AddTenantColumn,
    ReferenceDropKey,
    LocalDropKey,
    DropKeys,
}

impl Choice {
    pub const fn as_str(self) -> &'static str {
        match self {
            Choice::Widen => "widen",
            Choice::KeepLocal => "keep-local",
            Choice::DropConstraint => "drop-constraint",
            Choice::NoAction => "no-action",
            Choice::DropKey => "drop-key",
            Choice::Drop => "drop",
            Choice::KeepUnsafe => "keep-unsafe",
            Choice::Convert => "convert",
            Choice::AddTenantColumn => "add-tenant-column",
            Choice::ReferenceDropKey => "reference-drop-key",
            Choice::LocalDropKey => "local-drop-key",
            Choice::DropKeys => "drop-keys",
        }
    }
}

impl fmt::Display for Choice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A choice with the reason the team gave for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Taken {
    pub choice: Choice,
    #[serde(default)]
    pub reason: String,
}

/// A choice for one table, or one constraint of it, that overrides its kind's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exception {
    pub kind: DecisionKind,
    pub table: String,
    #[serde(default)]
    pub constraint: Option<String>,
    pub choice: Choice,
    #[serde(default)]
    pub reason: String,
}

/// The `[distribution.decisions]` section. (An unknown key is refused by the kind's own
/// parsing: serde cannot deny unknown fields next to a flattened map.)
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Decisions {
    /// One choice per kind, for every case of it.
    #[serde(flatten)]
    pub by_kind: BTreeMap<DecisionKind, Taken>,
    /// Per table or constraint, over the kind's choice.
    #[serde(default)]
    pub except: Vec<Exception>,
}

/// Where the choice that applies was taken, for messages and JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "scope")]
pub enum Scope {
    /// `distribution.decisions.<kind>`.
    Kind,
    /// `distribution.decisions.except[i]`, for the whole table.
    Table { index: usize },
    /// `distribution.decisions.except[i]`, for one constraint.
    Constraint { index: usize },
}

/// The choice that applies to one case, with its reason and where it was said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Applied<'a> {
    pub kind: DecisionKind,
    pub choice: Choice,
    pub reason: &'a str,
    #[serde(flatten)]
    pub scope: Scope,
}

impl Applied<'_> {
    /// Where it was said, as a person finds it in the file.
    pub fn setting(&self) -> String {
        match self.scope {
            Scope::Kind => format!("distribution.decisions.{}", self.kind),
            Scope::Table { index } | Scope::Constraint { index } => {
                format!("distribution.decisions.except[{index}]")
            }
        }
    }
}

impl Decisions {
    pub fn is_empty(&self) -> bool {
        self.by_kind.is_empty() && self.except.is_empty()
    }

    /// The choice for a case of `kind` on `table` (and `constraint`, when the case is one):
    /// an exception for the constraint, else one for the table, else the kind's.
    pub fn choice_for(
        &self,
        kind: DecisionKind,
        table: &QualifiedName,
        constraint: Option<&str>,
    ) -> Option<Applied<'_>> {
        let on_table =
            |e: &Exception| e.kind == kind && QualifiedName::parse(&e.table, "public") == *table;
        let exact = self.except.iter().enumerate().find(|(_, e)| {
            on_table(e) && e.constraint.is_some() && e.constraint.as_deref() == constraint
        });
        if let Some((index, e)) = exact {
            return Some(Applied {
                kind,
                choice: e.choice,
                reason: &e.reason,
                scope: Scope::Constraint { index },
            });
        }
        let whole = self
            .except
            .iter()
            .enumerate()
            .find(|(_, e)| on_table(e) && e.constraint.is_none());
        if let Some((index, e)) = whole {
            return Some(Applied {
                kind,
                choice: e.choice,
                reason: &e.reason,
                scope: Scope::Table { index },
            });
        }
        self.by_kind.get(&kind).map(|t| Applied {
            kind,
            choice: t.choice,
            reason: &t.reason,
            scope: Scope::Kind,
        })
    }

    /// What cannot mean what it says: a choice the kind does not offer, a decision without a
    /// reason, an exception naming no table or the same case twice.
    pub fn validate(&self) -> Vec<ConfigProblem> {
        let mut out = Vec::new();
        let base = || {
            vec![
                Key::Name("distribution".into()),
                Key::Name("decisions".into()),
            ]
        };
        let offers = |kind: DecisionKind| {
            kind.choices()
                .iter()
                .map(|(c, _)| c.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        for (kind, t) in &self.by_kind {
            let mut path = base();
            path.push(Key::Name(kind.as_str().into()));
            if !kind.offers(t.choice) {
                out.push(ConfigProblem {
                    path: path.clone(),
                    message: format!("{kind} has no choice {}", t.choice),
                    hint: Some(format!("choose one of: {}", offers(*kind))),
                });
            }
            if t.reason.trim().is_empty() {
                out.push(ConfigProblem {
                    path,
                    message: format!("the decision for {kind} has no reason"),
                    hint: Some(
                        "say why, e.g. { choice = \"...\", reason = \"...\" }: it is shown in plan, generated files and JSON"
                            .into(),
                    ),
                });
            }
        }
        let mut seen: BTreeMap<(DecisionKind, QualifiedName, Option<&str>), usize> =
            BTreeMap::new();
        for (i, e) in self.except.iter().enumerate() {
            let mut path = base();
            path.push(Key::Name("except".into()));
            path.push(Key::Index(i));
            if let Err(err) = crate::schema::split_table_name(&e.table) {
                out.push(ConfigProblem {
                    path,
                    message: format!("not a table name: {err}"),
                    hint: None,
                });
                continue;
            }
            if !e.kind.offers(e.choice) {
                out.push(ConfigProblem {
                    path: path.clone(),
                    message: format!("{} has no choice {}", e.kind, e.choice),
                    hint: Some(format!("choose one of: {}", offers(e.kind))),
                });
            }
            if e.reason.trim().is_empty() {
                out.push(ConfigProblem {
                    path: path.clone(),
                    message: format!("the decision for {} on {} has no reason", e.kind, e.table),
                    hint: Some(
                        "add reason = \"...\": it is shown in plan, generated files and JSON"
                            .into(),
                    ),
                });
            }
            let q = QualifiedName::parse(&e.table, "public");
            match seen.get(&(e.kind, q.clone(), e.constraint.as_deref())) {
                Some(j) => out.push(ConfigProblem {
                    path,
                    message: format!(
                        "{} on {q}{} is decided twice (also at distribution.decisions.except[{j}])",
                        e.kind,
                        e.constraint
                            .as_deref()
                            .map(|c| format!(" ({c})"))
                            .unwrap_or_default()
                    ),
                    hint: Some("keep one of the two entries".into()),
                }),
                None => {
                    seen.insert((e.kind, q, e.constraint.as_deref()), i);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Decisions {
        toml::from_str(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn every_kind_and_choice_has_a_stable_name_that_round_trips() {
        for k in KINDS {
            let text = format!(
                "{} = {{ choice = \"{}\", reason = \"r\" }}",
                k.as_str(),
                k.choices()[0].0
            );
            let d = parse(&text);
            assert_eq!(d.by_kind[k].choice, k.choices()[0].0, "{k}");
            for (c, what) in k.choices() {
                assert!(k.offers(*c));
                assert!(!what.is_empty());
                let v: Choice = toml::Value::String(c.as_str().into()).try_into().unwrap();
                assert_eq!(v, *c);
            }
        }
        assert_eq!(KINDS.len(), 6);
    }

    #[test]
    fn a_constraint_wins_over_its_table_and_a_table_over_the_kind() {
        let d = parse(
            r#"
            unique-without-tenant = { choice = "widen", reason = "per tenant" }
            [[except]]
            kind = "unique-without-tenant"
            table = "api_keys"
            choice = "keep-local"
            reason = "bare token lookups"
            [[except]]
            kind = "unique-without-tenant"
            table = "api_keys"
            constraint = "api_keys_label_key"
            choice = "drop-constraint"
            reason = "labels need not be unique"
            "#,
        );
        assert!(d.validate().is_empty(), "{:?}", d.validate());
        let t = QualifiedName::parse("api_keys", "public");
        let other = QualifiedName::parse("users", "public");
        let k = DecisionKind::UniqueWithoutTenant;
        let exact = d.choice_for(k, &t, Some("api_keys_label_key")).unwrap();
        assert_eq!(
            (exact.choice, exact.scope.clone()),
            (Choice::DropConstraint, Scope::Constraint { index: 1 })
        );
        assert_eq!(exact.setting(), "distribution.decisions.except[1]");
        let table = d.choice_for(k, &t, Some("api_keys_key_key")).unwrap();
        assert_eq!(
            (table.choice, table.reason),
            (Choice::KeepLocal, "bare token lookups")
        );
        let kind = d.choice_for(k, &other, Some("users_email_key")).unwrap();
        assert_eq!((kind.choice, &kind.scope), (Choice::Widen, &Scope::Kind));
        assert_eq!(
            kind.setting(),
            "distribution.decisions.unique-without-tenant"
        );
        assert!(d.choice_for(DecisionKind::Triggers, &t, None).is_none());
    }

    #[test]
    fn a_choice_the_kind_does_not_offer_a_missing_reason_and_a_repeat_are_refused() {
        let d = parse(
            r#"
            triggers = { choice = "widen", reason = "x" }
            key-action-on-tenant = { choice = "no-action" }
            [[except]]
            kind = "triggers"
            table = "audit"
            choice = "drop"
            reason = "x"
            [[except]]
            kind = "triggers"
            table = "public.audit"
            choice = "keep-local"
            reason = "y"
            "#,
        );
        let problems: Vec<String> = d
            .validate()
            .iter()
            .map(|p| format!("{}: {}", p.setting(), p.message))
            .collect();
        assert_eq!(
            problems,
            [
                "distribution.decisions.key-action-on-tenant: the decision for key-action-on-tenant has no reason",
                "distribution.decisions.triggers: triggers has no choice widen",
                "distribution.decisions.except[1]: triggers on public.audit is decided twice (also at distribution.decisions.except[0])",
            ]
        );
        let unknown: Result<Decisions, _> =
            toml::from_str("no-such-kind = { choice = \"drop\", reason = \"x\" }");
        assert!(unknown.is_err());
    }
}
